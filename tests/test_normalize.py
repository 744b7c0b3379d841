"""Text normalization: the hand-checked cases in tests/data, say_as, spelled letters, warnings and limits."""

from __future__ import annotations

import csv
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from qingyin.text.normalize import (
    LETTER_READINGS,
    PUNCTUATION,
    SAY_AS,
    Normalized,
    normalize,
)
from qingyin.text.numbers import read_digits, read_integer
from qingyin.text.symbols import syllable_to_phones

DATA = Path(__file__).parent / "data"


def load_cases(name: str) -> list[tuple[str, str, str]]:
    """(category, input, expected) rows of a case file."""
    with open(DATA / name, encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(row["category"], row["input"], row["expected"]) for row in reader]


CASES = load_cases("normalization_cases.tsv")
KNOWN_FAILURES = load_cases("normalization_known_failures.tsv")
CATEGORIES = (
    "cardinal decimal negative thousands year date time range percent fraction money phone unit ordinal score "
    "liang traditional width letters symbols mixed"
).split()


def is_allowed(char: str) -> bool:
    """What Normalized.text may contain: Han characters (incl. 〇) and PUNCTUATION."""
    code = ord(char)
    han = 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x3134F
    return han or char in PUNCTUATION or char == "〇"


def _case_id(case: tuple[str, str, str]) -> str:
    return f"{case[0]}:{case[1]}"


@pytest.mark.parametrize(("category", "text", "expected"), CASES, ids=list(map(_case_id, CASES)))
def test_case(category: str, text: str, expected: str) -> None:
    result = normalize(text)
    assert result.text == expected
    assert len(result.pinyin) == len(result.text)


@pytest.mark.xfail(strict=True, reason="known failure, kept with its correct reading")
@pytest.mark.parametrize(("category", "text", "expected"), KNOWN_FAILURES, ids=list(map(_case_id, KNOWN_FAILURES)))
def test_known_failure(category: str, text: str, expected: str) -> None:
    assert normalize(text).text == expected


def test_case_files_cover_every_category() -> None:
    counts = Counter(category for category, _, _ in CASES + KNOWN_FAILURES)
    assert len(CASES) + len(KNOWN_FAILURES) >= 160
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 7
    assert len(KNOWN_FAILURES) <= 10
    assert all(is_allowed(c) for _, _, expected in CASES + KNOWN_FAILURES for c in expected)


# --- number readings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "quantity", "spoken"),
    [
        ("0", False, "零"),
        ("10", False, "十"),
        ("15", False, "十五"),
        ("110", False, "一百一十"),
        ("1005", False, "一千零五"),
        ("10010", False, "一万零一十"),
        ("100010001", False, "一亿零一万零一"),
        ("100001000", False, "一亿零一千"),
        ("2", False, "二"),
        ("2", True, "两"),
        ("2000", True, "两千"),
        ("22", True, "二十二"),
        ("007", False, "七"),
    ],
)
def test_read_integer(digits: str, quantity: bool, spoken: str) -> None:
    assert read_integer(digits, quantity) == spoken


def test_read_digits_with_yao() -> None:
    assert read_digits("1010") == "一零一零"
    assert read_digits("1010", yao=True) == "幺零幺零"


# --- say_as -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("say_as", "text", "expected"),
    [
        ("digits", "123", "一二三"),
        ("digits", "房间号1208。", "房间号一二零八。"),
        ("digits", "密码是3.14", "密码是三点一四"),
        ("digits", "2024年", "二零二四年"),
        ("cardinal", "123", "一百二十三"),
        ("cardinal", "-1,234.5", "负一千二百三十四点五"),
        ("cardinal", "共12345人", "共一万二千三百四十五人"),
        ("cardinal", "2", "二"),
        ("telephone", "13812345678", "幺三八幺二三四五六七八"),
        ("telephone", "+86 (010) 1234-5678", "加八六零幺零幺二三四五六七八"),
        ("telephone", "400-800-1234", "四零零八零零幺二三四"),
        ("date", "2024-03-05", "二零二四年三月五日"),
        ("date", "2024/3/5", "二零二四年三月五日"),
        ("date", "2024年3月5日", "二零二四年三月五日"),
        ("date", "12月25日", "十二月二十五日"),
        ("characters", "AB12你好", "诶比一二你好"),
        ("characters", "2个", "二个"),
        ("characters", "3.14", "三点一四"),
    ],
)
def test_say_as(say_as: str, text: str, expected: str) -> None:
    assert normalize(text, say_as=say_as).text == expected


def test_say_as_characters_spells_letters_with_forced_pinyin() -> None:
    result = normalize("OK1", say_as="characters")
    assert result.text == "欧开一"
    assert result.pinyin == ["ou1", "kai1", None]


def test_unknown_say_as_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown say_as 'ordinal'") as error:
        normalize("1", say_as="ordinal")
    assert all(mode in str(error.value) for mode in SAY_AS)


# --- spelled letters ----------------------------------------------------------------------------------


def test_spelled_letters_carry_forced_valid_readings() -> None:
    result = normalize("我的GPS坏了。")
    assert result.text == "我的吉批艾斯坏了。"
    assert len(result.pinyin) == len(result.text)
    assert result.pinyin == [None, None, "ji2", "pi1", "ai4", "si1", None, None, None]


