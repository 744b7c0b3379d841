"""Pronunciation lexicon: words whose reading is fixed, overriding the dictionaries and the polyphone model.

Three levels are layered, later ones winning: the built-in overrides (data/lexicon.tsv), a user's file, and
entries given per request. A lexicon file is UTF-8, one ``word<TAB>pin1 yin1`` entry per line (TONE3, one
syllable per character), with ``#`` comments and blank lines allowed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path

from .hanzi import is_han
from .markup import normalize_syllable

BUILTIN_PATH = Path(__file__).parent / "data" / "lexicon.tsv"


class LexiconError(ValueError):
    """An invalid lexicon entry; the message names where it came from and what is wrong."""


def _validated(word: str, pronunciation: Sequence[str] | str) -> tuple[str, ...]:
    """The entry's syllables, normalized (lower case, ü as v); raises ValueError saying what is wrong."""
    if not word:
        raise ValueError("empty word")
    if not all(is_han(char) for char in word):
        raise ValueError(f"word {word!r} is not all Han characters")
    syllables = pronunciation.split() if isinstance(pronunciation, str) else list(pronunciation)
    if len(syllables) != len(word):
        raise ValueError(f"word {word!r} has {len(word)} characters but {len(syllables)} syllables")
    normalized = []
    for syllable in syllables:
        if not isinstance(syllable, str) or not syllable.strip()[-1:].isdigit():
            raise ValueError(f"syllable {syllable!r} of {word!r} has no tone digit (1-5)")
        try:
            normalized.append(normalize_syllable(syllable))
        except ValueError:
            raise ValueError(f"syllable {syllable!r} of {word!r} is not Mandarin pinyin") from None
    return tuple(normalized)


class Lexicon:
    """Word → TONE3 syllables, one per character; immutable once built."""

    def __init__(self, entries: Mapping[str, Sequence[str] | str] | None = None) -> None:
        self._entries: dict[str, tuple[str, ...]] = {}
        for word, pronunciation in (entries or {}).items():
            try:
                self._entries[word] = _validated(word, pronunciation)
            except ValueError as error:
                raise LexiconError(f"lexicon entry {word!r}: {error}") from None
        self._index()

    def _index(self) -> None:
        """Remember the word lengths present, longest first, for leftmost-longest matching."""
        self._lengths = sorted({len(word) for word in self._entries}, reverse=True)

    @classmethod
    def from_file(cls, path: str | Path) -> Lexicon:
        """Read a ``word<TAB>pin1 yin1`` file; a bad or duplicate line raises LexiconError naming file:line."""
        path = Path(path)
        entries: dict[str, tuple[str, ...]] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            content = line.split("#", 1)[0].strip()
            if not content:
                continue
            fields = content.split("\t")
            if len(fields) != 2:
                raise LexiconError(f"{path}:{number}: expected 'word<TAB>pinyin', got {line!r}")
            word, pronunciation = fields[0].strip(), fields[1]
            if word in entries:
                raise LexiconError(f"{path}:{number}: duplicate entry for {word!r}")
            try:
                entries[word] = _validated(word, pronunciation)
            except ValueError as error:
                raise LexiconError(f"{path}:{number}: {error}") from None
        return cls(entries)

    def layered(self, *overrides: Lexicon | Mapping[str, Sequence[str] | str] | None) -> Lexicon:
        """A new lexicon: this one with each override laid over it in turn (later layers win)."""
        merged = dict(self._entries)
        for layer in overrides:
            if layer is None:
                continue
            merged.update((layer if isinstance(layer, Lexicon) else Lexicon(layer))._entries)
        combined = Lexicon()
        combined._entries = merged
        combined._index()
        return combined

    def lookup(self, word: str) -> tuple[str, ...] | None:
        """The syllables of `word`, or None if it is not in the lexicon."""
        return self._entries.get(word)

    def matches(self, text: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """(start, end, syllables) of lexicon words in `text`: leftmost-longest, non-overlapping, in order."""
        found = []
        start = 0
        while start < len(text) and self._lengths:
            match = self._longest_at(text, start)
            if match is None:
                start += 1
                continue
            found.append((start, start + len(match), self._entries[match]))
            start += len(match)
        return found

    def _longest_at(self, text: str, start: int) -> str | None:
        """The longest lexicon word that begins at `start`, if any."""
        for length in self._lengths:
            candidate = text[start : start + length]
            if len(candidate) == length and candidate in self._entries:
                return candidate
        return None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, word: object) -> bool:
        return word in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"Lexicon({len(self)} words)"


@cache
def builtin_lexicon() -> Lexicon:
    """The overrides shipped in qingyin/text/data/lexicon.tsv, read once."""
    return Lexicon.from_file(BUILTIN_PATH)
