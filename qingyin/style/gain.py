"""Loudness edits (a Prosody's `gain_db`), applied to the rendered audio the same way on every voice."""

from __future__ import annotations

import numpy as np

from qingyin.families.base import Acoustics


def gain_envelope(acoustics: Acoustics, sample_rate: int) -> np.ndarray | None:
    """Per-sample gain (linear) over the audio `acoustics` renders, None when it has no gain edits.

    Each token's gain sits at the middle of its frames and is interpolated linearly in dB between them, so a
    change of loudness from one word to the next never clicks.
    """
    gain_db = acoustics.gain_db
    if gain_db is None or not gain_db.any():
        return None
    hop = int(round(acoustics.frame_seconds * sample_rate))
    ends = np.cumsum(acoustics.durations) * hop
    centres = ends - acoustics.durations * hop / 2.0
    first = acoustics.trim_frames * hop
    samples = np.arange(first, int(ends[-1]), dtype=np.float64)
    return np.power(10.0, np.interp(samples, centres, gain_db) / 20.0).astype(np.float32)


def apply_gain(audio: np.ndarray, envelope: np.ndarray | None, offset: int = 0) -> np.ndarray:
    """`audio` (starting `offset` samples into the rendered sentence) times its part of `envelope`, its peaks
    above KNEE bent softly towards full scale (`soft_limit`) instead of clipped."""
    if envelope is None or not len(audio):
        return audio
    part = envelope[offset: offset + len(audio)]
    if len(part) < len(audio):  # a family rendered more than its frames: hold the last gain
        part = np.concatenate([part, np.full(len(audio) - len(part), part[-1] if len(part) else 1.0, np.float32)])
    return soft_limit(audio * part)


KNEE = 0.8  # samples up to this are kept as they are


def soft_limit(audio: np.ndarray) -> np.ndarray:
    """Samples beyond +-KNEE compressed smoothly into +-1 (tanh above the knee; continuous slope at it). Sample by
    sample, so streamed chunks get exactly what the whole sentence gets."""
    magnitude = np.abs(audio)
    over = magnitude > KNEE
    if not over.any():
        return audio.astype(np.float32)
    room = 1.0 - KNEE
    bent = KNEE + room * np.tanh((magnitude[over] - KNEE) / room)
    limited = audio.astype(np.float32)
    limited[over] = np.sign(audio[over]) * bent
    return limited
