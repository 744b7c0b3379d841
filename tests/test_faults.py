"""Fault injection: what the server does when a voice file is damaged, the cache disk is full or unwritable, a
synthesis fails mid-stream, a client hangs up, the process gets SIGTERM under load or is killed with SIGKILL.

Each test breaks one thing on purpose and checks that the damage stays where it happened: a clear error that
names the fix, the other requests served, nothing left behind. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from qingyin.server.app import create_app
from qingyin.server.cache import AudioCache, cache_key
from qingyin.server.config import ServerConfig
from qingyin.server.service import STREAM_BUFFER, TTSService
from qingyin.voices import registry
from tests.server.conftest import free_port, live_server

SENTENCE = "今天天气不错，我们去公园散步吧。"
LONG_TEXT = "春天来了，公园里的花都开了。孩子们在草地上奔跑，老人们坐在长椅上聊天。" * 12  # 24 sentences
INSTALLED_KOKORO = registry.model_dir("kokoro")  # read before any test points QINGYIN_HOME elsewhere


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as reader:
        return reader.getnframes() / reader.getframerate()


def make_app(synthesizer, **fields) -> tuple[TTSService, object]:
    """A service speaking baker through `synthesizer`, and its app; no UI, no disk cache unless asked."""
    fields = {"warmup": False, "cache_dir": Path("off"), "ui": False} | fields
    config = ServerConfig(**fields).validated()
    service = TTSService(config, synthesizers={"baker": synthesizer})
    return service, create_app(config, service)


@contextlib.contextmanager
def client_of(synthesizer, **fields) -> Iterator[TestClient]:
    _, app = make_app(synthesizer, **fields)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def server_log() -> Iterator[list[logging.LogRecord]]:
    """What qingyin's loggers record during the test (attached to "qingyin" itself: the server's JSON logging
    stops propagation to the root logger, where caplog listens)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    logger = logging.getLogger("qingyin")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def logged(records: list[logging.LogRecord], level: int = logging.WARNING) -> str:
    """The messages of `records` at `level` or above, with their tracebacks."""
    formatter = logging.Formatter("%(message)s")
    return "\n".join(formatter.format(record) for record in records if record.levelno >= level)


class FaultySynthesizer:
    """The real synthesizer, except that its streams can fail after `fail_after` chunks, and the chunks it makes
    and the closing of each stream are recorded (for mid-stream failures and clients that hang up)."""

    def __init__(self, real, fail_after: int | None = None):
        self.real = real
        self.fail_after = fail_after
        self.produced = 0
        self.closed = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def stream_chunks(self, text, lexicon=None, **options):
        pieces = self.real.stream_chunks(text, lexicon, **options)  # checks the options now, as the real one does
        self.closed.clear()

        def run():
            try:
                for piece in pieces:
                    if self.fail_after is not None and self.produced >= self.fail_after:
                        raise RuntimeError("simulated failure in the middle of a synthesis")
                    self.produced += 1
                    yield piece
            finally:
                self.closed.set()

        return run()


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting until {what}"
        time.sleep(0.02)


# --- a voice file damaged on disk ------------------------------------------------------------------------------
SPEAKER_PACK = "voices/zf_xiaobei.bin"  # checked against the manifest when the model loads
GRAPH = "graphs/int8/predict.onnx"  # derived from the checked files, not hashed on every load: onnxruntime fails


def home_with_damaged_kokoro(home: Path, damaged: str) -> Path:
    """`home`/voices/kokoro as links to the installed Kokoro files, except `damaged`: a copy with a flipped byte
    (a speaker pack) or cut in half (a graph), as a bad disk or an interrupted copy leaves them. Its path."""
    target = home / "voices" / "kokoro"
    for path in INSTALLED_KOKORO.rglob("*"):
        link = target / path.relative_to(INSTALLED_KOKORO)
        if path.is_dir():
            link.mkdir(parents=True, exist_ok=True)
        else:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
    broken = target / damaged
    data = bytearray(broken.read_bytes())
    if damaged == SPEAKER_PACK:
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    broken.unlink()
    broken.write_bytes(bytes(data))
    return broken


