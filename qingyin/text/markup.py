"""What the user wrote, before normalization: runs of text with their settings, and explicit breaks.

Plain text and SSML both become a list of `Span` and `Break`; every later stage (normalize, G2P, prosody)
works on that list, so the two input forms cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .hanzi import HAN_CLASS
from .symbols import syllable_to_phones

SAY_AS = ("digits", "cardinal", "telephone", "date", "characters")


@dataclass(frozen=True)
class Controls:
    """Relative prosody for a span (SSML <prosody>): multipliers on the request's speed, pitch and energy; and its
    emotion (SSML <emotion>): a category and intensity replacing the request's (None: the request's)."""

    speed: float = 1.0
    pitch: float = 1.0
    energy: float = 1.0
    emotion: str | None = None
    intensity: float | None = None


@dataclass(frozen=True)
class Span:
    """A run of input text and how to read it.

    `pinyin`, when given, is the exact reading of every character of `text` (inline `重[chong2]` or SSML
    <phoneme>): TONE3 with v for ü and 5 for neutral, one syllable per character, never changed by sandhi.
    `say_as` selects a normalization mode (SSML <say-as>), one of SAY_AS.
    `voice` is the speaker named by SSML <voice name="…">, None for the request's voice; only its shape is checked
    here, the engine checks it against the voices it has.
    """

    text: str
    pinyin: tuple[str, ...] | None = None
    say_as: str | None = None
    controls: Controls = field(default_factory=Controls)
    voice: str | None = None


@dataclass(frozen=True)
class Break:
    """An explicit pause (SSML <break>), in milliseconds."""

    ms: int


Segment = Span | Break

PINYIN_HELP = (
    "pinyin is one TONE3 syllable: letters then a tone digit 1-5 (5 = neutral tone), "
    "with ü written v, ü or u: — e.g. chong2, lv4, ma5"
)

_TONE3_RE = re.compile(r"[a-z]+[1-5]")
# A Han character followed by a bracketed group; the group is an override only if it holds pinyin.
_OVERRIDE_RE = re.compile(f"([{HAN_CLASS}])\\[([^\\[\\]]*)\\]")
_SYLLABLE_CHUNK_RE = re.compile(r"[a-zü:]+\d", re.IGNORECASE)
# A chunk that reads as a try at pinyin rather than a label such as [A4], [x1] or [MP3]: two or more
# letters, one of them a vowel, then a digit.
_PINYIN_LIKE_RE = re.compile(r"(?=.*[aeiouvü])[a-zü:]{2,}\d", re.IGNORECASE)


class MarkupError(ValueError):
    """Input markup that cannot be read; `position` is the 0-based index into the input text."""

    def __init__(self, message: str, position: int) -> None:
        self.position = position
        super().__init__(message)


def normalize_syllable(syllable: str) -> str:
    """Canonical TONE3 form of one pinyin syllable: lower case, ü/u: as v, tone digit required.

    Raises ValueError if it is not a Mandarin syllable in the voice's inventory.
    """
    canonical = syllable.strip().lower().replace("ü", "v").replace("u:", "v")
    if _TONE3_RE.fullmatch(canonical) is None:
        raise ValueError(f"not a TONE3 pinyin syllable: {syllable!r}")
    syllable_to_phones(canonical)  # raises ValueError for a non-Mandarin spelling
    return canonical


def split_syllables(pinyin: str) -> list[str] | None:
    """Split "chong2 xin1" or "chong2xin1" into raw syllables at the tone digits; None if it is not so shaped."""
    compact = pinyin.strip()
    chunks = _SYLLABLE_CHUNK_RE.findall(compact)
    if not chunks or "".join(chunks) != "".join(compact.split()):
        return None
    return chunks


def parse(text: str, max_elements: int | None = None) -> list[Segment]:
    """Read user input: SSML if it starts with "<speak" (or "<?xml", "<!DOCTYPE"), else plain text with inline pinyin.

    An XML declaration or DOCTYPE also selects SSML, so that such a document is checked, not read out as text.
    `max_elements` bounds an SSML document's elements (ssml.TooManyElementsError past it).
    """
    if text.lstrip().startswith(("<speak", "<?xml", "<!DOCTYPE")):
        from .ssml import parse_ssml  # deferred: ssml imports this module

        return parse_ssml(text, max_elements)
    return parse_inline(text)


def parse_inline(text: str) -> list[Span]:
    """Plain text where a Han character followed by [pinyin] has that fixed reading: 重[chong2]新 → 重 read chong2.

    Returns alternating runs: plain text (pinyin None) and overridden characters, where consecutive overridden
    characters are merged into one Span with one syllable each (重[chong2]新[xin1] → Span("重新", ("chong2", "xin1"))).
    Brackets that do not hold a single pinyin syllable right after a Han character stay in the text unchanged.
    Raises MarkupError for a bracket after a Han character that is clearly meant as pinyin but is not valid.
    """
    builder = _SpanBuilder()
    consumed = 0
    for match in _OVERRIDE_RE.finditer(text):
        reading = _override_reading(match.group(2), match.start(2))
        if reading is None:
            continue
        builder.add_plain(text[consumed : match.start()])
        builder.add_override(match.group(1), reading)
        consumed = match.end()
    builder.add_plain(text[consumed:])
    return builder.spans()


def _override_reading(content: str, position: int) -> str | None:
    """The syllable an inline bracket fixes, None if the bracket is ordinary text; MarkupError if malformed pinyin."""
    try:
        return normalize_syllable(content)
    except ValueError:
        pass
    syllables = split_syllables(content)
    if syllables is None or not any(_PINYIN_LIKE_RE.fullmatch(chunk) for chunk in syllables):
        return None
    if len(syllables) > 1:
        raise MarkupError(
            f"pinyin {content!r} at position {position} has {len(syllables)} syllables; an inline override "
            "fixes one character, so write one bracket after each character, e.g. 重[chong2]新[xin1]",
            position,
        )
    raise MarkupError(f"invalid pinyin {content!r} at position {position}; {PINYIN_HELP}", position)


class _SpanBuilder:
    """Accumulates plain text and overridden characters, merging neighbours of the same kind."""

    def __init__(self) -> None:
        self._spans: list[Span] = []
        self._text: list[str] = []
        self._pinyin: list[str] = []

    def add_plain(self, text: str) -> None:
        """Append ordinary text (no fixed reading)."""
        if not text:
            return
        if self._pinyin:
            self._flush()
        self._text.append(text)

    def add_override(self, char: str, syllable: str) -> None:
        """Append one character with a fixed reading."""
        if self._text and not self._pinyin:
            self._flush()
        self._text.append(char)
        self._pinyin.append(syllable)

    def spans(self) -> list[Span]:
        """The finished list of spans."""
        self._flush()
        return self._spans

    def _flush(self) -> None:
        if self._text:
            self._spans.append(Span("".join(self._text), tuple(self._pinyin) if self._pinyin else None))
        self._text, self._pinyin = [], []
