"""Issue 17 on the server: lone surrogates get a 400 naming the field (not a 500), and the work limits a 413."""

from __future__ import annotations

import json

import pytest

SENTENCE = "今天天气不错，我们去公园散步吧。"


def post(client, path: str, raw: str):
    """A JSON body as raw text, so that "\\ud800" arrives as the escape a client sends."""
    return client.post(path, content=raw.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize(("path", "raw", "field", "position"), [
    ("/v1/tts", '{"text": "\\ud800\\ud800"}', "text", 0),  # the issue's request
    ("/v1/tts", '{"text": "你好\\udfff"}', "text", 2),
    ("/v1/tts", '{"ssml": "<speak>\\udbff</speak>"}', "ssml", 7),
    ("/v1/tts", '{"text": "你好", "lexicon": {"你\\ud800": "ni3"}}', "lexicon", 1),
    ("/v1/audio/speech", '{"model": "tts-1", "voice": "alloy", "input": "好\\ud800"}', "input", 1),
    ("/v1/frontend", '{"text": "\\ud800"}', "text", 0),
])
def test_a_lone_surrogate_is_a_400_naming_the_field(client, path, raw, field, position):
    response = post(client, path, raw)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field
    assert error["message"].startswith(f"{field} contains a lone surrogate U+")
    assert f"at position {position}; send valid UTF-8/UTF-16 text" in error["message"]


def test_a_lone_surrogate_on_the_websocket_is_an_error_event_and_the_session_goes_on(client):
    with client.websocket_connect("/v1/tts/ws") as websocket:
        websocket.send_text('{"text": "\\ud800你好"}')
        event = websocket.receive_json()
        assert event["type"] == "error" and event["status"] == 400 and "lone surrogate U+D800" in event["message"]
        websocket.send_text(json.dumps({"text": "你好。"}))
        assert websocket.receive_json()["type"] == "start"


def test_the_issue_request_is_refused_before_it_is_queued(client):
    body = {"text": "好" * 4999, "speed": 0.25}
    for stream in (False, True):
        response = client.post("/v1/tts", json=body | {"stream": stream, "format": "pcm"})
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["type"] == "work_limit" and error["param"] == "text"
        assert "the limit is 1,500 s per request (max_audio_seconds: --max-audio-seconds" in error["message"]


def test_ssml_limits_are_413s(make_client):
    client = make_client(max_ssml_elements=5, max_break_seconds=3)
    many = client.post("/v1/tts", json={"ssml": "<s>好</s>" * 5})
    assert many.status_code == 413 and "max_ssml_elements" in many.json()["error"]["message"]
    pauses = client.post("/v1/tts", json={"ssml": '好<break time="2s"/>好<break time="2s"/>好'})
    assert pauses.status_code == 413 and "4 s of <break> in all; the limit is 3 s" in pauses.json()["error"]["message"]


def test_audio_past_the_limit_is_stopped_whole_streamed_or_on_the_websocket(make_client):
    client = make_client(max_audio_seconds=14)  # the text's estimate (12.6 s) passes; its audio (~20 s) does not
    text = SENTENCE * 6
    whole = client.post("/v1/tts", json={"text": text})
    assert whole.status_code == 413 and whole.json()["error"]["type"] == "work_limit"
    assert "the audio would run past the limit (stopped after" in whole.json()["error"]["message"]
    assert client.post("/v1/tts", json={"text": SENTENCE}).status_code == 200
    with client.websocket_connect("/v1/tts/ws") as websocket:
        websocket.send_text(json.dumps({"text": text}))
        audio = 0
        while (event := websocket.receive()).get("text") is None or json.loads(event["text"])["type"] in (
                "start", "sentence"):
            audio += len(event.get("bytes") or b"")
        last = json.loads(event["text"])
        assert last["type"] == "error" and last["status"] == 413 and "max_audio_seconds" in last["message"]
        assert 0 < audio <= 14 * 24000 * 2  # 16-bit pcm: what was within the limit was sent