@pytest.mark.parametrize("damaged", [SPEAKER_PACK, GRAPH])
def test_a_damaged_voice_file_gets_a_503_naming_the_repair_and_other_voices_keep_serving(
        tts, tmp_path, monkeypatch, server_log, damaged):
    if not (INSTALLED_KOKORO / registry.MANIFEST).is_file():
        pytest.skip("needs the Kokoro voices (qingyin models fetch kokoro)")
    broken = home_with_damaged_kokoro(tmp_path / "home", damaged)
    monkeypatch.setenv("QINGYIN_HOME", str(tmp_path / "home"))
    with client_of(tts) as client:
        for body in ({"text": "你好。", "voice": "xiaobei"}, {"text": "你好。", "voice": "yunxi", "stream": True}):
            response = client.post("/v1/tts", json=body)
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["type"] == "voice_unavailable" and error["param"] == "voice"
            assert "damaged" in error["message"] and "`qingyin models fetch kokoro --force`" in error["message"]
            assert str(tmp_path) not in error["message"]  # the server's paths stay in its log
        assert broken.name in logged(server_log, logging.ERROR)  # the log names the file
        with client.websocket_connect("/v1/tts/ws") as ws:
            ws.send_text(json.dumps({"text": "你好。", "voice": "xiaobei"}))
            event = ws.receive_json()
            assert event["type"] == "error" and event["status"] == 503 and "--force" in event["message"]
            ws.send_text(json.dumps({"text": "你好。", "voice": "baker"}))  # the same session goes on
            assert ws.receive_json()["type"] == "start"
        served = client.post("/v1/tts", json={"text": SENTENCE, "voice": "baker"})
        assert served.status_code == 200 and wav_seconds(served.content) > 1.0
        if damaged == SPEAKER_PACK:  # a failed load is not remembered: repaired files serve without a restart
            broken.unlink()
            broken.symlink_to(INSTALLED_KOKORO / damaged)
            repaired = client.post("/v1/tts", json={"text": "你好。", "voice": "xiaobei"})
            assert repaired.status_code == 200 and wav_seconds(repaired.content) > 0.3


# --- the cache directory full or unwritable --------------------------------------------------------------------
def failing_writes(monkeypatch, directory: Path, code: int) -> None:
    """Writes of files under `directory` fail with OSError(`code`): ENOSPC when the data is written (a full disk),
    EACCES when the file is created (a directory the server may not write)."""
    import qingyin.server.cache as cache_module

    real_mkstemp, real_fdopen = cache_module.tempfile.mkstemp, os.fdopen

    def mkstemp(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's own name
        if code == errno.EACCES and dir is not None and Path(dir).is_relative_to(directory):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    class FullDisk(io.RawIOBase):
        def __init__(self, file):
            self.file = file

        def write(self, data) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            self.file.close()
            super().close()

    def fdopen(descriptor, mode="r", *args, **kwargs):
        file = real_fdopen(descriptor, mode, *args, **kwargs)
        if "w" in mode and Path(os.readlink(f"/proc/self/fd/{descriptor}")).is_relative_to(directory):
            return FullDisk(file)
        return file

    monkeypatch.setattr(cache_module.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(cache_module.os, "fdopen", fdopen)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES], ids=["disk-full", "unwritable"])
