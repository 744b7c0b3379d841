"""Word segmentation of normalized text: jieba, with lexicon words, punctuation and spelled-out numbers kept whole."""

from __future__ import annotations

import io
import logging
import re
import warnings
from array import array
from collections.abc import Iterable
from functools import cache
from itertools import groupby
from typing import TYPE_CHECKING

import numpy as np

from .lexicon import Lexicon, builtin_lexicon
from .numbers import DIGIT_NAMES, NUMERAL_CHARS

if TYPE_CHECKING:
    import jieba

PUNCTUATION = "，。！？；：、"


@cache
def tokenizer() -> jieba.Tokenizer:
    """One jieba tokenizer for the process, initialized quietly on first use."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jieba imports the deprecated pkg_resources
        import jieba
    jieba.setLogLevel(logging.WARNING)
    instance = jieba.Tokenizer()
    instance.initialize()
    return instance


def word_tag(word: str) -> str:
    """jieba's dictionary part-of-speech tag of `word` (n, v, a, r, m, q, ...; "x" if it has none)."""
    return _word_tags().tag(word)


class _WordTags:
    """jieba's 349,000 word tags in 3 MB: sorted 64-bit hashes of the words and a tag code for each.

    A dict of the words (what jieba.posseg keeps) costs 46 MB more resident memory; a hash collision between
    two dictionary words, at 64 bits, is not a practical concern.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        hashes, codes = array("q"), array("B")
        self._names: list[str] = []
        numbers: dict[str, int] = {}
        for line in lines:
            fields = line.split()
            if len(fields) != 3:
                continue
            word, _, tag = fields
            if tag not in numbers:
                numbers[tag] = len(self._names)
                self._names.append(tag)
            hashes.append(hash(word))
            codes.append(numbers[tag])
        keys = np.frombuffer(hashes, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        self._hashes = keys[order]
        self._codes = np.frombuffer(codes, dtype=np.uint8)[order]

    def tag(self, word: str) -> str:
        key = hash(word)
        index = int(np.searchsorted(self._hashes, key))
        if index < len(self._hashes) and self._hashes[index] == key:
            return self._names[self._codes[index]]
        return "x"


@cache
def _word_tags() -> _WordTags:
    with tokenizer().get_dict_file() as file:
        return _WordTags(io.TextIOWrapper(file, encoding="utf-8"))


_NUMBER = re.compile(f"[{NUMERAL_CHARS}](?:[{NUMERAL_CHARS}]|点(?=[〇{DIGIT_NAMES}]))+")


def segment(text: str, lexicon: Lexicon | None = None) -> list[str]:
    """Words of a normalized sentence; every punctuation mark and every lexicon match is a word of its own.

    The lexicon defaults to the built-in one. "".join(segment(text)) == text.
    """
    lexicon = builtin_lexicon() if lexicon is None else lexicon
    words: list[str] = []
    position = 0
    for start, end, _ in lexicon.matches(text):
        words.extend(_segment_plain(text[position:start]))
        words.append(text[start:end])
        position = end
    words.extend(_segment_plain(text[position:]))
    return words


def _segment_plain(text: str) -> list[str]:
    """jieba words of `text`, with each punctuation mark split off as its own token and each spelled-out number
    (what normalization made of digits) kept whole: jieba would cut 二零二四年 into 二零二 / 四年."""
    words: list[str] = []
    for is_mark, run in groupby(text, key=lambda char: char in PUNCTUATION):
        chunk = "".join(run)
        if is_mark:
            words.extend(chunk)
            continue
        position = 0
        for number in _NUMBER.finditer(chunk):
            if len(number.group()) >= 3 or any(c in "零〇" for c in number.group()):
                words.extend(tokenizer().cut(chunk[position : number.start()], HMM=True))
                words.append(number.group())
                position = number.end()
        words.extend(tokenizer().cut(chunk[position:], HMM=True))
    return words
