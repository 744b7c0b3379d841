"""The SSML subset: every supported tag and attribute form, composition, ordering, and every kind of error."""

from __future__ import annotations

import math
import random

import pytest

from qingyin.text.markup import Break, Controls, MarkupError, Span
from qingyin.text.ssml import MAX_INPUT_CHARS, SSMLError, parse_ssml


def speak(body: str) -> str:
    """`body` wrapped in a <speak> root."""
    return f"<speak>{body}</speak>"


def only_controls(body: str) -> Controls:
    """Controls of the single span that `body` produces."""
    (span,) = parse_ssml(speak(body))
    assert isinstance(span, Span)
    return span.controls


def error_of(document: str) -> SSMLError:
    """The SSMLError that parsing `document` raises."""
    with pytest.raises(SSMLError) as caught:
        parse_ssml(document)
    return caught.value


# --- <speak> and plain text ---------------------------------------------------------------------------------


def test_plain_text_inside_speak() -> None:
    assert parse_ssml(speak("你好，世界。")) == [Span("你好，世界。")]


def test_empty_speak() -> None:
    assert parse_ssml("<speak></speak>") == []
    assert parse_ssml("<speak/>") == []


def test_speak_attributes_and_declaration_are_accepted() -> None:
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<speak version="1.1" xmlns="http://www.w3.org/2001/10/synthesis" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xml:lang="zh-CN">你好</speak>'
    )
    assert parse_ssml(document) == [Span("你好")]


def test_entities_are_decoded() -> None:
    assert parse_ssml(speak("a &lt; b &amp;&amp; c &gt; d &quot;&apos;&#20013;&#x6587;")) == [
        Span("a < b && c > d \"'中文")
    ]


def test_cdata_is_text_and_comments_are_skipped() -> None:
    assert parse_ssml(speak("一<!-- 注释 -->二<![CDATA[<三>]]>")) == [Span("一二<三>")]


def test_whitespace_between_tags_is_dropped_and_runs_collapse() -> None:
    document = """
    <speak>
        你好
        <break time="100ms"/>
        <prosody rate="fast">
            hello   world
        </prosody>
    </speak>
    """
    assert parse_ssml(document) == [
        Span("你好 "),
        Break(100),
        Span(" hello world", controls=Controls(speed=1.25)),  # the document's trailing whitespace is trimmed
    ]


def test_text_and_tails_keep_their_order() -> None:
    segments = parse_ssml(speak('一<break time="1ms"/>二<sub alias="三">3</sub>四<break time="2ms"/>五'))
    assert segments == [Span("一"), Break(1), Span("二三四"), Break(2), Span("五")]


# --- <break> ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "ms"),
    [
        ('time="300ms"', 300),
        ('time="1.5s"', 1500),
        ('time="0ms"', 0),
        ('time=" 250 ms "', 250),
        ('time=".5s"', 500),
        ('time="2S"', 2000),
        ('time="12.4ms"', 12),
        ('time="60s"', 10_000),  # capped at 10 s
        ('time="10001ms"', 10_000),
        ('strength="none"', 0),
        ('strength="x-weak"', 100),
        ('strength="weak"', 200),
        ('strength="medium"', 400),
        ('strength="strong"', 700),
        ('strength="x-strong"', 1000),
        ("", 400),  # neither: medium
        ('time="50ms" strength="x-strong"', 50),  # time wins
    ],
)
def test_break(attributes: str, ms: int) -> None:
    assert parse_ssml(speak(f"<break {attributes}/>")) == [Break(ms)]


@pytest.mark.parametrize(
    ("time", "problem"),
    [("-300ms", "is negative"), ("-1s", "is negative"), ("300", "is not a time"), ("fast", "is not a time"),
     ("3 min", "is not a time"), ("", "is not a time"), ("1e3ms", "is not a time")],
)  # fmt: skip
def test_break_bad_time(time: str, problem: str) -> None:
    error = error_of(speak(f'<break time="{time}"/>'))
    assert problem in str(error)
    assert '"300ms"' in str(error)
    assert (error.line, error.column) == (1, 8)


def test_break_bad_strength_lists_the_valid_ones() -> None:
    error = error_of(speak('<break strength="huge"/>'))
    assert "huge" in str(error)
    assert "none, x-weak, weak, medium, strong, x-strong" in str(error)