def test_a_full_or_unwritable_cache_disk_serves_without_the_cache_and_warns(tts, tmp_path, monkeypatch,
                                                                           server_log, code):
    directory = tmp_path / "cache"
    with client_of(tts, cache_items=0, cache_dir=directory) as client:
        failing_writes(monkeypatch, directory, code)
        answers = [client.post("/v1/tts", json={"text": SENTENCE}) for _ in range(2)]
        for answer in answers:
            assert answer.status_code == 200 and answer.headers["x-cache"] == "miss"
            assert wav_seconds(answer.content) > 1.0
        assert answers[0].content == answers[1].content
        assert "audio cache: could not write" in logged(server_log) and os.strerror(code) in logged(server_log)
        assert [p for p in directory.rglob("*") if p.is_file()] == []  # no entry, no temporary file left
        monkeypatch.undo()  # the disk has room again: the next answer is kept
        assert client.post("/v1/tts", json={"text": SENTENCE}).headers["x-cache"] == "miss"
        again = client.post("/v1/tts", json={"text": SENTENCE})
        assert again.headers["x-cache"] == "hit" and again.content == answers[0].content


def test_a_cache_directory_that_cannot_be_made_serves_from_memory(tts, tmp_path, server_log):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with client_of(tts, cache_items=8, cache_dir=blocker / "cache") as client:  # mkdir fails, even for root
        first, second = (client.post("/v1/tts", json={"text": SENTENCE}) for _ in range(2))
        assert (first.status_code, second.status_code) == (200, 200)
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert "caching in memory only" in logged(server_log)


# --- a synthesis that fails in the middle of a stream ----------------------------------------------------------
def test_a_synthesis_failing_mid_stream_ends_the_stream_with_an_error(tts, server_log):
    faulty = FaultySynthesizer(tts, fail_after=2)
    service, app = make_app(faulty)
    with live_server(app) as url:
        received = bytearray()
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            with httpx.stream("POST", f"{url}/v1/tts", json={"text": LONG_TEXT, "stream": True, "format": "pcm"},
                              timeout=60) as response:
                assert response.status_code == 200
                for part in response.iter_bytes():
                    received += part
        assert len(received) > 0  # the audio before the failure came, then the transfer was cut, not closed cleanly
        log = logged(server_log, logging.ERROR)
        assert "response cut short: synthesis failed (RuntimeError)" in log
        assert "RuntimeError: simulated failure in the middle of a synthesis" in log  # the cause, with its traceback
        faulty.fail_after = None  # the next requests are not affected
        for body in ({"text": SENTENCE}, {"text": SENTENCE, "stream": True, "format": "pcm"}):
            assert httpx.post(f"{url}/v1/tts", json=body, timeout=60).status_code == 200
        wait_until(lambda: service.queue_depth == 0, 10, "the failed request gave its worker back")


def test_a_synthesis_failing_mid_stream_ends_a_websocket_request_with_an_error_event(tts):
    faulty = FaultySynthesizer(tts, fail_after=2)
    with client_of(faulty) as client, client.websocket_connect("/v1/tts/ws") as ws:
        ws.send_text(json.dumps({"text": LONG_TEXT}))
        events, audio = [], 0
        while not events or events[-1]["type"] not in ("done", "error"):
            message = ws.receive()
            if message.get("bytes"):
                audio += len(message["bytes"])
            else:
                events.append(json.loads(message["text"]))
        assert events[0]["type"] == "start" and audio > 0
        assert events[-1]["type"] == "error" and events[-1]["status"] == 500
        assert "synthesis failed" in events[-1]["message"]
        faulty.fail_after = None
        ws.send_text(json.dumps({"text": "我还在。"}))  # the session goes on
        while (event := ws.receive()).get("text") is None or json.loads(event["text"])["type"] not in ("done",
                                                                                                      "error"):
            pass
        assert json.loads(event["text"])["type"] == "done"


