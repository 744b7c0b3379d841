"""The Voice interface that model families implement, and the data that crosses it (numpy only, no model code).

    sentence (qingyin.text) --voice.tokens--> Tokens --voice.predict--> Prosody --engine edits the scales-->
    Prosody --voice.acoustic--> Acoustics --voice.render / render_stream--> audio

The engine (qingyin.runtime.synthesizer) never sees mels, vocoders or a family's symbols: it edits a Prosody's
per-token scales (speed, pitch, energy; SSML <prosody> spans) and asks the voice for audio.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from qingyin.families.errors import SequenceTooLongError
from qingyin.text.frontend import Sentence
from qingyin.text.markup import Controls
from qingyin.voices.registry import ModelSpec

# What a family lets the engine edit in a Prosody (see Capabilities in the catalog and `qingyin voices`).
DURATION, PITCH, ENERGY, MIX, TILT = "duration", "pitch", "energy", "mix", "tilt"

Speaker = Mapping[str, float]  # the model's speaker names -> weights summing to 1 (one speaker: {name: 1.0})


@dataclass
class Tokens:
    """One sentence (or piece of one) in a family's own symbols."""

    text: str  # the text these tokens say (for reports and streaming events)
    symbols: list[str]  # the family's symbols for what is said
    ids: list[int]  # what the model takes, one per token (may add framing tokens, e.g. Baker's eos, at the end)
    controls: list[Controls] | None = None  # per id, from SSML <prosody>; None = all neutral
    breaks: list[tuple[int, int]] = field(default_factory=list)  # (token index, boundary level 0-3): may split there
    # per id, the syllable it belongs to (0, 1, ... within the sentence), -1 for pauses, punctuation and framing;
    # the style layer finds words, phrase ends and pauses with it (qingyin.style.layout). None = unknown
    syllables: list[int] | None = None


@dataclass
class Prosody:
    """Per-token durations, pitch and energy as predicted, and the engine's edits of them (multipliers).

    The realized frames are `frames()`: the predicted durations times `duration_scale`, rounded half to even,
    or `forced` when the caller fixed the timing. `pitch_scale` widens or narrows the pitch excursions around
    the voice's level, `energy_scale` the energy excursions: the same meaning on every family. The style layer
    (qingyin.style) also moves the pitch register (`pitch_shift`, semitones; `pitch_slope`, a rise across the token:
    Kokoro ramps its F0 curve, Baker blends the states of each token's start and end pitch), the loudness
    (`gain_db`, applied to the audio by the engine), the loudness contrasts between tokens (`contrast`: each token's
    level deviation from the sentence's, as the family estimates it before rendering in `Acoustics.level_db`, times
    the factor; also applied to the audio) and the spectral tilt (`tilt_db`, families with the TILT capability).
    """

    durations: np.ndarray  # (tokens,) float32 frames as predicted, at speed 1
    frame_seconds: float  # seconds per frame of `durations`
    pitch: np.ndarray | None = None  # (tokens,) predicted pitch in the family's units; None: predicted later
    energy: np.ndarray | None = None
    duration_scale: np.ndarray | None = None  # (tokens,) float32; None = 1
    pitch_scale: np.ndarray | None = None
    energy_scale: np.ndarray | None = None
    pitch_shift: np.ndarray | None = None  # (tokens,) semitones; None = 0
    pitch_slope: np.ndarray | None = None  # (tokens,) semitones from the token's start to its end; None = 0
    gain_db: np.ndarray | None = None  # (tokens,) loudness change, dB; None = 0
    contrast: np.ndarray | None = None  # (tokens,) loudness contrast: each token's level deviation times this; None = 1
    tilt_db: np.ndarray | None = None  # (tokens,) high- against low-frequency level, dB; None = 0
    forced: np.ndarray | None = None  # (tokens,) int frames replacing durations × duration_scale
    state: object = None  # family-private (encoder states, style vector, ...)

    def frames(self) -> np.ndarray:
        if self.forced is not None:
            return np.asarray(self.forced, dtype=np.int64)
        scale = np.float32(1.0) if self.duration_scale is None else self.duration_scale.astype(np.float32)
        return np.rint(self.durations.astype(np.float32) * scale).astype(np.int64)

    def unedited(self, name: str) -> bool:
        """Whether the `name` ("pitch" or "energy") is as predicted: its scale 1 everywhere (and for pitch, no
        shift or slope)."""
        scale = getattr(self, f"{name}_scale")
        edits = [self.pitch_shift, self.pitch_slope] if name == PITCH else []
        return (scale is None or bool(np.all(scale == 1.0))) and all(e is None or not e.any() for e in edits)

    def semitones(self, at: float = 0.5) -> np.ndarray | None:
        """The pitch shift of each token at `at` of its way through it: 0 its start, 1 its end, 0.5 its middle
        (the shift plus half the slope, for one pitch per token)."""
        if self.pitch_shift is None and self.pitch_slope is None:
            return None
        shift = np.zeros(len(self.durations), np.float32) if self.pitch_shift is None else self.pitch_shift
        return shift if self.pitch_slope is None else (shift + np.float32(at) * self.pitch_slope).astype(np.float32)

    @property
    def sloped(self) -> bool:
        """Whether some token's pitch moves across it (`pitch_slope` not all 0)."""
        return self.pitch_slope is not None and bool(self.pitch_slope.any())


