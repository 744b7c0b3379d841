"""Voice selectors and the model pool: blends, errors that list the voices, lazy loading, an LRU by memory."""

from __future__ import annotations

import pytest

from qingyin.runtime import pool as pool_module
from qingyin.runtime.pool import ModelPool, VoiceSelectionError, parse_selector
from qingyin.voices import registry
from qingyin.voices.registry import UnknownVoiceError
from qingyin.voices.wheels import VoiceNotAvailableError


def test_a_name_is_one_speaker_and_a_blend_is_normalized():
    spec, speaker = parse_selector("yunxi")
    assert spec.name == "yunxi" and dict(speaker) == {"zm_yunxi": 1.0}
    spec, speaker = parse_selector(" xiaobei:3, yunxi:1 ")
    assert spec.name == "xiaobei" and dict(speaker) == {"zf_xiaobei": 0.75, "zm_yunxi": 0.25}
    assert dict(parse_selector("xiaobei:0.5,xiaobei:0.5")[1]) == {"zf_xiaobei": 1.0}


@pytest.mark.parametrize(("selector", "error", "words"), [
    ("", VoiceSelectionError, ["baker", "yunxi"]),
    ("nobody", UnknownVoiceError, ["nobody", "baker", "yunyang"]),
    ("xiaobei:abc,yunxi:1", VoiceSelectionError, ["xiaobei:abc", "weight"]),
    ("xiaobei:nan,yunxi:1", VoiceSelectionError, ["weight"]),
    ("xiaobei:-1,yunxi:2", VoiceSelectionError, ["weight >= 0"]),
    ("xiaobei:0,yunxi:0", VoiceSelectionError, ["more than 0"]),
    ("baker:0.5,yunxi:0.5", VoiceSelectionError, ["different models (baker: baker; kokoro: yunxi)", "one model"]),
    ("baker:0.5,baker:0.5", VoiceSelectionError, ["'baker' (fs2_mbmelgan) cannot be blended", "can: xiaobei"]),
])
def test_bad_selectors_say_what_is_wrong(selector, error, words):
    with pytest.raises(error) as raised:
        parse_selector(selector)
    assert all(word in str(raised.value) for word in words)


class FakeVoice:
    capabilities = frozenset()

    def __init__(self, name: str):
        self.name = name


def test_models_load_lazily_and_the_least_recently_used_goes_past_the_budget(monkeypatch, tmp_path):
    memory = [100.0]
    loads: list[str] = []

    def load(self, model, directory):
        loads.append(model.name)
        memory[0] += 300.0  # every model adds 300 MB
        return FakeVoice(model.name)

    monkeypatch.setattr(ModelPool, "_load", load)
    monkeypatch.setattr(pool_module, "resident_mb", lambda: memory[0])
    monkeypatch.setattr(pool_module.families, "installed_model", lambda model: tmp_path)
    pool = ModelPool(fetch=False, max_mb=500)
    baker, kokoro = registry.get_model("baker"), registry.get_model("kokoro")
    first = pool.model(baker)
    assert pool.model(baker) is first and loads == ["baker"] and pool.loaded_mb() == {"baker": 300.0}
    pool.model(kokoro)  # 600 MB > 500: baker, the least recently used, is dropped
    assert pool.loaded() == ["kokoro"] and loads == ["baker", "kokoro"]
    assert pool.model(baker) is not first and pool.loaded() == ["baker"]


def test_a_missing_model_names_the_command_that_installs_it(monkeypatch, tmp_path):
    monkeypatch.setenv("QINGYIN_HOME", str(tmp_path))
    with pytest.raises(VoiceNotAvailableError, match="qingyin models fetch kokoro"):
        ModelPool(fetch=False).select("yunxi")
