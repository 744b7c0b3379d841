from __future__ import annotations

import contextlib
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def make_client(tts):
    """A factory of TestClients for apps with the given ServerConfig fields, sharing the session's voice.

    The clients are shut down at the end of each test module, so that a failed shutdown names its module."""
    import anyio
    from fastapi.testclient import TestClient

    from qingyin.server.app import create_app
    from qingyin.server.config import ServerConfig
    from qingyin.server.service import TTSService

    clients = []

    def make(synthesizer=None, **fields) -> TestClient:
        fields = {"warmup": False, "cache_dir": Path("off"), "ui": False} | fields
        config = ServerConfig(**fields).validated()
        service = TTSService(config, synthesizers={"baker": synthesizer or tts})
        client = TestClient(create_app(config, service))
        client.__enter__()
        clients.append((client, fields))
        return client

    yield make
    for client, fields in reversed(clients):
        try:
            client.__exit__(None, None, None)
        except anyio.RunFinishedError as error:
            # The client's event loop (its anyio portal thread) ended before this shutdown: there is nothing left to
            # shut down, and the tests that used it have their verdicts. Seen once in CI, at the end of the session,
            # not reproduced since; the warning names the client so that a recurrence can be traced.
            warnings.warn(f"a test client with {fields} had lost its event loop before its shutdown: {error!r}",
                          stacklevel=1)


@pytest.fixture(scope="module")
def client(make_client):
    return make_client()


class GatedSynthesizer:
    """The real synthesizer, except that synthesis first waits for `gate`: for queue, timeout and shutdown tests."""

    def __init__(self, real, gate: threading.Event):
        self.real = real
        self.gate = gate
        self.sample_rate = real.sample_rate
        self.spec = real.spec
        self.voice = real.voice
        self.started = threading.Semaphore(0)

    def check_options(self, **options):
        return self.real.check_options(**options)

    def synthesize(self, text, lexicon=None, *, cancel=None, **options):
        self.started.release()
        self.gate.wait(30)
        return self.real.synthesize(text, lexicon, cancel=cancel, **options)

    def stream_chunks(self, text, lexicon=None, **options):
        self.started.release()
        self.gate.wait(30)
        return self.real.stream_chunks(text, lexicon, **options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free local port in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