def test_break_with_content_is_an_error() -> None:
    assert "<break> has content" in str(error_of(speak("<break>停</break>")))


# --- <prosody> --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "speed"),
    [("x-slow", 0.5), ("slow", 0.75), ("medium", 1.0), ("fast", 1.25), ("x-fast", 1.75), ("default", 1.0),
     ("120%", 1.2), ("+20%", 1.2), ("-20%", 0.8), ("1.2", 1.2), ("2", 2.0), ("50%", 0.5)],
)  # fmt: skip
def test_prosody_rate(rate: str, speed: float) -> None:
    controls = only_controls(f'<prosody rate="{rate}">快</prosody>')
    assert controls.speed == pytest.approx(speed)
    assert (controls.pitch, controls.energy) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("pitch", "factor"),
    [("x-low", 0.5), ("low", 0.75), ("medium", 1.0), ("high", 1.25), ("x-high", 1.5), ("default", 1.0),
     ("150%", 1.5), ("+10%", 1.1), ("-10%", 0.9), ("-100%", 0.0)],
)  # fmt: skip
def test_prosody_pitch(pitch: str, factor: float) -> None:
    controls = only_controls(f'<prosody pitch="{pitch}">高</prosody>')
    assert controls.pitch == pytest.approx(factor)
    assert (controls.speed, controls.energy) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("volume", "energy"),
    [("silent", 0.0), ("x-soft", 0.5), ("soft", 0.75), ("medium", 1.0), ("loud", 1.25), ("x-loud", 1.5),
     ("default", 1.0), ("80%", 0.8), ("+50%", 1.5), ("-50%", 0.5), ("+6dB", 10 ** (6 / 20)),
     ("-6dB", 10 ** (-6 / 20)), ("0dB", 1.0), ("+3.5db", 10 ** (3.5 / 20))],
)  # fmt: skip
def test_prosody_volume(volume: str, energy: float) -> None:
    controls = only_controls(f'<prosody volume="{volume}">响</prosody>')
    assert controls.energy == pytest.approx(energy)
    assert (controls.speed, controls.pitch) == (1.0, 1.0)


def test_prosody_all_three_at_once() -> None:
    controls = only_controls('<prosody rate="slow" pitch="high" volume="loud">三</prosody>')
    assert controls == Controls(speed=0.75, pitch=1.25, energy=1.25)


def test_nested_prosody_multiplies() -> None:
    inner = '<prosody rate="150%" pitch="x-low" volume="soft">内</prosody>'
    segments = parse_ssml(speak(f'<prosody rate="2" pitch="x-high">外{inner}外</prosody>'))
    assert segments == [
        Span("外", controls=Controls(speed=2.0, pitch=1.5)),
        Span("内", controls=Controls(speed=3.0, pitch=0.75, energy=0.75)),
        Span("外", controls=Controls(speed=2.0, pitch=1.5)),
    ]


def test_prosody_without_attributes_changes_nothing() -> None:
    assert parse_ssml(speak("前<prosody>中</prosody>后")) == [Span("前中后")]


def test_breaks_inside_prosody() -> None:
    assert parse_ssml(speak('<prosody rate="fast">一<break time="5ms"/>二</prosody>')) == [
        Span("一", controls=Controls(speed=1.25)),
        Break(5),
        Span("二", controls=Controls(speed=1.25)),
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('<prosody rate="5">x</prosody>', "keep speed within 0.25–4"),
        ('<prosody rate="0.2">x</prosody>', "keep speed within 0.25–4"),
        ('<prosody rate="-90%">x</prosody>', "keep speed within 0.25–4"),
        ('<prosody pitch="+250%">x</prosody>', "keep pitch within 0–3"),
        ('<prosody pitch="-150%">x</prosody>', "keep pitch within 0–3"),
        ('<prosody volume="+12dB">x</prosody>', "keep energy within 0–3"),
        # each level is fine on its own; the product is not
        ('<prosody rate="x-fast"><prosody rate="x-fast"><prosody rate="x-fast">x</prosody></prosody></prosody>',
         "after multiplying by enclosing"),
    ],
)  # fmt: skip
def test_prosody_out_of_range(body: str, fragment: str) -> None:
    assert fragment in str(error_of(speak(body)))


