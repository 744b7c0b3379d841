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
