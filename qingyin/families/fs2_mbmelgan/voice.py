"""FastSpeech2 + Multi-band MelGAN (the Baker model) behind the Voice interface.

Tokens are the frontend's phones in Baker's symbol table plus eos; `predict` runs the acoustic encoder at neutral
settings; `acoustic` rounds the edited durations and decodes a mel (from the predicted encoder states when pitch
and energy are unedited, else by re-running the encoder with the per-token pitch and energy scales and the
edited frames forced; a pitch slope runs it at each token's start and end pitch and moves the frames from one to
the other); `render` vocodes it, whole or in exact chunks (qingyin.families.fs2_mbmelgan.streaming).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from qingyin.families.base import Acoustics, Prosody, Speaker, Tokens
from qingyin.families.fs2_mbmelgan import CAPABILITIES
from qingyin.families.fs2_mbmelgan.backends import load_backend
from qingyin.families.fs2_mbmelgan.features import AcousticControls
from qingyin.families.fs2_mbmelgan.streaming import stream_vocoder
from qingyin.text.frontend import Sentence
from qingyin.text.markup import Controls
from qingyin.text.symbols import SymbolTable, phone_syllables
from qingyin.voices import registry
from qingyin.voices.registry import ModelSpec

BOUNDARY_MARKS = {"#0": 0, "#1": 1, "#2": 2, "#3": 3}
# The model's pitch is a z-score of F0 in Hz per token: F0 ~ F0_MEAN_HZ + F0_STD_HZ * z, fitted on the fp32 ONNX
# graphs (benchmarks/style_calibration.py: Harvest F0 per token against the predicted z, 20 sentences, r = 0.80).
# A shift multiplies F0, so it moves z as (F0 * k - mean) / std, which keeps the tones' spread in semitones.
F0_MEAN_HZ = 248.0
F0_STD_HZ = 37.0
Z_FLOOR = 1e-3
# Raised pitch is compressed above Z_KNEE towards Z_KNEE + Z_ROOM (tanh): the model predicts at most z = 2.3 on the
# default set, and asked for more (surprise at intensity 2 asked up to z = 10) its F0 stopped rising (+1.93 st at
# intensity 2 against +1.90 at 1) while DNSMOS fell; with the ceiling, +2.20 against +1.91, and the final rise showed
# (BENCHMARKS.md, "The final contour").
Z_KNEE = 2.0
Z_ROOM = 1.5
# tilt_db is the change of the 3-8 kHz band's level against the 0.1-1 kHz band's: a ramp of one normalized mel unit
# from the lowest to the highest bin moves it by about 12.8 dB (benchmarks/style_calibration.py).
TILT_DB_PER_Z = 12.8
# A token's loudness follows the normalized energy it is decoded with: about 7.9 dB per unit (token RMS level of
# the audio regressed on it over the spoken tokens of 6 sentences, r = 0.89; benchmarks/style_calibration.py).
LEVEL_DB_PER_ENERGY = 7.9
SPEAKERS = ("baker",)  # the model's speaker table, by id


class Fs2Voice:
    """The Baker model on the torch or ONNX backend (qingyin.families.fs2_mbmelgan.backends)."""

    capabilities = CAPABILITIES

    def __init__(self, model: ModelSpec, directory: Path, backend: str = "torch", variant: str | None = None,
                 threads: int | None = None):
        self.model = model
        self.sample_rate = model.sample_rate
        self.symbols = SymbolTable.from_json(directory / registry.SYMBOLS)
        self.backend = load_backend(backend, directory, threads=threads, variant=variant)
        self.backend_name = backend  # which runtime was loaded (torch or onnx)
        self.variant = getattr(self.backend, "variant", "fp32")
        self.frame_seconds = self.backend.hop_length / self.sample_rate

    # --- tokens ----------------------------------------------------------------------------------------------
    def tokens(self, sentence: Sentence) -> Tokens:
        return self._tokens(sentence.text, sentence.phones, sentence.controls)

    def parse_symbols(self, symbols: str | Sequence[str]) -> Tokens:
        phones = symbols.split() if isinstance(symbols, str) else list(symbols)
        return self._tokens(" ".join(phones), phones, None)

    def _tokens(self, text: str, phones: list[str], controls: list[Controls] | None) -> Tokens:
        ids = self.symbols.ids(phones) + [self.symbols.eos_id]  # raises UnknownSymbolError naming the symbol
        per_token = None if controls is None else [*controls, controls[-1]]  # eos follows the last phone
        breaks = [(i, BOUNDARY_MARKS[p]) for i, p in enumerate(phones) if p in BOUNDARY_MARKS]
        return Tokens(text, phones, ids, per_token, breaks, [*phone_syllables(phones), -1])

    def split(self, tokens: Tokens) -> tuple[Tokens, Tokens] | None:
        """Halves at the boundary mark nearest the middle; each half keeps a sil where the mark was."""
        phones = tokens.symbols
        if not tokens.breaks:
            return None
        cut = min((i for i, _ in tokens.breaks), key=lambda i: abs(i - len(phones) / 2))
        controls = None if tokens.controls is None else tokens.controls[:-1]
        head = None if controls is None else controls[:cut] + [controls[cut]]
        tail = None if controls is None else [controls[cut]] + controls[cut + 1:]
        return (self._tokens(tokens.text, phones[:cut] + ["sil"], head),
                self._tokens("", ["sil"] + phones[cut + 1:], tail))

    # --- prosody and audio -------------------------------------------------------------------------------------
    def predict(self, tokens: Tokens, speaker: Speaker) -> Prosody:
        frames, pitch, energy, states = self.backend.predict(tokens.ids, self._speaker_id(speaker))
        return Prosody(frames.astype(np.float32), self.frame_seconds, pitch, energy, state=states)

    def acoustic(self, tokens: Tokens, prosody: Prosody, speaker: Speaker) -> Acoustics:
        return self.acoustic_batch([(tokens, prosody, speaker)])[0]

    def acoustic_batch(self, items: Sequence[tuple[Tokens, Prosody, Speaker]]) -> list[Acoustics]:
        """Items whose pitch and energy are unedited are decoded from their predicted states in one padded
        decoder run (ONNX); the others run the acoustic model again with their scales and frames forced."""
        done: dict[int, Acoustics] = {}
        reusable = [n for n, (_, p, _) in enumerate(items)
                    if p.state is not None and p.unedited("pitch") and p.unedited("energy")]
        if reusable:
            frames = [items[n][1].frames() for n in reusable]
            mels = self.backend.decode_batch([(items[n][1].state, f) for n, f in zip(reusable, frames, strict=True)])
            for n, f, mel in zip(reusable, frames, mels, strict=True):
                prosody = items[n][1]
                done[n] = Acoustics(f, prosody.pitch, prosody.energy, self.frame_seconds, mel)
        rest = [n for n in range(len(items)) if n not in done]
        if rest:
            batch = [(items[n][0].ids, self._controls(items[n][1], items[n][2])) for n in rest]
            for n, features in zip(rest, self.backend.acoustic_batch(batch), strict=True):
                done[n] = Acoustics(features.durations, features.pitch, features.energy, self.frame_seconds,
                                    features.mel)
        for n, (_, prosody, _) in enumerate(items):
            if prosody.tilt_db is not None and prosody.tilt_db.any():
                done[n].mel = tilted(done[n].mel, np.repeat(prosody.tilt_db, done[n].durations))
            done[n].level_db = np.float32(LEVEL_DB_PER_ENERGY) * np.asarray(done[n].energy, np.float32)
        return [done[n] for n in range(len(items))]

    def render(self, acoustics: Acoustics) -> np.ndarray:
        return self.backend.vocode(acoustics.mel)

    def render_stream(self, acoustics: Acoustics, first_chunk: int, chunk: int) -> Iterator[np.ndarray]:
        return stream_vocoder(self.backend.vocode, acoustics.mel, self.backend.hop_length,
                              self.backend.vocoder_context_frames, first_chunk, chunk,
                              min_frames=self.backend.min_vocoder_frames)

    @property
    def max_frames(self) -> int:
        return self.backend.max_positions

    def _controls(self, prosody: Prosody, speaker: Speaker) -> AcousticControls:
        """A slope moves each token's pitch across its frames (AcousticControls.pitch_scale_end)."""
        if prosody.sloped:
            start, end = pitch_scales(prosody, at=0.0), pitch_scales(prosody, at=1.0)
        else:
            start, end = pitch_scales(prosody), None
        return AcousticControls(1.0, start, _scale(prosody.energy_scale), self._speaker_id(speaker),
                                prosody.frames(), pitch_scale_end=end)

    def _speaker_id(self, speaker: Speaker) -> int:
        if len(speaker) != 1:
            raise ValueError(f"voice mixing needs a model with several speakers; {self.model.name!r} has one")
        return SPEAKERS.index(next(iter(speaker)))