@dataclass
class Acoustics:
    """Everything before the waveform: realized durations (frames) per token, pitch, energy, the family's data."""

    durations: np.ndarray  # (tokens,) int frames
    pitch: np.ndarray  # as used: per token (fs2_mbmelgan) or per frame (kokoro), the family's units
    energy: np.ndarray
    frame_seconds: float
    mel: np.ndarray | None = None  # (frames, mels) for families with a mel vocoder
    state: object = None
    trim_frames: int = 0  # leading frames rendered but cut from the audio (Kokoro's long predicted silence)
    gain_db: np.ndarray | None = None  # (tokens,) loudness edits the engine applies to the audio (qingyin.style)
    level_db: np.ndarray | None = None  # (tokens,) each token's loudness as the family expects it to sound, dB

    @property
    def seconds(self) -> float:
        """Seconds of audio heard."""
        return float(self.durations.sum() - self.trim_frames) * self.frame_seconds


class Voice(Protocol):
    """A loaded model of one family, with all its speakers."""

    model: ModelSpec
    sample_rate: int
    capabilities: frozenset[str]
    variant: str  # the runtime variant loaded (e.g. "fp32", "int8-static")

    def tokens(self, sentence: Sentence) -> Tokens:
        """The sentence in the family's symbols (raises ValueError naming a symbol the model lacks)."""

    def parse_symbols(self, symbols: str | Sequence[str]) -> Tokens:
        """The family's own symbols as given (for `qingyin say --phones` and tests)."""

    def split(self, tokens: Tokens) -> tuple[Tokens, Tokens] | None:
        """Two halves cut at the prosodic boundary nearest the middle, or None when there is none."""

    def predict(self, tokens: Tokens, speaker: Speaker) -> Prosody:
        """Durations (and pitch and energy where the family predicts them per token) at neutral settings."""

    def acoustic(self, tokens: Tokens, prosody: Prosody, speaker: Speaker) -> Acoustics:
        """Everything before the waveform, with the prosody's edits applied. SequenceTooLongError: split."""

    def acoustic_batch(self, items: Sequence[tuple[Tokens, Prosody, Speaker]]) -> list[Acoustics]:
        """`acoustic` for several items, in padded batches where the family can; each as if alone."""

    def render(self, acoustics: Acoustics) -> np.ndarray:
        """The waveform, float32 mono at `sample_rate`."""

    def render_stream(self, acoustics: Acoustics, first_chunk: int, chunk: int) -> Iterator[np.ndarray]:
        """The waveform in pieces (`first_chunk` frames first, then `chunk`), concatenating to `render`'s."""


__all__ = ["DURATION", "ENERGY", "MIX", "PITCH", "TILT", "Acoustics", "Prosody", "SequenceTooLongError", "Speaker",
           "Tokens", "Voice"]
