"""Grapheme-to-pinyin for Han text, via pypinyin (its dictionaries, phrase segmentation, tone sandhi)."""

from __future__ import annotations

import re
from itertools import groupby

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import RE_HANS

_READING = re.compile(r"[a-zêü]+[1-5]")
_NO_READING = "?"


def is_han(char: str) -> bool:
    """Whether `char` is a Han character as pypinyin sees it."""
    return len(char) == 1 and RE_HANS.match(char) is not None


def readings(han_run: str) -> list[str | None]:
    """TONE3 pinyin for each character of a run of Han characters; None where there is no reading."""
    raw = lazy_pinyin(
        han_run,
        style=Style.TONE3,
        errors=lambda chunk: [_NO_READING] * len(chunk),
        neutral_tone_with_five=True,
        tone_sandhi=True,
    )
    if len(raw) != len(han_run):  # never seen; keeps the 1:1 alignment the callers rely on
        raw = [r for char in han_run for r in readings(char)] if len(han_run) > 1 else [_NO_READING]
    return [r.replace("ü", "v") if r and _READING.fullmatch(r) else None for r in raw]


def pinyin_of(text: str) -> list[tuple[str, str]]:
    """(character, TONE3 pinyin) for each Han character of `text` that has a reading; ü is written v."""
    pairs = []
    for han, chars in groupby(text, key=is_han):
        if han:
            run = "".join(chars)
            pairs.extend((c, r) for c, r in zip(run, readings(run), strict=True) if r)
    return pairs