# --- a client that hangs up mid-stream -------------------------------------------------------------------------
def test_a_client_leaving_mid_stream_cancels_the_synthesis_and_leaks_nothing(tts):
    watched = FaultySynthesizer(tts)
    service, app = make_app(watched, concurrency=1)
    with live_server(app) as url:
        assert httpx.post(f"{url}/v1/tts", json={"text": "你好。", "stream": True}, timeout=60).status_code == 200
        threads = threading.active_count()  # the worker pool exists now
        for _ in range(3):
            watched.produced = 0
            with httpx.stream("POST", f"{url}/v1/tts", json={"text": LONG_TEXT, "stream": True, "format": "pcm"},
                              timeout=60) as response:
                assert response.status_code == 200
                next(response.iter_bytes())  # the first audio, then hang up
            assert watched.closed.wait(30), "the synthesis went on after the client left"
            # stopped at its next hand-over, not run to the end of its 24 sentences (24 chunks at least)
            assert watched.produced <= STREAM_BUFFER + 2
            wait_until(lambda: service.queue_depth == 0, 10, "the worker was given back")
        assert threading.active_count() <= threads
        answer = httpx.post(f"{url}/v1/tts", json={"text": SENTENCE}, timeout=60)
        assert answer.status_code == 200 and wav_seconds(answer.content) > 1.0


def test_an_error_before_the_response_starts_gets_a_500_with_the_request_id(tts, server_log):
    broken = FaultySynthesizer(tts)
    broken.check_options = lambda **options: (_ for _ in ()).throw(RuntimeError("simulated bug"))
    with client_of(broken) as client:
        response = client.post("/v1/tts", json={"text": SENTENCE}, headers={"X-Request-ID": "fault-500"})
        assert response.status_code == 500 and response.headers["x-request-id"] == "fault-500"
        assert response.json()["request_id"] == "fault-500" and "fault-500" in response.json()["error"]["message"]
        assert "RuntimeError: simulated bug" in logged(server_log, logging.ERROR)
        broken.check_options = tts.check_options
        assert client.post("/v1/tts", json={"text": SENTENCE}).status_code == 200


