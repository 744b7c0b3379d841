"""The engine: text or symbols -> audio, sentence by sentence, on any voice. Every entry point goes through here.

For each sentence the engine asks the sentence's voice (qingyin.families.base.Voice) for its tokens and their
predicted prosody, edits the prosody (speed, pitch, energy, SSML <prosody> spans: `edit_prosody`), then asks for
the audio, whole or streamed. It never sees a family's symbols, mels or vocoders.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qingyin.families.base import Acoustics, Prosody, SequenceTooLongError, Tokens
from qingyin.options import NEUTRAL, REFERENCE_STRENGTH, SETTINGS, STYLE_SETTINGS, InvalidOptionError
from qingyin.runtime.audio import write_wav
from qingyin.runtime.limits import AudioBudget, WorkLimits, check_text
from qingyin.runtime.pool import ModelPool, Selection
from qingyin.style import Style, style_for
from qingyin.style.gain import apply_gain, gain_envelope, loudness_edits_db
from qingyin.style.presets import EmotionLike, check_intensity, emotion_weights
from qingyin.text import Frontend, FrontendResult, Sentence
from qingyin.text.frontend import LexiconLike
from qingyin.voices import registry


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

    speed: float = SETTINGS["speed"].default  # speaking rate: 2.0 is twice as fast
    pitch: float = SETTINGS["pitch"].default  # pitch excursion scale
    energy: float = SETTINGS["energy"].default  # energy excursion scale
    sentence_pause: float = SETTINGS["sentence_pause"].default  # seconds of silence inserted between sentences
    # qingyin.style: an emotion ("happy") or a mix ({"happy": 0.6, "surprise": 0.3}) at an intensity (0-2), and
    # the prosody of a reference recording (a path, its bytes, or its qingyin.style.reference.ReferenceProsody)
    emotion: EmotionLike = NEUTRAL
    intensity: float = STYLE_SETTINGS["intensity"].default
    reference: object = None
    reference_strength: float = REFERENCE_STRENGTH.default

    LIMITS = {name: setting.range for name, setting in (SETTINGS | {"reference_strength": REFERENCE_STRENGTH}).items()}

    def validated(self) -> SynthesisOptions:
        for name, (low, high) in self.LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise InvalidOptionError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(float(value)) or not low <= value <= high:
                raise InvalidOptionError(f"{name} must be between {low} and {high}, got {value}")
        emotion_weights(self.emotion)
        check_intensity(self.intensity)
        return self


@dataclass
class SentenceAudio:
    """One synthesized sentence: what was said, the features, the audio, and how long it took."""

    text: str
    phones: list[str]  # the voice's symbols fed to the model (Baker: eos excluded)
    features: Acoustics
    audio: np.ndarray
    acoustic_seconds: float
    vocoder_seconds: float
    break_ms: int | None = None  # explicit pause after this sentence (SSML <break>); None = sentence_pause
    voice: str = ""  # the voice that spoke it


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
    """durations (per token, incl. Baker's eos), pitch, energy, and the mel where the voice has one (frames x
    mels); sentences concatenated (pauses have none)."""
    feats = [s.features for s in sentences if len(s.features.durations)]
    stacked = {
        "durations": np.concatenate([f.durations for f in feats] or [np.zeros(0)]).astype(np.int64),
        "pitch": np.concatenate([f.pitch for f in feats] or [np.zeros(0)]).astype(np.float32),
        "energy": np.concatenate([f.energy for f in feats] or [np.zeros(0)]).astype(np.float32),
    }
    if feats and all(f.mel is not None for f in feats):
        stacked["mel"] = np.concatenate([f.mel for f in feats]).astype(np.float32)
    return stacked


@dataclass
class _Acoustic:
    """One piece's acoustics, before the waveform, and the voice that renders it."""

    text: str
    phones: list[str]
    features: Acoustics
    seconds: float
    selection: Selection


_Piece = tuple[_Acoustic | None, int | None]  # features (None: a pure pause), explicit break after it (ms)


