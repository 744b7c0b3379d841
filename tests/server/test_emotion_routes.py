"""Emotion and reference prosody over HTTP: POST/GET /v1/tts, WebSocket, /v1/tts/reference, /v1/voices, the OpenAI
route's `instructions`, and the cache key (TestClient on the session's Baker voice)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from qingyin.options import EMOTIONS

TEXT = "今天天气很好，我们一起去公园散步吧。"
RATE = 24000


def error_of(response, param: str | None = None) -> str:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "code"} and body["error"]["code"] == response.status_code
    if param is not None:
        assert body["error"]["param"] == param, body
    return body["error"]["message"]


def wav_bytes(audio: np.ndarray, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def post(client, **fields):
    return client.post("/v1/tts", json={"text": TEXT, **fields})


@pytest.fixture(scope="module")
def neutral(client) -> bytes:
    response = post(client)
    assert response.status_code == 200
    return response.content


# --- POST /v1/tts ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields", [
    {"emotion": "happy"},
    {"emotion": "sad", "intensity": 1.5},
    {"emotion": "angry", "intensity": 2},
    {"emotion": {"happy": 0.6, "surprise": 0.3}},
    {"emotion": "happy:0.6,surprise:0.3"},
])
def test_emotions_give_other_audio_than_neutral(client, neutral, fields):
    response = post(client, **fields)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav" and response.content != neutral


def test_the_server_says_what_the_engine_says(client, tts):
    response = post(client, emotion="surprise", intensity=1.2, format="pcm")
    expected = tts.synthesize(TEXT, emotion="surprise", intensity=1.2).audio
    samples = np.frombuffer(response.content, "<i2").astype(np.float32) / 32767
    assert len(samples) == len(expected) and np.abs(samples - expected).max() <= 1.5 / 32767


def test_intensity_zero_and_neutral_are_the_neutral_audio(client, neutral):
    assert post(client, emotion="happy", intensity=0).content == neutral
    assert post(client, emotion="neutral", intensity=2).content == neutral


def test_the_cache_keys_emotion_and_intensity(make_client):
    client = make_client(cache_items=64)
    first = post(client, emotion="happy")
    assert first.headers["x-cache"] == "miss"
    assert post(client, emotion="happy").headers["x-cache"] == "hit"
    for fields in ({"emotion": "sad"}, {"emotion": "happy", "intensity": 1.5}, {"emotion": {"happy": 0.5}},
                   {"emotion": "happy", "reference_strength": 0.5}):
        again = post(client, **fields)
        assert again.headers["x-cache"] == "miss", fields
    assert post(client, emotion="sad").content != first.content


@pytest.mark.parametrize(("fields", "param", "message"), [
    ({"emotion": "joy"}, "emotion", "unknown emotion"),
    ({"emotion": "happy:lots"}, "emotion", "happy:0.6,surprise:0.3"),
    ({"emotion": {"happy": -1}}, "emotion", "emotion weight"),
    ({"emotion": {"happy": "much"}}, "emotion", "emotion weight"),
    ({"emotion": {"happy": 1.5, "sad": 1.0}}, "emotion", "at most 2"),
    ({"emotion": 3}, None, "emotion"),
    ({"intensity": 2.5}, "intensity", "between 0 and 2"),
    ({"intensity": -0.1}, "intensity", "intensity"),
    ({"intensity": "strong"}, None, "intensity"),
    ({"reference_strength": 1.5}, "reference_strength", "reference_strength"),
])
def test_bad_emotion_options_get_a_400_naming_the_field(client, fields, param, message):
    response = post(client, **fields)
    assert response.status_code == 400, response.text
    assert message in error_of(response, param)


def test_get_tts_takes_emotion_and_intensity(client, neutral):
    happy = client.get("/v1/tts", params={"text": TEXT, "emotion": "happy", "intensity": 1.2})
    assert happy.status_code == 200 and happy.content != neutral
    mix = client.get("/v1/tts", params={"text": TEXT, "emotion": '{"happy": 0.6, "surprise": 0.3}'})
    assert mix.status_code == 200
    assert mix.content == client.get("/v1/tts", params={"text": TEXT, "emotion": "happy:0.6,surprise:0.3"}).content
    bad = client.get("/v1/tts", params={"text": TEXT, "emotion": "bored"})
    assert bad.status_code == 400 and "unknown emotion" in error_of(bad, "emotion")
    assert client.get("/v1/tts", params={"text": TEXT, "intensity": 3}).status_code == 400


def test_websocket_takes_emotion(client):
    with client.websocket_connect("/v1/tts/ws") as ws:
        ws.send_text(json.dumps({"text": "你好。", "emotion": "sad", "intensity": 1.5}))
        events = []
        while not events or events[-1].get("type") not in ("done", "error"):
            message = ws.receive()
            if message.get("text"):
                events.append(json.loads(message["text"]))
        assert events[-1]["type"] == "done"
        ws.send_text(json.dumps({"text": "你好。", "emotion": "bored"}))
        error = json.loads(ws.receive()["text"])
        assert error["type"] == "error" and error["status"] == 400 and "unknown emotion" in error["message"]


def test_ssml_emotion_works_through_the_server(client):
    ssml = '<speak>你好。<emotion category="happy" intensity="1.0">今天天气很好！</emotion></speak>'
    response = client.post("/v1/tts", json={"ssml": ssml})
    assert response.status_code == 200, response.text


# --- GET /v1/voices --------------------------------------------------------------------------------------
def test_voices_list_the_seven_emotions_honestly(client):
    body = client.get("/v1/voices").json()
    assert body["emotions"] == list(EMOTIONS) and body["intensity"] == {"min": 0.0, "max": 2.0, "default": 1.0}
    for info in body["voices"]:
        assert info["emotions"] == list(EMOTIONS)
        assert info["intensity"]["max"] == 2.0 and info["reference_prosody"] is True
        assert "prosody control" in info["emotions_note"] and "neutral speech" in info["emotions_note"]
    assert "/v1/tts/reference" in body["reference"]


# --- OpenAI route ----------------------------------------------------------------------------------------
def speech(client, **fields):
    """The OpenAI route's answer as raw 16-bit samples (it streams them: compare with POST /v1/tts as pcm)."""
    return client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": TEXT,
                                                 "response_format": "pcm", **fields})


