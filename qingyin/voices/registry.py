"""The voice catalog (catalog.json, data): voice name -> model, family, speaker; and where models live once installed.

A *model* is one set of weights of one family (baker: FastSpeech2 + MB-MelGAN; kokoro: Kokoro-82M); a *voice* is
one speaker of a model. Adding a voice of a known family is one entry under "voices"; adding a model of a known
family is one entry under "models" (its "source" is read by the family's provisioning).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

CATALOG = "catalog.json"


@dataclass(frozen=True)
class ModelSpec:
    """One model as distributed in registry packages (treated as data, never imported)."""

    name: str
    family: str  # a key of qingyin.families.FAMILIES
    description: str
    license: str
    sample_rate: int
    source: Mapping[str, object] = field(default_factory=dict)  # pins, read by the family's provisioning
    measured_rtf: float | None = None  # real-time factor on 2 threads of the dev machine (BENCHMARKS.md)


@dataclass(frozen=True)
class VoiceSpec:
    """One speaker of one model."""

    name: str
    model: ModelSpec
    speaker: str  # the speaker's name inside the model (Kokoro: its style pack)
    gender: str
    description: str
    language: str = "zh"
    emotions: tuple[str, ...] = ()  # emotions the model was trained with; none for a neutral voice
    measured_cer: float | None = None  # Whisper-base CER on the default text set (BENCHMARKS.md, "Nine voices")
    source: Mapping[str, object] = field(default_factory=dict)  # the speaker's own pinned files, if any (Kokoro)

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def license(self) -> str:
        return self.model.license

    @property
    def speakers(self) -> tuple[str, ...]:
        """The model's speakers that are catalogued as voices (for mixing and per-request choice)."""
        return tuple(v.speaker for v in VOICES.values() if v.model.name == self.model.name)


def _load_catalog() -> tuple[dict[str, ModelSpec], dict[str, VoiceSpec], str]:
    data = json.loads(resources.files("qingyin.voices").joinpath(CATALOG).read_text(encoding="utf-8"))
    models = {name: ModelSpec(name=name, family=entry["family"], description=entry["description"],
                              license=entry["license"], sample_rate=int(entry["sample_rate"]),
                              source=MappingProxyType(dict(entry.get("source", {}))),
                              measured_rtf=entry.get("measured_rtf"))
              for name, entry in data["models"].items()}
    voices = {name: VoiceSpec(name=name, model=models[entry["model"]], speaker=entry["speaker"],
                              gender=entry["gender"], description=entry["description"],
                              language=entry.get("language", "zh"), emotions=tuple(entry.get("emotions", ())),
                              measured_cer=entry.get("measured_cer"),
                              source=MappingProxyType(dict(entry.get("source", {}))))
              for name, entry in data["voices"].items()}
    return models, voices, data["default"]


MODELS, VOICES, DEFAULT_VOICE = _load_catalog()

# Files of the converted Baker model, inside model_dir("baker").
ACOUSTIC_CONFIG = "acoustic.json"
ACOUSTIC_WEIGHTS = "acoustic.safetensors"
VOCODER_CONFIG = "vocoder.json"
VOCODER_WEIGHTS = "vocoder.safetensors"
SYMBOLS = "symbols.json"
MANIFEST = "manifest.json"  # sha256 of every file of an installed model, written last: marks a complete install


class UnknownVoiceError(ValueError):
    pass


def get_voice(name: str) -> VoiceSpec:
    try:
        return VOICES[name]
    except (KeyError, TypeError):
        raise UnknownVoiceError(f"unknown voice {name!r}; available: {', '.join(VOICES)}") from None


def get_model(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise UnknownVoiceError(f"unknown model {name!r}; available: {', '.join(MODELS)}") from None


def qingyin_home() -> Path:
    """Where fetched and converted models live: $QINGYIN_HOME, default ~/.cache/qingyin."""
    return Path(os.environ.get("QINGYIN_HOME") or Path.home() / ".cache" / "qingyin")


def model_dir(model: str) -> Path:
    return qingyin_home() / "voices" / model


def voice_dir(name: str) -> Path:
    """The installed folder of the voice's model (voices of one model share it)."""
    return model_dir(get_voice(name).model.name)


def is_installed(name: str) -> bool:
    return (voice_dir(name) / MANIFEST).is_file()


def installed_voices() -> list[str]:
    return [name for name in VOICES if is_installed(name)]
