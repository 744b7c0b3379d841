"""The HTTP API in-process (TestClient): routes, formats, streaming, cache, metrics, auth, limits and bad input."""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.rounding import assert_equal_but_for_rounding_flips
from tests.server.conftest import GatedSynthesizer

TEXT = "今天天气不错，我们去公园散步吧。"


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), "<i2"), reader.getframerate()


def error_of(response) -> str:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "code"} and body["error"]["code"] == response.status_code
    return body["error"]["message"]


# --- speech --------------------------------------------------------------------------------------------
def test_post_tts_returns_the_synthesized_wav(client, tts):
    response = client.post("/v1/tts", json={"text": TEXT})
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    samples, rate = wav_samples(response.content)
    expected = tts.synthesize(TEXT).audio
    assert rate == 24000 and abs(len(samples) - len(expected)) == 0
    assert float(response.headers["x-audio-duration"]) == pytest.approx(len(expected) / 24000, abs=1e-3)
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(("fmt", "rate", "content_type"), [
    ("mp3", None, "audio/mpeg"), ("ogg", None, "audio/ogg"), ("flac", 16000, "audio/flac"),
    ("opus", 48000, "audio/ogg; codecs=opus"),
])
def test_formats_and_sample_rates(client, fmt, rate, content_type):
    response = client.post("/v1/tts", json={"text": "你好，世界。", "format": fmt, "sample_rate": rate})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    audio, decoded_rate = soundfile.read(io.BytesIO(response.content))
    assert decoded_rate == (rate or 24000) and 0.5 < len(audio) / decoded_rate < 3


def test_pcm_is_raw_16_bit_samples_of_the_wav(client):
    wav = client.post("/v1/tts", json={"text": "你好。", "format": "wav"}).content
    pcm = client.post("/v1/tts", json={"text": "你好。", "format": "pcm"})
    assert pcm.headers["content-type"].startswith("audio/pcm")
    np.testing.assert_array_equal(np.frombuffer(pcm.content, "<i2"), wav_samples(wav)[0])


def test_get_tts_for_quick_use(client):
    response = client.get("/v1/tts", params={"text": "你好。", "speed": 1.5, "format": "wav"})
    slow = client.get("/v1/tts", params={"text": "你好。", "speed": 0.8})
    assert response.status_code == 200 and slow.status_code == 200
    assert len(wav_samples(response.content)[0]) < len(wav_samples(slow.content)[0])


def test_ssml_field_and_per_request_lexicon(client, tts):
    ssml = client.post("/v1/tts", json={"ssml": '请稍等<break time="500ms"/>好了。'})
    assert ssml.status_code == 200
    plain = client.post("/v1/tts", json={"text": "请稍等好了。"})
    assert len(wav_samples(ssml.content)[0]) > len(wav_samples(plain.content)[0]) + 0.4 * 24000
    default = client.post("/v1/tts", json={"text": "他是行长。"}).content
    custom = client.post("/v1/tts", json={"text": "他是行长。", "lexicon": {"行长": "xing2 chang2"}}).content
    assert default != custom
    expected = tts.synthesize("他是行长。", {"行长": "xing2 chang2"}).audio
    assert len(wav_samples(custom)[0]) == len(expected)


def test_stream_sends_the_same_audio_in_chunks(client, tts):
    with client.stream("POST", "/v1/tts", json={"text": TEXT + "再见。", "stream": True, "format": "pcm"}) as stream:
        assert stream.status_code == 200
        pieces = list(stream.iter_bytes())
    streamed = np.frombuffer(b"".join(pieces), "<i2").astype(np.float32) / 32767
    assert_equal_but_for_rounding_flips(streamed, tts.synthesize(TEXT + "再见。").audio)


def test_streamed_wav_has_a_header_first(client):
    response = client.post("/v1/tts", json={"text": "你好。", "stream": True})
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"
    audio, rate = soundfile.read(io.BytesIO(response.content))
    assert rate == 24000 and len(audio) > 0.3 * rate