def test_openai_instructions_that_name_an_emotion_set_it(client):
    plain = speech(client)
    happy = speech(client, instructions="请用开心的语气朗读")
    assert happy.status_code == 200 and happy.content != plain.content
    assert "x-qingyin-warning" not in happy.headers
    assert happy.content == post(client, emotion="happy", format="pcm", stream=True).content
    scared = speech(client, instructions="Sound SCARED, please").content
    assert scared == post(client, emotion="fear", format="pcm", stream=True).content


def test_openai_instructions_without_an_emotion_are_ignored_with_a_warning(client):
    plain = speech(client)
    calm = speech(client, instructions="Speak slowly and clearly, like a news anchor.")
    assert calm.status_code == 200 and calm.content == plain.content
    assert "instructions were ignored" in calm.headers["x-qingyin-warning"]
    assert "x-qingyin-warning" not in plain.headers


# --- POST /v1/tts/reference ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference_wav(tts) -> bytes:
    """A recording to take prosody from: the Baker voice itself, livelier and faster than it speaks by default."""
    spoken = tts.synthesize("我们明天早上八点在学校门口见面，别迟到了。", pitch=1.6, speed=1.25)
    return wav_bytes(spoken.audio, spoken.sample_rate)


@pytest.fixture(scope="module")
def transfer_available():
    profiles = Path(__file__).resolve().parents[2] / "qingyin" / "style" / "data" / "voice_profiles.json"
    if not profiles.is_file():
        pytest.skip("the voices' neutral prosody profiles (qingyin/style/data/voice_profiles.json) are not there yet")


def reference(client, data: bytes, name: str = "ref.wav", content_type: str = "audio/wav", **fields):
    form = {"text": TEXT, **{k: str(v) for k, v in fields.items()}}
    return client.post("/v1/tts/reference", data=form, files={"reference": (name, data, content_type)})