# --- the process: SIGTERM under load, SIGKILL and a restart ----------------------------------------------------
@contextlib.contextmanager
def qingyin_serve(tmp_path: Path, *flags: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`qingyin serve` (baker, no UI, no warm-up) as its own process on a free local port; its log goes to a file
    in `tmp_path`, quoted when it does not start in time. Killed at the end if still running."""
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    env = os.environ | {"QINGYIN_WARMUP": "false", "QINGYIN_BACKGROUND_GATE": "false"}
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "qingyin.cli", "serve", "--port", str(port), "--no-ui",
                                    *flags], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"qingyin serve did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def queue_depth(url: str) -> int:
    return httpx.get(f"{url}/healthz", timeout=5).json()["queue_depth"]


def test_sigterm_under_load_finishes_the_requests_in_flight_and_refuses_new_ones(baker_dir, tmp_path):
    texts = [f"第{number}位旅客请注意，开往北京的列车就要出发了，请您带好随身物品，从三号站台上车。" * 2
             for number in "一二三"]
    with qingyin_serve(tmp_path, "--concurrency", "1", "--cache-dir", "off") as (process, url):
        answers: dict[int, tuple[httpx.Response, float]] = {}

        def ask(number: int) -> None:
            response = httpx.post(f"{url}/v1/tts", json={"text": texts[number]}, timeout=120)
            answers[number] = response, time.monotonic()

        clients = [threading.Thread(target=ask, args=(number,)) for number in range(3)]
        for client in clients:
            client.start()
        wait_until(lambda: queue_depth(url) == 3, 30, "the three requests are in (one running, two waiting)")
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while True:  # the server stops listening as soon as it has taken the signal
            try:
                socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2).close()
            except ConnectionRefusedError:
                refused = time.monotonic()
                break
            assert time.monotonic() < deadline, "the server still accepted connections 10 s after SIGTERM"
            time.sleep(0.02)
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{url}/v1/tts", json={"text": "新来的。"}, timeout=10)
        for client in clients:
            client.join(120)
        assert sorted(answers) == [0, 1, 2]
        for response, _ in answers.values():
            assert response.status_code == 200 and wav_seconds(response.content) > 8  # whole, not cut off
        assert refused < max(done for _, done in answers.values())  # refused while the others were still served
        assert process.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it is done
    log = "\n".join(path.read_text() for path in tmp_path.glob("serve-*.log"))
    assert "shutting down: finishing requests in progress" in log and "Traceback" not in log


WRITER = """
import hashlib, sys
from pathlib import Path
from qingyin.server.cache import AudioCache, cache_key
cache = AudioCache(max_items=0, directory=Path(sys.argv[1]), max_disk_bytes=48 * 2**20)
progress = open(sys.argv[2], "a")
for number in range(100_000):
    cache.put(cache_key({"entry": number}), hashlib.sha256(str(number).encode()).digest() * 2**17)  # 4 MB
    print(number, file=progress, flush=True)
"""


def entry_data(number: int) -> bytes:
    import hashlib

    return hashlib.sha256(str(number).encode()).digest() * 2**17


def test_kill_9_while_writing_the_cache_leaves_no_entry_that_is_served_damaged(tmp_path):
    directory, progress = tmp_path / "cache", tmp_path / "progress"
    progress.touch()
    for round_ in range(3):  # killed at a different point of a write each time, most likely in the middle of one
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(directory), str(progress)])
        try:
            wanted = len(progress.read_text().split()) + 3 + round_
            wait_until(lambda: len(progress.read_text().split()) >= wanted, 60,  # noqa: B023 - waited for here
                       "the writer stored a few entries")
            time.sleep(0.011 * (round_ + 1))
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(30)
        cache = AudioCache(max_items=0, directory=directory, max_disk_bytes=48 * 2**20)  # the restart
        last = int(progress.read_text().split()[-1])
        found = {number: cache.get(cache_key({"entry": number})) for number in range(last + 3)}
        assert found[last] == entry_data(last)  # what was stored before the kill is there...
        for number, data in found.items():
            assert data is None or data == entry_data(number)  # ...and nothing is ever served damaged
    temporary = [path for path in directory.rglob("*.tmp")]
    assert len(temporary) <= 3  # at most one half-written temporary file per kill, never read as an entry


def test_kill_9_and_restart_never_serves_a_damaged_cache_entry(baker_dir, tmp_path):
    cache = tmp_path / "cache"
    flags = ("--concurrency", "1", "--cache-dir", str(cache), "--cache-items", "0")  # memory off: disk answers
    with qingyin_serve(tmp_path, *flags) as (process, url):
        first = httpx.post(f"{url}/v1/tts", json={"text": SENTENCE}, timeout=120)
        assert first.status_code == 200 and first.headers["x-cache"] == "miss"
        (entry,) = [path for path in cache.rglob("*") if path.is_file()]
        in_flight = [threading.Thread(target=_post_quietly, args=(url, text * 20)) for text in ("第一句。", "第二句。")]
        for client in in_flight:
            client.start()
        wait_until(lambda: queue_depth(url) >= 1, 30, "a request is being synthesized")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        for client in in_flight:
            client.join(30)
    # What a crash can leave beside the entries: a temporary file it was writing, and, on a file system that
    # reorders writes, an entry whose file was renamed into place before all of its data reached the disk.
    stale = entry.parent / f".{entry.name}.crash.tmp"
    stale.write_bytes(b"half an entry")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    with qingyin_serve(tmp_path, *flags) as (process, url):
        again = httpx.post(f"{url}/v1/tts", json={"text": SENTENCE}, timeout=120)
        assert again.status_code == 200 and again.headers["x-cache"] == "miss"  # the cut entry was not served
        assert again.content == first.content
        cached = httpx.post(f"{url}/v1/tts", json={"text": SENTENCE}, timeout=120)
        assert cached.headers["x-cache"] == "hit" and cached.content == first.content  # written anew, whole
        assert not stale.exists()  # removed when the cache opened


def _post_quietly(url: str, text: str) -> None:
    with contextlib.suppress(httpx.TransportError):
        httpx.post(f"{url}/v1/tts", json={"text": text}, timeout=60)