@pytest.mark.parametrize("letter", sorted(LETTER_READINGS))
def test_every_letter_is_spelled_with_valid_syllables(letter: str) -> None:
    upper, lower = normalize(letter), normalize(letter.lower())
    assert upper == lower
    assert upper.text == "".join(han for han, _ in LETTER_READINGS[letter])
    for syllable in upper.pinyin:
        assert syllable is not None
        assert syllable_to_phones(syllable)  # raises for a syllable the voice cannot say


def test_only_spelled_characters_are_forced() -> None:
    result = normalize("iPhone 15售价5999元。")
    spelled = "".join(c for c, p in zip(result.text, result.pinyin, strict=True) if p is not None)
    assert spelled == "艾批艾尺欧恩伊"
    assert result.text.endswith("十五售价五千九百九十九元。")


# --- dropped characters and warnings ------------------------------------------------------------------


def test_emoji_dropped_with_a_warning_pointing_into_the_input() -> None:
    result = normalize("你好😀世界")
    assert result == Normalized("你好世界", [None] * 4, ['dropped "😀" at 2: no Mandarin reading'])


def test_one_warning_per_run() -> None:
    family = "👨\u200d👩\u200d👧"
    text = f"全家{family}合影★★，真好♪"
    result = normalize(text)
    assert result.text == "全家合影，真好"
    assert result.warnings == [
        f'dropped "{family}" at 2: no Mandarin reading',
        f'dropped "★★" at {text.index("★")}: no Mandarin reading',
        f'dropped "♪" at {text.index("♪")}: no Mandarin reading',
    ]


@pytest.mark.parametrize("symbol", ["©", "★", "♪", "⚡", "\ue000", "α", "こ"])
def test_symbols_without_a_reading_are_dropped(symbol: str) -> None:
    result = normalize(f"好{symbol}的")
    assert result.text == "好的"
    assert result.warnings == [f'dropped "{symbol}" at 1: no Mandarin reading']


def test_lone_surrogate_is_dropped_and_shown_escaped() -> None:
    result = normalize("好\ud800的")
    assert result.text == "好的"
    assert result.warnings == ['dropped "\\ud800" at 1: no Mandarin reading']


def test_long_run_is_shown_capped() -> None:
    result = normalize("好" + "😀" * 30)
    assert result.warnings == ['dropped "' + "😀" * 24 + '…" at 1: no Mandarin reading']


def test_warnings_are_capped() -> None:
    result = normalize("字😀" * 60)
    assert result.text == "字" * 60
    assert len(result.warnings) == 51
    assert result.warnings[49] == 'dropped "😀" at 99: no Mandarin reading'
    assert result.warnings[-1] == "... and 10 more dropped runs"


def test_control_and_format_characters_are_dropped_silently() -> None:
    result = normalize("你\x00好\u200b世\ufeff界\x07")
    assert result == Normalized("你好世界", [None] * 4, [])


def test_quotes_brackets_and_dashes_are_dropped_silently() -> None:
    result = normalize("他说：“《三体》（第一部）——很好看……”")
    assert result.text == "他说：三体第一部很好看"
    assert result.warnings == []


# --- whitespace and punctuation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好\n世界", "你好，世界"),
        ("你好。\n世界", "你好。世界"),
        ("\n\n你好\n", "你好"),
        ("你好 世界", "你好，世界"),
        ("你好 OK", "你好欧开"),
        ("Hello, world!", "艾尺伊艾勒艾勒欧，达布溜欧阿尔艾勒迪！"),
        ("真的吗?!", "真的吗？"),
        ("好,。", "好。"),
        ("，。开头", "。开头"),  # one leading pause is kept: the text may continue a sentence
    ],
)
def test_whitespace_and_punctuation(text: str, expected: str) -> None:
    assert normalize(text).text == expected


def test_empty_input() -> None:
    assert normalize("") == Normalized("", [], [])
    assert normalize(" \t\n") == Normalized("", [], [])


@pytest.mark.parametrize(
    "text", ["1" * 300, "12" * 300, "-", "%", "$", "¥", "1/0", "0/0", "99:99:99", "9" * 40 + ".5", "½", "①", "ﬁ", "..."]
)
def test_odd_input_never_raises(text: str) -> None:
    result = normalize(text)
    assert all(is_allowed(c) for c in result.text)
    assert len(result.pinyin) == len(result.text)


def test_100k_characters_finish_with_only_allowed_characters() -> None:
    rng = random.Random(7)
    sentences = [text for _, text, _ in CASES]

    def arbitrary() -> str:  # any code point (surrogates, private use, emoji…) mixed with ASCII and digits
        return "".join(chr(rng.choice((rng.randrange(0x110000), rng.randrange(0x20, 0x7F)))) for _ in range(50))

    pieces: list[str] = []
    while sum(map(len, pieces)) < 100_000:
        pieces.append(rng.choice(sentences) if rng.random() < 0.7 else arbitrary())
    text = "".join(pieces)[:100_000]
    start = time.perf_counter()
    result = normalize(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 12, f"{elapsed:.1f} s"
    assert len(result.text) > 50_000
    assert all(is_allowed(c) for c in result.text)
    assert len(result.pinyin) == len(result.text)
    assert len(result.warnings) == 51


def test_does_not_import_torch() -> None:
    code = "import sys, qingyin.text.normalize as n; n.normalize('3个'); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
