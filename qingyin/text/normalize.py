"""Text normalization for the Mandarin frontend: arbitrary text → Han characters and pause punctuation.

    from qingyin.text.normalize import normalize
    normalize("会议定于2024年3月5日下午3:30开始。").text  # '会议定于二零二四年三月五日下午三点三十分开始。'

Ordinary text goes through four stages:

1. Unicode clean-up: traditional → simplified (zhconv), full-width ASCII and signs → half-width (￥ → ¥,
   ㎡ → m²; "，" stays a pause), control and format characters dropped, and every run of characters with no
   Mandarin reading (emoji, ©, ★, private use…) dropped with a warning that points into the input.
2. Our own rules for what wetext reads wrongly: phone numbers, dates, years and ranges of years (2023-24赛季,
   98年出生), times and scores, money, percentages, ranges, versions and IP addresses, thousands separators,
   两 versus 二, a few units.
3. The wetext WFST normalizer on whatever digits are left, called on short windows around them so that
   long inputs stay linear.
4. Clean-up of wetext's output: ASCII punctuation → Chinese, quotes/brackets/dashes dropped, whitespace
   between Han characters → "，", Latin letters spelled with Han characters whose pinyin is forced.

`say_as` replaces stage 2 and 3 for the digits with one fixed reading (digits, cardinal, telephone, date,
characters). Nothing here imports torch.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from .hanzi import is_han
from .markup import SAY_AS
from .numbers import DIGIT_NAMES, read_digits, read_integer, read_number

if TYPE_CHECKING:
    from wetext import Normalizer

__all__ = ["PUNCTUATION", "SAY_AS", "Normalized", "normalize", "wetext_baseline"]

_log = logging.getLogger(__name__)

PUNCTUATION = "，。！？；：、"  # the only non-Han characters allowed in Normalized.text


@dataclass
class Normalized:
    """Normalized text, forced readings for characters we spelled ourselves, and what was dropped."""

    text: str  # only Han characters and the punctuation in PUNCTUATION
    pinyin: list[str | None]  # per character of text: forced TONE3 reading (v for ü, 5 neutral), else None
    warnings: list[str]  # one per dropped run, e.g. 'dropped "😀" at 5: no Mandarin reading'


# --- stage 1: unicode clean-up -------------------------------------------------------------------------

_MAX_WARNINGS = 50
_MAX_SHOWN = 24
_LINE_BREAKS = frozenset("\n\r\v\f\x85\u2028\u2029")
# Readable although not Han: they are spoken, turned into pauses, or dropped silently in stage 4.
_SILENT_MARKS = frozenset("“”‘’„‟‹›«»「」『』〝〞（）【】〔〕〖〗〈〉《》—–‒―‐‑﹣…⋯·•‧・〃〜～")
_NUMBER_SIGNS = frozenset("%‰℃℉°²³¥$€£₩±×÷≈≤≥−")
_DASHES = str.maketrans({"−": "-", "–": "-", "‑": "-", "‐": "-", "﹣": "-", "―": "—", "～": "~", "〜": "~", "｡": "。"})
_SQUARED_POWERS = str.maketrans({"2": "²", "3": "³"})  # ㎡ is m² (NFKC says m2)
_SMALL_COMMA = "﹐"


def _compatibility_form(char: str) -> str:
    """Full-width signs outside U+FF01..FF5E, small form variants and squared units: ￥ → ¥, ﹪ → %, ㎏ → kg,
    ㎡ → m²; the character itself where its ordinary form is no plain text (￣, ㏂)."""
    if char == _SMALL_COMMA:
        return "，"
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) == 1:
        return folded
    if folded.isascii() and folded.isalnum() and folded[0].isalpha():
        return folded[:-1] + folded[-1].translate(_SQUARED_POWERS)
    return char


def _is_readable(char: str) -> bool:
    """Whether a cleaned character has a place in Mandarin text (else it is dropped with a warning)."""
    return (
        is_han(char)
        or " " <= char <= "~"
        or char in PUNCTUATION
        or char in _SILENT_MARKS
        or char in _NUMBER_SIGNS
        or char == "\n"
    )


@cache
def _zhconv_convert() -> Callable[[str, str], str]:
    """zhconv's converter, imported once and quietly (it imports the deprecated pkg_resources)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import zhconv
    return zhconv.convert


def _to_simplified(text: str) -> str:
    """Traditional → simplified; kept character for character so positions still map to the input."""
    if not any(ord(c) >= 0x3400 for c in text):
        return text
    try:
        converted = _zhconv_convert()(text, "zh-cn")
    except Exception:  # zhconv chokes on nothing we know of, but a bad character must not lose the text
        return text
    return converted if len(converted) == len(text) else text


def _fold(char: str) -> str:
    """One character → its half-width, line-break and dash canonical form ('' to drop it silently)."""
    code = ord(char)
    if 0xFF01 <= code <= 0xFF5E:
        # "，" stays the Chinese comma: between digits it is a pause (验证码836204，5分钟内有效) far more often than
        # a thousands separator; stage 2 reads 1，200 as thousands only where it has that form.
        char = "，" if char == "，" else chr(code - 0xFEE0)
    elif 0xFFE0 <= code <= 0xFFE6 or 0xFE50 <= code <= 0xFE6B or 0x3380 <= code <= 0x33DF:
        return _compatibility_form(char).translate(_DASHES)
    elif char in _LINE_BREAKS:
        return "\n"
    elif char == "\t" or unicodedata.category(char) == "Zs":
        return " "
    category = unicodedata.category(char)
    if category in ("Cc", "Cf"):
        return ""
    if category == "No" and char not in _NUMBER_SIGNS:  # ① → 1, ½ → 1/2; other numerals stay unreadable
        compatible = unicodedata.normalize("NFKC", char).replace("⁄", "/")
        if compatible and all(c in "0123456789/" for c in compatible):
            return compatible
    if category.startswith("L") and not is_han(char) and not char.isascii():
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        if base.isascii() and base.isalpha():  # é → e, ﬁ → fi; other scripts keep their letters
            return base
    return char.translate(_DASHES)


@dataclass
class _Cleaned:
    text: str
    warnings: list[str]


