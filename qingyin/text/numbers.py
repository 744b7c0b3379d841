"""Numbers read aloud as Mandarin: digit by digit (二零二四, 幺 in phone numbers) or as quantities (一千零五)."""

from __future__ import annotations

DIGIT_NAMES = "零一二三四五六七八九"
# Every character a spelled-out number is made of (〇 is the other way to write 零, 两 the counting 2).
NUMERAL_CHARS = "零〇一二两三四五六七八九十百千万亿"
_GROUP_UNITS = ("", "万", "亿", "万亿")
_PLACES = ((1000, "千"), (100, "百"), (10, "十"), (1, ""))


def read_digits(digits: str, yao: bool = False) -> str:
    """Digit by digit: '2024' → 二零二四; with `yao`, 1 is 幺 as in phone numbers."""
    names = DIGIT_NAMES.replace("一", "幺") if yao else DIGIT_NAMES
    return "".join(names[int(d)] for d in digits if d.isdigit())


def _read_group(group: int) -> str:
    """A number 1..9999 with 千百十, zeros inside spoken once: 1005 → 一千零五."""
    spoken, zero_pending = "", False
    for value, unit in _PLACES:
        digit = group // value % 10
        if digit == 0:
            zero_pending = bool(spoken)
            continue
        if zero_pending:
            spoken += "零"
            zero_pending = False
        spoken += DIGIT_NAMES[digit] + unit
    return spoken


def read_integer(digits: str, quantity: bool = False) -> str:
    """A whole number as a quantity name: 1234 → 一千二百三十四, 10 → 十, 100010001 → 一亿零一万零一.

    With `quantity`, a leading 2 is 两 the way a newsreader counts things: 2 → 两, 2000 → 两千, 200 → 两百.
    Numbers of 17 or more digits have no everyday name and are read digit by digit.
    """
    digits = digits.lstrip("0") or "0"
    if len(digits) > 16:
        return read_digits(digits)
    number = int(digits)
    if number == 0:
        return "零"
    groups = []
    while number:
        groups.append(number % 10000)
        number //= 10000
    spoken, skipped_zero = "", False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            skipped_zero = bool(spoken)
            continue
        if spoken and (group < 1000 or skipped_zero):
            spoken += "零"
        spoken += _read_group(group) + _GROUP_UNITS[index]
        skipped_zero = False
    if spoken.startswith("一十"):  # 10..19 are 十, 十一 … but 110 stays 一百一十
        spoken = spoken[1:]
    if quantity and spoken[0] == "二" and (len(spoken) == 1 or spoken[1] in "百千万亿"):
        spoken = "两" + spoken[1:]
    return spoken


def read_number(number: str, quantity: bool = False) -> str:
    """An integer or decimal with an optional sign: -3.14 → 负三点一四, 0.5 → 零点五."""
    sign = "负" if number.startswith("-") else ""
    whole, _, fraction = number.lstrip("+-").partition(".")
    if fraction:
        return sign + read_integer(whole) + "点" + read_digits(fraction)
    return sign + read_integer(whole, quantity)