def test_composed_out_of_range_points_at_the_inner_prosody() -> None:
    error = error_of(speak('<prosody pitch="x-high"><prosody pitch="x-high">\n  <prosody pitch="x-high">x</prosody>'
                           "</prosody></prosody>"))  # fmt: skip
    assert (error.line, error.column) == (2, 3)
    assert "3.375" in str(error)


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("rate", "quick"), ("rate", "-1"), ("rate", "20x"), ("pitch", "200Hz"), ("pitch", "+2st"), ("pitch", "1.2"),
     ("volume", "50"), ("volume", "loudest"), ("volume", "6dB!"), ("rate", "")],
)  # fmt: skip
def test_prosody_unparseable_value(attribute: str, value: str) -> None:
    error = error_of(speak(f'<prosody {attribute}="{value}">x</prosody>'))
    assert f"prosody {attribute}={value!r} is not understood" in str(error)
    assert 'a percentage like "120%"' in str(error)


def test_prosody_decibel_advice_only_for_volume() -> None:
    assert "dB" in str(error_of(speak('<prosody volume="x">x</prosody>')))
    assert "dB" not in str(error_of(speak('<prosody rate="x">x</prosody>')))


def test_huge_prosody_value_is_rejected_not_infinite() -> None:
    error = error_of(speak(f'<prosody rate="{"9" * 400}">x</prosody>'))
    assert "is not understood" in str(error)


# --- <phoneme> --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('<phoneme alphabet="py" ph="chong2">重</phoneme>', Span("重", ("chong2",))),
        ('<phoneme alphabet="pinyin" ph="chong2 xin1">重新</phoneme>', Span("重新", ("chong2", "xin1"))),
        ('<phoneme alphabet="py" ph="chong2xin1">重新</phoneme>', Span("重新", ("chong2", "xin1"))),
        ('<phoneme ph="lü4 lu:4 LV4">绿绿绿</phoneme>', Span("绿绿绿", ("lv4", "lv4", "lv4"))),
        ('<phoneme alphabet="PY" ph=" hang2 ">\n 行 \n</phoneme>', Span("行", ("hang2",))),
    ],
)
def test_phoneme(body: str, expected: Span) -> None:
    assert parse_ssml(speak(body)) == [expected]


def test_phoneme_inside_prosody_keeps_controls() -> None:
    assert parse_ssml(speak('<prosody rate="slow"><phoneme ph="chong2">重</phoneme></prosody>')) == [
        Span("重", ("chong2",), controls=Controls(speed=0.75))
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('<phoneme ph="chong2">重新</phoneme>', "has 1 syllable(s) for 2 character(s)"),
        ('<phoneme ph="chong2 xin1 kai1">重新</phoneme>', "has 3 syllable(s) for 2 character(s)"),
        ('<phoneme ph="chonng2">重</phoneme>', "contains invalid pinyin 'chonng2'"),
        ('<phoneme ph="chong6">重</phoneme>', "contains invalid pinyin 'chong6'"),
        ('<phoneme ph="chong">重</phoneme>', "is not TONE3 pinyin"),
        ('<phoneme ph="">重</phoneme>', "is not TONE3 pinyin"),
        ('<phoneme ph="a1 b2">重新a</phoneme>', "is not only Han characters"),
        ('<phoneme ph="a1">重 新</phoneme>', "is not only Han characters"),
        ('<phoneme ph="a1"></phoneme>', "is not only Han characters"),
        ("<phoneme>重</phoneme>", "needs a ph attribute"),
    ],
)
def test_phoneme_errors(body: str, fragment: str) -> None:
    assert fragment in str(error_of(speak(body)))


@pytest.mark.parametrize("alphabet", ["ipa", "x-sampa", "sapi"])
def test_phoneme_other_alphabets_are_not_supported(alphabet: str) -> None:
    message = str(error_of(speak(f'<phoneme alphabet="{alphabet}" ph="x">重</phoneme>')))
    assert f"alphabet {alphabet!r} is not supported" in message
    assert "IPA and X-SAMPA" in message
    assert 'alphabet="py"' in message