def _show(run: str) -> str:
    """A dropped run as it appears in a warning: capped, lone surrogates escaped so it can be printed."""
    shown = "".join(c if unicodedata.category(c) != "Cs" else f"\\u{ord(c):04x}" for c in run[:_MAX_SHOWN])
    return shown + "…" if len(run) > _MAX_SHOWN else shown


def _warning_lines(runs: list[tuple[int, str]], offset: int) -> list[str]:
    """One line per dropped run (positions shifted by `offset`), capped at _MAX_WARNINGS plus a summary line."""
    lines = [f'dropped "{_show(run)}" at {offset + start}: no Mandarin reading' for start, run in runs[:_MAX_WARNINGS]]
    if len(runs) > _MAX_WARNINGS:
        lines.append(f"... and {len(runs) - _MAX_WARNINGS} more dropped runs")
    return lines


def _clean(text: str, offset: int = 0) -> _Cleaned:
    """Stage 1: fold the text to the characters later stages know, and warn about each unreadable run."""
    simplified = _to_simplified(text)
    kept: list[str] = []
    runs: list[tuple[int, str]] = []
    run_start: int | None = None  # input index where the current unreadable run began
    for index, char in enumerate(simplified):
        folded = _fold(char)
        if not folded:
            continue
        # Combining marks and emoji modifiers belong to what they follow: part of an emoji run, else silent.
        attached = len(folded) == 1 and unicodedata.category(folded) in ("Mn", "Me", "Mc", "Sk")
        attached = attached and not folded.isascii()
        if attached and run_start is None:
            continue
        if attached or (len(folded) == 1 and not _is_readable(folded)):  # ½ → 1/2 or ﬁ → fi are readable
            if run_start is None:
                run_start = index
            continue
        if run_start is not None:
            runs.append((run_start, text[run_start:index]))
            run_start = None
        kept.append(folded)
    if run_start is not None:
        runs.append((run_start, text[run_start:]))
    return _Cleaned("".join(kept), _warning_lines(runs, offset))


# --- stage 2: our rules before wetext -----------------------------------------------------------------

_NUM = r"\d+(?:\.\d+)?"
_THOUSANDS = re.compile(r"(?<![\d.,，])\d{1,3}(?:([,，])\d{3})(?:\1\d{3})*(?![\d]|[,，]\d)")
# GB/T 15834 marks ranges with a single — as well: 3—5天, 14:00—16:00, 3月1日—31日, 20%—30%, ￥99—￥199.
_EM_DASH_IN_RANGE = re.compile(r"(?<=[\d%‰℃日号月])—(?=\d|[¥$€£₩]\d)")
_LETTER_HYPHEN = re.compile(r"(?<=[A-Za-z])-(?=\d)|(?<=\d)-(?=[A-Za-z])")  # COVID-19 is no minus sign

_INTERNATIONAL_PHONE = re.compile(r"\+\s?(\d{1,3})[\s-]?((?:\(?\d{1,4}\)?[\s-]?)?\d{3,4}[\s-]?\d{4})(?![\d.])")
_MOBILE_PHONE = re.compile(r"(?<![\d.])1[3-9]\d(?:([\s-]?)\d{4}\1\d{4}|\d{8})(?![\d.])")
_LANDLINE_PHONE = re.compile(r"(?<![\d.])(?:\(0\d{2,3}\)|0\d{2,3}-)\s?\d{7,8}(?![\d.])")
_SERVICE_PHONE = re.compile(r"(?<![\d.])[48]00[\s-]?\d{3}[\s-]?\d{4}(?![\d.])")

_DATE = re.compile(r"(?<![\d.])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\d.])(?:\s*[日号])?")
_MONTH_DAY = re.compile(r"(?<![\d.])(\d{1,2})月(\d{1,2})([日号])")
_DAY = re.compile(r"(?<![\d.])(\d{1,2})日(?!游)")
# G1234 and CA1234 are codes; B2 and A12 names with a number, when nothing follows that could be a unit or a sign.
_NUMBER_AFTER_LETTERS = re.compile(r"(?<=[A-Za-z])(?:\d{3,}(?![\d.])|\d{1,2}(?=[\u4e00-\u9fff\s，。！？；、,!?;]|$))")
_ROOM = re.compile(r"(?<![\d.])\d{3,4}(?=室)")  # 1501室 is a room, not a quantity
_CODE_WORDS = "号码|账号|编号|单号|卡号|工号|学号|证号|尾号|房间号|门牌号|QQ号|拨打|致电|热线|密码|验证码|取件码|邮编"
_CODE_AFTER_WORDS = re.compile(rf"({_CODE_WORDS})(是|为|:)?\s*(\d{{3,}})(?![\d.])")
_DOTTED_NUMBERS = re.compile(r"(?<![\d.])\d+(?:\.\d+){2,}(?![\d])")

_SCORE_WORDS_BEFORE = "比分|比赛|战胜|击败|负于|输给|打成|战平|逆转|大比分|总比分"
_SCORE_WORDS_AFTER = "获胜|取胜|胜出|战胜|击败|险胜|大胜|完胜|告负|落败|惜败|赢|输|战平|逆转"
_SCORE_BEFORE = re.compile(
    rf"({_SCORE_WORDS_BEFORE})(为|是|以|定格在|来到)?\s*(\d{{1,3}})\s*[:比-]\s*(\d{{1,3}})(?![\d:])"
)
_SCORE_AFTER = re.compile(rf"(?<![\d.:])(\d{{1,3}})\s*[:-]\s*(\d{{1,3}})(?![\d:])(?=\s*(?:{_SCORE_WORDS_AFTER}))")
_TIME = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
_DURATION_CLOCK = re.compile(rf"(成绩是?|成绩为|用时|耗时|时长为?|历时)\s*{_TIME}(?![\d:])")
_TIME_SPAN = re.compile(
    rf"(?<![\d.:]){_TIME}(?![\d:])(?:\s*([-~至到])\s*{_TIME}(?![\d:]))?(?:\s*([AaPp])\.?[Mm]\.?(?![A-Za-z]))?"
)

