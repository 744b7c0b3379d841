"""Loudness edits (a Prosody's `gain_db` and `contrast`), applied to the rendered audio the same way on every voice."""

from __future__ import annotations

import numpy as np

from qingyin.families.base import Acoustics, Prosody, Tokens

# Spoken tokens estimated this far below the sentence's loudest are left alone by `contrast` (a closure, a breath):
# stretching their distance would only push them into silence or lift them out of it.
SPEECH_RANGE_DB = 30.0
MAX_CONTRAST_DB = 12.0  # the most `contrast` lowers one token
# ... and the most it raises one: the voices peak 2-4 dB below full scale, and yunxi with its loudest syllables raised
# up to 12 dB (contrast 2) had 1-2 % of its samples bent by the limiter.
MAX_CONTRAST_BOOST_DB = 3.0
GAIN_RAMP_S = 0.01  # the gain's move between two tokens, seconds


def loudness_edits_db(prosody: Prosody, acoustics: Acoustics, tokens: Tokens) -> np.ndarray | None:
    """(tokens,) dB the engine applies to a sentence's audio: the prosody's `gain_db` plus what its `contrast`
    asks of the levels the family estimated (`Acoustics.level_db`); None when there is nothing to apply.

    A family that estimates no levels renders contrasts as 1 (unchanged)."""
    gain = prosody.gain_db
    contrast = prosody.contrast
    if contrast is None or acoustics.level_db is None or np.all(contrast == 1.0):
        return gain
    spoken = None if tokens.syllables is None else np.asarray(tokens.syllables) >= 0
    extra = contrast_gain_db(acoustics.level_db, acoustics.durations, contrast, spoken)
    return extra if gain is None else (gain + extra).astype(np.float32)


def contrast_gain_db(level_db: np.ndarray, durations: np.ndarray, contrast: np.ndarray,
                     spoken: np.ndarray | None = None) -> np.ndarray:
    """(tokens,) dB that move each spoken token's level away from the sentence's mean level (duration-weighted,
    over spoken tokens) by `contrast` - 1 times its distance: contrast 2 doubles the level differences between
    syllables, 0.5 halves them, and the sentence's mean level stays (but for the cap on raising). Pauses (tokens
    outside `spoken`, all spoken when None), tokens without frames or a level, and tokens SPEECH_RANGE_DB below the
    loudest keep 0 dB; each gain is kept within -MAX_CONTRAST_DB..+MAX_CONTRAST_BOOST_DB."""
    level = np.asarray(level_db, np.float64)
    frames = np.asarray(durations, np.float64)
    moved = np.isfinite(level) & (frames > 0)
    if spoken is not None:
        moved &= spoken
    if not moved.any():
        return np.zeros(len(level), np.float32)
    moved &= level > level[moved].max() - SPEECH_RANGE_DB
    mean = np.average(level[moved], weights=frames[moved])
    gain = (np.asarray(contrast, np.float64) - 1.0) * np.where(moved, level - mean, 0.0)
    return np.clip(gain, -MAX_CONTRAST_DB, MAX_CONTRAST_BOOST_DB).astype(np.float32)


def gain_envelope(acoustics: Acoustics, sample_rate: int) -> np.ndarray | None:
    """Per-sample gain (linear) over the audio `acoustics` renders, None when it has no gain edits.

    Each token keeps its own gain over its frames (a syllable's consonant and vowel can differ, as `contrast` asks),
    and the gain moves from one token's to the next linearly in dB over GAIN_RAMP_S around their boundary (less for
    shorter tokens), so that a change of loudness never clicks.
    """
    gain_db = acoustics.gain_db
    if gain_db is None or not gain_db.any():
        return None
    hop = int(round(acoustics.frame_seconds * sample_rate))
    ends = np.cumsum(acoustics.durations) * hop
    starts = ends - acoustics.durations * hop
    half = np.minimum(GAIN_RAMP_S * sample_rate / 2.0, acoustics.durations * hop / 2.0)
    knots = np.stack([starts + half, ends - half], axis=1).reshape(-1)  # each token's flat part
    first = acoustics.trim_frames * hop
    samples = np.arange(first, int(ends[-1]), dtype=np.float64)
    return np.power(10.0, np.interp(samples, knots, np.repeat(gain_db, 2)) / 20.0).astype(np.float32)


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
