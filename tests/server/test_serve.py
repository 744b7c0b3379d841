"""`qingyin serve` as a real process: start-up, a client that leaves mid-stream, graceful shutdown on SIGTERM."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import wave

import httpx
import pytest

from tests.server.conftest import free_port

LONG_TEXT = "春天来了，公园里的花都开了，孩子们在草地上奔跑，老人们坐在长椅上聊天。" * 3


@pytest.fixture(scope="module")
def server(baker_dir):
    port = free_port()
    env = os.environ | {"QINGYIN_CACHE_DIR": "off", "QINGYIN_WARMUP": "true"}
    process = subprocess.Popen([sys.executable, "-m", "qingyin.cli", "serve", "--port", str(port), "--no-ui",
                                "--concurrency", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # the first start may export the voice to ONNX
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"qingyin serve did not start:\n{process.stderr.read()[-3000:]}")
        time.sleep(0.2)
    yield process, url
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_client_leaving_mid_stream_does_not_hurt_the_server(server):
    _, url = server
    with httpx.stream("POST", f"{url}/v1/tts", json={"text": LONG_TEXT, "stream": True, "format": "pcm"},
                      timeout=60) as response:
        assert response.status_code == 200
        next(response.iter_bytes())  # first audio, then hang up
    for _ in range(3):
        assert httpx.post(f"{url}/v1/tts", json={"text": "我还在。"}, timeout=60).status_code == 200
    assert httpx.get(f"{url}/healthz").json()["queue_depth"] == 0


def test_openai_client_over_the_network(server):
    import openai

    _, url = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input="你好，我是轻音。", response_format="wav")
    with wave.open(io.BytesIO(speech.content)) as audio:
        assert audio.getframerate() == 24000 and audio.getnframes() > 0.5 * 24000
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="nova", input="流式。",
                                                            response_format="pcm") as response:
        assert len(b"".join(response.iter_bytes())) > 0.3 * 24000 * 2


def test_logs_are_json_lines_with_request_ids(server):
    process, url = server
    rid = "log-check-1"
    assert httpx.get(f"{url}/healthz", headers={"X-Request-ID": rid}).status_code == 200
    # read what the server logged so far without blocking: the request line comes right after the response
    os.set_blocking(process.stderr.fileno(), False)
    time.sleep(0.3)
    lines = (process.stderr.read() or "").splitlines()
    import json

    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(r.get("request_id") == rid and r.get("path") == "/healthz" and r.get("status") == 200
               for r in records)
    os.set_blocking(process.stderr.fileno(), True)


def test_sigterm_finishes_the_request_in_flight(server):
    process, url = server
    results: list[httpx.Response] = []
    client = threading.Thread(target=lambda: results.append(
        httpx.post(f"{url}/v1/tts", json={"text": LONG_TEXT}, timeout=120)))
    client.start()
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/healthz").json()["queue_depth"] == 0:  # wait until it is being synthesized
        assert time.monotonic() < deadline, "the request never started"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    client.join(120)
    assert results and results[0].status_code == 200
    with wave.open(io.BytesIO(results[0].content)) as audio:
        assert audio.getnframes() / audio.getframerate() > 10  # the whole text, not a cut-off
    # uvicorn re-raises the signal once it has shut down, so the exit status is that of SIGTERM
    assert process.wait(60) in (0, -signal.SIGTERM)
    assert '"message": "shutting down: finishing requests in progress"' in process.stderr.read()
