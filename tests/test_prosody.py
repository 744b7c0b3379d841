"""Prosodic structure (#1/#2/#3 placement), raw-text splitting and sentence cutting."""

from __future__ import annotations

import pytest

from qingyin.text.prosody import cut_points, plan, split_raw


def _marks(words: list[str], mode: str = "marks") -> list[str]:
    syllables = [0 if w in "，。！？；：、" else len(w) for w in words]
    return plan(words, syllables, mode).after


def test_particles_lean_on_the_word_before():
    result = plan(["我", "的", "朋友"], [1, 1, 2])
    assert result.prosodic_words == [range(0, 2), range(2, 3)]
    assert _marks(["我", "的", "朋友"]) == ["#0", "#1", "#0"]


def test_lone_monosyllable_joins_a_short_neighbour():
    assert plan(["很", "好"], [1, 1]).prosodic_words == [range(0, 2)]
    assert plan(["在", "北京"], [1, 2]).prosodic_words == [range(0, 2)]


def test_prosodic_words_are_at_most_four_syllables_unless_one_word():
    result = plan(["中华人民共和国", "成立"], [7, 2])
    assert result.prosodic_words == [range(0, 1), range(1, 2)]
    for words in (["我", "很", "喜欢", "你们"], ["今天", "天气", "非常", "好"]):
        for unit in plan(words, [len(w) for w in words]).prosodic_words:
            assert sum(len(words[i]) for i in unit) <= 4


def test_comma_gives_hash3_and_sentence_end_gives_nothing():
    words = ["今天", "，", "我们", "出发", "。"]
    marks = _marks(words)
    assert marks[0] == "#3"
    assert marks[3] == "#0"  # last word: sil follows


def test_phrases_get_hash2_without_a_short_tail():
    words = ["我们", "明天", "上午", "一起", "去", "公园", "散步"]
    marks = _marks(words)
    assert "#2" in marks
    assert marks[-1] == "#0"
    # never a #2 that leaves fewer than three syllables before the end
    last_phrase = max(i for i, m in enumerate(marks) if m == "#2")
    assert sum(len(w) for w in words[last_phrase + 1 :]) >= 3


def test_plain_mode_keeps_only_punctuation_pauses():
    words = ["我们", "明天", "上午", "，", "一起", "去", "公园", "。"]
    assert set(_marks(words, "plain")) <= {"#0", "#3"}
    assert _marks(words, "plain")[2] == "#3"


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="plain"):
        plan(["你好"], [2], "fancy")


def test_split_raw_cuts_at_sentence_ends_and_keeps_everything():
    text = "第一句。第二句！第三句？“引号。”最后没有句号"
    pieces = list(split_raw(text))
    assert "".join(p for _, p in pieces) == text
    assert [p for _, p in pieces][:3] == ["第一句。", "第二句！", "第三句？"]
    assert pieces[3][1] == "“引号。”"
    assert all(text[offset : offset + len(p)] == p for offset, p in pieces)


def test_split_raw_keeps_decimals_and_splits_english_sentences():
    pieces = [p for _, p in split_raw("价格是3.5元. Next one. 好")]
    assert pieces[0] == "价格是3.5元. "
    assert pieces[1] == "Next one. "


def test_split_raw_bounds_pieces_without_breaking_numbers():
    text = ("很长的句子没有标点" * 50) + "12345678901234567890"
    pieces = list(split_raw(text, max_len=100))
    assert "".join(p for _, p in pieces) == text
    assert all(len(p) <= 100 for _, p in pieces)
    assert any(p.endswith("12345678901234567890") for _, p in pieces)


def test_split_raw_prefers_commas():
    text = "甲" * 60 + "，" + "乙" * 60
    pieces = [p for _, p in split_raw(text, max_len=100)]
    assert pieces[0].endswith("，")


def test_split_raw_handles_huge_input_lazily():
    pieces = split_raw("字" * 100_000, max_len=300)
    first = next(pieces)
    assert first[1] == "字" * 300


@pytest.mark.parametrize(("marks", "limit", "expected"), [
    (["#0"] * 4, 10, []),
    (["#0", "#1", "#0", "#3", "#0", "#1", "#0"], 5, [4]),  # the #3
    (["#0", "#2", "#0", "#1", "#0", "#0", "#0"], 5, [2, 4]),
    (["#0"] * 9, 4, [4, 8]),  # no boundary: the latest #0
    (["#1", "", "#1", "#0"], 2, [1, 3]),  # never between a host and its erhua
])
def test_cut_points(marks, limit, expected):
    cuts = cut_points(marks, limit)
    assert cuts == expected
    bounds = [0, *cuts, len(marks) + 1]
    assert all(b - a <= limit for a, b in zip(bounds, bounds[1:], strict=False))


def test_cut_points_rejects_a_zero_limit():
    with pytest.raises(ValueError):
        cut_points(["#0"], 0)
