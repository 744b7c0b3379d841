"""Kokoro-82M behind the Voice interface: our frontend's phones → Kokoro symbols → durations → F0 and energy →
audio, with the engine's edits applied between the stages.

Speakers are style packs (float32 [510, 1, 256]: one style vector per input length); a mix is the weighted sum
of the packs' rows. Pitch and energy edits scale the F0 curve's excursions around the sentence's median in log
Hz (voiced frames only) and the energy curve's excursions around its mean, per token, like the Baker voice's
scales of its normalized pitch and energy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from qingyin.arrays import true_runs
from qingyin.families.base import Acoustics, Prosody, SequenceTooLongError, Speaker, Tokens
from qingyin.families.kokoro import CAPABILITIES, graphs_dir
from qingyin.families.kokoro.provision import SPEAKERS, VOCAB_FILE, speaker_file
from qingyin.families.kokoro.runtime import HOP_LENGTH, SAMPLE_RATE, KokoroGraphs
from qingyin.families.kokoro.tokens import MAX_TOKENS, ids, load_vocab, sentence_tokens
from qingyin.text.frontend import Sentence
from qingyin.text.markup import Controls
from qingyin.text.symbols import phone_syllables
from qingyin.voices.registry import ModelSpec

DEFAULT_THREADS = 2
VOICED_HZ = 40.0  # F0 below this is an unvoiced frame: left as it is by pitch edits
STYLE_DIM = 256
MAX_FRAMES = 40 * 120  # forced durations: two minutes of frames at most
LEADING_SILENCE_FRAMES = 4  # at most 100 ms of silence before a sentence
STREAM_CONTEXT_FRAMES = 12  # streaming: frames of the sentence decoded on each side of a span (300 ms)
CROSSFADE_SAMPLES = 240  # streaming: 10 ms crossfade from one span's overhang into the next span
# A token's loudness follows its energy curve: about 3.2 dB per unit (token RMS level of the audio regressed on the
# token's mean energy over the spoken tokens of 6 sentences, xiaobei, r = 0.93; benchmarks/style_calibration.py).
LEVEL_DB_PER_ENERGY = 3.2


class KokoroVoice:
    """The three stage graphs of one variant, the vocabulary and the eight speakers' style packs."""

    capabilities = CAPABILITIES

    def __init__(self, model: ModelSpec, directory: Path, variant: str, threads: int | None = None):
        self.model = model
        self.variant = variant
        self.sample_rate = SAMPLE_RATE
        self.frame_seconds = HOP_LENGTH / SAMPLE_RATE
        self.max_frames = MAX_FRAMES
        self.vocab = load_vocab(Path(directory) / VOCAB_FILE)
        self.packs = {name: np.fromfile(Path(directory) / speaker_file(name), dtype=np.float32).reshape(-1, STYLE_DIM)
                      for name in SPEAKERS}
        self.graphs = KokoroGraphs(graphs_dir(directory, variant), threads or DEFAULT_THREADS)

    # --- tokens ----------------------------------------------------------------------------------------------
    def tokens(self, sentence: Sentence) -> Tokens:
        kokoro = sentence_tokens(sentence)
        controls = None if sentence.controls is None else [sentence.controls[i] for i in kokoro.source]
        owners = phone_syllables(sentence.phones)
        return self._tokens(sentence.text, kokoro.symbols, controls, kokoro.breaks, [owners[i] for i in kokoro.source])

    def parse_symbols(self, symbols: str | Sequence[str]) -> Tokens:
        """Kokoro symbols as one string ("ni↓xau↓.") or a list of them; spaces are symbols too."""
        listed = list(symbols) if isinstance(symbols, str) else [s for symbol in symbols for s in symbol]
        return self._tokens("".join(listed), listed, None, [])

    def _tokens(self, text: str, symbols: list[str], controls: list[Controls] | None,
                breaks: list[tuple[int, int]], syllables: list[int] | None = None) -> Tokens:
        """Ids with the 0 that opens and closes every input; controls, breaks and syllables shifted to match."""
        padded = [0, *ids(symbols, self.vocab), 0]
        per_id = None if not controls else [controls[0], *controls, controls[-1]]
        owners = None if syllables is None else [-1, *syllables, -1]
        return Tokens(text, symbols, padded, per_id, [(position + 1, level) for position, level in breaks], owners)

    def split(self, tokens: Tokens) -> tuple[Tokens, Tokens] | None:
        """Halves at the strongest boundary nearest the middle (a comma before a word gap)."""
        if not tokens.breaks:
            return None
        middle = len(tokens.ids) / 2
        cut, _ = max(tokens.breaks, key=lambda b: (b[1], -abs(b[0] - middle)))
        symbols = cut - 1  # the pad before the first symbol
        controls = None if tokens.controls is None else tokens.controls[1:-1]
        owners = None if tokens.syllables is None else tokens.syllables[1:-1]
        head = tokens.symbols[:symbols]
        while head and head[-1] == " ":
            head = head[:-1]
        breaks = [(p - 1, level) for p, level in tokens.breaks]
        return (self._tokens(tokens.text, head, None if controls is None else controls[: len(head)],
                             [b for b in breaks if b[0] < len(head)], None if owners is None else owners[: len(head)]),
                self._tokens("", tokens.symbols[symbols:], None if controls is None else controls[symbols:],
                             [(p - symbols, level) for p, level in breaks if p > symbols],
                             None if owners is None else owners[symbols:]))

    # --- prosody and audio -------------------------------------------------------------------------------------
    def predict(self, tokens: Tokens, speaker: Speaker) -> Prosody:
        count = len(tokens.ids) - 2
        if count > MAX_TOKENS:
            raise SequenceTooLongError(f"{count} symbols exceed Kokoro's limit of {MAX_TOKENS}")
        style = self.style(speaker, count)
        predicted = self.graphs.predict(np.asarray(tokens.ids, dtype=np.int64), style)
        return Prosody(predicted.durations.astype(np.float32), self.frame_seconds, state=(predicted, style))

    def style(self, speaker: Speaker, count: int) -> np.ndarray:
        """The (mixed) style vector for an input of `count` symbols."""
        unknown = [name for name in speaker if name not in self.packs]
        if unknown:
            raise ValueError(f"unknown Kokoro speaker(s) {unknown}; known: {', '.join(self.packs)}")
        row = min(max(count - 1, 0), next(iter(self.packs.values())).shape[0] - 1)
        return sum(weight * self.packs[name][row] for name, weight in speaker.items()).astype(np.float32)

    def acoustic(self, tokens: Tokens, prosody: Prosody, speaker: Speaker) -> Acoustics:
        predicted, style = prosody.state
        frames = prosody.frames()
        if prosody.forced is None:
            frames = np.maximum(frames, 1)  # every token is heard, as in the stock graph
        if int(frames.sum()) == 0:
            raise ValueError("every token got zero frames: nothing to synthesize")
        f0, energy = self.graphs.prosody(predicted, frames, style)
        f0 = scale_pitch(f0, _per_frame(prosody.pitch_scale, frames))
        f0 = shift_pitch(f0, _semitones_per_value(prosody, frames, f0 > VOICED_HZ))
        energy = scale_energy(energy, _per_frame(prosody.energy_scale, frames))
        # The opening pad is silence: Kokoro predicts ~0.5 s of it, which would only delay the first audio (the
        # engine puts its own pause between sentences). It is decoded (shortening it garbles the first word:
        # xiaoni's CER 0.48 -> 0.57 on 12 sentences) and cut from the audio.
        trim = max(0, int(frames[0]) - LEADING_SILENCE_FRAMES) if prosody.forced is None else 0
        return Acoustics(frames, f0, energy, self.frame_seconds, state=(predicted, style, tokens.breaks),
                         trim_frames=trim, level_db=token_levels_db(energy, frames))

    def acoustic_batch(self, items: Sequence[tuple[Tokens, Prosody, Speaker]]) -> list[Acoustics]:
        return [self.acoustic(*item) for item in items]

    def render(self, acoustics: Acoustics) -> np.ndarray:
        return self._decode(acoustics, 0, len(acoustics.durations))[acoustics.trim_frames * HOP_LENGTH:]

    def render_stream(self, acoustics: Acoustics, first_chunk: int, chunk: int) -> Iterator[np.ndarray]:
        """The waveform span by span: the first span ends at the first word boundary after `first_chunk` frames,
        the next ones after `chunk` frames each. Durations, F0 and energy stay those of the whole sentence; each
        span is decoded with about STREAM_CONTEXT_FRAMES of its neighbours on both sides (the decoder's
        convolutions and instance normalization then see what they see in the sentence) and joined to the next
        with a CROSSFADE_SAMPLES crossfade. Not sample-exact, and the same length: BENCHMARKS.md, "Kokoro
        streaming", measures how close it is."""
        held = np.zeros(0, np.float32)
        frames = acoustics.durations
        heard = frames.copy()
        heard[0] -= acoustics.trim_frames
        for start, end in stream_spans(heard, acoustics.state[2], first_chunk, chunk):
            left, right = _context(frames, start, end)
            audio = self._decode(acoustics, left, right)
            offset = int(frames[left:start].sum()) * HOP_LENGTH
            own = audio[offset: offset + int(frames[start:end].sum()) * HOP_LENGTH]
            if start == 0:
                own = own[acoustics.trim_frames * HOP_LENGTH:]
            tail = audio[offset + len(own): offset + len(own) + CROSSFADE_SAMPLES]
            fade = min(len(held), len(own))
            ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
            own = own.copy()
            own[:fade] = held[:fade] * (1.0 - ramp) + own[:fade] * ramp
            held = tail
            yield own

    def _decode(self, acoustics: Acoustics, start: int, end: int) -> np.ndarray:
        """Audio of tokens start..end (ids, pads included) of the sentence."""
        predicted, style, _ = acoustics.state
        frames = acoustics.durations
        first, last = 2 * int(frames[:start].sum()), 2 * int(frames[:end].sum())
        span = predicted if (start, end) == (0, len(frames)) else replace(
            predicted, durations=predicted.durations[start:end],
            predictor_features=predicted.predictor_features[:, start:end],
            text_features=predicted.text_features[:, :, start:end])
        audio = self.graphs.decode(span, frames[start:end], acoustics.pitch[first:last], acoustics.energy[first:last],
                                   style)
        return np.asarray(audio, dtype=np.float32).reshape(-1)