def test_identical_requests_come_from_the_cache(make_client):
    client = make_client(cache_items=8)
    body = {"text": "缓存测试。", "format": "mp3"}
    first, second = client.post("/v1/tts", json=body), client.post("/v1/tts", json=body)
    assert first.headers["x-cache"] == "miss" and second.headers["x-cache"] == "hit"
    assert first.content == second.content
    faster = client.post("/v1/tts", json=body | {"speed": 1.2})
    assert faster.headers["x-cache"] == "miss"
    metrics = client.get("/metrics").text
    assert "qingyin_cache_hits_total 1.0" in metrics
    held = re.search(r"^qingyin_cache_memory_bytes (\S+)$", metrics, re.M)
    assert held and float(held.group(1)) == len(first.content) + len(faster.content)  # the two entries it keeps


def test_disk_cache_survives_a_restart(make_client, tmp_path):
    body = {"text": "磁盘缓存。"}
    first = make_client(cache_items=0, cache_dir=tmp_path).post("/v1/tts", json=body)
    again = make_client(cache_items=0, cache_dir=tmp_path).post("/v1/tts", json=body)
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert first.content == again.content


# --- OpenAI-compatible ---------------------------------------------------------------------------------
def test_openai_client_unchanged(client):
    import openai

    api = openai.OpenAI(api_key="unused", base_url="http://testserver/v1", http_client=client)
    speech = api.audio.speech.create(model="tts-1", voice="alloy", input="你好，欢迎使用。", response_format="wav")
    samples, rate = wav_samples(speech.content)
    assert rate == 24000 and len(samples) > 0.5 * rate
    mp3 = api.audio.speech.create(model="tts-1", voice="baker", input="你好。")
    assert soundfile.read(io.BytesIO(mp3.content))[1] == 24000
    with pytest.raises(openai.BadRequestError, match="unknown voice"):
        api.audio.speech.create(model="tts-1", voice="nobody", input="你好。")


def test_openai_pcm_streams_and_speed_applies(client):
    fast = client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "你好。",
                                                  "response_format": "pcm", "speed": 2.0})
    normal = client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "你好。",
                                                    "response_format": "pcm"})
    assert fast.status_code == normal.status_code == 200
    assert len(fast.content) < 0.8 * len(normal.content)


@pytest.mark.parametrize(("body", "message"), [
    ({"model": "whisper-1", "voice": "alloy", "input": "你好"}, "unknown model"),
    ({"model": "tts-1", "voice": "alloy", "input": "你好", "response_format": "aac"}, "response_format"),
    ({"model": "tts-1", "voice": "alloy", "input": "你好", "speed": 9}, "speed"),
    ({"model": "tts-1", "voice": "alloy"}, "input"),
])
def test_openai_bad_requests(client, body, message):
    response = client.post("/v1/audio/speech", json=body)
    assert response.status_code == 400 and message in error_of(response)


# --- WebSocket -----------------------------------------------------------------------------------------
def receive_request(ws) -> tuple[list[dict], bytes]:
    events, audio = [], b""
    while True:
        message = ws.receive()
        if message.get("bytes") is not None:
            audio += message["bytes"]
            continue
        event = json.loads(message["text"])
        events.append(event)
        if event["type"] in ("done", "error"):
            return events, audio


def test_websocket_streams_sentences_and_audio(client, tts):
    with client.websocket_connect("/v1/tts/ws") as ws:
        ws.send_text(json.dumps({"text": "你好。今天天气很好！"}))
        events, audio = receive_request(ws)
        kinds = [e["type"] for e in events]
        assert kinds == ["start", "sentence", "sentence", "done"]
        assert [e["text"] for e in events if e["type"] == "sentence"] == ["你好。", "今天天气很好！"]
        expected = tts.synthesize("你好。今天天气很好！").audio
        assert len(audio) == 2 * len(expected)
        assert events[-1]["audio_seconds"] == pytest.approx(len(expected) / 24000, abs=1e-3)
        ws.send_text("not json")  # an error answers the message; the session goes on
        assert receive_request(ws)[0][-1]["type"] == "error"
        ws.send_text(json.dumps({"text": "再见。", "speed": float("nan")}))
        assert "speed" in receive_request(ws)[0][-1]["message"]
        ws.send_text(json.dumps({"text": "再见。", "format": "wav"}))
        events, audio = receive_request(ws)
        assert events[-1]["type"] == "done" and audio[:4] == b"RIFF"
        ws.send_text(json.dumps({"type": "close"}))