_CURRENCIES = {"¥": "元", "$": "美元", "US$": "美元", "HK$": "港元", "€": "欧元", "£": "英镑", "₩": "韩元"}
_MONEY = re.compile(
    rf"(US\$|HK\$|[¥$€£₩])\s*(-?{_NUM})(?:\s*[-~至到]\s*(?:US\$|HK\$|[¥$€£₩])?\s*({_NUM}))?\s*([万亿千百]*)(元|块)?"
)
# 5999.00元 is 五千九百九十九元 and 86.50元 八十六点五元: trailing zeros of an amount are not read.
_TRAILING_ZEROS = re.compile(r"(?<=\d)\.(\d??)0+(?=\s*(?:元|美元|欧元|英镑|港元|韩元|块))")
_PER_UNIT_PRICE = re.compile(r"(?<=[元块])\s*/\s*(?=[\u4e00-\u9fff])")  # 10元/斤 → 十元每斤
_PERCENT_RANGE = re.compile(rf"(?<![\d.])(-?{_NUM})\s*(%?)\s*[-~至到]\s*(-?{_NUM})\s*([%‰])")
_PERCENT = re.compile(rf"(?<![\d.])(-?{_NUM})\s*([%‰])")
_NUMBER_RANGE = re.compile(rf"(?<![\d.])({_NUM})\s*[-~]\s*(?={_NUM}(?![\d.]*\s*[=+×÷*/]))")
_SPEED = re.compile(rf"(时速|速度为?|车速|风速)\s*({_NUM})\s*(?:km/h|公里/小时|千米/小时)")
_UNITS = {
    "kWh": "千瓦时", "kW": "千瓦", "mAh": "毫安时", "GHz": "吉赫兹", "MHz": "兆赫兹", "kHz": "千赫兹",
    "Hz": "赫兹", "mL": "毫升", "V": "伏", "W": "瓦", "Gbps": "吉比特每秒", "Mbps": "兆比特每秒", "kbps": "千比特每秒",
    "g": "克", "mmol/L": "毫摩尔每升",
}  # fmt: skip
_UNIT = re.compile(
    rf"(?<![\d.])({_NUM})(?:\s*[-~]\s*({_NUM}))?\s*({'|'.join(sorted(_UNITS, key=len, reverse=True))})"
    r"(?![A-Za-z]|网|手机|信号)"  # not 5g网络
)
_DEGREES = r"(?:℃|°C|℉|°F)"
_TEMPERATURE = re.compile(
    rf"(?<![\d.])(-?{_NUM})(?:\s*{_DEGREES}?\s*[-~至到]\s*(-?{_NUM}))?\s*({_DEGREES})(?![A-Za-z])"
)
# 3月5日-7日, and 3月1日-3月31日 whose second date is 三月三十一日 by now
_DATE_RANGE = re.compile(r"(?<=[日号月])\s*[-~]\s*(?=\d|[一二三四五六七八九十]{1,3}月)")
_ORDINAL = re.compile(rf"第\s*({_NUM})(?:\s*[-~]\s*({_NUM}))?")  # 第1-3名 → 第一到三名
_NEGATIVE = re.compile(r"(?<![\dA-Za-z.])-(?=\d)")
_FRACTION = re.compile(r"(?<![\d./])(\d{1,3})/(\d{1,3})(?![\d/])")
# A plain number between Han characters or punctuation: read here, the way wetext reads it, because wetext
# costs about 0.1 ms a character. What needs wetext's judgement (a bare 2, leading zeros, service numbers,
# long numbers at the end of a phrase) is left to it; see _plain_number.
_PLAIN_NUMBER = re.compile(r"(?<![\dA-Za-z.,+\-/:%$¥€£₩])(\d+)(\.\d+)?(?=[\u4e00-\u9fff〇，。！？；、]|$)")
_SERVICE_NUMBERS = frozenset({"110", "112", "114", "119", "120", "122"})  # wetext reads them 幺幺零 by context
# Ranges of years, seasons and fiscal years, read digit by digit like a single year: 2023-2024年, 2023-24赛季,
# 1990-95年, 2023/24财年, 98-99赛季 (two two-digit years only before a season word: 10-15年 counts years).
_YEAR_RANGE = re.compile(
    r"(?<![\d.:~$¥€£₩-])(\d{4}|\d{2})(年?)\s*([-~到至—/])\s*(\d{4}|\d{2})(?![\d.])(?=\s*(年|赛季|学年|财年|财政年度))"
)
_TWO_DIGIT_YEAR = re.compile(r"(?<![\d.:~$¥€£₩第-])(\d{2})年(?!代)")  # 80年代 stays 八十年代
# What tells a two-digit year (98年出生, 在23年, 23年3月) from a count of years (工作了23年, 23年来): words right
# before it or right after its 年. Without such a word it stays a count, as wetext reads it.
_YEAR_WORDS_BEFORE = re.compile(
    r"(?:(?<![存现实所正好])在|从|自|(?<![少多高低大小等长短过当])于|(?<=[年等直])[到至]|截至|截止)$"
)
_YEAR_WORDS_AFTER = re.compile(
    r"\d{1,2}月|出生|生人|毕业|入学|入职|参军|参加工作|结婚|退休|成立|创立|创办|建成|开业|上市|高考|中考|考研"
    r"|[初底末春夏秋冬款版]|上半年|下半年|的时候|那会|那年"
)
_COUNT_WORDS_AFTER = re.compile(r"[里间内来多后前半零了余之的]|以上|以下|左右|时间")  # 在23年的经验里 counts
# After 19xx or 20xx, like 年: 2024赛季 is 二零二四赛季. 届, 款 and 版 are also measure words (3000款游戏), so
# not after round hundreds.
_SEASON_WORDS = ("赛季", "财年", "学年")
_MODEL_YEAR_WORDS = "届款版"
_GENERATION = re.compile(r"(?<![\d.点第])(?:[5-9][05]|0[05])(?=后)")  # 80后, 95后, 00后: 八零后 (born in the 80s)
_AROUND_THE_CLOCK = re.compile(r"(?<![\d./])24/7(?![\d./])")
# A height or a race time with its smaller part said digit by digit: 1米85 → 一米八五, 9秒83 → 九秒八三.
_WHOLE_AND_DIGITS = re.compile(r"(?<![\d.])(?:[12]米[1-9]\d?|\d{1,2}秒\d{2})(?![\d.A-Za-z]|\s*(?:厘米|公分|毫米))")
_DISCOUNT = re.compile(r"(?<![\d.~第-])[2-9][1-9](?=折(?![叠合算旧射]))")  # 85折 → 八五折 (85 %), not 八十五折
_DURATION_YEARS = re.compile(r"(共|约|近|长达|历时|历经|经过|用了|花了|持续|超过|多达|将近|整整|足足)(\d{4})(?=年)")

