"""A strict SSML subset → the same `Span`/`Break` list that plain text becomes.

Supported: <speak>, <break>, <prosody rate/pitch/volume>, <emotion category intensity>, <phoneme alphabet="py">,
<say-as>, <sub>, <p>, <s>, <voice name>.
Anything else — another tag, an unknown attribute, a value we cannot honour — is an SSMLError naming its line
and column, never silently ignored, so what is spoken is what was written.

Decisions where SSML leaves room:
- prosody values are multipliers on the enclosing prosody ("120%", "+20%" and "fast" all scale it), and
  nested prosody composes by multiplication; the composed value must stay in range or it is an error.
- break times above 10 s are capped at 10 s; with both time and strength, time wins (as in SSML).
- text is kept as written except that each whitespace run (XML indentation) becomes one space, whitespace-only
  text between tags is dropped and the document's leading/trailing whitespace is removed. Plain text is not
  scanned for the inline 重[chong2] syntax: in SSML, <phoneme> is the way to fix a reading.
- after </s> and </p> a Span("。") ends the sentence, unless the element produced nothing or its text already
  ends with sentence-final punctuation.
- <emotion category="happy" intensity="1.0"> sets the emotion of its content (one of qingyin.options.EMOTIONS;
  intensity 0–2, absent = the request's); the innermost <emotion> wins, and it nests with <prosody> either way.
- <voice name="…"> names the speaker of its content (the innermost <voice> wins); only the name's shape is
  checked here (1–64 of A-Z a-z 0-9 _ . : , -, so a blend like "xiaobei:0.6,yunxi:0.4" fits), the engine checks
  that the voice exists. Text after </voice> is spoken by the enclosing voice.
- DOCTYPE (hence any entity declaration) and processing instructions are rejected; comments are skipped.
"""

from __future__ import annotations

import bisect
import math
import re
import xml.parsers.expat as expat
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from qingyin.options import EMOTIONS, ENERGY, INTENSITY, PITCH, SPEED

from .hanzi import is_han
from .markup import (
    PINYIN_HELP,
    SAY_AS,
    Break,
    Controls,
    MarkupError,
    Segment,
    Span,
    normalize_syllable,
    split_syllables,
)

MAX_INPUT_CHARS = 1_000_000
MAX_BREAK_MS = 10_000
MAX_VOICE_NAME_CHARS = 64
MAX_NESTING_DEPTH = 64  # elements inside elements; far beyond real documents, well within Python's recursion limit
SENTENCE_END = "。"

BREAK_STRENGTH_MS = {"none": 0, "x-weak": 100, "weak": 200, "medium": 400, "strong": 700, "x-strong": 1000}
RATE_WORDS = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "fast": 1.25, "x-fast": 1.75, "default": 1.0}
PITCH_WORDS = {"x-low": 0.5, "low": 0.75, "medium": 1.0, "high": 1.25, "x-high": 1.5, "default": 1.0}
VOLUME_WORDS = {
    "silent": 0.0, "x-soft": 0.5, "soft": 0.75, "medium": 1.0, "loud": 1.25, "x-loud": 1.5, "default": 1.0,
}  # fmt: skip
SPEED_RANGE = SPEED.range
PITCH_RANGE = PITCH.range
ENERGY_RANGE = ENERGY.range
PHONEME_ALPHABETS = ("py", "pinyin")

