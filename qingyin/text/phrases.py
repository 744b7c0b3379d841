"""Phrase dictionaries (pypinyin's phrases, CC-CEDICT via pypinyin-dict): the reading of each character of a word."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from pypinyin.constants import PHRASES_DICT, PINYIN_DICT
from pypinyin.contrib.tone_convert import to_tone3
from pypinyin.seg.mmseg import seg as _mmseg

_READING = re.compile(r"[a-zêv]+[1-5]")
_CITATION = {"一": "yi1", "不": "bu4"}  # the two characters whose tone sandhi dictionaries write out
PYPINYIN_PHRASE, CEDICT_PHRASE, PHRASE_PIECE = "pypinyin", "cc-cedict", "piece"


@cache
def tone3(marked: str) -> str | None:
    """TONE3 spelling (v for ü, 5 for neutral) of a tone-marked pypinyin syllable; None if not a syllable."""
    reading = to_tone3(marked, neutral_tone_with_five=True).replace("ü", "v")
    return reading if _READING.fullmatch(reading) else None


@cache
def default_reading(char: str) -> str | None:
    """pypinyin's most common reading of one character, or None if it has none."""
    readings = PINYIN_DICT.get(ord(char))
    return tone3(readings.split(",")[0]) if readings else None


@cache
def _cedict_phrases() -> dict[str, list[list[str]]]:
    """CC-CEDICT's phrases as pypinyin-dict ships them (read once, never loaded into pypinyin's globals)."""
    from pypinyin_dict.phrase_pinyin_data import cc_cedict

    return cc_cedict.phrases_dict


def _entry_readings(word: str, entry: list[list[str]] | None) -> list[str | None] | None:
    """First-choice TONE3 readings of a phrase-dictionary entry, if it has one per character of `word`."""
    if entry is None or len(entry) != len(word):
        return None
    return [_undo_sandhi(char, tone3(choices[0])) for char, choices in zip(word, entry, strict=True)]


def _undo_sandhi(char: str, reading: str | None) -> str | None:
    """Citation tone of 一 and 不, which pypinyin's phrases store already changed by sandhi (一个 yi2 ge4)."""
    if char in _CITATION and reading is not None and not reading.endswith("5"):
        return _CITATION[char]
    return reading


@dataclass(frozen=True)
class Evidence:
    """A phrase dictionary's reading of one character, and where it came from."""

    reading: str
    source: str  # PYPINYIN_PHRASE, CEDICT_PHRASE or PHRASE_PIECE
    word: str  # the word (or piece) whose entry gave the reading


def phrase_evidence(word: str) -> list[Evidence | None]:
    """Per character of `word`, the phrase dictionaries' reading, or None.

    The whole word is looked up in pypinyin's phrases, else in CC-CEDICT's, else it is cut into pieces by
    pypinyin's maximum matching and the pieces are looked up in pypinyin's phrases.
    """
    evidence: list[Evidence | None] = [None] * len(word)
    if len(word) < 2:
        return evidence
    for dictionary, source in ((PHRASES_DICT, PYPINYIN_PHRASE), (_cedict_phrases(), CEDICT_PHRASE)):
        readings = _entry_readings(word, dictionary.get(word))
        if readings is not None:
            return [Evidence(r, source, word) if r else None for r in readings]
    offset = 0
    for piece in _mmseg.cut(word):
        readings = _entry_readings(piece, PHRASES_DICT.get(piece)) if len(piece) > 1 else None
        for index, reading in enumerate(readings or ()):
            evidence[offset + index] = Evidence(reading, PHRASE_PIECE, piece) if reading else None
        offset += len(piece)
    return evidence
