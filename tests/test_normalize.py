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
    _ORDINARY_RULES,
    LETTER_READINGS,
    PUNCTUATION,
    SAY_AS,
    Normalized,
    _clean,
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
    "liang traditional width letters symbols mixed everyday"
).split() + ["year range", "two-digit year"]


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


def test_every_known_failure_says_why() -> None:
    with open(DATA / "normalization_known_failures.tsv", encoding="utf-8", newline="") as file:
        reasons = [row["reason"] for row in csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)]
    assert len(reasons) == len(KNOWN_FAILURES)
    assert all(reason and reason.strip() for reason in reasons)


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


# --- years: ranges, two-digit years and counts of years -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-24赛季", "二零二三到二四赛季"),
        ("2023-2024年", "二零二三到二零二四年"),
        ("2023—2024学年", "二零二三到二零二四学年"),
        ("2019~2022年", "二零一九到二零二二年"),
        ("2023/24财年", "二零二三到二四财年"),
        ("2022/2023赛季", "二零二二到二零二三赛季"),
        ("1990-95年", "一九九零到九五年"),
        ("1999-00赛季", "一九九九到零零赛季"),
        ("98-99赛季", "九八到九九赛季"),
        ("1990年-1995年", "一九九零年到一九九五年"),
        ("2019年至2023年", "二零一九年至二零二三年"),
        ("2024赛季", "二零二四赛季"),
        ("2019款", "二零一九款"),
        # not ranges of years: counts of years, and a second number that cannot follow the first year
        ("10-15年", "十到十五年"),
        ("3~5年", "三到五年"),
        ("3000款游戏", "三千款游戏"),
    ],
)
def test_year_ranges_read_digit_by_digit(text: str, expected: str) -> None:
    assert normalize(text).text == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("23年3月", "二三年三月"),
        ("在23年的时候", "在二三年的时候"),
        ("'23年", "二三年"),
        ("’23年", "二三年"),
        ("98年出生", "九八年出生"),
        ("他98年毕业", "他九八年毕业"),
        ("05年", "零五年"),
        ("从98年到05年", "从九八年到零五年"),
        ("成立于15年", "成立于一五年"),
        ("自98年以来", "自九八年以来"),
        ("截至23年底", "截至二三年底"),
    ],
)
def test_two_digit_years_read_digit_by_digit(text: str, expected: str) -> None:
    assert normalize(text).text == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("工作了23年", "工作了二十三年"),
        ("23年来", "二十三年来"),
        ("服刑23年", "服刑二十三年"),
        ("23年间", "二十三年间"),
        ("23年以来", "二十三年以来"),
        ("在23年里", "在二十三年里"),
        ("在23年的时间里", "在二十三年的时间里"),
        ("不少于15年", "不少于十五年"),
        ("存在23年", "存在二十三年"),
        ("干了12年多", "干了十二年多"),
        ("23年", "二十三年"),  # no word says it is a year: it stays a count, as before
        ("80年代", "八十年代"),
    ],
)
def test_counts_of_years_stay_cardinal(text: str, expected: str) -> None:
    assert normalize(text).text == expected


# --- full-width forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wide", "narrow"),
    [
        ("￥25.5", "¥25.5"),
        ("￥1,200", "¥1,200"),
        ("＄99", "$99"),
        ("﹩5", "$5"),
        ("￡15", "£15"),
        ("￦35000", "₩35000"),
        ("５０％", "50%"),
        ("5﹪", "5%"),
        ("＋８６ １３８１２３４５６７８", "+86 13812345678"),
        ("－５℃", "-5℃"),
        ("３～５天", "3~5天"),
        ("３—５天", "3-5天"),
        ("１＋１＝２", "1+1=2"),
        ("＃１", "#1"),
        ("ａ＠ｂ．ｃｏｍ", "a@b.com"),
        ("Ａ＆Ｂ", "A&B"),
        ("１０：３０开会", "10:30开会"),
        ("共1，200元", "共1,200元"),
        ("１２０㎡", "120m²"),
        ("５㎏", "5kg"),
        ("３㎞", "3km"),
    ],
)
def test_full_width_forms_read_like_half_width_ones(wide: str, narrow: str) -> None:
    assert normalize(wide).text == normalize(narrow).text
    assert normalize(wide).warnings == []


def test_full_width_yuan_keeps_its_yuan() -> None:
    assert normalize("￥25.5").text == "二十五点五元"
    assert normalize("￥1,200").text == "一千二百元"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("验证码为836204，5分钟内有效", "验证码为八三六二零四，五分钟内有效"),
        ("共有3，5个", "共有三，五个"),
        ("1，2000人", "一，两千人"),
    ],
)
def test_full_width_comma_between_digits_is_a_pause_unless_it_groups_thousands(text: str, expected: str) -> None:
    assert normalize(text).text == expected


def test_rules_skipped_for_a_missing_character_could_not_have_matched() -> None:
    for _, text, _ in CASES + KNOWN_FAILURES:
        text = _clean(text).text
        for pattern, replacement, needs in _ORDINARY_RULES:
            if needs not in text:
                assert pattern.search(text) is None, (pattern.pattern, text)
            else:
                text = pattern.sub(replacement, text)


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