# 2 before a measure word counts things: 两个, 两次, 两点 (o'clock), 两到三个. Ordinal contexts (第2, 2号, 2月, 2楼)
# and 2 inside a bigger number stay 二, because the lookbehind and the list leave them alone.
_MEASURE_WORDS = (
    "个 本 只 位 次 天 年 件 辆 家 周 名 篇 首 道 场 条 张 台 项 种 份 倍 股 组 块 元 斤 公斤 千克 克 吨 升 "
    "毫升 米 公里 千米 厘米 小时 分钟 秒钟 秒 点 岁 人 趟 遍 把 杯 瓶 碗 双 对 套 匹 头 棵 架 艘 座 所 间 部 "
    "集 支 根 片 粒 颗 轮 届 季 声 句 步 口 回 盘 局 票 笔 封 幅 枚 扇 盏 顿 样 类 节 门 群 批 栋 户 亩 公顷 "
    "星期 礼拜 百 千 万 亿 分 款 位数 大 亿元 万元"
).split()
_LIANG = re.compile(
    r"(?<![\d.第A-Za-z])2(?![\d.])(?=(?:[到至]\d+)?\s*(?:"
    + "|".join(sorted(set(_MEASURE_WORDS), key=len, reverse=True))
    + r"))(?!\s*(?:年级|分之|点\d))"
)


def _drop_thousands_separators(match: re.Match[str]) -> str:
    return match.group(0).replace(",", "").replace("，", "")


def _digits(match: re.Match[str]) -> str:
    return read_digits(match.group(0))


def _digits_yao(match: re.Match[str]) -> str:
    """A phone number digit by digit, 1 as 幺."""
    return read_digits(match.group(0), yao=True)


def _international_phone(match: re.Match[str]) -> str:
    """+86 138 1234 5678 → 加八六幺三八…"""
    return "加" + read_digits(match.group(1)) + read_digits(match.group(2), yao=True)


def _valid_date(month: str, day: str) -> bool:
    return 1 <= int(month) <= 12 and 1 <= int(day) <= 31


def read_date(year: str | None, month: str | None, day: str | None) -> str:
    """Year digit by digit, month and day as numbers: 2024, 3, 5 → 二零二四年三月五日."""
    spoken = read_digits(year) + "年" if year else ""
    spoken += read_integer(month) + "月" if month else ""
    return spoken + (read_integer(day) + "日" if day else "")


def _date(match: re.Match[str]) -> str:
    year, _, month, day = match.groups()
    if not _valid_date(month, day):
        return match.group(0)
    return read_date(year, month, day)


def _month_day(match: re.Match[str]) -> str:
    """3月5日 → 三月五日 (wetext says 一月两日 for 1月2日)."""
    month, day, suffix = match.groups()
    if not _valid_date(month, day):
        return match.group(0)
    return read_integer(month) + "月" + read_integer(day) + suffix


def _day(match: re.Match[str]) -> str:
    """本月2日 → 二日: a date, not two days."""
    day = match.group(1)
    return read_integer(day) + "日" if 1 <= int(day) <= 31 else match.group(0)


def _code_after_words(match: re.Match[str]) -> str:
    """编号12345, 拨打12306: an identifier read digit by digit, 1 as 幺."""
    return match.group(1) + (match.group(2) or "") + read_digits(match.group(3), yao=True)


def _number_after_letters(match: re.Match[str]) -> str:
    """G1234, CA1234 are codes read digit by digit; B2, A12, Win10 are names with a number (二, not 两)."""
    digits = match.group(0)
    return read_digits(digits) if len(digits) > 2 or digits[0] == "0" else read_integer(digits)


def _dotted_numbers(match: re.Match[str]) -> str:
    """Versions and IP addresses: each part read on its own, joined by 点 (192.168.1.1, 1.2.3)."""
    parts = match.group(0).split(".")
    if len(parts) == 4 and all(len(part) <= 3 for part in parts):  # an IP address: digit by digit
        return "点".join(read_digits(part) for part in parts)
    short = all(len(part) <= 2 and not (len(part) == 2 and part[0] == "0") for part in parts)
    return "点".join(read_integer(part) if short else read_digits(part) for part in parts)


def _score(first: str, second: str) -> str:
    return read_integer(first) + "比" + read_integer(second)


def _score_before(match: re.Match[str]) -> str:
    return match.group(1) + (match.group(2) or "") + _score(match.group(3), match.group(4))


def _score_after(match: re.Match[str]) -> str:
    return _score(match.group(1), match.group(2))


def _is_clock(hour: str, minute: str, second: str | None) -> bool:
    return int(hour) <= 24 and int(minute) < 60 and (second is None or int(second) < 60)


def read_time(hour: str, minute: str, second: str | None = None) -> str:
    """3:30 → 三点三十分, 2:00 → 两点, 9:05 → 九点零五分, 12:30:45 → 十二点三十分四十五秒."""
    spoken = read_integer(hour, quantity=True) + "点"
    if int(minute) or (second and int(second)):
        spoken += ("零" if minute[0] == "0" and int(minute) else "") + read_integer(minute) + "分"
    if second and int(second):
        spoken += ("零" if second[0] == "0" else "") + read_integer(second) + "秒"
    return spoken


def _duration_clock(match: re.Match[str]) -> str:
    """成绩2:05:30 is a duration: 两小时零五分三十秒 (h:mm:ss), 五分三十秒 (m:ss)."""
    words, first, second, third = match.groups()
    hours, minutes, seconds = ("0", first, second) if third is None else (first, second, third)
    if int(minutes) >= 60 or int(seconds) >= 60:
        return match.group(0)
    spoken = ""
    for value, unit in ((hours, "小时"), (minutes, "分"), (seconds, "秒")):
        if int(value):
            zero = "零" if spoken and value[0] == "0" else ""  # 两小时零五分
            spoken += zero + read_integer(value, quantity=not spoken) + unit
    return words + (spoken or "零秒")