# --- <say-as> and <sub> -----------------------------------------------------------------------------------


@pytest.mark.parametrize("interpret_as", ["digits", "cardinal", "telephone", "date", "characters"])
def test_say_as(interpret_as: str) -> None:
    assert parse_ssml(speak(f'号码<say-as interpret-as="{interpret_as}"> 2024 </say-as>号')) == [
        Span("号码"),
        Span("2024", say_as=interpret_as),
        Span("号"),
    ]


def test_say_as_is_not_merged_with_neighbours_and_keeps_controls() -> None:
    segments = parse_ssml(
        speak('<prosody volume="loud"><say-as interpret-as="digits">12</say-as><say-as interpret-as="digits">34'
              "</say-as></prosody>")
    )  # fmt: skip
    assert segments == [
        Span("12", say_as="digits", controls=Controls(energy=1.25)),
        Span("34", say_as="digits", controls=Controls(energy=1.25)),
    ]


def test_say_as_bad_interpret_as_lists_valid_ones() -> None:
    message = str(error_of(speak('<say-as interpret-as="currency">5</say-as>')))
    assert "interpret-as='currency' is not supported" in message
    assert "digits, cardinal, telephone, date, characters" in message


def test_say_as_needs_interpret_as() -> None:
    assert "needs a interpret-as attribute" in str(error_of(speak("<say-as>5</say-as>")))


def test_sub_speaks_alias_not_content() -> None:
    assert parse_ssml(speak('<sub alias="世界卫生组织">WHO</sub>')) == [Span("世界卫生组织")]


def test_sub_alias_entities_are_decoded() -> None:
    assert parse_ssml(speak('<sub alias="A&amp;B">AB</sub>')) == [Span("A&B")]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [('<sub alias=" ">x</sub>', "empty alias"), ("<sub>x</sub>", "needs a alias attribute")],
)
def test_sub_errors(body: str, fragment: str) -> None:
    assert fragment in str(error_of(speak(body)))


@pytest.mark.parametrize(
    ("body", "inner", "outer"),
    [
        ('<say-as interpret-as="digits"><sub alias="一">1</sub></say-as>', "sub", "say-as"),
        ('<sub alias="一"><phoneme ph="yi1">一</phoneme></sub>', "phoneme", "sub"),
        ('<phoneme ph="yi1"><say-as interpret-as="digits">一</say-as></phoneme>', "say-as", "phoneme"),
        ('<phoneme ph="yi1">一<break/></phoneme>', "break", "phoneme"),
    ],
)
def test_text_only_elements_cannot_nest(body: str, inner: str, outer: str) -> None:
    error = error_of(speak(body))
    assert f"<{inner}> inside <{outer}>" in str(error)
    assert error.column == body.index(f"<{inner}") + len("<speak>") + 1


# --- <p> and <s> ------------------------------------------------------------------------------------------


def test_sentence_and_paragraph_end_with_a_full_stop() -> None:
    assert parse_ssml(speak("<p><s>第一句</s><s>第二句</s></p><p>第二段</p>")) == [
        Span("第一句"),
        Span("。"),
        Span("第二句"),
        Span("。"),
        Span("第二段"),
        Span("。"),
    ]


def test_no_extra_full_stop_after_existing_punctuation_or_empty_sentence() -> None:
    assert parse_ssml(speak("<s>真的吗？</s><s>  </s><p><s>好。</s></p>")) == [Span("真的吗？好。")]


def test_full_stop_is_not_merged_with_following_text() -> None:
    assert parse_ssml(speak("<s>甲</s>乙")) == [Span("甲"), Span("。"), Span("乙")]


def test_sentence_full_stop_takes_enclosing_controls() -> None:
    assert parse_ssml(speak('<prosody rate="fast"><s>快</s></prosody>')) == [
        Span("快", controls=Controls(speed=1.25)),
        Span("。", controls=Controls(speed=1.25)),
    ]


# --- <voice> ----------------------------------------------------------------------------------------------


def test_voice_names_the_speaker_of_its_content() -> None:
    assert parse_ssml(speak('旁白说。<voice name="yunxi">你好，我是云希。</voice>然后他们走了。')) == [
        Span("旁白说。"),
        Span("你好，我是云希。", voice="yunxi"),
        Span("然后他们走了。"),
    ]


