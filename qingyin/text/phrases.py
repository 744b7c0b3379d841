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
PYPINYIN_PHRASE, CEDICT_PHRASE, PHRASE_PIECE, CORRECTED_PHRASE = "pypinyin", "cc-cedict", "piece", "corrected"

# Phrase entries that 现代汉语词典 reads otherwise than pypinyin (or CC-CEDICT), corrected where the word, or a
# piece cut from one, stands as a word: unlike the lexicon, which matches anywhere in the text, these never reach
# across words (对方/差点, 湖泊/地区). Words that jieba also cuts out of a word and a particle are left out: 书吧
# "book bar" (这是你的书吧？). 差 is chā "difference" in its compounds (方差, 色差; pypinyin has chà).
_CORRECTIONS: dict[str, str] = {
    "方差": "fang1 cha1", "高差": "gao1 cha1", "色差": "se4 cha1", "均差": "jun1 cha1", "外差": "wai4 cha1",
    "岁差": "sui4 cha1", "种差": "zhong3 cha1", "等差": "deng3 cha1", "级差": "ji2 cha1", "视差": "shi4 cha1",
    "补差": "bu3 cha1", "肥差": "fei2 chai1", "销差": "xiao1 chai1",  # chāi "errand"
    "运转": "yun4 zhuan3",  # 运转 yùnzhuǎn
    "泊地": "bo2 di4",  # an anchorage; 湖泊 is po1
    # CC-CEDICT's first readings that 现代汉语词典 reads otherwise (教学 jiàoxué "teaching"; 予 yú is "I")
    "教学": "jiao4 xue2", "不予": "bu4 yu3",
    # 现代汉语词典's readings of words the dictionaries misread or lack: 脯 fǔ in 脯氨酸, 劲 jìng "strong"
    # (劲歌 as 劲舞), 仔 zǎi "young animal", 杆 gān "pole", 乐 yuè "music", 传 zhuàn "biography", 咳 ké of a
    # cough, 燕 yān the state (南燕 as 前燕, 北燕), 降 jiàng in 比降 "gradient", 校 jiào in 校射 "to range fire",
    # 蒙 měng "Mongolia" (蒙藏)
    "脯氨酸": "fu3 an1 suan1", "劲歌": "jing4 ge1", "产仔": "chan3 zai3", "木杆": "mu4 gan1",
    "乐评": "yue4 ping2", "乐评人": "yue4 ping2 ren2", "传主": "zhuan4 zhu3", "咳咳": "ke2 ke2",
    "南燕": "nan2 yan1", "比降": "bi3 jiang4", "校射": "jiao4 she4", "蒙藏": "meng3 zang4",
    # 揣 chuāi "carry in the bosom" (怀揣梦想; 揣 chuǎi is "guess": 揣测), 靡 mǐ "bend in the wind" (风靡, 披靡),
    # 垛 duò "a stack" (草垛, 麦垛; duǒ is the jutting part of a wall: 城垛, 垛口)
    "怀揣": "huai2 chuai1", "风行草靡": "feng1 xing2 cao3 mi3",
    "草垛": "cao3 duo4", "麦垛": "mai4 duo4", "柴垛": "chai2 duo4",
    "古柏": "gu3 bai3",  # an old cypress (柏 bǎi; bó is in transliterations: 柏林)
}  # fmt: skip


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
    source: str  # PYPINYIN_PHRASE, CEDICT_PHRASE, PHRASE_PIECE or CORRECTED_PHRASE
    word: str  # the word (or piece) whose entry gave the reading


def phrase_evidence(word: str) -> list[Evidence | None]:
    """Per character of `word`, the phrase dictionaries' reading, or None.

    The whole word is looked up in pypinyin's phrases (as corrected by _CORRECTIONS), else in CC-CEDICT's, else
    it is cut into pieces by pypinyin's maximum matching and the pieces are looked up in pypinyin's phrases.
    """
    evidence: list[Evidence | None] = [None] * len(word)
    if len(word) < 2:
        return evidence
    if word in _CORRECTIONS:
        return [Evidence(r, CORRECTED_PHRASE, word) for r in _CORRECTIONS[word].split()]
    for dictionary, source in ((PHRASES_DICT, PYPINYIN_PHRASE), (_cedict_phrases(), CEDICT_PHRASE)):
        readings = _entry_readings(word, dictionary.get(word))
        if readings is not None:
            return [Evidence(r, source, word) if r else None for r in readings]
    offset = 0
    for piece in _mmseg.cut(word):
        readings = _piece_readings(piece) if len(piece) > 1 else None
        for index, reading in enumerate(readings or ()):
            evidence[offset + index] = Evidence(reading, PHRASE_PIECE, piece) if reading else None
        offset += len(piece)
    return evidence


def _piece_readings(piece: str) -> list[str | None] | None:
    """pypinyin's readings of a piece of a word, as corrected by _CORRECTIONS."""
    if piece in _CORRECTIONS:
        return list(_CORRECTIONS[piece].split())
    return _entry_readings(piece, PHRASES_DICT.get(piece))
