"""Voices over the API: every installed voice and blends on each route, /v1/voices, the sample route, the OpenAI
voice mapping, SSML <voice>, and the 400s/404s for voices that are unknown, badly blended or not installed.

Kokoro is slower than Baker (~0.5 s of compute per second of audio on 2 threads), so the texts are short."""

from __future__ import annotations

import io
import json
import wave

import numpy as np
import pytest

from qingyin.server.schemas import OPENAI_VOICE_MAP, TTSBody, openai_voice
from qingyin.server.service import SAMPLE_TEXT
from qingyin.voices import registry
from tests.server.test_api import error_of, receive_request, wav_samples

HELLO = "你好。"
BLEND = "xiaobei:0.6,yunxi:0.4"


@pytest.fixture(scope="module")
def kokoro() -> None:
    if not registry.is_installed("yunxi"):
        pytest.skip("the Kokoro voices are not installed (qingyin models fetch kokoro; make test does it)")


@pytest.fixture
def kokoro_missing(monkeypatch) -> None:
    """This server as if only Baker were installed (the Kokoro voices catalogued but not fetched)."""
    monkeypatch.setattr(registry, "is_installed", lambda name: registry.VOICES[name].model.name == "baker")


def samples_of(client, voice: str, text: str = HELLO) -> np.ndarray:
    response = client.post("/v1/tts", json={"text": text, "voice": voice})
    assert response.status_code == 200, response.text
    return wav_samples(response.content)[0]


# --- /v1/voices ----------------------------------------------------------------------------------------
def test_voices_lists_every_installed_voice_with_gender_family_and_blends(client, kokoro):
    body = client.get("/v1/voices").json()
    voices = {info["name"]: info for info in body["voices"]}
    assert list(voices) == registry.installed_voices() and body["default"] == "baker"
    yunxi, baker = voices["yunxi"], voices["baker"]
    assert (yunxi["gender"], yunxi["family"], yunxi["model"], yunxi["sample_rate"]) == ("male", "kokoro", "kokoro",
                                                                                          24000)
    assert "mix" in yunxi["capabilities"] and yunxi["mixable"] is True
    assert "xiaobei" in yunxi["mixable_with"] and "yunxi" not in yunxi["mixable_with"]
    assert "baker" not in yunxi["mixable_with"]
    assert (baker["gender"], baker["family"], baker["mixable"], baker["mixable_with"]) == ("female", "fs2_mbmelgan",
                                                                                           False, [])
    assert voices["xiaoxiao"]["gender"] == "female"
    for info in voices.values():  # the fields clients already read stay
        assert {"description", "language", "speakers", "emotions", "sample_rates", "formats", "stream_formats",
                "backend", "variants", "license"} <= set(info)
        assert info["sample"] == f"/v1/voices/{info['name']}/sample"
    assert body["sample_text"] == SAMPLE_TEXT and "xiaobei:0.6,yunxi:0.4" in body["blend"]
    assert body["openai_voices"]["echo"] == {"maps_to": "yunxi", "uses": "yunxi"}


def test_voices_offers_only_the_baker_variants_this_install_can_export(client, monkeypatch):
    from qingyin.families.fs2_mbmelgan.export import VARIANTS, source_hashes

    def baker_variants() -> list[str]:
        return {info["name"]: info for info in client.get("/v1/voices").json()["voices"]}["baker"]["variants"]

    voice_dir = registry.voice_dir("baker")
    shipped = [name for name in VARIANTS if None not in source_hashes(voice_dir, name).values()]
    assert baker_variants() == shipped and {"fp32", "int8-static", "student-int8"} <= set(shipped)
    assert len(shipped) < len(VARIANTS)  # e.g. the pruned vocoder's variant: its vocoder is not shipped
    monkeypatch.setattr(registry, "model_dir", lambda model: voice_dir.parent / "not-installed")
    assert baker_variants() == ["fp32"]