def test_adjacent_voices_stay_separate_spans() -> None:
    assert parse_ssml(speak('<voice name="yunxi">一</voice><voice name="xiaobei">二</voice>')) == [
        Span("一", voice="yunxi"),
        Span("二", voice="xiaobei"),
    ]


def test_nested_voice_innermost_wins_and_outer_resumes() -> None:
    body = '<voice name="yunxi">甲<voice name="xiaobei">乙<voice name="yunxi">丙</voice>丁</voice>戊</voice>己'
    assert parse_ssml(speak(body)) == [
        Span("甲", voice="yunxi"),
        Span("乙", voice="xiaobei"),
        Span("丙", voice="yunxi"),
        Span("丁", voice="xiaobei"),
        Span("戊", voice="yunxi"),
        Span("己"),
    ]


def test_voice_applies_to_every_kind_of_content_and_keeps_prosody() -> None:
    body = (
        '<prosody rate="fast"><voice name="xiaoni"><phoneme ph="chong2">重</phoneme>'
        '<say-as interpret-as="digits">12</say-as><sub alias="世卫">WHO</sub><break time="1s"/></voice></prosody>'
    )
    fast = Controls(speed=1.25)
    assert parse_ssml(speak(body)) == [
        Span("重", ("chong2",), controls=fast, voice="xiaoni"),
        Span("12", say_as="digits", controls=fast, voice="xiaoni"),
        Span("世卫", controls=fast, voice="xiaoni"),
        Break(1000),
    ]


def test_voice_inside_and_around_p_and_s() -> None:
    body = '<p><voice name="yunxi"><s>你好</s></voice></p><voice name="xiaobei"><p><s>再见</s></p></voice>'
    assert parse_ssml(speak(body)) == [
        Span("你好", voice="yunxi"),
        Span("。", voice="yunxi"),
        Span("再见", voice="xiaobei"),
        Span("。", voice="xiaobei"),
    ]


def test_full_stop_after_a_voice_at_the_end_of_s_goes_to_that_voice() -> None:
    assert parse_ssml(speak('<s>他说<voice name="yunxi">好</voice></s>')) == [
        Span("他说"),
        Span("好", voice="yunxi"),
        Span("。", voice="yunxi"),
    ]


@pytest.mark.parametrize("name", ["yunxi", "xiaobei:0.6,yunxi:0.4", "zh-CN.v2_x", "a", "x" * 64, " yunxi "])
def test_voice_names_of_the_right_shape_are_carried_unchecked(name: str) -> None:
    assert parse_ssml(speak(f'<voice name="{name}">好</voice>')) == [Span("好", voice=name.strip())]


def test_empty_voice_element_produces_nothing() -> None:
    assert parse_ssml(speak('一<voice name="yunxi"/>二')) == [Span("一二")]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "<voice> has an empty name"),
        ("   ", "<voice> has an empty name"),
        ("yun xi", "voice name='yun xi' is not a voice name"),
        ("云希", "voice name='云希' is not a voice name"),
        ("a;b", "voice name='a;b' is not a voice name"),
        ("../x", "voice name='../x' is not a voice name"),
        ("x" * 65, f"voice name={'x' * 65!r} is not a voice name"),
    ],
)
def test_bad_voice_name_is_an_error_at_the_voice(name: str, problem: str) -> None:
    error = error_of(speak(f'前\n  <voice name="{name}">x</voice>'))
    assert problem in str(error)
    assert (error.line, error.column) == (2, 3)


def test_bad_voice_name_shape_error_says_what_is_allowed() -> None:
    assert "use at most 64 of the characters A-Z a-z 0-9 _ . : , -" in str(error_of(speak('<voice name="a b"/>')))


def test_voice_without_name_is_an_error() -> None:
    error = error_of(speak('<s>x</s>\n<voice gender="female">x</voice>'))
    assert "unsupported attribute 'gender' on <voice>" in str(error)
    error = error_of(speak("<s>x</s>\n<voice>x</voice>"))
    assert str(error) == 'SSML error at line 2, column 1: <voice> needs a name attribute; add name="…"'
    assert (error.line, error.column, error.position) == (2, 1, 16)


