"""Tone changes of connected speech: third-tone sandhi, 一 and 不, neutral tones, erhua.

Input is a sentence as words with their citation readings (TONE3, v for ü, 5 for neutral) and the prosodic
words they form; output is what is actually said. Readings the user fixed (inline pinyin, SSML <phoneme>) are
`locked`: they are never changed, but still count as context for their neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .numbers import DIGIT_NAMES, NUMERAL_CHARS

Reading = str | None

NUMERALS = frozenset(NUMERAL_CHARS)
_DIGIT_NAMES = frozenset(DIGIT_NAMES + "〇")
_PARTICLES = frozenset("吗吧呢啊呀哇哪啦嘛呗")
# Reduplicated verbs (看看) and kinship terms (妈妈) take a neutral second syllable; adverbs such as 常常,
# 渐渐, 天天 do not, so the rule is limited to these characters.
_NEUTRAL_REDUPLICATION = frozenset(
    "看说想试听走问谈聊找尝摸动歇算坐玩写读练洗擦查比劝帮等瞧逛跳笑商讨研学"
    "妈爸哥姐弟妹爷奶姥叔婶舅姑伯娃宝星猩蛐蝈太"
)
# 儿 closing these words is a syllable of its own, not the erhua suffix.
_NOT_ERHUA = frozenset(
    "女儿 儿子 婴儿 孤儿 幼儿 健儿 宠儿 患儿 胎儿 男儿 少儿 新生儿 混血儿 弃儿 孩儿 侄儿 孙儿 媳儿 乳儿 "
    "犬儿 鱼儿 花儿朵 育儿 托儿所 儿童 幸运儿 弄潮儿 宁馨儿 畸形儿 低能儿 早产儿 私生儿 双胞胎儿".split()
)


@dataclass(frozen=True)
class _Syllable:
    word: int
    char_index: int  # position within the word
    char: str


def apply_sandhi(
    words: Sequence[str],
    readings: Sequence[Sequence[Reading]],
    prosodic_words: Sequence[range] | None = None,
    locked: Sequence[Sequence[bool]] | None = None,
) -> list[list[Reading]]:
    """Spoken readings for each character of each word.

    `prosodic_words` groups consecutive word indices (ranges) into the units within which third-tone sandhi
    applies; by default each word is its own unit.
    """
    out = [list(r) for r in readings]
    fixed = [list(flags) for flags in locked] if locked is not None else [[False] * len(w) for w in words]
    _neutral_tones(words, out, fixed)
    _erhua(words, out, fixed)
    syllables = [_Syllable(w, i, c) for w, word in enumerate(words) for i, c in enumerate(word)]
    _yi_bu(syllables, out, fixed, words)
    for unit in prosodic_words if prosodic_words is not None else [range(w, w + 1) for w in range(len(words))]:
        _third_tone(unit, words, out, fixed)
    return out


def _tone(reading: Reading) -> str | None:
    return reading[-1] if reading else None


def _with_tone(reading: str, tone: str) -> str:
    return reading[:-1] + tone


def _set(out: list[list[Reading]], fixed: list[list[bool]], word: int, index: int, tone: str) -> None:
    reading = out[word][index]
    if reading is not None and not fixed[word][index]:
        out[word][index] = _with_tone(reading, tone)


# --- neutral tones -------------------------------------------------------------------------------------------


@cache
def neutral_tone_words() -> frozenset[str]:
    """Common words whose last syllable is neutral (现代汉语词典 轻声), from qingyin/text/data/neutral_tone.txt."""
    text = resources.files("qingyin.text").joinpath("data/neutral_tone.txt").read_text(encoding="utf-8")
    return frozenset(w for line in text.splitlines() for w in line.split("#", 1)[0].split())


def _neutral_tones(words: Sequence[str], out: list[list[Reading]], fixed: list[list[bool]]) -> None:
    listed = neutral_tone_words()
    for w, word in enumerate(words):
        last = len(word) - 1
        if len(word) >= 2 and word in listed:
            _set(out, fixed, w, last, "5")
        elif len(word) == 2 and word[0] == word[1] and word[0] in _NEUTRAL_REDUPLICATION:
            _set(out, fixed, w, 1, "5")
        elif word in _PARTICLES:
            _set(out, fixed, w, 0, "5")
        elif len(word) >= 2 and word[-1] in "们":
            _set(out, fixed, w, last, "5")
        # A-不-A questions (好不好, 是不是): the 不 is neutral.
        if len(word) == 3 and word[1] == "不" and word[0] == word[2]:
            _set(out, fixed, w, 1, "5")
        # V-一-V (看一看): the 一 is neutral.
        if len(word) == 3 and word[1] == "一" and word[0] == word[2]:
            _set(out, fixed, w, 1, "5")


# --- erhua ---------------------------------------------------------------------------------------------------


def is_erhua(word: str, index: int, reading: Reading) -> bool:
    """Whether character `index` of `word` is the erhua suffix 儿 (fused with the syllable before it)."""
    if word[index] != "儿" or index == 0 or reading is None or not reading.startswith("er"):
        return False
    return word not in _NOT_ERHUA and not any(word.endswith(w) for w in _NOT_ERHUA if len(w) < len(word))


def _erhua(words: Sequence[str], out: list[list[Reading]], fixed: list[list[bool]]) -> None:
    for w, word in enumerate(words):
        for i in range(1, len(word)):
            if is_erhua(word, i, out[w][i]) and not fixed[w][i]:
                out[w][i] = "er5"


# --- 一 and 不 -----------------------------------------------------------------------------------------------


def _yi_bu(syllables: list[_Syllable], out: list[list[Reading]], fixed: list[list[bool]], words: Sequence[str]) -> None:
    for n, syllable in enumerate(syllables):
        if syllable.char not in "一不" or fixed[syllable.word][syllable.char_index]:
            continue
        reading = out[syllable.word][syllable.char_index]
        if reading is None or _tone(reading) == "5":  # already neutral (看一看, 好不好)
            continue
        before = syllables[n - 1] if n > 0 else None
        after = syllables[n + 1] if n + 1 < len(syllables) else None
        next_tone = _tone(out[after.word][after.char_index]) if after else None
        if syllable.char == "不":
            tone = "2" if next_tone == "4" else "4"
        else:
            tone = _yi_tone(syllable, before, after, next_tone, words)
        _set(out, fixed, syllable.word, syllable.char_index, tone)


def _yi_tone(
    yi: _Syllable, before: _Syllable | None, after: _Syllable | None, next_tone: str | None, words: Sequence[str]
) -> str:
    """一 keeps tone 1 when counted or at a word's end, else changes with the next tone (一个 yi2, 一天 yi4)."""
    word = words[yi.word]
    at_word_end = yi.char_index == len(word) - 1 and len(word) > 1
    if after is None or at_word_end or word.startswith("第") or word in ("一月", "一号", "一楼", "一一"):
        return "1"
    if before is not None and (before.char in _DIGIT_NAMES or before.char in "十第"):  # 十一, 二零一九, 第一
        return "1"
    if before is not None and before.char in NUMERALS and after.char not in NUMERALS:  # 一千一 (1100)
        return "1"
    if after.char in _DIGIT_NAMES:  # 一二三, 一九九八
        return "1"
    if after.word != yi.word and len(word) == 1 and next_tone is None:
        return "1"
    if next_tone == "4":
        return "2"
    if next_tone in ("1", "2", "3"):
        return "4"
    return "1"


# --- third tone ------------------------------------------------------------------------------------------------


def _third_tone(unit: range, words: Sequence[str], out: list[list[Reading]], fixed: list[list[bool]]) -> None:
    """Inside each word, every tone 3 before another tone 3 becomes tone 2 (展览馆 zhan2 lan2 guan3); then,
    right to left across the word boundaries of the prosodic word, a word-final tone 3 before a tone 3 does
    too (很好 hen2 hao3, 我很好 wo3 hen2 hao3, 小老虎 xiao3 lao2 hu3)."""
    for w in unit:
        tones = [_tone(r) for r in out[w]]
        for i in range(len(words[w]) - 1):
            if tones[i] == "3" and tones[i + 1] == "3":
                _set(out, fixed, w, i, "2")
    for w in reversed(unit[:-1]):
        if not out[w] or not out[w + 1]:
            continue
        if _tone(out[w][-1]) == "3" and _tone(out[w + 1][0]) == "3":
            _set(out, fixed, w, len(words[w]) - 1, "2")
