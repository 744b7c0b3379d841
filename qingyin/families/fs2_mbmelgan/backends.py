"""Backends: the models behind a voice, loaded for inference, behind one small interface.

A backend has `acoustic(ids, controls) -> AcousticFeatures`, `vocode(mel) -> audio`, and the attributes
`hop_length`, `max_positions`, `min_vocoder_frames` and `vocoder_context_frames`. This module picks one by
name and imports it only then, so that a process using ONNX Runtime never loads torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from qingyin.families.fs2_mbmelgan.features import AcousticControls, AcousticFeatures

BACKENDS = ("torch", "onnx")


class Backend(Protocol):
    hop_length: int
    max_positions: int
    min_vocoder_frames: int
    vocoder_context_frames: int  # mel frames of context for exact chunked vocoding (streaming.py)

    def acoustic(self, ids: list[int], controls: AcousticControls) -> AcousticFeatures: ...

    def acoustic_batch(self, batch: list[tuple[list[int], AcousticControls]]) -> list[AcousticFeatures]: ...

    def vocode(self, mel: np.ndarray) -> np.ndarray: ...


def check_threads(threads: object) -> None:
    """A backend's `threads` argument: None (the backend's default) or a whole number >= 1."""
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")


def vocoder_input(mel: np.ndarray, min_frames: int) -> np.ndarray:
    """`mel` as the vocoder takes it: float32, contiguous, at least `min_frames` long (the reflection pads need
    that many), a shorter one extended by repeating its last frame; keep only the real frames' audio."""
    padded = np.concatenate([mel, np.repeat(mel[-1:], max(0, min_frames - mel.shape[0]), axis=0)])
    return np.ascontiguousarray(padded, dtype=np.float32)


class UnknownBackendError(ValueError):
    """A backend or variant name that does not exist; the message lists the valid ones."""


def load_backend(name: str, voice_dir: str | Path, threads: int | None = None, variant: str | None = None) -> Backend:
    """The backend `name` (one of BACKENDS) for the voice in `voice_dir`."""
    if name == "torch":
        if variant not in (None, "fp32"):
            raise UnknownBackendError(f"the torch backend has only the fp32 variant, not {variant!r}")
        try:
            from qingyin.families.fs2_mbmelgan.torch_runtime import TorchBackend
        except ImportError as error:
            raise ImportError(f"the torch backend needs PyTorch: pip install 'qingyin[convert]', or use "
                              f"--backend onnx ({error})") from None
        return TorchBackend(voice_dir, threads=threads)
    if name == "onnx":
        from qingyin.families.fs2_mbmelgan.export import VARIANT_CHOICES, UnknownVariantError

        try:
            from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend
        except ImportError as error:
            raise ImportError(f"the onnx backend needs onnxruntime: pip install 'qingyin[onnx]' ({error})") from None
        try:
            return OnnxBackend(voice_dir, variant=variant, threads=threads)  # None: the gated default
        except UnknownVariantError:
            raise UnknownBackendError(
                f"unknown onnx variant {variant!r}; available: {VARIANT_CHOICES}") from None
    raise UnknownBackendError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
