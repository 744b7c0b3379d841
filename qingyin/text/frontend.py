"""Text → Baker phone sequences, one per sentence, following the TensorFlowTTS Baker conventions.

A sentence is spoken as ``sil <syllable> #0 <syllable> ... sil``: every syllable is [initial, final+tone],
syllables are joined by ``#0``, a comma-class mark inside the sentence becomes ``#3`` (the Baker labels put
a #3 at commas), and erhua is the host syllable followed by ``er5`` with no ``#0``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from .g2p import is_han, readings
from .symbols import ERHUA_SUFFIX, syllable_to_phones

SENTENCE_ENDS = "。！？!?；;\n"
PAUSES = frozenset("，、,：:")
_CLOSERS = "”’」』）)]》"
_SENTENCE = re.compile(
    f"[^{SENTENCE_ENDS}]*[{SENTENCE_ENDS}][{re.escape(SENTENCE_ENDS + _CLOSERS)}]*|[^{SENTENCE_ENDS}]+"
)
_LINE_BREAKS = frozenset("\n\r\v\f\x85\u2028\u2029")
_ERHUA_CHARS = frozenset("儿兒")
_MAX_WARNINGS = 50
_MAX_SHOWN = 24
# Stop-gap until a real text normalizer exists: digits are read one by one ("2024" → 二零二四,
# "3.14" → 三点一四); a comma between thousands groups is dropped. Every substitution is one character
# for one character so that positions in the normalized text map straight back to the input.
_DIGIT_TABLE = str.maketrans("0123456789", "零一二三四五六七八九")
_DECIMAL_POINT = re.compile(r"(?<=[0-9])\.(?=[0-9])")
_THOUSANDS_COMMA = re.compile(r"(?<=[0-9]),(?=[0-9]{3}(?![0-9]))")


@dataclass
class Sentence:
    """One utterance for the acoustic model."""

    text: str  # the slice of input text this sentence covers
    phones: list[str]  # Baker symbols, e.g. ["sil","n","i3","#0","h","ao3","sil"]; eos NOT included
    pinyin: list[tuple[str, str]]  # (character, TONE3 pinyin) per spoken Han character


@dataclass
class FrontendResult:
    """Sentences to speak, plus a note for every run of input that could not be read."""

    sentences: list[Sentence]
    warnings: list[str]


@dataclass(frozen=True)
class _Syllable:
    index: int  # position in the normalized text
    char: str
    pinyin: str
    phones: list[str]


@dataclass(frozen=True)
class _Pause:
    index: int


_Token = _Syllable | _Pause


@dataclass
class _Warnings:
    """Collects one warning per skipped run, capped so that huge inputs cannot flood the caller."""

    lines: list[str] = field(default_factory=list)
    dropped: int = 0

    def skipped(self, run: str, position: int) -> None:
        """Record a run of input that has no Mandarin reading."""
        if len(self.lines) >= _MAX_WARNINGS:
            self.dropped += 1
            return
        shown = "".join(
            c if unicodedata.category(c) != "Cs" else f"\\u{ord(c):04x}" for c in run[:_MAX_SHOWN]
        )
        if len(run) > _MAX_SHOWN:
            shown += "…"
        self.lines.append(f'skipped "{shown}" at {position}: no Mandarin reading')

    def result(self) -> list[str]:
        """All warnings, with a summary line for those over the cap."""
        extra = [f"... and {self.dropped} more skipped runs"] if self.dropped else []
        return self.lines + extra


def text_to_sentences(text: str, max_chars: int = 40) -> FrontendResult:
    """Split `text` into sentences of at most `max_chars` Han characters and turn each into Baker phones."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    norm, origin = _normalize(text)
    warnings = _Warnings()
    sentences = []
    for match in _SENTENCE.finditer(norm):
        tokens = _tokenize(norm, match.start(), match.end(), origin, warnings)
        for start, end, chunk in _bound(tokens, max_chars, match.start(), match.end()):
            phones, pinyin = _phones(chunk)
            if phones:
                sentences.append(Sentence(text[origin[start] : origin[end - 1] + 1].strip(), phones, pinyin))
    return FrontendResult(sentences, warnings.result())


def _normalize(text: str) -> tuple[str, list[int]]:
    """Fold full-width ASCII, unify line breaks, drop control characters, spell digits.

    Returns the normalized text and, for each of its characters, the index it came from in `text`.
    """
    chars, origin = [], []
    for i, char in enumerate(text):
        folded = _fold(char)
        if folded:
            chars.append(folded)
            origin.append(i)
    norm = _THOUSANDS_COMMA.sub(" ", _DECIMAL_POINT.sub("点", "".join(chars)))
    return norm.translate(_DIGIT_TABLE), origin