def _time_span(match: re.Match[str]) -> str:
    """A clock time or a range of them, with an optional am/pm: 10:00-12:00 → 十点到十二点."""
    h1, m1, s1, joiner, h2, m2, s2, meridiem = match.groups()
    if not _is_clock(h1, m1, s1) or (h2 is not None and not _is_clock(h2, m2, s2)):
        return match.group(0)
    prefix = {"a": "上午", "p": "下午"}.get((meridiem or "").lower(), "")
    spoken = prefix + read_time(h1, m1, s1)
    if h2 is not None:
        spoken += ("至" if joiner == "至" else "到") + read_time(h2, m2, s2)
    return spoken


def _trailing_zeros(match: re.Match[str]) -> str:
    return "." + match.group(1) if match.group(1) else ""


def _without_trailing_zeros(amount: str) -> str:
    return amount.rstrip("0").rstrip(".") if "." in amount else amount


def _money(match: re.Match[str]) -> str:
    """¥1,234.56 → 一千二百三十四点五六元, $100-200 → 一百到两百美元, €3.5万 → 三点五万欧元, ¥86.50 → 八十六点五元."""
    symbol, amount, upper, magnitude, yuan = match.groups()
    spoken = read_number(_without_trailing_zeros(amount), quantity=True)
    if upper:
        spoken += "到" + read_number(_without_trailing_zeros(upper), quantity=True)
    currency = _CURRENCIES[symbol]
    if yuan and currency != "元":  # "$100元" is not a thing; keep the 元 that was written
        currency += yuan
    return spoken + magnitude + currency


def _percent_value(number: str, sign: str) -> str:
    """百分之五十, 百分之百, 负百分之零点五; ‰ is 千分之."""
    negative = number.startswith("-")
    number = number.lstrip("-")
    name = "千分之" if sign == "‰" else "百分之"
    value = "百" if number == "100" and sign == "%" else read_number(number)
    return ("负" if negative else "") + name + value


def _percent_range(match: re.Match[str]) -> str:
    """50%-60% and 5-10% → 百分之五到百分之十."""
    low, _, high, sign = match.groups()
    return _percent_value(low, sign) + "到" + _percent_value(high, sign)


def _percent(match: re.Match[str]) -> str:
    return _percent_value(match.group(1), match.group(2))


def _speed(match: re.Match[str]) -> str:
    """时速120km/h → 时速一百二十公里 (wetext would say 时速每小时一百二十公里)."""
    return match.group(1) + read_number(match.group(2), quantity=True) + "公里"


def _unit(match: re.Match[str]) -> str:
    """Units wetext leaves in Latin letters: 220V → 两百二十伏, 1-2g → 一到两克."""
    low, high, unit = match.groups()
    spoken = read_number(low, quantity=True) + ("到" + read_number(high, quantity=True) if high else "")
    return spoken + _UNITS[unit]


def _temperature(match: re.Match[str]) -> str:
    """-2℃ → 负二摄氏度: a reading, not a count, so 2 stays 二 (wetext says 负两摄氏度); 15~20℃ is a range."""
    low, high, sign = match.groups()
    scale = "华氏度" if sign in ("℉", "°F") else "摄氏度"
    return read_number(low) + ("到" + read_number(high) if high else "") + scale


def _ordinal(match: re.Match[str]) -> str:
    """第2页 → 第二页; an ordinal never takes 两 (wetext says 第两页). 第1-3名 → 第一到三名."""
    first, last = match.groups()
    return "第" + read_number(first) + ("到" + read_number(last) if last else "")


def _fraction(match: re.Match[str]) -> str:
    """3/4 → 四分之三 for proper fractions that cannot be a month/day date (those are left to wetext)."""
    numerator, denominator = match.groups()
    if not 0 < int(numerator) < int(denominator) or 12 < int(denominator) <= 31:
        return match.group(0)
    return read_integer(denominator) + "分之" + read_integer(numerator)


def _plain_number(match: re.Match[str]) -> str:
    """1234 → 一千二百三十四, 3.5 → 三点五, 2024年 → 二零二四年, as wetext reads them in this context.

    It also fixes wetext for five or more digits before 年 (it reads 12771年 as 一二七七一年).
    """
    whole, fraction = match.groups()
    following = match.string[match.end() : match.end() + 2]
    if (len(whole) > 1 and whole[0] == "0") or len(whole) > 12 or whole == "2" or whole in _SERVICE_NUMBERS:
        return match.group(0)
    if fraction:
        return read_integer(whole) + "点" + read_digits(fraction)
    if len(whole) == 4 and _is_year_before(whole, following):
        return read_digits(whole)
    if len(whole) >= 5 and not (following and is_han(following[0])):
        return match.group(0)  # 价格是12345 / 编号: wetext decides between digits and a quantity
    return read_integer(whole, quantity=True)


def _is_year_before(year: str, following: str) -> bool:
    """Whether four digits followed by `following` (two characters) are a year: 2024年, 2024赛季, 2019款."""
    if following[:1] == "年":
        return following != "年前"  # 2000年前 is 两千年前 (2000 years ago)
    if year[:2] not in ("19", "20"):
        return False
    return following in _SEASON_WORDS or (following[:1] in _MODEL_YEAR_WORDS and not year.endswith("00"))


def _is_year_range(first: str, second: str, following: str) -> bool:
    """2023-2024 and 2023-24 (also 1999-00) are ranges of years; 2023-05 is not, nor 10-15 before 年."""
    if len(first) == 2:  # 98-99赛季: only consecutive seasons, and not before 年 (10-15年 is ten to fifteen years)
        return following != "年" and len(second) == 2 and (int(second) - int(first)) % 100 == 1
    if len(second) == 4:
        return int(second) > int(first)
    return int(second) > int(first[2:]) or (first[2] == "9" and second[0] == "0")


def _year_range(match: re.Match[str]) -> str:
    """2020-2022年 → 二零二零到二零二二年, 2023-24赛季 → 二零二三到二四赛季 (the second year as it is written, the
    way sports commentators read it), 2023/24财年 → 二零二三到二四财年; 至 stays 至, every other joiner is 到."""
    first, first_year, joiner, second, following = match.groups()
    if not _is_year_range(first, second, following):
        return match.group(0)
    return read_digits(first) + first_year + ("至" if joiner == "至" else "到") + read_digits(second)