def test_nested_voice_errors_report_the_inner_element() -> None:
    error = error_of(speak('<voice name="yunxi">\n  <voice name="">x</voice></voice>'))
    assert (error.line, error.column) == (2, 3) and "empty name" in str(error)


# --- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["emphasis", "audio", "desc", "mark", "lang", "Speak", "Voice", "ssml:break"])
def test_unsupported_tags(tag: str) -> None:
    error = error_of(speak(f"前\n  <{tag}>x</{tag}>"))
    assert f"unsupported tag <{tag}>" in str(error)
    supported = "supported: <speak>, <break>, <prosody>, <emotion>, <phoneme>, <say-as>, <sub>, <p>, <s>, <voice>"
    assert supported in str(error)
    assert (error.line, error.column) == (2, 3)


@pytest.mark.parametrize(
    ("body", "attribute", "tag"),
    [
        ('<break duration="1s"/>', "duration", "break"),
        ('<prosody contour="(0%,+20Hz)">x</prosody>', "contour", "prosody"),
        ('<say-as interpret-as="date" format="ymd">2024-01-02</say-as>', "format", "say-as"),
        ('<sub alias="a" lang="en">b</sub>', "lang", "sub"),
        ('<phoneme ph="a1" foo="bar">啊</phoneme>', "foo", "phoneme"),
        ('<s id="1">x</s>', "id", "s"),
    ],
)
def test_unknown_attributes(body: str, attribute: str, tag: str) -> None:
    assert f"unsupported attribute {attribute!r} on <{tag}>" in str(error_of(speak(body)))


def test_unknown_attribute_on_speak() -> None:
    assert "unsupported attribute 'rate' on <speak>" in str(error_of('<speak rate="fast">x</speak>'))


def test_root_must_be_speak() -> None:
    error = error_of("<prosody>x</prosody>")
    assert "the root element is <prosody>" in str(error)


def test_speak_inside_speak() -> None:
    assert "<speak> inside <speak>" in str(error_of(speak("<speak>x</speak>")))


@pytest.mark.parametrize(
    ("document", "line", "column", "expat_words"),
    [
        ("<speak>\n<a></b></speak>", 2, 6, "mismatched tag"),
        ("<speak>\n  a < b\n</speak>", 2, 6, "not well-formed (invalid token)"),
        ("<speak>中文 & 英文</speak>", 1, 12, "not well-formed (invalid token)"),
        ("<speak>&nbsp;</speak>", 1, 8, "undefined entity"),
        ("<speak>\n你好", 2, 3, "no element found"),
        ("<speak>x</speak><speak>y</speak>", 1, 17, "junk after document element"),
        ('<speak><break time="1s" time="2s"/></speak>', 1, 25, "duplicate attribute"),
        ("", 1, 1, "no element found"),
    ],
)
def test_malformed_xml_reports_line_and_column(document: str, line: int, column: int, expat_words: str) -> None:
    error = error_of(document)
    assert (error.line, error.column) == (line, column)
    assert str(error).startswith(f"SSML error at line {line}, column {column}: malformed XML ({expat_words}); ")


def test_error_position_is_the_offset_of_line_and_column() -> None:
    document = "<speak>\r\n  一\r\n  <emphasis>二</emphasis></speak>"
    error = error_of(document)
    assert (error.line, error.column) == (3, 3)
    assert document[error.position :].startswith("<emphasis>")


@pytest.mark.parametrize(
    "document",
    [
        '<!DOCTYPE speak [<!ENTITY a "aaaaaaaaaa">]><speak>&a;</speak>',
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        "<speak>&lol2;</speak>",
        '<!DOCTYPE speak SYSTEM "http://example.com/speak.dtd"><speak>x</speak>',
        '<!DOCTYPE speak [<!ENTITY % p "x">]><speak>x</speak>',
        '<!DOCTYPE speak [<!ENTITY ext SYSTEM "file:///etc/passwd">]><speak>&ext;</speak>',
    ],
)
def test_doctype_and_entity_declarations_are_rejected(document: str) -> None:
    error = error_of(document)
    assert "DOCTYPE declarations are not allowed" in str(error)
    assert document[error.position :].startswith("<!DOCTYPE")