class Synthesizer:
    """The engine with a default voice. `synthesize(text)` for whole results, `iter_sentences(text)` to stream them.

    `voice` is a catalogued voice ("baker", "yunxi", ...; `qingyin voices`) or, for a family that can mix
    speakers, a blend "xiaobei:0.6,yunxi:0.4". SSML `<voice name>` switches voices inside one text. Engines
    that share a `models` pool share the loaded models.
    """

    def __init__(
        self,
        voice: str = registry.DEFAULT_VOICE,
        threads: int | None = None,
        fetch: bool = True,
        lexicon: LexiconLike = None,
        prosody: str = "marks",
        backend: str | None = None,
        variant: str | None = None,
        models: ModelPool | None = None,
    ):
        """`lexicon` (a Lexicon, a word → pinyin mapping or a TSV path) overrides the built-in one for every
        request; `prosody` is the frontend's boundary mode ("marks": #1/#2/#3 from the text, "plain": #0 and #3);
        `backend` and `variant` pick the inference runtime of each model family (None: the family's default;
        see `qingyin voices`). `fetch`: install a missing voice (else VoiceNotAvailableError naming the command).
        `models`: a pool to share with other engines; its own backend, variant, threads and fetch settings apply.
        """
        self.text_frontend = Frontend(lexicon=lexicon, prosody_mode=prosody)
        self.models = models or ModelPool(backend=backend, variant=variant, threads=threads, fetch=fetch)
        self.selection = self.models.select(voice)
        self.spec = self.selection.spec
        self.voice = self.selection.voice
        self.sample_rate = self.voice.sample_rate
        self._references: dict[object, object] = {}

    # --- public API ------------------------------------------------------------------------------
    def frontend(self, text: str, lexicon: LexiconLike = None) -> FrontendResult:
        """Text -> sentences; raises NothingToSayError when nothing is readable.

        `lexicon` applies to this request only and wins over the synthesizer's and the built-in one.
        """
        return read_text(self.text_frontend, text, lexicon)

    def synthesize(self, text: str, lexicon: LexiconLike = None, *, cancel: Callable[[], bool] | None = None,
                   limits: WorkLimits | None = None, **options: object) -> SynthesisResult:
        """The whole text as one result. `cancel`, if given, is asked between sentences; when it returns True
        the work stops with SynthesisCancelled (servers use it for timeouts and clients that went away).
        `limits` (qingyin.runtime.limits; servers and batch jobs pass theirs) bound the work: WorkLimitError before
        synthesis when the text is obviously too much, or as soon as the audio would pass the limit."""
        opts = self._options(options)
        _budget(text, opts, limits)  # the up-front check; iter_sentences counts the audio
        frontend = self.frontend(text, lexicon)
        sentences = []
        for sentence in self.iter_sentences(frontend, limits=limits, **options):
            if cancel is not None and cancel():
                raise SynthesisCancelled("synthesis cancelled")
            sentences.append(sentence)
        return self._result(sentences, opts, [*frontend.warnings, *self._style(self.selection, opts).warnings])

    def style_warnings(self, **options: object) -> list[str]:
        """What the style layer says about these options for the engine's voice: a reference recording that is
        clipped, noisy or carried over only in part (the reference is measured once and kept)."""
        opts = self._options(options)
        return list(self._style(self.selection, opts).warnings)

    def iter_sentences(
        self, text: str | FrontendResult, lexicon: LexiconLike = None, *, limits: WorkLimits | None = None,
        **options: object
    ) -> Iterator[SentenceAudio]:
        """Sentences one by one, each as soon as it is synthesized; `gap(previous)` is the pause to put between.

        Options are checked here, before the first sentence is asked for. Text given as a string is read
        lazily, sentence by sentence, so any length streams through in bounded memory; a text with nothing to
        say raises NothingToSayError when the stream ends without a sentence. `limits`: as in `synthesize` (the
        up-front check needs the text, so a FrontendResult is only counted).
        """
        opts = self._options(options)
        if isinstance(text, FrontendResult):
            budget = None if limits is None else limits.budget()
            return self._rendered(self._within((p for s in text.sentences for p in self._plan(s, opts)), opts, budget))
        budget = _budget(text, opts, limits)
        planned = self._planned(self.text_frontend.iter_sentences(text, lexicon), opts)
        return self._rendered(self._within(planned, opts, budget))

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
        """Synthesize one sequence of the voice's own symbols as given (Baker: phones; eos is appended).

        durations: frames for every token (Baker: eos included) — forces the timing exactly.
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
        tokens = self.voice.parse_symbols(symbols)  # raises UnknownSymbolError naming the bad symbol
        forced = None if durations is None else self._forced_durations(durations, len(tokens.ids))
        piece = self._acoustic(self.selection, tokens, opts, forced)
        return self._result([self._heard(piece, None)], opts, [])

    def synthesize_batch(
        self, texts: Sequence[str], batch_size: int = 8, lexicon: LexiconLike = None, **options: object
    ) -> list[SynthesisResult]:
        """Several texts at once, for batch jobs and load: their sentences' acoustics are computed in batches of
        up to `batch_size` (sorted by length; families that can pad them into one pass do, keeping every item
        as it would be alone), then each is rendered. Each result is what `synthesize(text)` gives.
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
        """Acoustics of `sentences` by id(sentence), in batches of similar lengths per voice; a batch that is too
        long for the model is left out (its sentences are then split and run alone)."""
        done: dict[int, _Acoustic] = {}
        by_voice: dict[str, list[tuple[Sentence, Selection, Tokens]]] = {}
        for sentence in sentences:
            selection = self._selection(sentence)
            by_voice.setdefault(selection.name, []).append((sentence, selection, selection.voice.tokens(sentence)))
        for items in by_voice.values():
            ordered = sorted(items, key=lambda item: len(item[2].ids))
            for start in range(0, len(ordered), size):
                group = ordered[start : start + size]
                selection = group[0][1]
                began = time.perf_counter()
                try:
                    prosodies = [self._predicted(selection, tokens, opts) for _, _, tokens in group]
                    acoustics = selection.voice.acoustic_batch(
                        [(tokens, prosody, selection.speaker) for (_, _, tokens), prosody
                         in zip(group, prosodies, strict=True)])
                except SequenceTooLongError:
                    continue
                share = (time.perf_counter() - began) / len(group)
                for features, prosody, (_, _, tokens) in zip(acoustics, prosodies, group, strict=True):
                    features.gain_db = loudness_edits_db(prosody, features, tokens)
                for (sentence, _, tokens), features in zip(group, acoustics, strict=True):
                    done[id(sentence)] = _Acoustic(sentence.text, tokens.symbols, features, share, selection)
        return done

    def synthesize_stream(
        self, text: str, lexicon: LexiconLike = None, *, first_chunk: int = 10, chunk: int = 100,
        limits: WorkLimits | None = None, **options: object
    ) -> Iterator[np.ndarray]:
        """Audio as float32 chunks as soon as they exist, pauses included.

        Sentence by sentence, the acoustics of the next sentence are computed while this one is rendered, and
        within a sentence a voice that can renders in chunks of frames (`first_chunk` frames first, so the first
        audio comes quickly, then `chunk` frames) that concatenate to the same audio as
        `synthesize(text).audio` (for the Baker voice within its sub-band rounding; see fs2_mbmelgan.streaming).
        """
        return (piece.audio for piece in self.stream_chunks(text, lexicon, first_chunk=first_chunk, chunk=chunk,
                                                            limits=limits, **options))

    def stream_chunks(
        self, text: str, lexicon: LexiconLike = None, *, first_chunk: int = 10, chunk: int = 100,
        limits: WorkLimits | None = None, **options: object
    ) -> Iterator[StreamChunk]:
        """`synthesize_stream`, with each chunk saying which sentence it belongs to (for servers that report
        sentence boundaries). Options (and `limits`' up-front check) are checked here, before the first chunk is
        asked for; a stream that would pass `limits` ends with WorkLimitError after the last audio within them."""
        opts = self._options(options)
        _check_count("first_chunk", first_chunk, " of frames")
        _check_count("chunk", chunk, " of frames")
        budget = _budget(text, opts, limits)
        planned = self._planned(self.text_frontend.iter_sentences(text, lexicon), opts)
        return self._chunks(self._within(planned, opts, budget), opts, int(first_chunk), int(chunk))

    def pause(self, **options: object) -> np.ndarray:
        """The silence inserted between sentences."""
        return self._silence(None, self._options(options))

    # --- internals -------------------------------------------------------------------------------
    def _selection(self, sentence: Sentence) -> Selection:
        """The voice that speaks `sentence`: its SSML <voice>, else the engine's."""
        name = getattr(sentence, "voice", None)
        if not name or name == self.selection.name:
            return self.selection
        selection = self.models.select(name)
        if selection.voice.sample_rate != self.sample_rate:
            raise InvalidOptionError(f"voice {name!r} speaks at {selection.voice.sample_rate} Hz, the document's "
                                     f"voice {self.selection.name!r} at {self.sample_rate} Hz: they cannot be mixed")
        return selection

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
        """(acoustics, or None for a pure pause; explicit break after it) for each piece of a sentence:
        one piece, or several when it was halved for the model; the sentence's break follows the last."""
        if not sentence.phones:
            return [] if sentence.break_ms is None else [(None, sentence.break_ms)]
        selection = self._selection(sentence)
        pieces = list(self._fit(selection, selection.voice.tokens(sentence), opts))
        return [(piece, sentence.break_ms if i == len(pieces) - 1 else None) for i, piece in enumerate(pieces)]

    def _within(self, planned: Iterable[_Piece], opts: SynthesisOptions,
                budget: AudioBudget | None) -> Iterator[_Piece]:
        """The planned pieces, each counted against `budget` (its audio and the pause after it) before it is
        rendered: WorkLimitError instead of the first piece that would pass the limits."""
        for piece, break_ms in planned:
            if budget is not None:
                pause = opts.sentence_pause if break_ms is None else break_ms / 1000
                budget.charge((piece.features.seconds if piece is not None else 0.0) + pause,
                              0.0 if break_ms is None else break_ms / 1000)
            yield piece, break_ms

    def _rendered(self, planned: Iterable[_Piece]) -> Iterator[SentenceAudio]:
        return (self._heard(piece, break_ms) for piece, break_ms in planned)

    def _heard(self, piece: _Acoustic | None, break_ms: int | None) -> SentenceAudio:
        """A piece rendered (an empty one for a pure pause), carrying its break."""
        if piece is None:
            return SentenceAudio("", [], _no_features(), np.zeros(0, np.float32), 0.0, 0.0, break_ms)
        start = time.perf_counter()
        audio = piece.selection.voice.render(piece.features)
        audio = apply_gain(audio, gain_envelope(piece.features, piece.selection.voice.sample_rate))
        return SentenceAudio(piece.text, piece.phones, piece.features, audio, piece.seconds,
                             time.perf_counter() - start, break_ms, piece.selection.name)

    def _chunks(
        self, planned: Iterator[_Piece], opts: SynthesisOptions, first: int, chunk: int
    ) -> Iterator[StreamChunk]:
        """Render planned pieces in chunks while a worker thread computes the next piece's acoustics.

        The next piece is asked for once the current one's first chunk is out: started earlier, it would take
        cores from that chunk (2 cores, int8-static, two 20-character sentences: first audio 98 -> 51-66 ms, as for
        the first sentence alone).
        """
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
                    chunks = piece.selection.voice.render_stream(piece.features, first, chunk)
                    envelope = gain_envelope(piece.features, piece.selection.voice.sample_rate)
                    offset = 0
                    for n, audio in enumerate(chunks):
                        yield StreamChunk(apply_gain(audio, envelope, offset), index, piece.text if n == 0 else None)
                        offset += len(audio)
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
            raise InvalidOptionError("durations must be whole frame counts, one per token (Baker: eos included)")
        forced = np.asarray(values, dtype=np.int64)
        if forced.shape != (count,):
            raise InvalidOptionError(f"durations: got {forced.size} values for {count} tokens (Baker: eos included)")
        limit = self.voice.max_frames
        if (forced < 0).any() or not 1 <= forced.sum() <= limit:
            raise InvalidOptionError(f"durations must be >= 0 frames each and sum to 1..{limit} frames")
        return forced

    def _options(self, options: dict[str, object]) -> SynthesisOptions:
        opts = checked_options(options)
        if opts.reference is not None:
            opts = replace(opts, reference=self._reference(opts.reference))
        pause = self._style(self.selection, opts).preset().pause  # the style's pauses: between sentences too
        if pause != 1.0:
            opts = replace(opts, sentence_pause=min(opts.sentence_pause * pause, SETTINGS["sentence_pause"].high))
        return opts

    def _reference(self, reference: object) -> object:
        """The reference recording's measured prosody (kept for the last few recordings: measuring takes a while)."""
        from qingyin.style.reference import ReferenceError, ReferenceProsody, analyze_reference

        if isinstance(reference, ReferenceProsody):
            return reference
        if not isinstance(reference, str | Path | bytes):
            raise InvalidOptionError("reference must be a path to a recording, its bytes, or a ReferenceProsody")
        key = reference if isinstance(reference, bytes) else _file_key(Path(reference))
        if key not in self._references:
            try:
                measured = analyze_reference(reference)
            except ReferenceError as error:
                raise InvalidOptionError(str(error)) from None
            self._references = {**dict(list(self._references.items())[-3:]), key: measured}
        return self._references[key]

    def _fit(self, selection: Selection, tokens: Tokens, opts: SynthesisOptions) -> Iterator[_Acoustic]:
        """Acoustics, halving at a prosodic boundary when the sentence is too long for the model."""
        try:
            yield self._acoustic(selection, tokens, opts)
        except SequenceTooLongError:
            halves = selection.voice.split(tokens)
            if halves is None:
                raise
            for half in halves:
                yield from self._fit(selection, half, opts)

    def _predicted(self, selection: Selection, tokens: Tokens, opts: SynthesisOptions) -> Prosody:
        prosody = selection.voice.predict(tokens, selection.speaker)
        edit_prosody(prosody, tokens, opts)
        self._style(selection, opts).apply(prosody, tokens, selection.voice.capabilities)
        return prosody

    def _style(self, selection: Selection, opts: SynthesisOptions) -> Style:
        return style_for(selection.voice.model.name, selection.speaker, opts.emotion, opts.intensity, opts.reference,
                         opts.reference_strength)

    def _acoustic(self, selection: Selection, tokens: Tokens, opts: SynthesisOptions,
                  forced: np.ndarray | None = None) -> _Acoustic:
        start = time.perf_counter()
        prosody = self._predicted(selection, tokens, opts)
        prosody.forced = forced
        features = selection.voice.acoustic(tokens, prosody, selection.speaker)
        features.gain_db = loudness_edits_db(prosody, features, tokens)
        return _Acoustic(tokens.text, tokens.symbols, features, time.perf_counter() - start, selection)

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