def _fold(char: str) -> str:
    """One character's normalized form: "" for control/format characters."""
    code = ord(char)
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    if char in _LINE_BREAKS:
        return "\n"
    if char.isspace():
        return " "
    if unicodedata.category(char) in ("Cc", "Cf"):
        return ""
    return char


def _tokenize(norm: str, start: int, end: int, origin: list[int], warnings: _Warnings) -> list[_Token]:
    """Syllables and pauses of norm[start:end]; unreadable runs become warnings."""
    tokens: list[_Token] = []
    skip: list[int] = []  # first and last index of the current unreadable run
    i = start
    while i < end:
        char = norm[i]
        if is_han(char):
            j = i + 1
            while j < end and is_han(norm[j]):
                j += 1
            for k, reading in enumerate(readings(norm[i:j]), start=i):
                syllable = _syllable(k, norm[k], reading)
                if syllable is None:
                    skip = [skip[0] if skip else k, k]
                else:
                    _flush(skip, norm, origin, warnings)
                    tokens.append(syllable)
            i = j
            continue
        if char in PAUSES:
            _flush(skip, norm, origin, warnings)
            tokens.append(_Pause(i))
        elif not _is_silent(char):
            skip = [skip[0] if skip else i, i]
        i += 1
    _flush(skip, norm, origin, warnings)
    return tokens


def _syllable(index: int, char: str, reading: str | None) -> _Syllable | None:
    """A syllable token, or None when the character has no usable reading."""
    if reading is None:
        return None
    try:
        return _Syllable(index, char, reading, syllable_to_phones(reading))
    except ValueError:
        return None


def _is_silent(char: str) -> bool:
    """Whitespace and punctuation are skipped without a warning."""
    return char.isspace() or unicodedata.category(char).startswith("P")


def _flush(skip: list[int], norm: str, origin: list[int], warnings: _Warnings) -> None:
    """Emit a warning for the pending unreadable run, if any, and clear it."""
    if skip:
        first, last = skip
        warnings.skipped(norm[first : last + 1], origin[first])
        skip.clear()


def _bound(tokens: list[_Token], max_chars: int, start: int, end: int) -> list[tuple[int, int, list[_Token]]]:
    """Cut a sentence's tokens into chunks of at most max_chars syllables, with their text spans.

    Cuts after the last comma-class pause that fits, else hard-cuts (keeping an erhua 儿 with its host).
    """
    chunks: list[list[_Token]] = []
    current: list[_Token] = []
    count = 0
    for token in tokens:
        if isinstance(token, _Syllable):
            if count == max_chars:
                head, current = _cut(current, token, max_chars)
                chunks.append(head)
                count = sum(isinstance(t, _Syllable) for t in current)
            count += 1
        current.append(token)
    chunks.append(current)
    spans = []
    for n, chunk in enumerate(chunks):
        chunk_end = end if n == len(chunks) - 1 else chunk[-1].index + 1
        spans.append((start, chunk_end, chunk))
        start = chunk_end
    return spans


def _cut(current: list[_Token], following: _Syllable, max_chars: int) -> tuple[list[_Token], list[_Token]]:
    """Split a full chunk into (head, rest) so that `following` can join rest."""
    first = next(n for n, t in enumerate(current) if isinstance(t, _Syllable))
    for n in range(len(current) - 1, first, -1):
        if isinstance(current[n], _Pause):
            return current[: n + 1], current[n + 1 :]
    last = current[-1]
    if max_chars > 1 and isinstance(last, _Syllable) and _is_erhua(last, following):
        return current[:-1], [last]
    return current, []


def _is_erhua(host: _Syllable, token: _Syllable) -> bool:
    """Whether `token` is an erhua 儿 (read neutral) directly after `host`, to be fused with it."""
    return (
        token.char in _ERHUA_CHARS
        and token.pinyin == "er5"
        and token.index == host.index + 1
        and not host.phones[1].startswith("er")
    )


def _phones(chunk: list[_Token]) -> tuple[list[str], list[tuple[str, str]]]:
    """Phones (sil ... sil, or [] when nothing is spoken) and pinyin of one chunk."""
    phones: list[str] = []
    pinyin: list[tuple[str, str]] = []
    previous: _Syllable | None = None
    pause = False
    for token in chunk:
        if isinstance(token, _Pause):
            pause = previous is not None
            continue
        if previous is not None and _is_erhua(previous, token):
            phones.append(ERHUA_SUFFIX)
        else:
            if previous is not None:
                phones.append("#3" if pause else "#0")
            phones.extend(token.phones)
        pinyin.append((token.char, token.pinyin))
        previous, pause = token, False
    return (["sil", *phones, "sil"] if phones else []), pinyin
