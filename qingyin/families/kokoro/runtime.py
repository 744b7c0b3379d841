"""Run Kokoro's three stage graphs (see qingyin.families.kokoro.graphs) with onnxruntime: numpy in, numpy out.

ids + style → predict → durations (edit, round) → frames → prosody → f0, energy (edit) → decode → 24 kHz audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qingyin.families.onnx_sessions import cpu_session, session_options

SAMPLE_RATE = 24000
HOP_LENGTH = 600  # audio samples per frame; f0 and energy have 2 values per frame


@dataclass(frozen=True)
class Predicted:
    """predict's outputs: `durations` [N] (unrounded frames per token at speed 1, N including both pads) and the
    features prosody and decode need (opaque to callers)."""

    durations: np.ndarray
    predictor_features: np.ndarray
    text_features: np.ndarray


def frames_from_durations(durations: np.ndarray, speed: float = 1.0) -> np.ndarray:
    """Integer frames per token as the stock graph computes them: round half to even of durations / speed, >= 1."""
    scaled = np.asarray(durations, dtype=np.float32) / np.float32(speed)
    return np.maximum(np.rint(scaled), 1).astype(np.int64)


class KokoroGraphs:
    """The predict, prosody and decode sessions of one folder written by graphs.build_graphs."""

    def __init__(self, directory: Path, threads: int = 2) -> None:
        directory = Path(directory)
        options = session_options(threads)
        self.sessions = {
            stage: cpu_session(directory / f"{stage}.onnx", options)
            for stage in ("predict", "prosody", "decode")
        }

    def predict(self, ids: np.ndarray, style: np.ndarray) -> Predicted:
        """`ids` [N] int (padded with a 0 at both ends), `style` [256] or [1, 256] float32."""
        durations, predictor_features, text_features = self.sessions["predict"].run(
            None, {"tokens": _tokens(ids), "style": _style(style)})
        return Predicted(durations[0], predictor_features, text_features)

    def prosody(self, predicted: Predicted, frames: np.ndarray, style: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """f0 and energy [2 sum(frames)] for integer `frames` [N] per token."""
        f0, energy = self.sessions["prosody"].run(None, {
            "predictor_features": predicted.predictor_features,
            "frames": _frames(frames, predicted),
            "style": _style(style),
        })
        return f0.reshape(-1), energy.reshape(-1)

    def decode(self, predicted: Predicted, frames: np.ndarray, f0: np.ndarray, energy: np.ndarray,
               style: np.ndarray) -> np.ndarray:
        """Audio [600 sum(frames)] float32 at 24 kHz; f0 and energy as prosody returned them (maybe edited)."""
        frames = _frames(frames, predicted)
        length = 2 * int(frames.sum())
        if np.size(f0) != length or np.size(energy) != length:
            raise ValueError(f"f0 and energy need {length} values (2 per frame), "
                             f"got {np.size(f0)} and {np.size(energy)}")
        (audio,) = self.sessions["decode"].run(None, {
            "text_features": predicted.text_features,
            "frames": frames,
            "f0": np.asarray(f0, dtype=np.float32).reshape(1, 1, length),
            "energy": np.asarray(energy, dtype=np.float32).reshape(1, 1, length),
            "style": _style(style),
        })
        return audio

    def synthesize(self, ids: np.ndarray, style: np.ndarray, speed: float = 1.0) -> np.ndarray:
        """All three stages without edits: the stock graph's audio at `speed`."""
        predicted = self.predict(ids, style)
        frames = frames_from_durations(predicted.durations, speed)
        f0, energy = self.prosody(predicted, frames, style)
        return self.decode(predicted, frames, f0, energy, style)


def _tokens(ids: np.ndarray) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64).reshape(1, -1)


def _style(style: np.ndarray) -> np.ndarray:
    return np.asarray(style, dtype=np.float32).reshape(1, 256)


def _frames(frames: np.ndarray, predicted: Predicted) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.int64).reshape(1, -1)
    if frames.shape[1] != predicted.durations.shape[0]:
        raise ValueError(f"frames has {frames.shape[1]} values for {predicted.durations.shape[0]} tokens")
    if (frames < 0).any():
        raise ValueError("frames must be >= 0")
    return frames
