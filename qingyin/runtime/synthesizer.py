"""Text or symbols -> audio, sentence by sentence. Every entry point (CLI, Python API) goes through here."""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qingyin.models.errors import SequenceTooLongError
from qingyin.runtime.audio import write_wav
from qingyin.runtime.backends import load_backend
from qingyin.runtime.features import AcousticControls, AcousticFeatures
from qingyin.runtime.streaming import stream_vocoder
from qingyin.text import Frontend, FrontendResult, Sentence, SymbolTable
from qingyin.text.frontend import LexiconLike
from qingyin.text.markup import Controls
from qingyin.voices import registry
from qingyin.voices.fetch import VoiceNotAvailableError, ensure_voice, verify_voice

BOUNDARY_MARKS = ("#0", "#1", "#2", "#3")


class InvalidOptionError(ValueError):
    """A synthesis option is out of range; the message names the option and the valid range."""


class NothingToSayError(ValueError):
    """The text has nothing the voice can read (empty, only punctuation, emoji, ...)."""


class SynthesisCancelled(Exception):
    """The caller's `cancel` callback asked synthesis to stop."""


@dataclass(frozen=True)
class SynthesisOptions:
    """Per-call controls, with one name everywhere (CLI flags, Python kwargs, JSON fields).

    The TFLite model's own inputs are ratios that multiply its predictions; they map onto ours as:
    `speed_ratios` (multiplies durations, > 1 is SLOWER) = 1 / speed;
    `f0_ratios` = pitch and `energy_ratios` = energy. The model predicts pitch and energy as
    per-speaker z-scores, so pitch and energy scale the excursions around the voice's mean:
    pitch > 1 gives livelier intonation with higher peaks, < 1 a flatter one; they are not a
    transposition of the whole voice.
    """

    speed: float = 1.0  # speaking rate: 2.0 is twice as fast
    pitch: float = 1.0  # pitch excursion scale
    energy: float = 1.0  # energy excursion scale
    speaker: str | None = None  # one of the voice's speakers; None = its first
    sentence_pause: float = 0.2  # seconds of silence inserted between sentences

    LIMITS = {"speed": (0.25, 4.0), "pitch": (0.0, 3.0), "energy": (0.0, 3.0), "sentence_pause": (0.0, 5.0)}

    def validated(self) -> SynthesisOptions:
        for name, (low, high) in self.LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise InvalidOptionError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(float(value)) or not low <= value <= high:
                raise InvalidOptionError(f"{name} must be between {low} and {high}, got {value}")
        return self


@dataclass
class SentenceAudio:
    """One synthesized sentence: what was said, the features, the audio, and how long it took."""

    text: str
    phones: list[str]  # symbols fed to the model, eos excluded
    features: AcousticFeatures
    audio: np.ndarray
    acoustic_seconds: float
    vocoder_seconds: float
    break_ms: int | None = None  # explicit pause after this sentence (SSML <break>); None = sentence_pause


@dataclass(frozen=True)
class StreamChunk:
    """A piece of streamed audio; pauses belong to the sentence before them (the first one's to sentence 0)."""

    audio: np.ndarray
    sentence: int  # index of the spoken sentence (piece) this audio belongs to
    starts: str | None = None  # that sentence's text, on its first chunk only


@dataclass
class SynthesisResult:
    audio: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    sentences: list[SentenceAudio] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def acoustic_seconds(self) -> float:
        return sum(s.acoustic_seconds for s in self.sentences)

    @property
    def vocoder_seconds(self) -> float:
        return sum(s.vocoder_seconds for s in self.sentences)

    @property
    def real_time_factor(self) -> float:
        """Synthesis seconds per second of audio (lower is faster)."""
        seconds = self.duration_seconds
        return (self.acoustic_seconds + self.vocoder_seconds) / seconds if seconds else 0.0

    @property
    def phones(self) -> list[list[str]]:
        return [s.phones for s in self.sentences]

    def save(self, path: str | Path) -> None:
        write_wav(path, self.audio, self.sample_rate)

    def features(self) -> dict[str, np.ndarray]:
        return stack_features(self.sentences)