# --- every route takes every voice and blends ----------------------------------------------------------
def test_kokoro_voices_and_blends_on_post_get_and_openai(client, kokoro):
    baker, yunxi, blend = samples_of(client, "baker"), samples_of(client, "yunxi"), samples_of(client, BLEND)
    assert client.app.state.service.synthesizer("yunxi").spec.name == "yunxi"
    assert len(baker) != len(yunxi) and not np.array_equal(yunxi[:len(blend)], blend[:len(yunxi)])
    get = client.get("/v1/tts", params={"text": HELLO, "voice": BLEND})
    assert get.status_code == 200 and len(wav_samples(get.content)[0]) == pytest.approx(len(blend), rel=0.05)
    for voice in ("Echo", BLEND):  # echo maps to yunxi (any case); our names and blends work as they are
        speech = client.post("/v1/audio/speech", json={"model": "tts-1", "voice": voice, "input": HELLO,
                                                       "response_format": "pcm"})
        assert speech.status_code == 200, speech.text
        assert "x-qingyin-warning" not in speech.headers
        expected = blend if voice == BLEND else yunxi
        assert len(speech.content) // 2 == pytest.approx(len(expected), rel=0.05)


def test_websocket_switches_voices_between_messages(client, kokoro):
    lengths = {}
    with client.websocket_connect("/v1/tts/ws") as ws:
        for voice in ("baker", "yunxi", BLEND, "nobody", "baker"):
            ws.send_text(json.dumps({"text": HELLO, "voice": voice}))
            events, audio = receive_request(ws)
            if voice == "nobody":  # an error answers the message; the session goes on
                assert events[-1]["type"] == "error" and events[-1]["status"] == 400
                assert "unknown voice 'nobody'" in events[-1]["message"] and "yunxi" in events[-1]["message"]
                continue
            assert [e["type"] for e in events] == ["start", "sentence", "done"], events
            assert events[0]["sample_rate"] == 24000
            lengths.setdefault(voice, []).append(len(audio) // 2)
        ws.send_text(json.dumps({"type": "close"}))
    assert lengths["baker"][0] == lengths["baker"][1]  # back to Baker: the same audio as the first message
    assert lengths["yunxi"][0] == pytest.approx(len(samples_of(client, "yunxi")), rel=0.05)
    assert lengths["yunxi"][0] != lengths["baker"][0]


def test_the_server_voice_is_the_default_of_json_bodies():
    assert TTSBody(text=HELLO).to_request("yunxi").voice == "yunxi"
    assert TTSBody(text=HELLO, voice=BLEND).to_request("yunxi").voice == BLEND


# --- voice errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("voice", "messages"), [
    ("nobody", ["unknown voice 'nobody'", "this server has: baker"]),
    ("xiaobei:0.6,nobody:0.4", ["unknown voice 'nobody'", "name:weight"]),
    ("xiaobei:0.6,yunxi:heavy", ["bad voice mix entry 'yunxi:heavy'", "weight >= 0"]),
    ("xiaobei:-1,yunxi:1", ["bad voice mix entry 'xiaobei:-1'"]),
    ("xiaobei:0,yunxi:0", ["must add up to more than 0"]),
    ("xiaobei,yunxi", ["bad voice mix entry 'xiaobei'", "name:weight"]),
    ("baker:0.5,yunxi:0.5", ["blends voices of different models (baker: baker; kokoro: yunxi)", "one model"]),
    ("baker:0.5,baker:0.5", ["'baker' (fs2_mbmelgan) cannot be blended", "voices that can: xiaobei"]),
    ("", ["voice is empty"]),
])
def test_bad_voices_get_a_400_that_says_what_to_fix(client, kokoro, voice, messages):
    for response in (client.post("/v1/tts", json={"text": HELLO, "voice": voice}),
                     client.get("/v1/tts", params={"text": HELLO, "voice": voice}),
                     client.post("/v1/audio/speech", json={"model": "tts-1", "voice": voice, "input": HELLO})):
        assert response.status_code == 400, response.text
        message = error_of(response)
        assert all(part in message for part in messages), message
        assert response.json()["error"]["param"] == "voice"


def test_openai_unknown_voice_names_the_openai_voices_too(client):
    message = error_of(client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "nobody", "input": HELLO}))
    assert "unknown voice 'nobody'" in message and "alloy" in message and "shimmer" in message