def read_text(frontend: Frontend, text: str, lexicon: LexiconLike = None) -> FrontendResult:
    """Text -> sentences by `frontend` (no voice needed); NothingToSayError when nothing is readable."""
    check_text(text)
    result = frontend(text, lexicon)
    if not any(s.phones for s in result.sentences):
        raise _nothing_to_say(result.warnings)
    return result


def checked_options(options: Mapping[str, object]) -> SynthesisOptions:
    """Synthesis options from keyword arguments, checked (InvalidOptionError names an unknown or bad one); what
    any voice needs, without loading one. A reference recording is kept as given (the engine measures it)."""
    unknown = sorted(set(options) - set(SynthesisOptions.__dataclass_fields__))
    if unknown:
        raise InvalidOptionError(f"unknown option(s) {unknown}; known: "
                                 f"{', '.join(SynthesisOptions.__dataclass_fields__)}")
    return replace(SynthesisOptions(), **options).validated()  # type: ignore[arg-type]


def edit_prosody(prosody: Prosody, tokens: Tokens, opts: SynthesisOptions) -> None:
    """Set the prosody's per-token scales from the request's speed, pitch and energy times the tokens' SSML
    <prosody> controls (speed divides durations). The style layer (emotion, reference prosody) edits here too."""
    count = len(tokens.ids)
    if tokens.controls is None:
        prosody.duration_scale = np.full(count, 1.0 / opts.speed, np.float32)
        prosody.pitch_scale = np.full(count, opts.pitch, np.float32)
        prosody.energy_scale = np.full(count, opts.energy, np.float32)
        return
    speed = np.array([c.speed for c in tokens.controls], np.float32) * opts.speed
    prosody.duration_scale = (1.0 / speed).astype(np.float32)
    prosody.pitch_scale = np.array([c.pitch for c in tokens.controls], np.float32) * opts.pitch
    prosody.energy_scale = np.array([c.energy for c in tokens.controls], np.float32) * opts.energy


