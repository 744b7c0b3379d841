"""What an acoustic backend takes and gives, as plain numpy: shared by the torch and ONNX backends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class AcousticFeatures:
    """One utterance's acoustic model output (numpy, batch dimension removed)."""

    mel: np.ndarray  # (frames, num_mels), normalized, after the postnet
    durations: np.ndarray  # (symbols,) int frames, eos included
    pitch: np.ndarray  # (symbols,) normalized pitch used
    energy: np.ndarray  # (symbols,) normalized energy used


@dataclass(frozen=True)
class AcousticControls:
    """Model-level controls (see FastSpeech2.forward): scales of the predictions, or per-symbol overrides."""

    duration_scale: float | np.ndarray = 1.0  # a float, or one value per symbol (eos included)
    pitch_scale: float | np.ndarray = 1.0
    energy_scale: float | np.ndarray = 1.0
    speaker: int = 0
    durations: np.ndarray | None = None