def test_voices_that_are_not_installed(client, kokoro_missing):
    assert [info["name"] for info in client.get("/v1/voices").json()["voices"]] == ["baker"]
    for response in (client.post("/v1/tts", json={"text": HELLO, "voice": "yunxi"}),
                     client.post("/v1/tts", json={"text": HELLO, "voice": BLEND}),
                     client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "yunxi", "input": HELLO})):
        assert response.status_code == 400
        assert "is not installed" in error_of(response) and "`qingyin models fetch kokoro`" in error_of(response)
    ssml = client.post("/v1/tts", json={"ssml": f'{HELLO}<voice name="yunxi">再见。</voice>'})
    assert ssml.status_code == 400
    assert error_of(ssml).startswith('SSML <voice name="yunxi">: voice \'yunxi\' is not installed')
    sample = client.get("/v1/voices/yunxi/sample")
    assert sample.status_code == 404 and "qingyin models fetch kokoro" in error_of(sample)
    # An OpenAI voice whose voice is not installed falls back to the default voice, and the response says so.
    speech = client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "echo", "input": HELLO,
                                                   "response_format": "wav", "instructions": "calmly"})
    assert speech.status_code == 200
    warning = speech.headers["x-qingyin-warning"]
    assert "'echo' maps to 'yunxi', which is not installed" in warning and "default voice 'baker'" in warning
    assert "instructions were ignored" in warning
    assert client.get("/v1/voices").json()["openai_voices"]["echo"] == {"maps_to": "yunxi", "uses": "baker"}


# --- SSML <voice> ------------------------------------------------------------------------------------------
def test_ssml_with_two_voices(client, kokoro):
    two = client.post("/v1/tts", json={"ssml": f'{HELLO}<voice name="yunxi">再见。</voice>'})
    assert two.status_code == 200, two.text
    one = client.post("/v1/tts", json={"ssml": f"{HELLO}再见。"})
    assert one.status_code == 200 and two.content != one.content
    assert client.post("/v1/tts", json={"ssml": f'<voice name="{BLEND}">{HELLO}</voice>'}).status_code == 200


def test_ssml_voice_that_is_unknown_is_a_400_naming_it(client):
    response = client.post("/v1/tts", json={"ssml": f'{HELLO}<voice name="nobody">再见。</voice>'})
    assert response.status_code == 400
    message = error_of(response)
    assert message.startswith('SSML <voice name="nobody">: unknown voice \'nobody\'') and "baker" in message
    cross = client.post("/v1/tts", json={"ssml": '<voice name="baker:0.5,yunxi:0.5">你好。</voice>'})
    assert cross.status_code == 400 and "different models" in error_of(cross)


# --- the sample route ---------------------------------------------------------------------------------------
def test_voice_sample_goes_through_the_service_and_its_cache(make_client):
    client = make_client(cache_items=8)
    first = client.get("/v1/voices/baker/sample")
    assert first.status_code == 200 and first.headers["content-type"] == "audio/wav"
    assert first.headers["x-cache"] == "miss"
    with wave.open(io.BytesIO(first.content)) as reader:
        assert reader.getframerate() == 24000 and 1.0 < reader.getnframes() / 24000 < 5.0
    assert client.get("/v1/voices/baker/sample").headers["x-cache"] == "hit"
    same = client.post("/v1/tts", json={"text": SAMPLE_TEXT, "voice": "baker"})  # the same request, so cached
    assert same.headers["x-cache"] == "hit" and same.content == first.content
    mp3 = client.get("/v1/voices/baker/sample", params={"format": "mp3"})
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    assert client.get("/v1/voices/baker/sample", params={"format": "aiff"}).status_code == 400


@pytest.mark.parametrize("name", ["nobody", "xiaobei:0.6,yunxi:0.4"])
def test_voice_sample_of_an_unknown_voice_is_a_404_listing_the_voices(client, name):
    response = client.get(f"/v1/voices/{name}/sample")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
    assert f"unknown voice {name!r}" in error_of(response) and "available: baker" in error_of(response)


# --- the OpenAI voice table ------------------------------------------------------------------------------------
def test_openai_voice_table():
    assert set(OPENAI_VOICE_MAP) >= {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage",
                                     "shimmer", "verse"}
    assert set(OPENAI_VOICE_MAP.values()) <= set(registry.VOICES)
    assert openai_voice("Nova", list(registry.VOICES), "baker") == ("xiaoxiao", None)
    assert openai_voice("yunxi", ["baker"], "baker") == ("yunxi", None)  # ours: the service checks it
    voice, warning = openai_voice("onyx", ["baker"], "baker")
    assert voice == "baker" and "'onyx' maps to 'yunjian'" in warning
