"""Inline pinyin overrides in plain text (重[chong2]) and the plain-text/SSML dispatch of parse()."""

from __future__ import annotations

import random

import pytest

from qingyin.text.hanzi import is_han
from qingyin.text.markup import (
    Break,
    Controls,
    MarkupError,
    Span,
    normalize_syllable,
    parse,
    parse_inline,
    split_syllables,
)
from qingyin.text.ssml import SSMLError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("重[chong2]新", [Span("重", ("chong2",)), Span("新")]),
        ("我们重[chong2]新开始", [Span("我们"), Span("重", ("chong2",)), Span("新开始")]),
        ("重[chong2]新[xin1]开始", [Span("重新", ("chong2", "xin1")), Span("开始")]),
        ("行[hang2]", [Span("行", ("hang2",))]),
        ("的[de5]", [Span("的", ("de5",))]),
        ("重[CHONG2]", [Span("重", ("chong2",))]),
        ("重[Chong2]", [Span("重", ("chong2",))]),
        ("重[ chong2 ]", [Span("重", ("chong2",))]),
        ("花[huar1]", [Span("花", ("huar1",))]),
        ("a重[chong2]b", [Span("a"), Span("重", ("chong2",)), Span("b")]),
        ("重[chong2]。新[xin1]", [Span("重", ("chong2",)), Span("。"), Span("新", ("xin1",))]),
        ("𠀀[a1]", [Span("𠀀", ("a1",))]),  # a supplementary-plane (Extension B) character
    ],
)
def test_inline_override(text: str, expected: list[Span]) -> None:
    assert parse_inline(text) == expected


@pytest.mark.parametrize("spelling", ["lü4", "lu:4", "lv4", "LÜ4", "LU:4", "LV4"])
def test_u_umlaut_spellings_normalize_to_v(spelling: str) -> None:
    assert parse_inline(f"绿[{spelling}]") == [Span("绿", ("lv4",))]


@pytest.mark.parametrize(
    "text",
    [
        "[1]",
        "参考文献[1]",
        "数组a[i]",
        "见[注释]",
        "变量[x]",
        "变量[x1]",
        "播放器[MP3]",
        "重[chong]",  # no tone digit: not pinyin, so ordinary text
        "重[abc1def]",
        "重[]",
        "[chong2]",  # no Han character before the bracket
        "重 [chong2]",  # a space in between: not attached to the character
        "重[[chong2]",
        "普通文本，没有括号。",
    ],
)
def test_brackets_that_are_not_overrides_stay_in_the_text(text: str) -> None:
    assert parse_inline(text) == [Span(text)]


def test_valid_pinyin_after_han_is_always_an_override() -> None:
    # "a4" is a real syllable, so 纸[A4] is read as an override — the syntax cannot tell otherwise.
    assert parse_inline("纸[A4]") == [Span("纸", ("a4",))]


def test_override_next_to_ordinary_brackets() -> None:
    assert parse_inline("见[注释]重[chong2]新[1]") == [Span("见[注释]"), Span("重", ("chong2",)), Span("新[1]")]


def test_empty_text() -> None:
    assert parse_inline("") == []


def test_plain_spans_carry_default_settings() -> None:
    (span,) = parse_inline("你好")
    assert (span.pinyin, span.say_as, span.controls) == (None, None, Controls())


def test_plain_text_has_no_voice() -> None:
    assert [span.voice for span in parse("重[chong2]新说。你好")] == [None, None]


@pytest.mark.parametrize(
    ("text", "position", "syllable"),
    [
        ("重[chonng2]新", 2, "chonng2"),
        ("我们重[zhong6]", 4, "zhong6"),
        ("重[chong0]", 2, "chong0"),
        ("abc\n很[hhen3]", 6, "hhen3"),
        ("重[ziang4]", 2, "ziang4"),
    ],
)
def test_invalid_pinyin_attempt_is_an_error_with_position(text: str, position: int, syllable: str) -> None:
    with pytest.raises(MarkupError) as caught:
        parse_inline(text)
    assert caught.value.position == position
    message = str(caught.value)
    assert f"position {position}" in message
    assert syllable in message
    assert "tone digit 1-5" in message