def test_websocket_client_leaving_mid_stream_stops_cleanly(client):
    with client.websocket_connect("/v1/tts/ws") as ws:
        ws.send_text(json.dumps({"text": "这是一段比较长的文字。" * 20}))
        assert json.loads(ws.receive()["text"])["type"] == "start"
    assert client.post("/v1/tts", json={"text": "还在。"}).status_code == 200


# --- info ----------------------------------------------------------------------------------------------
def test_voices_health_metrics_docs(client):
    voices = client.get("/v1/voices").json()
    baker = voices["voices"][0]
    assert baker["name"] == "baker" and 24000 in baker["sample_rates"]
    assert baker["emotions"] == ["neutral", "happy", "sad", "angry", "surprise", "fear", "disgust"]
    assert {"wav", "mp3", "pcm"} <= set(baker["formats"])
    assert client.get("/healthz").json()["status"] == "ok"
    client.post("/v1/tts", json={"text": "指标。"})
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'qingyin_requests_total{endpoint="/v1/tts",status="200"}' in metrics.text
    assert "qingyin_request_seconds_bucket" in metrics.text and "qingyin_real_time_factor_count" in metrics.text
    assert "/v1/tts" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_frontend_route_shows_pinyin(client):
    report = client.post("/v1/frontend", json={"text": "银行行长来了。"}).json()
    assert "hang2" in json.dumps(report, ensure_ascii=False)


def test_request_id_is_kept_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id\n"}).headers["x-request-id"] != "bad id\n"