def _scale(scale: np.ndarray | None) -> float | np.ndarray:
    return 1.0 if scale is None else scale.astype(np.float32)


def pitch_scales(prosody: Prosody, at: float = 0.5) -> float | np.ndarray:
    """The per-token multipliers of the predicted pitch that realize the prosody's scale and semitone shift at
    `at` of each token's way (Prosody.semitones).

    The model's pitch is a z-score per token, fed back through the graph's only pitch input, a multiplier: a shift
    of s semitones multiplies F0 by k = 2 ** (s / 12), i.e. takes z to z * k + F0_MEAN_HZ * (k - 1) / F0_STD_HZ, and
    the multiplier is that target over the predicted z (tokens predicted at the mean, |z| < Z_FLOOR, move as if at
    the floor). Targets above what the model renders are compressed (`pitch_ceiling`).
    """
    semitones = prosody.semitones(at)
    if semitones is None or prosody.pitch is None:
        return _scale(prosody.pitch_scale)
    predicted = prosody.pitch.astype(np.float32)
    scale = np.ones_like(predicted) if prosody.pitch_scale is None else prosody.pitch_scale.astype(np.float32)
    factor = np.exp2(semitones.astype(np.float32) / 12.0)
    target = pitch_ceiling(predicted * scale * factor + F0_MEAN_HZ * (factor - 1.0) / F0_STD_HZ)
    floor = np.where(predicted < 0, -Z_FLOOR, Z_FLOOR).astype(np.float32)
    safe = np.where(np.abs(predicted) < Z_FLOOR, floor, predicted)
    return (target / safe).astype(np.float32)


