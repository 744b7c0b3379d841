"""Tone sandhi, 一/不, neutral tones and erhua on hand-checked words (readings per 现代汉语词典)."""

from __future__ import annotations

import pytest

from qingyin.text.sandhi import apply_sandhi, is_erhua, neutral_tone_words
from qingyin.text.symbols import syllable_to_phones

# (words, citation readings, prosodic words as (start, stop) or None for one per word, expected spoken readings)
CASES = [
    (["你好"], ["ni3 hao3"], None, ["ni2 hao3"]),
    (["展览馆"], ["zhan3 lan3 guan3"], None, ["zhan2 lan2 guan3"]),
    (["小", "老虎"], ["xiao3", "lao3 hu3"], [(0, 2)], ["xiao3", "lao2 hu3"]),
    (["我", "很", "好"], ["wo3", "hen3", "hao3"], [(0, 3)], ["wo3", "hen2", "hao3"]),
    (["我", "很", "好"], ["wo3", "hen3", "hao3"], [(0, 1), (1, 3)], ["wo3", "hen2", "hao3"]),
    (["买", "米"], ["mai3", "mi3"], None, ["mai3", "mi3"]),
    (["买", "米"], ["mai3", "mi3"], [(0, 2)], ["mai2", "mi3"]),
    (["老鼠"], ["lao3 shu3"], None, ["lao2 shu3"]),
    (["水果"], ["shui3 guo3"], None, ["shui2 guo3"]),
    (["手表"], ["shou3 biao3"], None, ["shou2 biao3"]),
    (["可以"], ["ke3 yi3"], None, ["ke2 yi3"]),
    (["不是"], ["bu4 shi4"], None, ["bu2 shi4"]),
    (["不好"], ["bu4 hao3"], None, ["bu4 hao3"]),
    (["不对"], ["bu4 dui4"], None, ["bu2 dui4"]),
    (["不用"], ["bu4 yong4"], None, ["bu2 yong4"]),
    (["不能"], ["bu4 neng2"], None, ["bu4 neng2"]),
    (["不", "去"], ["bu4", "qu4"], None, ["bu2", "qu4"]),
    (["好不好"], ["hao3 bu4 hao3"], None, ["hao3 bu5 hao3"]),
    (["是不是"], ["shi4 bu4 shi4"], None, ["shi4 bu5 shi4"]),
    (["差不多"], ["cha4 bu5 duo1"], None, ["cha4 bu5 duo1"]),
    (["一个"], ["yi1 ge4"], None, ["yi2 ge4"]),
    (["一", "个"], ["yi1", "ge4"], None, ["yi2", "ge4"]),
    (["一天"], ["yi1 tian1"], None, ["yi4 tian1"]),
    (["一年"], ["yi1 nian2"], None, ["yi4 nian2"]),
    (["一起"], ["yi1 qi3"], None, ["yi4 qi3"]),
    (["一样"], ["yi1 yang4"], None, ["yi2 yang4"]),
    (["一定"], ["yi1 ding4"], None, ["yi2 ding4"]),
    (["一百"], ["yi1 bai3"], None, ["yi4 bai3"]),
    (["一万"], ["yi1 wan4"], None, ["yi2 wan4"]),
    (["统一"], ["tong3 yi1"], None, ["tong3 yi1"]),
    (["万一"], ["wan4 yi1"], None, ["wan4 yi1"]),
    (["第一"], ["di4 yi1"], None, ["di4 yi1"]),
    (["第", "一"], ["di4", "yi1"], None, ["di4", "yi1"]),
    (["十一"], ["shi2 yi1"], None, ["shi2 yi1"]),
    (["一二三"], ["yi1 er4 san1"], None, ["yi1 er4 san1"]),
    (["二零一九"], ["er4 ling2 yi1 jiu3"], None, ["er4 ling2 yi1 jiu3"]),
    (["一月"], ["yi1 yue4"], None, ["yi1 yue4"]),
    (["一", "。"], ["yi1", None], None, ["yi1", None]),
    (["看一看"], ["kan4 yi1 kan4"], None, ["kan4 yi5 kan4"]),
    (["一会儿"], ["yi1 hui4 er5"], None, ["yi2 hui4 er5"]),
    (["妈妈"], ["ma1 ma1"], None, ["ma1 ma5"]),
    (["看看"], ["kan4 kan4"], None, ["kan4 kan5"]),
    (["说说"], ["shuo1 shuo1"], None, ["shuo1 shuo5"]),
    (["常常"], ["chang2 chang2"], None, ["chang2 chang2"]),
    (["朋友"], ["peng2 you3"], None, ["peng2 you5"]),
    (["东西"], ["dong1 xi1"], None, ["dong1 xi5"]),
    (["谢谢"], ["xie4 xie4"], None, ["xie4 xie5"]),
    (["我们"], ["wo3 men5"], None, ["wo3 men5"]),
    (["同学们"], ["tong2 xue2 men2"], None, ["tong2 xue2 men5"]),
    (["好", "吗"], ["hao3", "ma1"], None, ["hao3", "ma5"]),
    (["走", "吧"], ["zou3", "ba1"], None, ["zou3", "ba5"]),
    (["哪儿"], ["na3 er2"], None, ["na3 er5"]),
    (["玩儿"], ["wan2 er2"], None, ["wan2 er5"]),
    (["女儿"], ["nv3 er2"], None, ["nv3 er2"]),
    (["儿子"], ["er2 zi5"], None, ["er2 zi5"]),
    (["婴儿"], ["ying1 er2"], None, ["ying1 er2"]),
]