def stack_features(sentences: Sequence[SentenceAudio]) -> dict[str, np.ndarray]:
    """mel (frames x mels), durations (incl. each sentence's eos), pitch, energy; sentences concatenated."""
    feats = [s.features for s in sentences]
    num_mels = feats[0].mel.shape[1] if feats else 80
    return {
        "mel": np.concatenate([f.mel for f in feats] or [np.zeros((0, num_mels))]).astype(np.float32),
        "durations": np.concatenate([f.durations for f in feats] or [np.zeros(0)]).astype(np.int64),
        "pitch": np.concatenate([f.pitch for f in feats] or [np.zeros(0)]).astype(np.float32),
        "energy": np.concatenate([f.energy for f in feats] or [np.zeros(0)]).astype(np.float32),
    }


@dataclass
class _Acoustic:
    """One piece's acoustic features, before the vocoder."""

    text: str
    phones: list[str]
    features: AcousticFeatures
    seconds: float


_Piece = tuple[_Acoustic | None, int | None]  # features (None: a pure pause), explicit break after it (ms)


class Synthesizer:
    """A loaded voice. `synthesize(text)` for whole results, `iter_sentences(text)` to stream them."""

    def __init__(
        self,
        voice: str = registry.DEFAULT_VOICE,
        threads: int | None = None,
        fetch: bool = True,
        lexicon: LexiconLike = None,
        prosody: str = "marks",
        backend: str = "torch",
        variant: str | None = None,
    ):
        """`lexicon` (a Lexicon, a word → pinyin mapping or a TSV path) overrides the built-in one for every
        request; `prosody` is the frontend's boundary mode ("marks": #1/#2/#3 from the text, "plain": #0 and #3);
        `backend` and `variant` pick the inference runtime (see qingyin.runtime.backends)."""
        self.text_frontend = Frontend(lexicon=lexicon, prosody_mode=prosody)
        self.spec = registry.get_voice(voice)
        if fetch:
            directory = ensure_voice(voice)
        elif registry.is_installed(voice):
            directory = registry.voice_dir(voice)
        else:
            raise VoiceNotAvailableError(f"voice {voice!r} is not installed; run `qingyin models fetch {voice}`")
        verify_voice(voice)
        self.symbols = SymbolTable.from_json(directory / registry.SYMBOLS)
        self.backend = load_backend(backend, directory, threads=threads, variant=variant)
        self.sample_rate = self.spec.sample_rate

    # --- public API ------------------------------------------------------------------------------
    def frontend(self, text: str, lexicon: LexiconLike = None) -> FrontendResult:
        """Text -> sentences of symbols; raises NothingToSayError when nothing is readable.

        `lexicon` applies to this request only and wins over the synthesizer's and the built-in one.
        """
        _check_text(text)
        result = self.text_frontend(text, lexicon)
        if not any(s.phones for s in result.sentences):
            raise _nothing_to_say(result.warnings)
        return result

    def synthesize(self, text: str, lexicon: LexiconLike = None, *, cancel: Callable[[], bool] | None = None,
                   **options: object) -> SynthesisResult:
        """The whole text as one result. `cancel`, if given, is asked between sentences; when it returns True
        the work stops with SynthesisCancelled (servers use it for timeouts and clients that went away)."""
        opts = self._options(options)
        frontend = self.frontend(text, lexicon)
        sentences = []
        for sentence in self.iter_sentences(frontend, **options):
            if cancel is not None and cancel():
                raise SynthesisCancelled("synthesis cancelled")
            sentences.append(sentence)
        return self._result(sentences, opts, frontend.warnings)

    def iter_sentences(
        self, text: str | FrontendResult, lexicon: LexiconLike = None, **options: object
    ) -> Iterator[SentenceAudio]:
        """Sentences one by one, each as soon as it is synthesized; `gap(previous)` is the pause to put between.

        Options are checked here, before the first sentence is asked for. Text given as a string is read
        lazily, sentence by sentence, so any length streams through in bounded memory; a text with nothing to
        say raises NothingToSayError when the stream ends without a sentence.
        """
        opts = self._options(options)
        if isinstance(text, FrontendResult):
            return (piece for sentence in text.sentences for piece in self._speak(sentence, opts))
        _check_text(text)
        planned = self._planned(self.text_frontend.iter_sentences(text, lexicon), opts)
        return (self._heard(piece, break_ms) for piece, break_ms in planned)

    def check_options(self, **options: object) -> SynthesisOptions:
        """The options as synthesis would use them; InvalidOptionError names a bad one (for servers to check
        a request before queueing it)."""
        return self._options(options)

    def gap(self, previous: SentenceAudio, **options: object) -> np.ndarray:
        """The silence after `previous`: its explicit break, else the sentence pause."""
        return self._silence(previous.break_ms, self._options(options))

    def synthesize_phones(
        self, phones: str | Sequence[str], durations: Sequence[int] | None = None, **options: object
    ) -> SynthesisResult:
        """Synthesize one symbol sequence as given (eos is appended, as the original does).

        durations: frames for every symbol, eos included — forces the timing exactly.
        """
        opts = self._options(options)
        if isinstance(phones, str):
            symbols = phones.split()
        elif isinstance(phones, Sequence) and all(isinstance(p, str) for p in phones):
            symbols = list(phones)
        else:
            raise InvalidOptionError(f"phones must be a string or a list of strings, got {type(phones).__name__}")
        if not symbols:
            raise InvalidOptionError("no phones given; example: 'sil n i3 #0 h ao3 sil'")
        ids = self.symbols.ids(symbols)  # raises UnknownSymbolError naming the bad symbol
        forced = None if durations is None else self._forced_durations(durations, len(ids) + 1)
        sentence = self._sentence(" ".join(symbols), symbols, opts, forced)
        return self._result([sentence], opts, [])

    def synthesize_batch(
        self, texts: Sequence[str], batch_size: int = 8, lexicon: LexiconLike = None, **options: object
    ) -> list[SynthesisResult]:
        """Several texts at once, for batch jobs and load: their sentences go through the acoustic model in
        padded batches of up to `batch_size` (sorted by length, so little is padded; masks keep every item as
        it would be alone), then each is vocoded. Each result is what `synthesize(text)` gives.
        """
        opts = self._options(options)
        _check_count("batch_size", batch_size, "")
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidOptionError("texts must be a list of strings; for one text use synthesize()")
        frontends = []
        for index, text in enumerate(texts):
            try:
                frontends.append(self.frontend(text, lexicon))
            except ValueError as error:
                raise type(error)(f"text {index}: {error}") from None
        spoken = [s for frontend in frontends for s in frontend.sentences if s.phones]
        batched = self._acoustic_batches(spoken, opts, int(batch_size))
        results = []
        for frontend in frontends:
            pieces: list[SentenceAudio] = []
            for sentence in frontend.sentences:
                if id(sentence) in batched:
                    pieces.append(self._heard(batched[id(sentence)], sentence.break_ms))
                else:  # pure pauses, and sentences too long for one pass (split like synthesize() does)
                    pieces.extend(self._speak(sentence, opts))
            results.append(self._result(pieces, opts, frontend.warnings))
        return results

    def _acoustic_batches(self, sentences: list[Sentence], opts: SynthesisOptions, size: int) -> dict[int, _Acoustic]:
        """Acoustic features of `sentences` by id(sentence), computed in padded batches of similar lengths;
        a batch that is too long for the model is left out (its sentences are then split and run alone)."""
        ordered = sorted(sentences, key=lambda s: len(s.phones))
        done: dict[int, _Acoustic] = {}
        for start in range(0, len(ordered), size):
            group = ordered[start : start + size]
            inputs = [(self.symbols.ids(s.phones) + [self.symbols.eos_id], self._controls(opts, None, s.controls))
                      for s in group]
            began = time.perf_counter()
            try:
                features = self.backend.acoustic_batch(inputs)
            except SequenceTooLongError:
                continue
            share = (time.perf_counter() - began) / len(group)
            for sentence, feature in zip(group, features, strict=True):
                done[id(sentence)] = _Acoustic(sentence.text, sentence.phones, feature, share)
        return done

    def synthesize_stream(
        self, text: str, lexicon: LexiconLike = None, *, first_chunk: int = 10, chunk: int = 100, **options: object
    ) -> Iterator[np.ndarray]:
        """Audio as float32 chunks as soon as they exist, pauses included.

        Sentence by sentence, the acoustic model of the next sentence runs while this one is vocoded, and
        within a sentence the vocoder runs on mel chunks (`first_chunk` frames first, so the first audio comes
        quickly, then `chunk` frames; 12.5 ms each) with enough context on both sides that the stream is the
        same audio as `synthesize(text).audio` — exactly (≤ 1e-4) for a vocoder without sub-band
        quantization; for the Baker voice, whose vocoder rounds its sub-bands to 1/128 like the original,
        a sample that sits on a rounding edge can round the other way (see qingyin.runtime.streaming).
        """
        return (piece.audio for piece in self.stream_chunks(text, lexicon, first_chunk=first_chunk, chunk=chunk,
                                                            **options))

    def stream_chunks(
        self, text: str, lexicon: LexiconLike = None, *, first_chunk: int = 10, chunk: int = 100, **options: object
    ) -> Iterator[StreamChunk]:
        """`synthesize_stream`, with each chunk saying which sentence it belongs to (for servers that report
        sentence boundaries). Options are checked here, before the first chunk is asked for."""
        opts = self._options(options)
        _check_count("first_chunk", first_chunk, " of mel frames")
        _check_count("chunk", chunk, " of mel frames")
        _check_text(text)
        planned = self._planned(self.text_frontend.iter_sentences(text, lexicon), opts)
        return self._chunks(planned, opts, int(first_chunk), int(chunk))

    # --- internals -------------------------------------------------------------------------------
    def _planned(self, sentences: Iterator[Sentence], opts: SynthesisOptions) -> Iterator[_Piece]:
        """The pieces of every sentence in turn; NothingToSayError at the end if none of them spoke."""
        spoken = False
        warnings: list[str] = []
        for sentence in sentences:
            warnings.extend(sentence.warnings)
            spoken = spoken or bool(sentence.phones)
            yield from self._plan(sentence, opts)
        if not spoken:
            raise _nothing_to_say(warnings)

    def _plan(self, sentence: Sentence, opts: SynthesisOptions) -> list[_Piece]:
        """(acoustic features, or None for a pure pause; explicit break after it) for each piece of a sentence:
        one piece, or several when it was halved for the model; the sentence's break follows the last."""
        if not sentence.phones:
            return [] if sentence.break_ms is None else [(None, sentence.break_ms)]
        pieces = list(self._fit(sentence.text, sentence.phones, opts, sentence.controls))
        return [(piece, sentence.break_ms if i == len(pieces) - 1 else None) for i, piece in enumerate(pieces)]

    def _heard(self, piece: _Acoustic | None, break_ms: int | None) -> SentenceAudio:
        """A piece vocoded (an empty one for a pure pause), carrying its break."""
        if piece is None:
            return SentenceAudio("", [], _no_features(), np.zeros(0, np.float32), 0.0, 0.0, break_ms)
        audio = self._vocoded(piece)
        audio.break_ms = break_ms
        return audio

    def _chunks(
        self, planned: Iterator[_Piece], opts: SynthesisOptions, first: int, chunk: int
    ) -> Iterator[StreamChunk]:
        """Vocode planned pieces in chunks while a worker thread computes the next piece's features.

        The next piece is asked for once the current one's first chunk is out: started earlier, it would take
        cores from that chunk (2 cores, int8-static, two 20-character sentences: first audio 98 -> 51-66 ms, as for
        the first sentence alone).
        """
        context = self.backend.vocoder_context_frames
        index = -1
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future | None = pool.submit(next, planned, None)
            gap: np.ndarray | None = None
            while (item := pending.result()) is not None:
                pending = None
                piece, break_ms = item
                if gap is not None:
                    yield StreamChunk(gap, max(index, 0))
                if piece is not None:
                    index += 1
                    chunks = stream_vocoder(self.backend.vocode, piece.features.mel, self.backend.hop_length,
                                            context, first, chunk, min_frames=self.backend.min_vocoder_frames)
                    for n, audio in enumerate(chunks):
                        yield StreamChunk(audio, index, piece.text if n == 0 else None)
                        pending = pending or pool.submit(next, planned, None)
                pending = pending or pool.submit(next, planned, None)
                gap = self._silence(break_ms, opts)
        if gap is not None and break_ms is not None:  # a trailing <break> is kept, as in synthesize()
            yield StreamChunk(gap, max(index, 0))

    def _silence(self, break_ms: int | None, opts: SynthesisOptions) -> np.ndarray:
        """An explicit break, or the sentence pause when there is none."""
        if break_ms is None:
            return np.zeros(int(round(opts.sentence_pause * self.sample_rate)), np.float32)
        return np.zeros(int(round(break_ms * self.sample_rate / 1000)), np.float32)

    def _speak(self, sentence: Sentence, opts: SynthesisOptions) -> list[SentenceAudio]:
        """Audio for one frontend sentence; a pure pause (no phones) gives an empty piece carrying its break."""
        return [self._heard(piece, break_ms) for piece, break_ms in self._plan(sentence, opts)]

    def _forced_durations(self, durations: Sequence[int], count: int) -> np.ndarray:
        values = list(durations) if isinstance(durations, Iterable) and not isinstance(durations, str) else None
        if values is None or not all(isinstance(v, numbers.Integral) or
                                     (isinstance(v, numbers.Real) and float(v).is_integer()) for v in values):
            raise InvalidOptionError("durations must be whole frame counts, one per symbol (eos included)")
        forced = np.asarray(values, dtype=np.int64)
        if forced.shape != (count,):
            raise InvalidOptionError(f"durations: got {forced.size} values for {count} symbols (eos included)")
        limit = self.backend.max_positions
        if (forced < 0).any() or not 1 <= forced.sum() <= limit:
            raise InvalidOptionError(f"durations must be >= 0 frames each and sum to 1..{limit} frames")
        return forced

    def _options(self, options: dict[str, object]) -> SynthesisOptions:
        unknown = sorted(set(options) - set(SynthesisOptions.__dataclass_fields__))
        if unknown:
            raise InvalidOptionError(f"unknown option(s) {unknown}; known: speed, pitch, energy, speaker")
        opts = replace(SynthesisOptions(), **options).validated()  # type: ignore[arg-type]
        if opts.speaker is not None and opts.speaker not in self.spec.speakers:
            raise InvalidOptionError(
                f"unknown speaker {opts.speaker!r} for voice {self.spec.name!r}; available: {self.spec.speakers}")
        return opts

    def _controls(
        self, opts: SynthesisOptions, durations: np.ndarray | None = None, per_phone: list[Controls] | None = None
    ) -> AcousticControls:
        """Model controls: the request's scales, times the per-phone ones from SSML <prosody> if any."""
        speaker = self.spec.speakers.index(opts.speaker) if opts.speaker else 0
        if per_phone is None:
            return AcousticControls(1.0 / opts.speed, opts.pitch, opts.energy, speaker, durations)
        per_symbol = [*per_phone, per_phone[-1]]  # eos follows the last phone's settings
        speed = np.array([c.speed for c in per_symbol], np.float32) * opts.speed
        pitch = np.array([c.pitch for c in per_symbol], np.float32) * opts.pitch
        energy = np.array([c.energy for c in per_symbol], np.float32) * opts.energy
        return AcousticControls(1.0 / speed, pitch, energy, speaker, durations)

    def _fit(
        self, text: str, phones: list[str], opts: SynthesisOptions, controls: list[Controls] | None = None
    ) -> Iterator[_Acoustic]:
        """Acoustic features, halving at a prosodic boundary when the sentence is too long for the model."""
        try:
            yield self._acoustic(text, phones, opts, per_phone=controls)
        except SequenceTooLongError:
            marks = [i for i, p in enumerate(phones) if p in BOUNDARY_MARKS]
            if not marks:
                raise
            cut = min(marks, key=lambda i: abs(i - len(phones) / 2))
            head = None if controls is None else controls[:cut] + [controls[cut]]
            tail = None if controls is None else [controls[cut]] + controls[cut + 1:]
            yield from self._fit(text, phones[:cut] + ["sil"], opts, head)
            yield from self._fit("", ["sil"] + phones[cut + 1:], opts, tail)

    def _acoustic(self, text: str, phones: list[str], opts: SynthesisOptions,
                  durations: np.ndarray | None = None, per_phone: list[Controls] | None = None) -> _Acoustic:
        ids = self.symbols.ids(phones) + [self.symbols.eos_id]
        start = time.perf_counter()
        features = self.backend.acoustic(ids, self._controls(opts, durations, per_phone))
        return _Acoustic(text, phones, features, time.perf_counter() - start)

    def _vocoded(self, piece: _Acoustic) -> SentenceAudio:
        start = time.perf_counter()
        audio = self.backend.vocode(piece.features.mel)
        return SentenceAudio(piece.text, piece.phones, piece.features, audio, piece.seconds,
                             time.perf_counter() - start)

    def _sentence(self, text: str, phones: list[str], opts: SynthesisOptions,
                  durations: np.ndarray | None = None) -> SentenceAudio:
        return self._vocoded(self._acoustic(text, phones, opts, durations))

    def pause(self, **options: object) -> np.ndarray:
        """The silence inserted between sentences."""
        return self._silence(None, self._options(options))

    def _result(self, sentences: list[SentenceAudio], opts: SynthesisOptions, warnings: list[str]) -> SynthesisResult:
        pieces: list[np.ndarray] = []
        for i, sentence in enumerate(sentences):
            if i:
                pieces.append(self.gap(sentences[i - 1], sentence_pause=opts.sentence_pause))
            pieces.append(sentence.audio)
        if sentences and sentences[-1].break_ms is not None:  # a trailing <break> is kept
            pieces.append(self.gap(sentences[-1]))
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return SynthesisResult(audio.astype(np.float32), self.sample_rate, sentences, list(warnings))


def _check_text(text: object) -> None:
    if not isinstance(text, str):
        raise InvalidOptionError(f"text must be a string, got {type(text).__name__}")


def _check_count(name: str, value: object, unit: str) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise InvalidOptionError(f"{name} must be a whole number{unit} >= 1, got {value!r}")


def _nothing_to_say(warnings: list[str]) -> NothingToSayError:
    """The error for a text with nothing speakable, naming the first things that were dropped."""
    detail = f" ({'; '.join(warnings[:3])})" if warnings else ""
    return NothingToSayError(f"nothing to say: the text has no Chinese the voice can read{detail}")


def _no_features() -> AcousticFeatures:
    """Features of a pure pause: nothing was synthesized."""
    return AcousticFeatures(np.zeros((0, 80), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32),
                            np.zeros(0, np.float32))
