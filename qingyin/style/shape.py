"""Apply a style (emotion presets, reference prosody: `Preset`s) to one sentence's predicted prosody.

Pure numpy on the Prosody's edit fields (qingyin.families.base.Prosody): duration and pitch scales and the
loudness `contrast` multiply, `pitch_shift`/`pitch_slope` add semitones, `gain_db` and `tilt_db` add decibels. Each
token may carry its own preset (SSML <emotion> spans); shapes that belong to the sentence (declination, the final
contour) read the preset of the tokens they touch. A sentence whose presets are all neutral is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import numpy as np

from qingyin.families.base import TILT, Prosody, Tokens
from qingyin.style.layout import Layout
from qingyin.style.presets import Preset


def apply_style(prosody: Prosody, tokens: Tokens, presets: Preset | Sequence[Preset],
                capabilities: frozenset[str]) -> None:
    """Edit `prosody` in place with one preset for all tokens or one per token."""
    count = len(tokens.ids)
    per_token = [presets] * count if isinstance(presets, Preset) else list(presets)
    if len(per_token) != count:
        raise ValueError(f"{len(per_token)} presets for {count} tokens")
    if all(p.neutral for p in per_token):
        return
    value = {f.name: np.array([getattr(p, f.name) for p in per_token], np.float32) for f in fields(Preset)}
    layout = Layout.of(tokens, prosody.durations)
    ones = np.ones(count, np.float32)

    duration = ones / value["rate"]
    pitch_range = value["range"].copy()
    shift = value["level_st"].copy()
    slope = np.zeros(count, np.float32)
    gain = value["level_db"].copy()
    if layout is not None:
        duration *= np.where(layout.pause, value["pause"], 1.0)
        duration *= np.where(layout.phrase_final & ~layout.pause, value["final_lengthening"], 1.0)
        duration *= np.where(layout.focus, value["focus_lengthening"], 1.0)
        pitch_range *= np.where(layout.focus, value["focus_range"], 1.0)
        pitch_range *= np.where(layout.final, value["final_range"], 1.0)
        shift += value["declination_st"] * (layout.position - 0.5)
        shift += np.where(layout.final, value["final_st"], 0.0)
        rise, offset = final_rise(layout, prosody.durations, value["final_slope_st"])
        shift += offset
        slope += rise
        gain += np.where(layout.focus, value["focus_db"], 0.0)

    prosody.duration_scale = _times(prosody.duration_scale, duration)
    prosody.pitch_scale = _times(prosody.pitch_scale, pitch_range)
    prosody.contrast = _times(prosody.contrast, value["dynamics"])
    prosody.pitch_shift = _plus(prosody.pitch_shift, shift)
    prosody.pitch_slope = _plus(prosody.pitch_slope, slope)
    prosody.gain_db = _plus(prosody.gain_db, gain)
    if TILT in capabilities:
        prosody.tilt_db = _plus(prosody.tilt_db, value["tilt_db"])


def final_rise(layout: Layout, durations: np.ndarray, slope_st: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-token slope, per-token offset), semitones: the sentence-final pitch movement `slope_st` (the last
    syllable's value) spread over the last syllable and the tail in proportion to their predicted frames, each
    token starting where the one before it ended.

    The whole span, not one "nucleus" token: the longest token of the last syllable is Kokoro's silent final tone
    mark or Baker's initial consonant as often as the vowel, and Baker's vowel rings on into the tail. Families
    realize the slope where there is voicing (Kokoro: over its voiced F0 values; Baker: its states, frame by frame).
    """
    span = layout.final
    slope, offset = np.zeros(len(durations), np.float32), np.zeros(len(durations), np.float32)
    total = float(slope_st[np.flatnonzero(layout.last_syllable)[0]])
    frames = np.where(span, np.maximum(np.asarray(durations, np.float64), 0.0), 0.0)
    if total == 0 or frames.sum() <= 0:
        return slope, offset
    share = frames / frames.sum()
    slope[span] = total * share[span]
    offset[span] = total * (np.cumsum(share) - share)[span]
    return slope, offset


def _times(current: np.ndarray | None, factor: np.ndarray) -> np.ndarray:
    return factor.astype(np.float32) if current is None else (current * factor).astype(np.float32)


def _plus(current: np.ndarray | None, amount: np.ndarray) -> np.ndarray:
    return amount.astype(np.float32) if current is None else (current + amount).astype(np.float32)