# Attributes each supported element accepts. Namespace declarations (xmlns, xmlns:*) are allowed anywhere.
ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "speak": frozenset({"version", "xml:lang", "xsi:schemaLocation"}),
    "break": frozenset({"time", "strength"}),
    "prosody": frozenset({"rate", "pitch", "volume"}),
    "emotion": frozenset({"category", "intensity"}),
    "phoneme": frozenset({"alphabet", "ph"}),
    "say-as": frozenset({"interpret-as"}),
    "sub": frozenset({"alias"}),
    "p": frozenset({"xml:lang"}),
    "s": frozenset({"xml:lang"}),
    "voice": frozenset({"name"}),
}
SUPPORTED_TAGS = ", ".join(f"<{tag}>" for tag in ALLOWED_ATTRIBUTES)
_TEXT_ONLY_TAGS = frozenset({"phoneme", "say-as", "sub"})
_SENTENCE_FINAL = "。！？!?；;…."

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_TIME_RE = re.compile(rf"({_NUMBER})\s*(ms|s)", re.IGNORECASE)
_PERCENT_RE = re.compile(rf"([+-]?)({_NUMBER})\s*%")
_DECIBEL_RE = re.compile(rf"([+-]?{_NUMBER})\s*dB", re.IGNORECASE)
_BARE_NUMBER_RE = re.compile(_NUMBER)
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_WHITESPACE_RE = re.compile(r"\s+")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_VOICE_NAME_RE = re.compile(rf"[A-Za-z0-9_.:,-]{{1,{MAX_VOICE_NAME_CHARS}}}")

# Plain-words explanations for the expat errors people actually make, keyed by expat's message.
_EXPAT_ADVICE = {
    "mismatched tag": "close elements in the reverse order they were opened",
    "not well-formed (invalid token)": (
        "write a literal < as &lt; and & as &amp;, quote attribute values, and remove control characters"
    ),
    "undefined entity": "only &lt; &gt; &amp; &quot; &apos; and numeric references like &#20013; are defined",
    "unclosed token": "finish the tag or comment before the end of the document",
    "no element found": "the document ended before </speak>; close every open element",
    "junk after document element": "put all content inside a single <speak> … </speak>",
    "duplicate attribute": "give each attribute once",
    "syntax error": "SSML must start with <speak> (optionally after an <?xml …?> declaration)",
}


class SSMLError(MarkupError):
    """SSML that cannot be read; `line` and `column` (both 1-based) locate the problem in the input."""

    def __init__(self, line: int, column: int, problem: str, remedy: str, position: int = 0) -> None:
        self.line = line
        self.column = column
        super().__init__(f"SSML error at line {line}, column {column}: {problem}; {remedy}", position)


class TooManyElementsError(SSMLError):
    """The document has more elements than the caller's `max_elements` (qingyin.runtime.limits names the setting)."""


def parse_ssml(text: str, max_elements: int | None = None) -> list[Segment]:
    """Parse an SSML document (root <speak>) into spans and breaks, in document order.

    `max_elements`: TooManyElementsError at the first element past it (parsing stops there)."""
    if len(text) > MAX_INPUT_CHARS:
        raise SSMLError(
            1,
            1,
            f"input is too long ({len(text):,} characters)",
            f"split it into documents of at most {MAX_INPUT_CHARS:,} characters",
        )
    root = _TreeBuilder(text, max_elements).build()
    if root.tag != "speak":
        raise root.error(f"the root element is <{root.tag}>", "wrap the document in <speak> … </speak>")
    segments = _Interpreter().run(root)
    return _trim_document_edges(segments)


@dataclass
class _Element:
    """An XML element with the place its start tag begins, so later checks can report line and column."""

    tag: str
    attributes: dict[str, str]
    line: int
    column: int
    position: int
    children: list[_Element | str] = field(default_factory=list)

    def error(self, problem: str, remedy: str) -> SSMLError:
        """An SSMLError located at this element's start tag."""
        return SSMLError(self.line, self.column, problem, remedy, self.position)

    def text_content(self) -> str:
        """All text directly inside (callers have checked there are no child elements)."""
        return "".join(child for child in self.children if isinstance(child, str))