def test_reference_prosody_gives_audio(client, neutral, reference_wav, transfer_available):
    response = reference(client, reference_wav)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav" and response.content != neutral
    audio, rate = soundfile.read(io.BytesIO(response.content))
    assert rate == RATE and 1.0 < len(audio) / rate < 10.0
    none = reference(client, reference_wav, reference_strength=0)
    assert none.status_code == 200 and none.content == neutral
    styled = reference(client, reference_wav, emotion="sad", intensity=1.2, format="mp3", speed=1.1)
    assert styled.status_code == 200 and styled.headers["content-type"] == "audio/mpeg"


def test_reference_with_ssml_and_voice_fields(client, reference_wav, transfer_available):
    form = {"ssml": "<speak>你好。</speak>", "voice": "baker", "reference_strength": "0.5"}
    response = client.post("/v1/tts/reference", data=form, files={"reference": ("r.wav", reference_wav)})
    assert response.status_code == 200, response.text


def test_reference_is_in_the_cache_key(make_client, tts, reference_wav, transfer_available):
    client = make_client(cache_items=64)
    first = reference(client, reference_wav)
    assert first.status_code == 200 and first.headers["x-cache"] == "miss"
    assert reference(client, reference_wav).headers["x-cache"] == "hit"
    assert reference(client, reference_wav, reference_strength=0.5).headers["x-cache"] == "miss"
    other = tts.synthesize("我们明天早上八点在学校门口见面，别迟到了。", pitch=0.5, speed=0.8)
    changed = reference(client, wav_bytes(other.audio))
    assert changed.headers["x-cache"] == "miss" and changed.content != first.content


def test_a_clipped_reference_is_warned_about(client, reference_wav, transfer_available):
    audio, rate = soundfile.read(io.BytesIO(reference_wav))
    clipped = np.clip(audio * 8, -0.5, 0.5)
    response = reference(client, wav_bytes(clipped, rate))
    assert response.status_code == 200, response.text
    assert "clipped" in response.headers["x-qingyin-warning"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda: b"this is not audio at all" * 40, "not audio"),
    (lambda: b"RIFF\x10\x00\x00\x00WAVEfmt garbage garbage", "cannot read"),
    (lambda: wav_bytes(0.3 * np.sin(np.arange(int(0.3 * RATE)) * 0.05)), "0.30 s long"),
    (lambda: wav_bytes(np.zeros(3 * RATE)), "silent"),
    (lambda: wav_bytes(np.random.default_rng(0).normal(0, 0.1, 3 * RATE)), "no voice"),
])
def test_unusable_references_get_a_400_that_says_why(client, make, message):
    response = reference(client, make())
    assert response.status_code == 400, response.text
    assert message in error_of(response, "reference")


def test_reference_upload_size_and_type_are_checked_before_decoding(client):
    huge = reference(client, b"\0" * (11 * 2**20))
    assert huge.status_code == 413 and "MB" in error_of(huge)
    text = reference(client, b"hello", name="notes.txt", content_type="text/plain")
    assert text.status_code == 400 and "text/plain" in error_of(text, "reference")
    empty = reference(client, b"")
    assert empty.status_code == 400 and "empty" in error_of(empty, "reference")


def test_reference_route_checks_the_other_fields(client, reference_wav):
    assert reference(client, reference_wav, emotion="bored").status_code == 400
    bad = reference(client, reference_wav, intensity=5)
    assert bad.status_code == 400 and "intensity" in error_of(bad, "intensity")
    strength = reference(client, reference_wav, reference_strength=2)
    assert strength.status_code == 400 and "reference_strength" in error_of(strength, "reference_strength")
    none = client.post("/v1/tts/reference", data={}, files={"reference": ("r.wav", reference_wav)})
    assert none.status_code == 400 and "exactly one" in error_of(none)
    missing = client.post("/v1/tts/reference", data={"text": TEXT})
    assert missing.status_code == 400 and "reference" in error_of(missing)


def test_a_cached_answer_keeps_its_warnings(make_client, reference_wav, transfer_available):
    client = make_client(cache_items=64)
    audio, rate = soundfile.read(io.BytesIO(reference_wav))
    clipped = wav_bytes(np.clip(audio * 8, -0.5, 0.5), rate)
    first, again = reference(client, clipped), reference(client, clipped)
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.headers["x-qingyin-warning"] == first.headers["x-qingyin-warning"]
    assert "clipped" in again.headers["x-qingyin-warning"]
