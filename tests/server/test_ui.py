"""The web UI's helpers without a browser: voice labels, the blend field and note, the voice sample."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from qingyin.server import ui  # noqa: E402


def test_voice_labels_show_gender_and_family():
    assert ui._voice_label({"name": "yunxi", "gender": "male", "family": "kokoro"}) == (
        "yunxi — 男 male · kokoro", "yunxi")
    assert ui._voice_label({"name": "baker", "gender": "female", "family": "fs2_mbmelgan"}) == (
        "baker — 女 female · fs2_mbmelgan", "baker")


def test_a_typed_blend_is_the_voice():
    form = ui.SpeechForm("你好", False, "baker", " xiaobei:0.6,yunxi:0.4 ", "neutral", 1.0, 1.0, 1.0, 1.0)
    assert form.request().voice == "xiaobei:0.6,yunxi:0.4"
    assert ui.SpeechForm("你好", False, "yunxi", "", "neutral", 1.0, 1.0, 1.0, 1.0).request().voice == "yunxi"


def test_blend_note_names_the_voices_that_can_be_blended():
    voices = [{"name": "baker", "mixable": False}, {"name": "xiaobei", "mixable": True},
              {"name": "yunxi", "mixable": True}]
    note = ui.blend_note(voices)
    assert "`xiaobei:0.6,yunxi:0.4`" in note and "Can be blended: xiaobei, yunxi." in note
    assert "no voices" in ui.blend_note(voices[:1])


def test_voice_sample_is_the_sample_sentence_through_the_service(client, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    service = client.app.state.service
    path = asyncio.run(ui.voice_sample(service, "baker"))
    with wave.open(str(path)) as reader:
        seconds = reader.getnframes() / reader.getframerate()
    expected = asyncio.run(service.synthesize(service.sample_request("baker")))
    assert Path(path).read_bytes() == expected.data and 1.0 < seconds < 5.0
    assert asyncio.run(ui.voice_sample(service, "nobody")) is None


def test_the_page_builds_with_every_voice_in_the_picker(client):
    page = ui.build_ui(client.app.state.service)
    config = page.get_config_file()
    pickers = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "voice"]
    choices = [value for _, value in pickers[0]["props"]["choices"]]
    assert choices == client.app.state.service.voices
    ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {"voice-sample", "blend", "blend-note"} <= ids


# --- emotion, reference, gallery -----------------------------------------------------------------------------
def components_by_id(page) -> dict[str, dict]:
    return {c["props"]["elem_id"]: c for c in page.get_config_file()["components"]
            if c.get("props", {}).get("elem_id")}


def test_the_page_has_the_emotion_and_reference_controls(client):
    from qingyin.options import EMOTIONS

    components = components_by_id(ui.build_ui(client.app.state.service))
    emotion = components["emotion"]["props"]
    assert [value for _, value in emotion["choices"]] == list(EMOTIONS) and emotion["interactive"] is not False
    assert emotion["value"] == "neutral"
    intensity = components["intensity"]["props"]
    assert (intensity["minimum"], intensity["maximum"], intensity["step"], intensity["value"]) == (0, 2, 0.1, 1)
    assert intensity["interactive"] is not False
    reference = components["reference-audio"]["props"]
    assert reference["sources"] == ["upload", "microphone"] and reference["type"] == "filepath"
    strength = components["reference-strength"]["props"]
    assert (strength["minimum"], strength["maximum"], strength["value"]) == (0, 1, 1)
    note = components["emotion-note"]["props"]["value"]
    assert "prosody control" in note and "neutral speech" in note
    assert "gallery-button" in components and all(f"gallery-{e}" in components for e in EMOTIONS)


def test_switching_voices_keeps_all_seven_emotions(client):
    dropdown, slider, note = ui._emotion_controls({"name": "yunxi", "emotions": list(ui.EMOTIONS)})
    assert [value for _, value in dropdown["choices"]] == list(ui.EMOTIONS) and dropdown["interactive"] is True
    assert "value" not in dropdown and slider["interactive"] is True and "yunxi" in note


def test_the_form_passes_emotion_and_the_reference_recording(tmp_path):
    recording = tmp_path / "ref.wav"
    recording.write_bytes(b"RIFF0000WAVE")
    form = ui.SpeechForm("你好", False, "baker", "", "happy", 1.5, 1.0, 1.0, 1.0, str(recording), 0.4)
    request = form.request()
    assert (request.emotion, request.intensity, request.reference, request.reference_strength) == (
        "happy", 1.5, b"RIFF0000WAVE", 0.4)
    assert ui.SpeechForm("你好", False, "baker", "", "sad", 1.0, 1.0, 1.0, 1.0).request().reference is None
    with pytest.raises(ui.ServiceError, match="over 1e-06 MB"):
        form.request(max_upload_mb=1e-6)


def test_a_bad_reference_shows_the_services_message(client, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 20)
    form = ui.SpeechForm("你好", False, "baker", "", "neutral", 1.0, 1.0, 1.0, 1.0, str(junk), 1.0)
    path, _, _, error = asyncio.run(ui.synthesize(client.app.state.service, form))
    assert path is None and error["visible"] is True and "not audio" in error["value"]


def test_the_gallery_renders_seven_emotions_once_per_voice(client, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    service = client.app.state.service
    gallery = ui.Gallery(service)
    calls = []
    real = service.synthesize

    async def counted(request):
        calls.append(request)
        return await real(request)

    monkeypatch.setattr(service, "synthesize", counted)
    first = asyncio.run(gallery.render("baker"))
    assert [request.emotion for request in calls] == list(ui.EMOTIONS)
    assert all(request.intensity == 1.0 and request.text == ui.GALLERY_TEXT for request in calls)
    paths, error = first[:-1], first[-1]
    assert len(paths) == 7 and error["visible"] is False
    audio = [Path(path).read_bytes() for path in paths]
    assert len(set(audio)) == 7  # seven different renderings
    second = asyncio.run(gallery.render("baker"))
    assert len(calls) == 7 and [Path(path).read_bytes() for path in second[:-1]] == audio  # from memory
    refused = asyncio.run(gallery.render("nobody"))
    assert refused[:-1] == [None] * 7 and "unknown voice" in refused[-1]["value"]