@pytest.mark.parametrize("text", ["重新[chong2 xin1]", "重新[chong2xin1]"])
def test_several_syllables_after_one_character_is_an_error(text: str) -> None:
    with pytest.raises(MarkupError, match="2 syllables") as caught:
        parse_inline(text)
    assert caught.value.position == text.index("[") + 1
    assert "重[chong2]新[xin1]" in str(caught.value)


def test_markup_error_is_a_value_error() -> None:
    assert issubclass(MarkupError, ValueError)
    assert issubclass(SSMLError, MarkupError)


def test_parse_inline_raises_only_markup_error_on_random_input() -> None:
    contents = ["chong2", "chonng2", "LÜ4", "lu:4", "x", "1", "zhong6", "", "a", "注释", "chong2 xin1", "[", "]"]
    pieces = ["重", "新", "[", "]", " ", "a", "。", *(f"[{content}]" for content in contents)]
    rng = random.Random(20240611)
    outcomes = {"ok": 0, "override": 0, "error": 0}
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        try:
            spans = parse_inline(text)
        except MarkupError as error:
            assert text[error.position - 1] == "["  # points just inside the offending bracket
            outcomes["error"] += 1
        else:
            assert all(span.pinyin is None or len(span.pinyin) == len(span.text) for span in spans)
            assert parse_inline(_render(spans)) == spans  # writing the spans back out reads the same
            outcomes["ok"] += 1
            outcomes["override"] += any(span.pinyin for span in spans)
    assert outcomes["ok"] > 100 and outcomes["override"] > 100 and outcomes["error"] > 100


def _render(spans: list[Span]) -> str:
    """Spans written back as inline markup."""
    return "".join(
        span.text
        if span.pinyin is None
        else "".join(f"{char}[{syllable}]" for char, syllable in zip(span.text, span.pinyin, strict=True))
        for span in spans
    )


@pytest.mark.parametrize(
    ("syllable", "normalized"),
    [("chong2", "chong2"), ("NÜ3", "nv3"), ("nu:3", "nv3"), ("ma5", "ma5"), (" xin1 ", "xin1")],
)
def test_normalize_syllable(syllable: str, normalized: str) -> None:
    assert normalize_syllable(syllable) == normalized


@pytest.mark.parametrize("syllable", ["chong", "chong6", "xx1", "", "2", "chong2xin1"])
def test_normalize_syllable_rejects(syllable: str) -> None:
    with pytest.raises(ValueError):
        normalize_syllable(syllable)


@pytest.mark.parametrize(
    ("pinyin", "syllables"),
    [("chong2xin1", ["chong2", "xin1"]), (" chong2  xin1 ", ["chong2", "xin1"]), ("lu:4", ["lu:4"]), ("chong", None)],
)
def test_split_syllables(pinyin: str, syllables: list[str] | None) -> None:
    assert split_syllables(pinyin) == syllables


@pytest.mark.parametrize(
    ("char", "expected"), [("重", True), ("㐀", True), ("a", False), ("。", False), ("重新", False)]
)
def test_is_han(char: str, expected: bool) -> None:
    assert is_han(char) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('<speak>你好<break time="200ms"/></speak>', [Span("你好"), Break(200)]),
        ("  \n<speak>你好</speak>", [Span("你好")]),
        ('<?xml version="1.0" encoding="UTF-8"?><speak>你好</speak>', [Span("你好")]),
        ("重[chong2]新", [Span("重", ("chong2",)), Span("新")]),
        ("a < b <speak>", [Span("a < b <speak>")]),  # only a leading <speak selects SSML
        ("<b>粗体</b>", [Span("<b>粗体</b>")]),
        ("", []),
    ],
)
def test_parse_dispatch(text: str, expected: list[Span | Break]) -> None:
    assert parse(text) == expected


def test_parse_reports_ssml_errors() -> None:
    with pytest.raises(SSMLError, match="line 1, column 8"):
        parse("<speak><emphasis>x</emphasis></speak>")


def test_parse_sends_doctype_documents_to_the_ssml_checker() -> None:
    with pytest.raises(SSMLError, match="DOCTYPE"):
        parse('<!DOCTYPE speak [<!ENTITY a "b">]><speak>&a;</speak>')


def test_parse_inline_errors_pass_through_parse() -> None:
    with pytest.raises(MarkupError) as caught:
        parse("重[chonng2]")
    assert not isinstance(caught.value, SSMLError)
    assert caught.value.position == 2
