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
    # Where given, each symbol's pitch moves across its frames from `pitch_scale` (its first frame) to this (its
    # last): a contour inside the syllable, which one pitch per symbol cannot give.
    pitch_scale_end: float | np.ndarray | None = None


def frame_states(states: np.ndarray, frames: np.ndarray, end_states: np.ndarray | None = None) -> np.ndarray:
    """(sum(frames), H): each symbol's state repeated over its frames (the length regulator).

    With `end_states` (the same symbols' states at their end pitch), each symbol's frames move linearly from its
    state to its end state. The states are affine in the pitch (the pitch enters through a convolution added to
    them), so a blend of the two is the state at the blended pitch, frame by frame.
    """
    frames = np.asarray(frames, np.int64)
    expanded = np.repeat(states, frames, axis=0)
    if end_states is None:
        return expanded
    return expanded + ramp_weights(frames)[:, None].astype(states.dtype) * np.repeat(end_states - states, frames,
                                                                                      axis=0)


def ramp_weights(frames: np.ndarray) -> np.ndarray:
    """(sum(frames),) float32 each frame's place in its symbol: 0 at its first frame, 1 at its last (0.5 alone)."""
    frames = np.asarray(frames, np.int64)
    starts = np.repeat(np.cumsum(frames) - frames, frames)
    counts = np.repeat(frames, frames)
    index = np.arange(int(frames.sum())) - starts
    return np.where(counts > 1, index / np.maximum(counts - 1, 1), 0.5).astype(np.float32)