def pitch_ceiling(z: np.ndarray) -> np.ndarray:
    """z-scores above Z_KNEE compressed smoothly towards Z_KNEE + Z_ROOM (slope 1 at the knee); the rest as they are."""
    over = np.maximum(z - Z_KNEE, 0.0)
    return np.where(z > Z_KNEE, Z_KNEE + Z_ROOM * np.tanh(over / Z_ROOM), z).astype(np.float32)


def tilted(mel: np.ndarray, tilt_db: np.ndarray) -> np.ndarray:
    """The normalized mel with each frame's spectral balance moved by its `tilt_db` (a ramp across the mel bins,
    lowest bin down and highest up by half of it each)."""
    ramp = np.linspace(-0.5, 0.5, mel.shape[1], dtype=np.float32)
    return (mel + (tilt_db.astype(np.float32) / TILT_DB_PER_Z)[:, None] * ramp[None, :]).astype(mel.dtype)


def sentence_ids(voice_dir: str | Path, texts: list[str]) -> list[list[int]]:
    """Symbol ids (eos appended) of every spoken sentence of `texts`, through qingyin's frontend."""
    from qingyin.text import text_to_sentences

    table = SymbolTable.from_json(Path(voice_dir) / registry.SYMBOLS)
    return [table.ids(sentence.phones) + [table.eos_id]
            for text in texts for sentence in text_to_sentences(text).sentences if sentence.phones]