def stream_spans(frames: np.ndarray, breaks: Sequence[tuple[int, int]], first_chunk: int,
                 chunk: int) -> list[tuple[int, int]]:
    """(start, end) token spans covering `frames`, each ending at a break (a token index where a word starts)
    once it holds at least `first_chunk` (the first) or `chunk` (the others) frames; the last takes the rest."""
    spans, start, goal = [], 0, first_chunk
    for position, _ in breaks:
        if int(frames[start:position].sum()) >= goal and position < len(frames):
            spans.append((start, position))
            start, goal = position, chunk
    return [*spans, (start, len(frames))]


def _context(frames: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """Tokens around start..end covering at least STREAM_CONTEXT_FRAMES on each side (or up to the ends)."""
    left, right = start, end
    while left > 0 and int(frames[left:start].sum()) < STREAM_CONTEXT_FRAMES:
        left -= 1
    while right < len(frames) and int(frames[end:right].sum()) < STREAM_CONTEXT_FRAMES:
        right += 1
    return left, right


def _per_frame(scale: np.ndarray | None, frames: np.ndarray) -> np.ndarray | None:
    """Per-token scales as the F0/energy curves' resolution: two values per frame."""
    return None if scale is None else np.repeat(scale.astype(np.float32), 2 * frames)


def scale_pitch(f0: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    """Voiced F0 excursions around their median, in log Hz, times `scale` (per value); unvoiced values kept."""
    if scale is None or np.all(scale == 1.0):
        return f0
    voiced = f0 > VOICED_HZ
    if not voiced.any():
        return f0
    log_f0 = np.log(np.where(voiced, f0, VOICED_HZ))
    level = np.median(log_f0[voiced])
    edited = np.exp(level + (log_f0 - level) * scale)
    return np.where(voiced, edited, f0).astype(np.float32)


def shift_pitch(f0: np.ndarray, semitones: np.ndarray | None) -> np.ndarray:
    """Voiced F0 moved by `semitones` (per value); unvoiced values kept."""
    if semitones is None or not semitones.any():
        return f0
    voiced = f0 > VOICED_HZ
    return np.where(voiced, f0 * np.exp2(semitones / 12.0), f0).astype(np.float32)


def _semitones_per_value(prosody: Prosody, frames: np.ndarray, voiced: np.ndarray) -> np.ndarray | None:
    """The prosody's pitch shift at the F0 curve's resolution (two values per frame), each token's slope a ramp
    from 0 at its start to the full slope at its end.

    A run of sloped tokens (the sentence-final movement, spread over the last syllable and what follows) is laid
    over the run's voiced values alone, first to last: Kokoro gives its final tone mark and punctuation many
    silent frames, where a ramp in time would be lost.
    """
    if prosody.pitch_shift is None and prosody.pitch_slope is None:
        return None
    count = len(frames)
    shift = np.zeros(count, np.float32) if prosody.pitch_shift is None else prosody.pitch_shift
    values = np.repeat(shift.astype(np.float32), 2 * frames)
    if prosody.pitch_slope is None or not prosody.pitch_slope.any():
        return values
    bounds = np.concatenate([[0], np.cumsum(2 * frames)])
    for token in np.flatnonzero(prosody.pitch_slope):
        n = int(bounds[token + 1] - bounds[token])
        values[bounds[token]: bounds[token + 1]] += np.linspace(0.0, prosody.pitch_slope[token], n, dtype=np.float32)
    for first, stop in true_runs(prosody.pitch_slope != 0):
        curve = values[bounds[first]: bounds[stop]].copy()
        heard = np.flatnonzero(voiced[bounds[first]: bounds[stop]])
        if heard.size >= 2 and curve.size >= 2:
            values[bounds[first] + heard] = np.interp(np.linspace(0.0, 1.0, heard.size),
                                                      np.linspace(0.0, 1.0, curve.size), curve)
    return values


def token_levels_db(energy: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(tokens,) each token's expected loudness: its mean energy value times LEVEL_DB_PER_ENERGY (NaN for a token
    without frames)."""
    counts = 2 * np.asarray(frames, np.int64)
    running = np.concatenate([[0.0], np.cumsum(energy, dtype=np.float64)])
    bounds = np.minimum(np.concatenate([[0], np.cumsum(counts)]), len(energy))
    sums = running[bounds[1:]] - running[bounds[:-1]]
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return (LEVEL_DB_PER_ENERGY * mean).astype(np.float32)


def scale_energy(energy: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    """Energy excursions around the curve's mean times `scale` (per value)."""
    if scale is None or np.all(scale == 1.0):
        return energy
    mean = float(energy.mean())
    return (mean + (energy - mean) * scale).astype(np.float32)
