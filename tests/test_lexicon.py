"""Tests for the pronunciation lexicon (qingyin.text.lexicon)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qingyin.text.lexicon import BUILTIN_PATH, Lexicon, LexiconError, builtin_lexicon
from qingyin.text.symbols import syllable_to_phones


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "user.tsv"
    path.write_text(text, encoding="utf-8")
    return path


# --- entries and validation ------------------------------------------------------------------------


def test_entries_as_string_or_sequence() -> None:
    lexicon = Lexicon({"重新": "chong2 xin1", "银行": ["yin2", "hang2"]})
    assert lexicon.lookup("重新") == ("chong2", "xin1")
    assert lexicon.lookup("银行") == ("yin2", "hang2")


def test_syllables_are_normalized() -> None:
    assert Lexicon({"绿女": "LÜ4 nu:3"}).lookup("绿女") == ("lv4", "nv3")


def test_lookup_of_missing_word_is_none() -> None:
    assert Lexicon({"银行": "yin2 hang2"}).lookup("银") is None


def test_len_and_contains() -> None:
    lexicon = Lexicon({"银行": "yin2 hang2", "行长": "hang2 zhang3"})
    assert len(lexicon) == 2
    assert "行长" in lexicon and "长大" not in lexicon and 3 not in lexicon
    assert len(Lexicon()) == 0 and len(Lexicon(None)) == 0


@pytest.mark.parametrize(
    ("word", "pinyin", "message"),
    [
        ("银行", "yin2", "2 characters but 1 syllables"),
        ("银行", "yin2 hang2 xing2", "2 characters but 3 syllables"),
        ("ATM机", "a1 t1 m1 ji1", "not all Han"),
        ("银行", "yin2 xx2", "not Mandarin pinyin"),
        ("银行", "yin hang2", "no tone digit"),
        ("", "", "empty word"),
    ],
)
def test_invalid_entries_are_rejected(word: str, pinyin: str, message: str) -> None:
    with pytest.raises(LexiconError, match=message):
        Lexicon({word: pinyin})


def test_lexicon_error_is_a_value_error() -> None:
    assert issubclass(LexiconError, ValueError)


# --- files ----------------------------------------------------------------------------------------


def test_from_file_reads_entries_comments_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "# my words\n\n银行\tyin2 hang2\n行长\thang2 zhang3  # bank president\n   \n")
    lexicon = Lexicon.from_file(path)
    assert len(lexicon) == 2 and lexicon.lookup("行长") == ("hang2", "zhang3")


def test_from_file_accepts_str_path(tmp_path: Path) -> None:
    assert "银行" in Lexicon.from_file(str(write(tmp_path, "银行\tyin2 hang2\n")))


def test_from_file_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "# header\n银行\tyin2 hang2\n行长\thang2 zhangg3\n")
    with pytest.raises(LexiconError, match=rf"{path.name}:3: .*'zhangg3'.*not Mandarin pinyin"):
        Lexicon.from_file(path)


def test_from_file_missing_tab_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "银行 yin2 hang2\n")
    with pytest.raises(LexiconError, match=r":1: expected 'word<TAB>pinyin'"):
        Lexicon.from_file(path)


def test_from_file_duplicate_word_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "银行\tyin2 hang2\n\n银行\tyin2 xing2\n")
    with pytest.raises(LexiconError, match=r":3: duplicate entry for '银行'"):
        Lexicon.from_file(path)


def test_from_file_count_mismatch_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "银行\tyin2 hang2\n长大\tzhang3\n")
    with pytest.raises(LexiconError, match=r":2: word '长大' has 2 characters but 1 syllables"):
        Lexicon.from_file(path)


# --- layering -------------------------------------------------------------------------------------


def test_layered_later_layers_win() -> None:
    base = Lexicon({"重庆": "chong2 qing4", "银行": "yin2 hang2"})
    user = Lexicon({"重庆": "zhong4 qing4"})
    request = {"重庆": "chong2 qing1", "长大": "zhang3 da4"}
    merged = base.layered(user, request)
    assert merged.lookup("重庆") == ("chong2", "qing1")
    assert merged.lookup("银行") == ("yin2", "hang2") and merged.lookup("长大") == ("zhang3", "da4")


def test_layered_returns_new_lexicon_and_skips_none() -> None:
    base = Lexicon({"银行": "yin2 hang2"})
    merged = base.layered(None, {"行长": "hang2 zhang3"})
    assert merged is not base and "行长" in merged
    assert "行长" not in base and len(base) == 1


def test_layered_validates_mapping_layers() -> None:
    with pytest.raises(LexiconError):
        Lexicon().layered({"银行": "yin2"})


def test_layered_lexicon_matches_new_lengths() -> None:
    merged = Lexicon({"银行": "yin2 hang2"}).layered({"中国银行": "zhong1 guo2 yin2 hang2"})
    assert merged.matches("中国银行") == [(0, 4, ("zhong1", "guo2", "yin2", "hang2"))]


# --- matches --------------------------------------------------------------------------------------


def test_matches_longest_at_a_position() -> None:
    lexicon = Lexicon({"长大": "zhang3 da4", "长大后": "zhang3 da4 hou4"})
    assert lexicon.matches("他长大后") == [(1, 4, ("zhang3", "da4", "hou4"))]


def test_matches_leftmost_wins_and_do_not_overlap() -> None:
    lexicon = Lexicon({"行长": "hang2 zhang3", "长大": "zhang3 da4"})
    assert lexicon.matches("行长大") == [(0, 2, ("hang2", "zhang3"))]


def test_matches_several_in_order() -> None:
    lexicon = Lexicon({"银行": "yin2 hang2", "行长": "hang2 zhang3"})
    assert [m[:2] for m in lexicon.matches("银行的行长和银行")] == [(0, 2), (3, 5), (6, 8)]


def test_matches_none() -> None:
    assert Lexicon().matches("银行") == []
    assert Lexicon({"银行": "yin2 hang2"}).matches("") == []
    assert Lexicon({"银行": "yin2 hang2"}).matches("银") == []


# --- built-in lexicon -----------------------------------------------------------------------------


def test_builtin_loads_once() -> None:
    assert builtin_lexicon() is builtin_lexicon()
    assert len(builtin_lexicon()) >= 30


def test_builtin_file_is_valid_line_by_line() -> None:
    lexicon = builtin_lexicon()
    for line in BUILTIN_PATH.read_text(encoding="utf-8").splitlines():
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        word, pinyin = content.split("\t")
        syllables = pinyin.split()
        assert len(syllables) == len(word) and lexicon.lookup(word) == tuple(syllables)
        for syllable in syllables:
            syllable_to_phones(syllable)


@pytest.mark.parametrize(
    ("word", "pinyin"),
    [("银行", "yin2 hang2"), ("行长", "hang2 zhang3"), ("重庆", "chong2 qing4"), ("长大", "zhang3 da4")],
)
def test_builtin_has_the_classic_entries(word: str, pinyin: str) -> None:
    assert builtin_lexicon().lookup(word) == tuple(pinyin.split())


@pytest.mark.parametrize(
    ("sentence", "target", "expected"),
    [
        ("他们有类似的经历。", "类似的", "lei4 si4 de5"),
        ("这两幅画很相似。", "相似", "xiang1 si4"),
        ("他高兴得像个孩子似的。", "似的", "shi4 de5"),
        ("飞行员推下操纵杆。", "操纵杆", "cao1 zong4 gan3"),
    ],
)
def test_builtin_entries_in_context(sentence: str, target: str, expected: str) -> None:
    """似 si4 compounds keep 似的 shi4 de5 from matching across a word boundary (类似/的)."""
    from qingyin.text.g2p import pinyin_of

    start = sentence.index(target)
    readings = [reading for _, reading in pinyin_of(sentence)[start : start + len(target)]]
    assert " ".join(readings) == expected