def _unit_ranges(units: list[tuple[int, int]] | None) -> list[range] | None:
    return None if units is None else [range(a, b) for a, b in units]


def _split(readings: list[str | None], words: list[str]) -> list[list[str | None]]:
    return [r.split() if r else [None] * len(w) for r, w in zip(readings, words, strict=True)]


@pytest.mark.parametrize(("words", "citation", "units", "expected"), CASES, ids=["".join(c[0]) for c in CASES])
def test_spoken_readings(words, citation, units, expected):
    spoken = apply_sandhi(words, _split(citation, words), _unit_ranges(units))
    assert spoken == _split(expected, words)


def test_locked_readings_are_never_changed_but_still_context():
    # 一[yi1]个 as the user wrote it stays yi1; 不 still reacts to a locked tone-4 neighbour.
    spoken = apply_sandhi(["一个"], [["yi1", "ge4"]], locked=[[True, False]])
    assert spoken == [["yi1", "ge4"]]
    spoken = apply_sandhi(["不", "是"], [["bu4"], ["shi4"]], locked=[[False], [True]])
    assert spoken == [["bu2"], ["shi4"]]
    spoken = apply_sandhi(["你好"], [["ni3", "hao3"]], locked=[[True, True]])
    assert spoken == [["ni3", "hao3"]]


def test_inputs_are_not_mutated():
    citation = [["ni3", "hao3"]]
    apply_sandhi(["你好"], citation)
    assert citation == [["ni3", "hao3"]]


def test_unreadable_characters_pass_through():
    assert apply_sandhi(["你", "㐀", "好"], [["ni3"], [None], ["hao3"]], [range(0, 3)]) == [["ni3"], [None], ["hao3"]]


@pytest.mark.parametrize(("word", "index", "reading", "expected"), [
    ("哪儿", 1, "er2", True),
    ("一点儿", 2, "er5", True),
    ("女儿", 1, "er2", False),
    ("新生儿", 2, "er2", False),
    ("儿子", 0, "er2", False),
    ("哪儿", 0, "na3", False),
])
def test_is_erhua(word, index, reading, expected):
    assert is_erhua(word, index, reading) is expected


def test_neutral_tone_list_is_clean():
    words = neutral_tone_words()
    assert len(words) > 300
    assert all(len(w) >= 2 for w in words)
    assert "东西" in words and "大意" not in words  # sense-dependent words are left out


def test_every_sandhi_output_is_a_syllable_the_voice_can_say():
    for words, citation, units, _ in CASES:
        for readings in apply_sandhi(words, _split(citation, words), _unit_ranges(units)):
            for reading in readings:
                if reading is not None:
                    syllable_to_phones(reading)