def _is_two_digit_year(text: str, start: int, end: int) -> bool:
    """Whether the two digits text[start:start + 2] before 年 (ending at `end`) name a year rather than count
    years; see _YEAR_WORDS_BEFORE. Unsure means no: the number then stays a count (today's reading)."""
    if text[start] == "0" or text[start - 1 : start] in ("'", "‘", "’"):  # 05年, '98年: never a count
        return True
    if _YEAR_WORDS_AFTER.match(text, end) and text[start - 1 : start] != "了":  # 工作了23年 is a count
        return True
    if _COUNT_WORDS_AFTER.match(text, end):  # 23年来, 23年间, 在23年里
        return False
    return _YEAR_WORDS_BEFORE.search(text, max(0, start - 3), start) is not None


def _two_digit_year(match: re.Match[str]) -> str:
    """98年出生 → 九八年出生, 在23年 → 在二三年; 工作了23年 and 23年来 stay 二十三年 (plain numbers read them)."""
    if _is_two_digit_year(match.string, match.start(), match.end()):
        return read_digits(match.group(1)) + "年"
    return match.group(0)


def _whole_and_digits(match: re.Match[str]) -> str:
    """1米85 → 一米八五, 2米26 → 两米二六, 10秒05 → 十秒零五."""
    whole, unit, digits = re.split(r"([米秒])", match.group(0))
    return read_integer(whole, quantity=unit == "米") + unit + read_digits(digits)


def _duration_years(match: re.Match[str]) -> str:
    """共1000年 counts years (一千年), it is not the year 1000."""
    return match.group(1) + read_integer(match.group(2), quantity=True)


# In this order: each rule turns what it recognizes into Han characters, so later, looser patterns (ranges,
# minus signs, 两, plain numbers) only see digits that the specific ones (phones, dates, times…) left alone.
# The third column is a character every match contains ("" if none): a rule is skipped on text without it.
_ORDINARY_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str, str], ...] = (
    (_THOUSANDS, _drop_thousands_separators, ""),
    (_EM_DASH_IN_RANGE, "-", "—"),
    (_LETTER_HYPHEN, "", "-"),
    (_INTERNATIONAL_PHONE, _international_phone, "+"),
    (_SERVICE_PHONE, _digits_yao, ""),
    (_LANDLINE_PHONE, _digits_yao, ""),
    (_MOBILE_PHONE, _digits_yao, ""),
    (_DATE, _date, ""),
    (_YEAR_RANGE, _year_range, ""),
    (_TWO_DIGIT_YEAR, _two_digit_year, "年"),
    (_MONTH_DAY, _month_day, "月"),
    (_CODE_AFTER_WORDS, _code_after_words, ""),
    (_NUMBER_AFTER_LETTERS, _number_after_letters, ""),
    (_ROOM, _digits_yao, "室"),
    (_DOTTED_NUMBERS, _dotted_numbers, "."),
    (_SCORE_BEFORE, _score_before, ""),
    (_SCORE_AFTER, _score_after, ""),
    (_DURATION_CLOCK, _duration_clock, ":"),
    (_TIME_SPAN, _time_span, ":"),
    (_TRAILING_ZEROS, _trailing_zeros, "."),
    (_MONEY, _money, ""),
    (_PER_UNIT_PRICE, "每", "/"),
    (_PERCENT_RANGE, _percent_range, ""),
    (_PERCENT, _percent, ""),
    (_SPEED, _speed, "/"),
    (_UNIT, _unit, ""),
    (_DURATION_YEARS, _duration_years, "年"),
    (_GENERATION, _digits, "后"),
    (_AROUND_THE_CLOCK, "二十四七", "/"),
    (_WHOLE_AND_DIGITS, _whole_and_digits, ""),
    (_DISCOUNT, _digits, "折"),
    (_TEMPERATURE, _temperature, ""),
    (_ORDINAL, _ordinal, "第"),
    (_FRACTION, _fraction, "/"),
    (_NUMBER_RANGE, r"\1到", ""),
    (_DATE_RANGE, "到", ""),
    (_DAY, _day, "日"),
    (_NEGATIVE, "负", "-"),
    (_LIANG, "两", "2"),
    (_PLAIN_NUMBER, _plain_number, ""),
)


def _apply_rules(text: str) -> str:
    """Stage 2: rewrite what wetext gets wrong, mostly straight into Han characters."""
    for pattern, replacement, needs in _ORDINARY_RULES:
        if needs in text:
            text = pattern.sub(replacement, text)
    return text


# --- stage 3: wetext on what is left ------------------------------------------------------------------

_WINDOW_CONTEXT = 6  # characters of context wetext sees on each side of a number
_SHORT_PIECE = 64  # pieces up to this long go to wetext whole
_MAX_WINDOW = 256
_NUMBER_CLUSTER = re.compile(r"\d+(?:[.:/,-]\d+)*")
_WETEXT_BUDGET = 20_000
_LEFTOVER_NUMBER = re.compile(r"(\d+)(?:\.\d+)?")
_PIECE_BREAK = re.compile(r"(?<!\d)[,:.]|[,:.](?!\d)|[，。！？；：、!?;\n]")


@cache
def _wetext() -> Normalizer:
    """The wetext Mandarin TN normalizer, built once per process (about 0.4 s)."""
    from wetext import Normalizer

    return Normalizer(lang="zh", operator="tn")


def _wetext_normalize(piece: str) -> str:
    """wetext on one piece, keeping the whitespace it would strip and the text if it fails."""
    core = piece.strip()
    if not core:
        return piece
    lead, trail = piece[: len(piece) - len(piece.lstrip())], piece[len(piece.rstrip()) :]
    try:
        return lead + _wetext().normalize(core) + trail
    except Exception:  # the FST found no path; the digits are then read one by one in stage 4
        return piece