def test_processing_instruction_is_rejected() -> None:
    assert "processing instruction <?php …?>" in str(error_of(speak('<?php echo "x"; ?>')))


def test_too_long_input_is_rejected_before_parsing() -> None:
    error = error_of("<speak>" + "字" * MAX_INPUT_CHARS)  # also unclosed: the length is checked first
    assert "too long" in str(error)
    assert (error.line, error.column) == (1, 1)


def test_input_at_the_limit_is_parsed() -> None:
    body = "字" * (MAX_INPUT_CHARS - len("<speak></speak>"))
    assert parse_ssml(speak(body)) == [Span(body)]


def test_ssml_error_shape() -> None:
    error = error_of(speak("<audio/>"))
    assert isinstance(error, MarkupError) and isinstance(error, ValueError)
    assert str(error) == (
        "SSML error at line 1, column 8: unsupported tag <audio>; "
        "supported: <speak>, <break>, <prosody>, <emotion>, <phoneme>, <say-as>, <sub>, <p>, <s>, <voice>"
    )
    assert error.position == 7


# --- a realistic document ---------------------------------------------------------------------------------


def test_full_document() -> None:
    document = """<?xml version="1.0" encoding="UTF-8"?>
<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="zh-CN">
  <p>
    <s>各位乘客请注意，<phoneme alphabet="py" ph="chong2 xin1">重新</phoneme>安排的航班即将起飞。</s>
    <s>咨询电话：<say-as interpret-as="telephone">400-820-8820</say-as></s>
  </p>
  <break strength="strong"/>
  <p>
    <prosody rate="slow" volume="+6dB">请
      <prosody pitch="high">携带</prosody>好随身物品</prosody>，
    <sub alias="世界卫生组织">WHO</sub>提醒您&lt;戴口罩&gt;。
  </p>
</speak>
"""
    loud = 10 ** (6 / 20)
    segments = parse_ssml(document)
    assert segments == [
        Span("各位乘客请注意，"),
        Span("重新", ("chong2", "xin1")),
        Span("安排的航班即将起飞。咨询电话："),  # no extra 。 after 飞。, so the sentences' text joins
        Span("400-820-8820", say_as="telephone"),
        Span("。"),
        Break(700),
        Span("请 ", controls=Controls(speed=0.75, energy=loud)),
        Span("携带", controls=Controls(speed=0.75, pitch=1.25, energy=loud)),
        Span("好随身物品", controls=Controls(speed=0.75, energy=loud)),
        Span("， 世界卫生组织提醒您<戴口罩>。"),
    ]
    assert math.isclose(segments[7].controls.energy, 1.9952623149688795)


def test_unpaired_surrogate_is_an_ssml_error() -> None:
    error = error_of("<speak>\n ab\ud800</speak>")
    assert "unpaired surrogate" in str(error)
    assert (error.line, error.column, error.position) == (2, 4, 11)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    depth = 5000
    error = error_of(speak("<prosody>" * depth + "x" + "</prosody>" * depth))
    assert "nested more than 64 deep" in str(error)
    assert parse_ssml(speak("<s>" * 63 + "x" + "</s>" * 63)) == [Span("x"), Span("。")]


def test_random_documents_raise_only_ssml_errors() -> None:
    pieces = ["<speak>", "</speak>", "<s>", "</s>", "<p>", "</p>", '<break time="1s"/>', "<break/>", "</break>",
              '<prosody rate="fast">', '<prosody pitch="x-high">', "</prosody>", '<phoneme ph="chong2">', "</phoneme>",
              '<say-as interpret-as="digits">', "</say-as>", '<sub alias="一">', "</sub>", "重", "12", " ", "&amp;",
              "&", "<", "<emphasis>", '<break time="-1s"/>', "<!-- c -->", "\n"]  # fmt: skip
    rng = random.Random(7)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(3000):
        document = "<speak>" + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10))) + "</speak>"
        try:
            segments = parse_ssml(document)
        except SSMLError as error:
            assert 0 <= error.position <= len(document) and error.line >= 1 and error.column >= 1
            outcomes["error"] += 1
        else:
            assert all(isinstance(segment, Span | Break) for segment in segments)
            outcomes["ok"] += 1
    assert outcomes["ok"] > 100 and outcomes["error"] > 100