def _file_key(path: Path) -> object:
    """A recording's file as a cache key: the same path re-recorded (another size or time) is measured again."""
    path = path.resolve()
    try:
        stat = path.stat()
    except OSError:  # missing or unreadable: analyze_reference says so, and nothing is kept
        return str(path)
    return str(path), stat.st_mtime_ns, stat.st_size


def _budget(text: object, opts: SynthesisOptions, limits: WorkLimits | None) -> AudioBudget | None:
    """The text checked, then, with `limits`, its up-front check and the counter for its synthesis."""
    check_text(text)
    if limits is None:
        return None
    limits.check(text, opts.speed)  # type: ignore[arg-type]
    return limits.budget()


def _check_count(name: str, value: object, unit: str) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise InvalidOptionError(f"{name} must be a whole number{unit} >= 1, got {value!r}")


def _nothing_to_say(warnings: list[str]) -> NothingToSayError:
    """The error for a text with nothing speakable, naming the first things that were dropped."""
    detail = f" ({'; '.join(warnings[:3])})" if warnings else ""
    return NothingToSayError(f"nothing to say: the text has no Chinese the voice can read{detail}")


def _no_features() -> Acoustics:
    """Acoustics of a pure pause: nothing was synthesized."""
    return Acoustics(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32), 0.0)