def _windows(piece: str) -> Iterator[tuple[str, bool]]:
    """Split a long piece into (text, has_digits) parts: numbers with some context, and the rest.

    Windows around nearby numbers merge, up to _MAX_WINDOW characters; a window is never cut inside a number.
    """
    spans: list[list[int]] = []
    for match in _NUMBER_CLUSTER.finditer(piece):
        start, end = max(0, match.start() - _WINDOW_CONTEXT), min(len(piece), match.end() + _WINDOW_CONTEXT)
        if spans and start < spans[-1][1]:
            if end - spans[-1][0] <= _MAX_WINDOW:
                spans[-1][1] = end
                continue
            spans[-1][1] = start = match.start()
        spans.append([start, end])
    position = 0
    for start, end in spans:
        if start > position:
            yield piece[position:start], False
        yield piece[start:end], True
        position = end
    if position < len(piece):
        yield piece[position:], False


def _plain_reading(piece: str) -> str:
    """Numbers without wetext, once a call has used its wetext budget: quantities, long ones digit by digit."""

    def number(match: re.Match[str]) -> str:
        whole = match.group(1)
        if len(whole) > 12 or (len(whole) > 1 and whole[0] == "0"):
            return read_digits(match.group(0).replace(".", "点"))
        return read_number(match.group(0))

    return _LEFTOVER_NUMBER.sub(number, piece)


class _WetextRunner:
    """Stage 3: wetext on every piece (between punctuation) that still has digits, in bounded windows.

    One runner serves one normalize() call and sends wetext at most `budget` characters (about 0.1 ms each),
    so that adversarial input (100,000 characters of digits) still finishes in seconds.
    """

    def __init__(self, budget: int = _WETEXT_BUDGET) -> None:
        self.budget_left = budget

    def run(self, text: str) -> str:
        """`text` with every number read."""
        if not any(c.isdigit() for c in text):
            return text
        out: list[str] = []
        position = 0
        for match in _PIECE_BREAK.finditer(text):
            out.append(self._piece(text[position : match.start()]))
            out.append(match.group(0))
            position = match.end()
        out.append(self._piece(text[position:]))
        return "".join(out)

    def _piece(self, piece: str) -> str:
        if not any(c.isdigit() for c in piece):
            return piece
        if len(piece) <= _SHORT_PIECE:
            return self._normalize(piece)
        return "".join(self._normalize(part) if digits else part for part, digits in _windows(piece))

    def _normalize(self, piece: str) -> str:
        if self.budget_left < len(piece):
            self.budget_left = 0
            return _plain_reading(piece)
        self.budget_left -= len(piece)
        return _wetext_normalize(piece)


# --- say_as: one fixed reading for every number -------------------------------------------------------

_DIGIT_RUN = re.compile(r"\d+(?:\.\d+)*")
_SIGNED_NUMBER = re.compile(rf"(?<![\d.])[-+]?{_NUM}")
_PHONE_CHARS = re.compile(r"\+?[\d()][\d()\s-]*\d")
_DATE_FORMS = (
    re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?"),
    re.compile(r"(\d{4})\s*[-/年]\s*(\d{1,2})\s*月?()(?![\d/-])"),
    re.compile(r"()(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?"),
    re.compile(r"(\d{4})\s*年()()"),
)


def _say_digits(text: str) -> str:
    """Every digit on its own (一 for 1), a point between digits as 点."""
    return _DIGIT_RUN.sub(lambda m: "点".join(read_digits(part) for part in m.group(0).split(".")), text)


def _say_cardinal(text: str) -> str:
    """Every number as a quantity name: 123 → 一百二十三, -1,234.5 → 负一千二百三十四点五."""
    text = _THOUSANDS.sub(_drop_thousands_separators, text)
    return _SIGNED_NUMBER.sub(lambda m: read_number(m.group(0).lstrip("+")), text)


def _say_telephone(text: str) -> str:
    """Digit by digit with 1 as 幺, a leading + as 加, separators silent."""

    def phone(match: re.Match[str]) -> str:
        number = match.group(0)
        return ("加" if number.startswith("+") else "") + read_digits(number, yao=True)

    return _PHONE_CHARS.sub(phone, text)


def _say_date(text: str) -> str:
    """Dates in any of the usual forms → 二零二四年三月五日; what is not a date is read as ordinary text."""

    def date(match: re.Match[str]) -> str:
        year, month, day = match.groups()
        if (month and not 1 <= int(month) <= 12) or (day and not 1 <= int(day) <= 31):
            return match.group(0)
        return read_date(year, month, day)

    for form in _DATE_FORMS:
        text = form.sub(date, text)
    return text


def _say_characters(text: str) -> str:
    """Every character on its own: digits one by one (as in "digits"); letters are spelled in stage 4."""
    return _say_digits(text)


_SAY_AS_RULES: dict[str, Callable[[str], str]] = {
    "digits": _say_digits,
    "cardinal": _say_cardinal,
    "telephone": _say_telephone,
    "date": _say_date,
    "characters": _say_characters,
}


# --- stage 4: letters, punctuation, whitespace --------------------------------------------------------

# Each Latin letter as Han characters the voice can say, with the reading forced (valid Baker syllables).
LETTER_READINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "A": (("诶", "ei1"),),
    "B": (("比", "bi4"),),
    "C": (("西", "xi1"),),
    "D": (("迪", "di4"),),
    "E": (("伊", "yi1"),),
    "F": (("艾", "ai4"), ("弗", "fu2")),
    "G": (("吉", "ji2"),),
    "H": (("艾", "ai4"), ("尺", "chi3")),
    "I": (("艾", "ai4"),),
    "J": (("杰", "jie2"),),
    "K": (("开", "kai1"),),
    "L": (("艾", "ai4"), ("勒", "le4")),
    "M": (("艾", "ai4"), ("姆", "mu3")),
    "N": (("恩", "en1"),),
    "O": (("欧", "ou1"),),
    "P": (("批", "pi1"),),
    "Q": (("丘", "qiu1"),),
    "R": (("阿", "a1"), ("尔", "er3")),
    "S": (("艾", "ai4"), ("斯", "si1")),
    "T": (("踢", "ti1"),),
    "U": (("优", "you1"),),
    "V": (("维", "wei2"),),
    "W": (("达", "da2"), ("布", "bu5"), ("溜", "liu1")),
    "X": (("艾", "ai4"), ("克", "ke4"), ("斯", "si1")),
    "Y": (("歪", "wai1"),),
    "Z": (("贼", "zei2"),),
}
_SYMBOL_READINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "@": (("艾", "ai4"), ("特", "te4")),
    "&": (("和", "he2"),),
    "+": (("加", "jia1"),),
    "=": (("等", "deng3"), ("于", "yu2")),
}
_ASCII_PAUSES = {",": "，", "!": "！", "?": "？", ";": "；", ":": "："}
_PAUSE_RANK = {"。": 3, "！": 3, "？": 3, "；": 2, "：": 1, "，": 0, "、": 0}


