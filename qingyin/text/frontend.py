"""Text (plain, with inline pinyin, or SSML) → what the voice says, one sentence at a time.

The stages, each in its own module: markup (`markup.parse`: spans, breaks, fixed readings) → raw pieces of
bounded length (`prosody.split_raw`) → normalization (`normalize`) → sentences → word segmentation and citation
pinyin (`g2p`, with the lexicon) → prosodic structure (`prosody.plan`) → tone sandhi, neutral tones and erhua
(`sandhi`) → phones (`symbols`). A sentence is spoken as ``sil <syllable> <mark> <syllable> ... sil``:
every syllable is [initial, final+tone], marks are #0–#3, and an erhua 儿 is ``er5`` right after its host. This
notation is language, not any model's input: each model family maps it onto its own tokens (qingyin.families).

Everything is lazy: `Frontend.iter_sentences` reads its input piece by piece, so 100,000 characters go through
in bounded memory.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from . import prosody
from .g2p import FIXED_SOURCES, Decision, decide, is_polyphonic, per_word
from .hanzi import is_han
from .lexicon import Lexicon, builtin_lexicon
from .markup import Break, Controls, Segment, Span, parse
from .normalize import normalize
from .sandhi import apply_sandhi
from .segmentation import segment
from .symbols import ERHUA_SUFFIX, syllable_to_phones

DEFAULT_MAX_CHARS = 40
_MAX_WARNINGS = 50

LexiconLike = Lexicon | Mapping[str, Sequence[str] | str] | str | Path | None


@dataclass
class Sentence:
    """One utterance for the acoustic model, with every stage that produced it."""

    text: str  # the input this sentence came from (normalized text where the input was markup)
    # The frontend's phonetic notation: initials and finals with tones, prosody marks #0-#3 and sil at the ends, e.g.
    # ["sil","n","i2","#0","h","ao3","sil"] (the notation of Baker's symbol table; each model family maps it onto
    # its own tokens: qingyin.families); [] = a pause
    phones: list[str]
    pinyin: list[tuple[str, str]]  # (character, TONE3 pinyin after sandhi) per spoken Han character
    normalized: str = ""  # the normalized text of this sentence
    words: list[str] = field(default_factory=list)  # segmentation of `normalized`, punctuation included
    controls: list[Controls] | None = None  # per phone, from SSML <prosody>; None = all neutral
    break_ms: int | None = None  # explicit pause after this sentence (SSML <break>); None = the default pause
    warnings: list[str] = field(default_factory=list)  # what was dropped on the way to this sentence
    voice: str | None = None  # the speaker from SSML <voice name>, unchecked; None = the request's voice
    # per entry of `pinyin`, how its citation reading was decided (g2p.decide)
    decisions: list[Decision] = field(default_factory=list)


@dataclass
class FrontendResult:
    """Sentences to speak, plus a note for every run of input that could not be read."""

    sentences: list[Sentence]
    warnings: list[str]

    def report(self) -> dict[str, object]:
        """Each stage for the whole text, then per sentence, as JSON-ready data (`qingyin frontend --json`).

        `pinyin` has one [character, TONE3 reading after sandhi] pair per spoken Chinese character; `phones` is
        the symbol string the model receives, sentences joined by spaces (each starts and ends with sil). A sentence
        has a `voice` only when SSML <voice> named one. `polyphones` lists, per sentence, each character with more
        than one reading (and each reading fixed by markup, the lexicon or a rule): its index in `pinyin`, the
        citation reading chosen before sandhi, and which source decided it (markup: inline pinyin, SSML or a
        letter spelled out by normalization; lexicon, rule, phrase, model, default) with the detail (rule name,
        dictionary:word, model probability).
        """
        sentences: list[dict[str, object]] = []
        for s in self.sentences:
            entry: dict[str, object] = {
                "text": s.text, "normalized": s.normalized, "words": s.words, "pinyin": [list(p) for p in s.pinyin],
                "phones": " ".join(s.phones), "break_ms": s.break_ms, "polyphones": polyphones(s),
            }  # fmt: skip
            if s.voice is not None:
                entry["voice"] = s.voice
            sentences.append(entry)
        spoken = [s for s in self.sentences if s.phones]
        return {
            "normalized": "".join(s.normalized for s in spoken),
            "words": [w for s in spoken for w in s.words],
            "pinyin": [list(p) for s in spoken for p in s.pinyin],
            "phones": " ".join(" ".join(s.phones) for s in spoken),
            "warnings": list(self.warnings),
            "sentences": sentences,
        }


def polyphones(sentence: Sentence) -> list[dict[str, object]]:
    """The reading decisions worth showing: every polyphonic character, and every reading fixed from outside."""
    return [
        {"index": i, "char": char, "reading": d.reading, "source": d.source, "detail": d.detail}
        for i, ((char, _), d) in enumerate(zip(sentence.pinyin, sentence.decisions, strict=True))
        if is_polyphonic(char) or d.source in FIXED_SOURCES
    ]


@dataclass(frozen=True)
class _Char:
    char: str
    forced: str | None
    controls: Controls


@dataclass(frozen=True)
class _Syllable:
    position: int  # index in the sentence's normalized text
    word: int
    char: str
    reading: str
    phones: list[str]
    controls: Controls
    erhua: bool  # an erhua 儿, fused with the syllable before it
    decision: Decision


class Frontend:
    """The text pipeline with its settings: a lexicon (built-in + this instance's), prosody mode, sentence cap."""

    def __init__(self, lexicon: LexiconLike = None, prosody_mode: str = "marks", max_chars: int = DEFAULT_MAX_CHARS):
        if max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {max_chars}")
        if prosody_mode not in prosody.MODES:
            raise ValueError(f"unknown prosody mode {prosody_mode!r}; choose one of {', '.join(prosody.MODES)}")
        self.lexicon = builtin_lexicon().layered(as_lexicon(lexicon))
        self.prosody_mode = prosody_mode
        self.max_chars = max_chars

    def __call__(self, text: str, lexicon: LexiconLike = None) -> FrontendResult:
        """All sentences of `text` at once (see iter_sentences)."""
        sentences, warnings = [], []
        for sentence in self.iter_sentences(text, lexicon):
            warnings.extend(sentence.warnings)
            if sentence.phones or sentence.break_ms is not None:
                sentences.append(sentence)
        if len(warnings) > _MAX_WARNINGS:
            warnings = warnings[:_MAX_WARNINGS] + [f"... and {len(warnings) - _MAX_WARNINGS} more warnings"]
        return FrontendResult(sentences, warnings)

    def iter_sentences(self, text: str, lexicon: LexiconLike = None) -> Iterator[Sentence]:
        """Sentences of `text` as they are ready. `lexicon` (per request) wins over the instance's.

        A yielded sentence may have no phones: a pure pause (break_ms set) or only warnings about dropped input.
        Raises markup.MarkupError (a ValueError naming the position) for broken inline pinyin or SSML.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        words_lexicon = self.lexicon.layered(as_lexicon(lexicon)) if lexicon is not None else self.lexicon
        return _merge_breaks(self._sentences(parse(text), _SentenceBuilder(self, words_lexicon)))

    @staticmethod
    def _sentences(segments: list[Segment], builder: _SentenceBuilder) -> Iterator[Sentence]:
        for segment_ in segments:
            if isinstance(segment_, Break):
                yield from builder.flush(break_ms=segment_.ms)
            else:
                yield from builder.add_span(segment_)
        yield from builder.flush()


def _merge_breaks(sentences: Iterator[Sentence]) -> Iterator[Sentence]:
    """A break right after a finished sentence becomes that sentence's pause, instead of a pause of its own
    added to the default one (你好。<break time="1s"/>再见 pauses 1 s, not 1.2 s)."""
    held: Sentence | None = None
    for sentence in sentences:
        if held is not None and held.phones and not sentence.phones and sentence.break_ms is not None:
            held.break_ms = (held.break_ms or 0) + sentence.break_ms
            held.warnings.extend(sentence.warnings)
            continue
        if held is not None:
            yield held
        held = sentence
    if held is not None:
        yield held


class _SentenceBuilder:
    """Collects normalized characters until a sentence ends (or the voice changes), then turns them into Sentences."""

    def __init__(self, frontend: Frontend, lexicon: Lexicon):
        self.frontend = frontend
        self.lexicon = lexicon
        self.chars: list[_Char] = []
        self.raw: list[str] = []
        self.warnings: list[str] = []
        self.voice: str | None = None  # the voice of the pending characters

    def add_span(self, span: Span) -> Iterator[Sentence]:
        if span.voice != self.voice:  # a sentence never mixes voices
            yield from self.flush()
            self.voice = span.voice
        if span.pinyin is not None:
            self.raw.append(span.text)
            self.chars.extend(_Char(c, p, span.controls) for c, p in zip(span.text, span.pinyin, strict=True))
            return
        for offset, piece in prosody.split_raw(span.text):
            normalized = normalize(piece, span.say_as, offset)
            self.warnings.extend(normalized.warnings)
            self.raw.append(_printable(piece))
            for char, forced in zip(normalized.text, normalized.pinyin, strict=True):
                self.chars.append(_Char(char, forced, span.controls))
                if char in prosody.SENTENCE_END:
                    yield from self.flush()
            if prosody.ends_sentence(piece) and self.chars:  # e.g. a line break the normalizer dropped
                yield from self.flush()

    def flush(self, break_ms: int | None = None) -> Iterator[Sentence]:
        """The pending characters as sentences (several when longer than max_chars syllables)."""
        chars, raw, warnings = self.chars, "".join(self.raw).strip(), self.warnings
        self.chars, self.raw, self.warnings = [], [], []
        sentences = self._sentences(chars, raw, warnings) if chars else []
        if not sentences:
            sentences = [Sentence("", [], [], break_ms=break_ms, warnings=warnings)]
        elif break_ms is not None:
            sentences[-1].break_ms = break_ms
        for sentence in sentences:
            sentence.voice = self.voice
        yield from (s for s in sentences if s.phones or s.break_ms is not None or s.warnings)

    def _sentences(self, chars: list[_Char], raw: str, warnings: list[str]) -> list[Sentence]:
        normalized = "".join(c.char for c in chars)
        forced = [c.forced for c in chars]
        words = segment(normalized, self.lexicon)
        decisions = decide(words, forced, self.lexicon)
        citation = per_word(words, [d.reading for d in decisions])
        counts = [sum(r is not None for r in readings) for readings in citation]
        plan = prosody.plan(words, counts, self.frontend.prosody_mode)
        locked = per_word(words, [f is not None for f in forced])
        spoken = apply_sandhi(words, citation, plan.prosodic_words, locked)
        syllables = self._syllables(words, spoken, chars, decisions, warnings)
        if not syllables:
            return [Sentence(raw, [], [], normalized, words, warnings=warnings)] if warnings else []
        joints = [_joint(a, b, plan.after) for a, b in zip(syllables, syllables[1:], strict=False)]
        starts = [0, *prosody.cut_points(joints, self.frontend.max_chars), len(syllables)]
        sentences = []
        for n, (first, end) in enumerate(zip(starts, starts[1:], strict=False)):
            text_start = 0 if n == 0 else syllables[first].position
            text_end = len(normalized) if end == len(syllables) else syllables[end].position
            chunk = normalized[text_start:text_end]
            text = raw if len(starts) == 2 and raw else chunk
            sentences.append(_sentence(text, chunk, words, syllables[first:end], joints[first:end]))
        sentences[0].warnings = warnings
        return sentences

    @staticmethod
    def _syllables(
        words: list[str],
        spoken: list[list[str | None]],
        chars: list[_Char],
        decisions: list[Decision],
        warnings: list[str],
    ) -> list[_Syllable]:
        syllables: list[_Syllable] = []
        position = 0
        for w, word in enumerate(words):
            for i, char in enumerate(word):
                reading = spoken[w][i]
                if reading is None:
                    if is_han(char):
                        warnings.append(f'skipped "{char}": no known reading')
                else:
                    try:
                        phones = syllable_to_phones(reading)
                    except ValueError:
                        warnings.append(f'skipped "{char}": {reading!r} is not a syllable the voice can say')
                    else:
                        erhua = (
                            char == "儿" and reading == "er5" and i > 0 and bool(syllables)
                            and syllables[-1].word == w and syllables[-1].position == position - 1
                        )  # fmt: skip
                        syllables.append(
                            _Syllable(
                                position, w, char, reading, phones, chars[position].controls, erhua, decisions[position]
                            )
                        )
                position += 1
        return syllables


def _joint(left: _Syllable, right: _Syllable, after: list[str]) -> str:
    """The boundary between two consecutive syllables: "" before erhua, #0 inside a word, else the plan's mark."""
    if right.erhua:
        return ""
    if left.word == right.word:
        return "#0"
    return after[left.word]


def _sentence(text: str, normalized: str, words: list[str], syllables: list[_Syllable], joints: list[str]) -> Sentence:
    """One chunk of syllables as a Sentence; joints[k] is the boundary after syllables[k] (the last is unused)."""
    phones: list[str] = ["sil"]
    controls: list[Controls] = [syllables[0].controls]
    for k, syllable in enumerate(syllables):
        if syllable.erhua and k > 0:
            added = [ERHUA_SUFFIX]
        else:
            added = ([joints[k - 1]] if k > 0 else []) + syllable.phones
        phones.extend(added)
        controls.extend([syllable.controls] * len(added))
    phones.append("sil")
    controls.append(syllables[-1].controls)
    first_word, last_word = syllables[0].word, syllables[-1].word
    neutral = all(c == Controls() for c in controls)
    return Sentence(
        text=text,
        phones=phones,
        pinyin=[(s.char, s.reading) for s in syllables],
        normalized=normalized,
        words=words[first_word : last_word + 1],
        controls=None if neutral else controls,
        decisions=[s.decision for s in syllables],
    )


def _printable(text: str) -> str:
    """`text` without control and format characters (kept for display in Sentence.text)."""
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs"))


def as_lexicon(lexicon: LexiconLike) -> Lexicon | None:
    """A Lexicon from an instance, a word → pinyin mapping, or a TSV file path."""
    if lexicon is None or isinstance(lexicon, Lexicon):
        return lexicon
    if isinstance(lexicon, str | Path):
        return Lexicon.from_file(lexicon)
    return Lexicon(lexicon)


@cache
def default_frontend() -> Frontend:
    """The frontend with built-in settings (shared; it holds no per-request state)."""
    return Frontend()


def text_to_sentences(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> FrontendResult:
    """Split `text` into sentences of at most `max_chars` syllables, each as Baker phones."""
    frontend = default_frontend() if max_chars == DEFAULT_MAX_CHARS else Frontend(max_chars=max_chars)
    return frontend(text)