# --- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "status", "message"), [
    ({"text": ""}, 400, "text is empty"),
    ({"text": "   \n\t"}, 400, "text is empty"),
    ({"text": "😀😀。"}, 400, "nothing to say"),
    ({"text": "你好", "voice": "nobody"}, 400, "unknown voice"),
    ({"text": "你好", "emotion": "joyous"}, 400, "unknown emotion(s) ['joyous']"),
    ({"text": "你好", "intensity": 3}, 400, "intensity"),
    ({"text": "你好", "format": "aiff"}, 400, "format"),
    ({"text": "你好", "sample_rate": 12345}, 400, "12345"),
    ({"text": "你好", "format": "ogg", "stream": True}, 400, "stream"),
    ({"text": "你好", "speed": 0}, 400, "speed"),
    ({"text": "你好", "speed": -1}, 400, "speed"),
    ({"text": "你好", "speed": 1e9}, 400, "speed"),
    ({"text": "你好", "speed": "fast"}, 400, "speed"),
    ({"text": "你好", "pitch": float("inf")}, 400, "pitch"),
    ({"text": "你好", "spead": 1.2}, 400, "unknown field 'spead'"),
    ({"text": "你好", "ssml": "<speak>你好</speak>"}, 400, "exactly one"),
    ({"ssml": "<speak>你好<break time='abc'/></speak>"}, 400, "SSML"),
    ({"ssml": "<speak>你好"}, 400, "line 1"),
    ({"text": "你好", "lexicon": {"你好": "not pinyin"}}, 400, "lexicon entry '你好'"),
    ({"text": 123}, 400, "text"),
])
def test_bad_requests_get_a_400_that_says_what_to_fix(client, body, status, message):
    response = client.post("/v1/tts", content=json.dumps(body, allow_nan=True),
                           headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert message in error_of(response)


def test_nan_speed_in_json(client):
    response = client.post("/v1/tts", content=b'{"text": "\xe4\xbd\xa0\xe5\xa5\xbd", "speed": NaN}',
                           headers={"content-type": "application/json"})
    assert response.status_code == 400 and "speed" in error_of(response)


@pytest.mark.parametrize("content", [b'{"text": "\xff\xfe\xfa"}', b'{"text": "abc"', b"", b"[1, 2]"])
def test_malformed_bodies(client, content):
    response = client.post("/v1/tts", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400 and error_of(response)


def test_one_megabyte_of_text_gets_413_with_the_limit(client):
    response = client.post("/v1/tts", json={"text": "好" * 1_000_000})
    assert response.status_code == 413 and "5000" in error_of(response)
    just_over = client.post("/v1/tts", json={"text": "好" * 5001})
    assert just_over.status_code == 413 and "5000" in error_of(just_over)


def test_reference_upload_is_checked(client):
    tone = np.sin(np.linspace(0, 2000, 24000)).astype(np.float32)
    wav = io.BytesIO()
    soundfile.write(wav, tone, 24000, format="WAV")
    # Readable audio, but a pure tone: no voice to take prosody from (tests/server/test_emotion_routes.py has more).
    tone_answer = client.post("/v1/tts/reference", data={"text": "你好"},
                              files={"reference": ("a.wav", wav.getvalue())})
    assert tone_answer.status_code == 400 and "no voice" in error_of(tone_answer)
    junk = client.post("/v1/tts/reference", data={"text": "你好"}, files={"reference": ("a.wav", b"not audio" * 9)})
    assert junk.status_code == 400 and "not audio" in error_of(junk)
    huge = client.post("/v1/tts/reference", data={"text": "你好"},
                       files={"reference": ("a.wav", b"\0" * (11 * 2**20))})
    assert huge.status_code == 413 and "MB" in error_of(huge)


def test_unknown_route_and_method(client):
    assert client.get("/v1/nothing").status_code == 404
    assert client.delete("/v1/tts").status_code == 405


# --- operations ----------------------------------------------------------------------------------------
def test_api_keys(make_client):
    client = make_client(api_keys=("secret",))
    assert client.post("/v1/tts", json={"text": "你好"}).status_code == 401
    assert client.post("/v1/tts", json={"text": "你好"}, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/v1/tts", json={"text": "你好"},
                       headers={"Authorization": "Bearer secret"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    with client.websocket_connect("/v1/tts/ws?api_key=secret") as ws:
        ws.send_text(json.dumps({"text": "你好。"}))
        assert receive_request(ws)[0][-1]["type"] == "done"


def test_full_queue_gets_429_with_retry_after(make_client, tts):
    gate = threading.Event()
    gated = GatedSynthesizer(tts, gate)
    client = make_client(synthesizer=gated, concurrency=1, queue_size=0)
    results = []
    worker = threading.Thread(target=lambda: results.append(client.post("/v1/tts", json={"text": "第一。"})))
    worker.start()
    try:
        assert gated.started.acquire(timeout=30)
        busy = client.post("/v1/tts", json={"text": "第二。"})
        assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
        assert "busy" in error_of(busy)
    finally:
        gate.set()
        worker.join(30)
    assert results[0].status_code == 200
    assert client.post("/v1/tts", json={"text": "第三。"}).status_code == 200  # the slot was given back


def test_timeout_gets_504_and_frees_the_worker(make_client, tts):
    gate = threading.Event()
    client = make_client(synthesizer=GatedSynthesizer(tts, gate), concurrency=1, timeout=2.0)
    try:
        response = client.post("/v1/tts", json={"text": "超时。"})
        assert response.status_code == 504 and "timeout" in error_of(response)
    finally:
        gate.set()
    assert client.post("/v1/tts", json={"text": "好了。"}).status_code == 200


def test_a_cancelled_request_ends_cancelled_not_as_a_failed_synthesis(tts):
    from qingyin.server.config import ServerConfig
    from qingyin.server.service import SpeechRequest, TTSService

    gate = threading.Event()
    gated = GatedSynthesizer(tts, gate)
    config = ServerConfig(warmup=False, cache_dir=Path("off"), cache_items=0).validated()
    service = TTSService(config, synthesizers={"baker": gated})

    async def cancel_while_it_synthesizes() -> str:
        task = asyncio.create_task(service.synthesize(SpeechRequest(text="取消。", voice="baker")))
        assert await asyncio.to_thread(gated.started.acquire, True, 30)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    try:
        outcome = asyncio.run(cancel_while_it_synthesizes())  # was: ServiceError "synthesis failed (CancelledError)"
    finally:
        gate.set()
        service.close()
    assert outcome == "cancelled"


def test_cors_origins(make_client):
    client = make_client(cors_origins=("https://example.com",))
    preflight = client.options("/v1/tts", headers={"Origin": "https://example.com",
                                                   "Access-Control-Request-Method": "POST"})
    assert preflight.headers["access-control-allow-origin"] == "https://example.com"
    other = client.get("/v1/voices", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_mp3_stream_decodes(client):
    response = client.post("/v1/tts", json={"text": "你好，世界。", "stream": True, "format": "mp3"})
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
    audio, rate = soundfile.read(io.BytesIO(response.content))
    assert rate == 24000 and len(audio) > 0.5 * rate