@dataclass
class _Token:
    kind: str  # "han" (from the text), "spelled" (we chose its reading), "pause", "space", "break"
    char: str = ""
    pinyin: str | None = None


def _dot(text: str, index: int) -> _Token | None:
    """'.' after wetext: a sentence end, 点 inside a name like a.com, or nothing (No.1, e.g.)."""
    before = text[index - 1] if index else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    if not after or after.isspace():
        return _Token("pause", "。")
    if before.isascii() and before.isalnum() and after.isascii() and after.isalnum():
        return _Token("spelled", "点", "dian3")
    return None


def _tokens(text: str) -> Iterator[_Token]:
    """Stage 4 input: each character as what it will become."""
    index = 0
    while index < len(text):
        char = text[index]
        if is_han(char):
            yield _Token("han", char)
        elif char.isascii() and char.isalpha():
            for han, pinyin in LETTER_READINGS[char.upper()]:
                yield _Token("spelled", han, pinyin)
        elif char in "0123456789":  # wetext left a digit (it should not); read it rather than lose it
            yield _Token("han", DIGIT_NAMES[int(char)])
        elif char in _SYMBOL_READINGS:
            for han, pinyin in _SYMBOL_READINGS[char]:
                yield _Token("spelled", han, pinyin)
        elif char in PUNCTUATION:
            yield _Token("pause", char)
        elif char in _ASCII_PAUSES:
            yield _Token("pause", _ASCII_PAUSES[char])
        elif char == ".":
            if text.startswith("...", index):
                yield _Token("break")
                index += 3
                continue
            token = _dot(text, index)
            if token:
                yield token
        elif char in "…⋯\n":
            yield _Token("break")
        elif char.isspace():
            yield _Token("space")
        index += 1


def _following_kinds(tokens: list[_Token]) -> list[str | None]:
    """For each token, the kind of the next token that is not whitespace (None at the end)."""
    kinds: list[str | None] = [None] * len(tokens)
    following: str | None = None
    for index in range(len(tokens) - 1, -1, -1):
        kinds[index] = following
        if tokens[index].kind not in ("space", "break"):
            following = tokens[index].kind
    return kinds


def _resolve(tokens: list[_Token]) -> list[_Token]:
    """Whitespace between Han → "，", breaks → "，" between words, runs of pauses → the strongest one."""
    out: list[_Token] = []
    for token, following in zip(tokens, _following_kinds(tokens), strict=True):
        if token.kind in ("space", "break"):
            if following in (None, "pause") or not out or out[-1].kind == "pause":
                continue
            if token.kind == "space" and not (out[-1].kind == "han" and following == "han"):
                continue
            token = _Token("pause", "，")
        if token.kind == "pause":
            # A leading pause is kept: this text may continue a sentence the caller has already started.
            if out and out[-1].kind == "pause":
                if _PAUSE_RANK[token.char] > _PAUSE_RANK[out[-1].char]:
                    out[-1] = token
                continue
        out.append(token)
    return out


def _assemble(text: str) -> tuple[str, list[str | None]]:
    """Stage 4: the final characters and their forced readings."""
    tokens = _resolve(list(_tokens(text)))
    return "".join(t.char for t in tokens), [t.pinyin for t in tokens]


# --- public entry point -------------------------------------------------------------------------------

# Pieces of this many characters go through the pipeline separately; cut only at punctuation or space.
_MAX_PIECE = 2000


def _pieces(text: str) -> Iterator[str]:
    """Cut very long text at a pause or space near every _MAX_PIECE characters, never inside a number."""
    start = 0
    while len(text) - start > _MAX_PIECE:
        window = text[start + _MAX_PIECE // 2 : start + _MAX_PIECE]
        cut = max(window.rfind(c) for c in "，。！？；\n ")
        end = start + _MAX_PIECE // 2 + cut + 1 if cut >= 0 else _hard_cut(text, start + _MAX_PIECE)
        yield text[start:end]
        start = end
    yield text[start:]


def _hard_cut(text: str, end: int) -> int:
    """A position near `end` that is not inside a run of digits, letters or number signs."""
    while end < len(text) and (text[end].isascii() and not text[end].isspace()):
        end += 1
    return end


def _normalize_clean(text: str, say_as: str | None, wetext: _WetextRunner) -> str:
    """Stages 2 and 3 on cleaned text."""
    try:
        if say_as is not None:
            text = _SAY_AS_RULES[say_as](text)
        return wetext.run(_apply_rules(text))
    except Exception:  # a bug in a rule must cost a reading, not the caller's sentence (tests catch such bugs)
        _log.exception("normalization rules failed on %r; reading its numbers plainly", text[:80])
        return _plain_reading(text)


def normalize(text: str, say_as: str | None = None, offset: int = 0) -> Normalized:
    """Normalize `text` for the Mandarin frontend; never raises for any str (see the module docstring).

    say_as: None for ordinary text, or one of SAY_AS to read every number one way.
    offset: where `text` starts in the caller's input, so that warnings point into that input.
    """
    if say_as is not None and say_as not in SAY_AS:
        raise ValueError(f"unknown say_as {say_as!r}; valid: None, {', '.join(map(repr, SAY_AS))}")
    cleaned = _clean(text, offset)
    wetext = _WetextRunner()
    spoken = "".join(_normalize_clean(piece, say_as, wetext) for piece in _pieces(cleaned.text))
    chars, pinyin = _assemble(spoken)
    return Normalized(chars, pinyin, cleaned.warnings)


def wetext_baseline(text: str) -> str:
    """The comparison system of benchmarks/normalization.py: stage 1, wetext alone, then stage 4 (no rules)."""
    cleaned = _clean(text).text
    try:
        spoken = _wetext().normalize(cleaned) if cleaned.strip() else ""
    except Exception:  # same contract as normalize(): never raise
        spoken = cleaned
    return _assemble(spoken)[0]