class _TreeBuilder:
    """Builds an _Element tree with expat, refusing DTDs (the vector for entity-expansion attacks)."""

    def __init__(self, text: str, max_elements: int | None = None) -> None:
        self._text = text
        self._max_elements = max_elements
        self._elements = 0
        self._line_starts = [0] + [match.end() for match in _NEWLINE_RE.finditer(text)]
        self._parser = expat.ParserCreate()
        self._stack: list[_Element] = []
        self._root: _Element | None = None
        self._parser.StartDoctypeDeclHandler = self._reject_doctype
        self._parser.EntityDeclHandler = self._reject_entity
        self._parser.ProcessingInstructionHandler = self._reject_processing_instruction
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._characters

    def build(self) -> _Element:
        """Parse the whole text; SSMLError if it is not well-formed XML."""
        if surrogate := _SURROGATE_RE.search(self._text):
            # expat needs UTF-8, which cannot encode a lone surrogate (e.g. from a bad decode upstream).
            line, column = self._location(surrogate.start())
            raise SSMLError(
                line,
                column,
                "the text contains an unpaired surrogate code point",
                "fix the text's encoding",
                surrogate.start(),
            )
        try:
            self._parser.Parse(self._text, True)
        except expat.ExpatError as exc:
            raise self._malformed(exc) from None
        if self._root is None:  # expat reports an empty document itself; kept as a guard
            raise SSMLError(1, 1, "no <speak> element", "wrap the document in <speak> … </speak>")
        return self._root

    def _malformed(self, exc: expat.ExpatError) -> SSMLError:
        message = expat.ErrorString(exc.code) or "malformed XML"
        advice = _EXPAT_ADVICE.get(message, "fix the XML so that it is well-formed")
        line, column = exc.lineno, exc.offset + 1
        return SSMLError(line, column, f"malformed XML ({message})", advice, self._offset(line, column))

    def _offset(self, line: int, column: int) -> int:
        """0-based index into the text of a 1-based (line, column)."""
        start = self._line_starts[min(line, len(self._line_starts)) - 1]
        return min(start + column - 1, len(self._text))

    def _location(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a 0-based index into the text."""
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def _here(self, problem: str, remedy: str) -> SSMLError:
        line, column = self._parser.CurrentLineNumber, self._parser.CurrentColumnNumber + 1
        return SSMLError(line, column, problem, remedy, self._offset(line, column))

    def _reject_doctype(self, *_: object) -> None:
        # expat calls this after reading the name and ids; point at the declaration's start instead.
        here = self._offset(self._parser.CurrentLineNumber, self._parser.CurrentColumnNumber + 1)
        start = self._text.rfind("<!DOCTYPE", 0, here + 1)
        if start >= 0:
            line, column = self._location(start)
            raise SSMLError(
                line,
                column,
                "DOCTYPE declarations are not allowed",
                "remove it: SSML needs no DTD, and entity declarations are refused",
                start,
            )
        raise self._here(
            "DOCTYPE declarations are not allowed", "remove it: SSML needs no DTD, and entity declarations are refused"
        )

    def _reject_entity(self, *_: object) -> None:
        raise self._here("ENTITY declarations are not allowed", "remove them and write the text out")

    def _reject_processing_instruction(self, target: str, _data: str) -> None:
        raise self._here(f"processing instruction <?{target} …?> is not supported", "remove it")

    def _start(self, tag: str, attributes: dict[str, str]) -> None:
        line, column = self._parser.CurrentLineNumber, self._parser.CurrentColumnNumber + 1
        element = _Element(tag, attributes, line, column, self._offset(line, column))
        self._elements += 1
        if self._max_elements is not None and self._elements > self._max_elements:
            raise TooManyElementsError(line, column, f"the document has more than {self._max_elements:,} elements",
                                       "use fewer elements", element.position)
        if len(self._stack) >= MAX_NESTING_DEPTH:
            raise element.error(f"elements are nested more than {MAX_NESTING_DEPTH} deep", "flatten the markup")
        if self._stack:
            self._stack[-1].children.append(element)
        else:
            self._root = element
        self._stack.append(element)

    def _end(self, _tag: str) -> None:
        self._stack.pop()

    def _characters(self, data: str) -> None:
        children = self._stack[-1].children
        # expat may deliver one run of text in several calls; keep it as one string.
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)


class _Interpreter:
    """Walks the element tree, checking each element and emitting segments under the current prosody and voice."""

    def __init__(self) -> None:
        self._segments: list[Segment] = []
        self._voice: str | None = None  # the innermost enclosing <voice name>, None outside every <voice>
        self._handlers: dict[str, Callable[[_Element, Controls], None]] = {
            "break": self._break,
            "prosody": self._prosody,
            "emotion": self._emotion,
            "phoneme": self._phoneme,
            "say-as": self._say_as,
            "sub": self._sub,
            "p": self._sentence,
            "s": self._sentence,
            "voice": self._voice_element,
        }

    def run(self, root: _Element) -> list[Segment]:
        """Segments of the <speak> root, in document order."""
        _check_attributes(root)
        self._children(root, Controls())
        return self._segments

    def _children(self, element: _Element, controls: Controls) -> None:
        for child in element.children:
            if isinstance(child, str):
                self._add_text(child, controls)
            else:
                self._element(child, controls)

    def _element(self, element: _Element, controls: Controls) -> None:
        if element.tag == "speak":
            raise element.error("<speak> inside <speak>", "use <speak> only once, as the root element")
        handler = self._handlers.get(element.tag)
        if handler is None:
            raise element.error(f"unsupported tag <{element.tag}>", f"supported: {SUPPORTED_TAGS}")
        _check_attributes(element)
        handler(element, controls)

    def _add_text(self, text: str, controls: Controls, say_as: str | None = None) -> None:
        """Append text, merging it into the previous span when that is plain text read the same way."""
        if not text.strip():
            return
        text = _WHITESPACE_RE.sub(" ", text)
        previous = self._segments[-1] if self._segments else None
        if (
            say_as is None
            and isinstance(previous, Span)
            and previous.pinyin is None
            and previous.say_as is None
            and previous.controls == controls
            and previous.voice == self._voice
            and previous.text != SENTENCE_END
        ):
            self._segments[-1] = replace(previous, text=previous.text + text)
        else:
            self._segments.append(Span(text, say_as=say_as, controls=controls, voice=self._voice))

    def _break(self, element: _Element, _controls: Controls) -> None:
        if element.children:
            raise element.error("<break> has content", 'write it as an empty element: <break time="300ms"/>')
        self._segments.append(Break(_break_ms(element)))

    def _prosody(self, element: _Element, controls: Controls) -> None:
        self._children(element, _compose_prosody(element, controls))

    def _emotion(self, element: _Element, controls: Controls) -> None:
        self._children(element, _compose_emotion(element, controls))

    def _phoneme(self, element: _Element, controls: Controls) -> None:
        _require_text_only(element)
        alphabet = element.attributes.get("alphabet", "py")
        if alphabet.lower() not in PHONEME_ALPHABETS:
            raise element.error(
                f"phoneme alphabet {alphabet!r} is not supported (IPA and X-SAMPA are not)",
                'use alphabet="py" with TONE3 pinyin, e.g. <phoneme alphabet="py" ph="chong2">重</phoneme>',
            )
        text = element.text_content().strip()
        if not text or not all(is_han(char) for char in text):
            raise element.error(
                f"<phoneme> content {text!r} is not only Han characters",
                "put only Chinese characters inside, one pinyin syllable each in ph",
            )
        pinyin = _phoneme_syllables(element, len(text))
        self._segments.append(Span(text, pinyin=pinyin, controls=controls, voice=self._voice))

    def _say_as(self, element: _Element, controls: Controls) -> None:
        _require_text_only(element)
        interpret_as = _required(element, "interpret-as")
        if interpret_as not in SAY_AS:
            raise element.error(f"interpret-as={interpret_as!r} is not supported", f"use one of: {', '.join(SAY_AS)}")
        self._add_text(element.text_content().strip(), controls, say_as=interpret_as)

    def _sub(self, element: _Element, controls: Controls) -> None:
        _require_text_only(element)
        alias = _required(element, "alias")
        if not alias.strip():
            raise element.error("<sub> has an empty alias", "set alias to the text to speak instead of the content")
        self._add_text(alias.strip(), controls)

    def _sentence(self, element: _Element, controls: Controls) -> None:
        first = len(self._segments)
        self._children(element, controls)
        if len(self._segments) == first:
            return
        last = self._segments[-1]
        if isinstance(last, Span) and last.text.rstrip().endswith(tuple(_SENTENCE_FINAL)):
            return
        # The full stop belongs to the last thing said, so <s>…<voice>…</voice></s> ends that voice's sentence.
        voice = last.voice if isinstance(last, Span) else self._voice
        self._segments.append(Span(SENTENCE_END, controls=controls, voice=voice))

    def _voice_element(self, element: _Element, controls: Controls) -> None:
        outer, self._voice = self._voice, _voice_name(element)
        self._children(element, controls)
        self._voice = outer


def _check_attributes(element: _Element) -> None:
    """SSMLError for any attribute the element does not support."""
    allowed = ALLOWED_ATTRIBUTES[element.tag]
    for name in element.attributes:
        if name in allowed or name == "xmlns" or name.startswith("xmlns:"):
            continue
        choices = ", ".join(sorted(allowed)) or "none"
        raise element.error(f"unsupported attribute {name!r} on <{element.tag}>", f"supported: {choices}")


def _required(element: _Element, name: str) -> str:
    """The value of a required attribute."""
    value = element.attributes.get(name)
    if value is None:
        raise element.error(f"<{element.tag}> needs a {name} attribute", f'add {name}="…"')
    return value


def _require_text_only(element: _Element) -> None:
    """SSMLError if a text-only element (phoneme, say-as, sub) contains another element."""
    for child in element.children:
        if isinstance(child, _Element):
            raise child.error(f"<{child.tag}> inside <{element.tag}>", f"<{element.tag}> may contain only text")


def _voice_name(element: _Element) -> str:
    """The name of a <voice>, checked for shape only (which voices exist is the engine's business)."""
    name = _required(element, "name").strip()
    if not name:
        raise element.error("<voice> has an empty name", 'name a voice, e.g. <voice name="yunxi">')
    if _VOICE_NAME_RE.fullmatch(name) is None:
        raise element.error(
            f"voice name={name!r} is not a voice name",
            f"use at most {MAX_VOICE_NAME_CHARS} of the characters A-Z a-z 0-9 _ . : , - "
            '(e.g. "yunxi", or a blend like "xiaobei:0.6,yunxi:0.4")',
        )
    return name


def _break_ms(element: _Element) -> int:
    """Pause length of a <break>: its time (capped at 10 s), else its strength, else medium."""
    time = element.attributes.get("time")
    if time is not None:
        match = _TIME_RE.fullmatch(time.strip())
        if match is None:
            problem = "is negative" if time.strip().startswith("-") else "is not a time"
            raise element.error(f"break time={time!r} {problem}", 'write a non-negative time like "300ms" or "1.5s"')
        value, unit = float(match.group(1)), match.group(2).lower()
        return min(round(value * (1000 if unit == "s" else 1)), MAX_BREAK_MS)
    strength = element.attributes.get("strength", "medium")
    if strength not in BREAK_STRENGTH_MS:
        raise element.error(f"break strength={strength!r} is not known", f"use one of: {', '.join(BREAK_STRENGTH_MS)}")
    return BREAK_STRENGTH_MS[strength]


def _compose_prosody(element: _Element, outer: Controls) -> Controls:
    """The enclosing controls scaled by this <prosody>'s rate, pitch and volume, checked against their ranges."""
    attributes = element.attributes
    speed = outer.speed * _prosody_factor(element, "rate", RATE_WORDS, allow_number=True)
    pitch = outer.pitch * _prosody_factor(element, "pitch", PITCH_WORDS)
    energy = outer.energy * _prosody_factor(element, "volume", VOLUME_WORDS, allow_decibels=True)
    for name, attribute, value, (low, high) in (
        ("speed", "rate", speed, SPEED_RANGE),
        ("pitch", "pitch", pitch, PITCH_RANGE),
        ("energy", "volume", energy, ENERGY_RANGE),
    ):
        if not low <= value <= high:
            raise element.error(
                f"{attribute}={attributes.get(attribute)!r} makes the {name} multiplier {value:g} "
                "(after multiplying by enclosing <prosody>)",
                f"keep {name} within {low:g}–{high:g}",
            )
    return replace(outer, speed=speed, pitch=pitch, energy=energy)


def _compose_emotion(element: _Element, outer: Controls) -> Controls:
    """The enclosing controls with this <emotion>'s category and intensity."""
    category = _required(element, "category").strip().lower()
    if category not in EMOTIONS:
        raise element.error(f"unknown emotion category {category!r}", f"use one of: {', '.join(EMOTIONS)}")
    value = element.attributes.get("intensity")
    if value is None:
        return replace(outer, emotion=category)
    low, high = INTENSITY.range
    try:
        intensity = float(value.strip())
    except ValueError:
        intensity = math.nan
    if not math.isfinite(intensity) or not low <= intensity <= high:
        raise element.error(f"emotion intensity={value!r} is not a number between {low:g} and {high:g}",
                            'write e.g. intensity="1.0" (0 = neutral, 1 = the preset, 2 = strong)')
    return replace(outer, emotion=category, intensity=intensity)


def _prosody_factor(
    element: _Element,
    attribute: str,
    words: dict[str, float],
    allow_number: bool = False,
    allow_decibels: bool = False,
) -> float:
    """Multiplier given by one prosody attribute (1.0 when absent)."""
    value = element.attributes.get(attribute)
    if value is None:
        return 1.0
    factor = _parse_factor(value.strip(), words, allow_number, allow_decibels)
    if factor is None or not math.isfinite(factor):
        forms = [f"{'|'.join(words)}", 'a percentage like "120%"', 'a relative change like "+20%" or "-20%"']
        if allow_number:
            forms.append('a multiplier like "1.2"')
        if allow_decibels:
            forms.append('decibels like "+6dB" or "-6dB"')
        raise element.error(f"prosody {attribute}={value!r} is not understood", "use " + ", ".join(forms))
    return factor


def _parse_factor(value: str, words: dict[str, float], allow_number: bool, allow_decibels: bool) -> float | None:
    """A prosody value as a multiplier, or None if it is not in a supported form."""
    if value in words:
        return words[value]
    if match := _PERCENT_RE.fullmatch(value):
        sign, number = match.group(1), float(match.group(2)) / 100
        if sign == "+":
            return 1 + number
        return 1 - number if sign == "-" else number
    if allow_decibels and (match := _DECIBEL_RE.fullmatch(value)):
        return 10 ** (float(match.group(1)) / 20)
    if allow_number and _BARE_NUMBER_RE.fullmatch(value):
        return float(value)
    return None


def _phoneme_syllables(element: _Element, char_count: int) -> tuple[str, ...]:
    """The TONE3 syllables of a <phoneme>'s ph, one per character of its content."""
    ph = _required(element, "ph")
    syllables = split_syllables(ph)
    if syllables is None:
        raise element.error(f"ph={ph!r} is not TONE3 pinyin", PINYIN_HELP)
    normalized = []
    for syllable in syllables:
        try:
            normalized.append(normalize_syllable(syllable))
        except ValueError:
            raise element.error(f"ph={ph!r} contains invalid pinyin {syllable!r}", PINYIN_HELP) from None
    if len(normalized) != char_count:
        raise element.error(
            f"ph={ph!r} has {len(normalized)} syllable(s) for {char_count} character(s)",
            "give exactly one pinyin syllable per Han character",
        )
    return tuple(normalized)


def _trim_document_edges(segments: list[Segment]) -> list[Segment]:
    """Remove whitespace at the very start and end of the document's text."""
    if segments and isinstance(segments[0], Span) and segments[0].say_as is None:
        segments[0] = replace(segments[0], text=segments[0].text.lstrip())
    if segments and isinstance(segments[-1], Span) and segments[-1].say_as is None:
        segments[-1] = replace(segments[-1], text=segments[-1].text.rstrip())
    return [segment for segment in segments if not (isinstance(segment, Span) and not segment.text)]
