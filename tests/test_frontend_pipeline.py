"""The whole text pipeline: markup → normalization → G2P → prosody → sandhi → phones, as the synthesizer uses it."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest

from qingyin.text import Frontend, text_to_sentences
from qingyin.text.lexicon import Lexicon, LexiconError
from qingyin.text.markup import Controls, MarkupError
from qingyin.text.ssml import SSMLError
from qingyin.text.symbols import FINALS, INITIALS

BAKER_SYMBOLS = {"sil", "#0", "#1", "#2", "#3", "^", "er5", *INITIALS} | {f + t for f in FINALS for t in "12345"}


@pytest.fixture(scope="module")
def frontend() -> Frontend:
    return Frontend()


def readings(text: str, frontend: Frontend | None = None) -> str:
    result = (frontend or Frontend())(text)
    return " ".join(p for s in result.sentences for _, p in s.pinyin)


# --- end to end golden cases: normalized text and spoken pinyin -----------------------------------------------

GOLDEN = [
    ("今天天气不错。", "今天天气不错。", "jin1 tian1 tian1 qi4 bu2 cuo4"),
    ("银行行长来了。", "银行行长来了。", "yin2 hang2 hang2 zhang3 lai2 le5"),
    ("他长大了。", "他长大了。", "ta1 zhang3 da4 le5"),
    ("我们重新开始。", "我们重新开始。", "wo3 men5 chong2 xin1 kai1 shi3"),
    ("2024年3月5日", "二零二四年三月五日", "er4 ling2 er4 si4 nian2 san1 yue4 wu3 ri4"),
    ("共2000人", "共两千人", "gong4 liang3 qian1 ren2"),
    ("第1名", "第一名", "di4 yi1 ming2"),
    ("一个人", "一个人", "yi2 ge4 ren2"),
    ("不要走", "不要走", "bu2 yao4 zou3"),
    ("你好", "你好", "ni2 hao3"),
    ("展览馆", "展览馆", "zhan2 lan2 guan3"),
    ("等一会儿。", "等一会儿。", "deng3 yi2 hui4 er5"),
    ("拨打13812345678", "拨打幺三八幺二三四五六七八",
     "bo1 da3 yao1 san1 ba1 yao1 er4 san1 si4 wu3 liu4 qi1 ba1"),
    ("價格是¥1,234.56", "价格是一千二百三十四点五六元",
     "jia4 ge2 shi4 yi4 qian1 er4 bai3 san1 shi2 si4 dian2 wu3 liu4 yuan2"),
    ("比分3:2", "比分三比二", "bi3 fen1 san1 bi3 er4"),
    ("温度-3.5℃", "温度负三点五摄氏度", "wen1 du4 fu4 san1 dian2 wu3 she4 shi4 du4"),
    ("好不好？", "好不好？", "hao3 bu5 hao3"),
    ("看一看", "看一看", "kan4 yi5 kan4"),
    ("妈妈的朋友", "妈妈的朋友", "ma1 ma5 de5 peng2 you5"),
    ("ＯＫ", "欧开", "ou1 kai1"),
]


@pytest.mark.parametrize(("text", "normalized", "pinyin"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(frontend: Frontend, text: str, normalized: str, pinyin: str) -> None:
    result = frontend(text)
    assert "".join(s.normalized for s in result.sentences) == normalized
    assert " ".join(p for s in result.sentences for _, p in s.pinyin) == pinyin
    for sentence in result.sentences:
        assert sentence.phones[0] == sentence.phones[-1] == "sil"
        assert set(sentence.phones) <= BAKER_SYMBOLS


# --- prosody marks -----------------------------------------------------------------------------------------


def test_marks_mode_places_word_and_phrase_boundaries(frontend: Frontend) -> None:
    [sentence] = frontend("我们明天上午一起去公园散步，好吗？").sentences
    marks = [p for p in sentence.phones if p.startswith("#")]
    assert "#1" in marks and "#2" in marks and marks.count("#3") == 1


def test_plain_mode_has_only_syllable_joints_and_commas() -> None:
    [sentence] = Frontend(prosody_mode="plain")("我们明天上午一起去公园散步，好吗？").sentences
    assert {p for p in sentence.phones if p.startswith("#")} == {"#0", "#3"}


def test_same_syllables_in_both_modes(frontend: Frontend) -> None:
    text = "我们明天上午一起去公园散步，好吗？"
    plain = Frontend(prosody_mode="plain")(text).sentences[0].phones
    marks = frontend(text).sentences[0].phones
    assert [p for p in plain if not p.startswith("#")] == [p for p in marks if not p.startswith("#")]


def test_unknown_prosody_mode() -> None:
    with pytest.raises(ValueError, match="marks"):
        Frontend(prosody_mode="loud")


# --- pronunciation control -----------------------------------------------------------------------------------


def test_inline_pinyin_wins_and_is_not_changed_by_sandhi(frontend: Frontend) -> None:
    assert readings("重[chong2]新", frontend) == "chong2 xin1"
    assert readings("一[yi1]个", frontend) == "yi1 ge4"  # as written, no sandhi
    assert readings("你[ni3]好[hao3]", frontend) == "ni3 hao3"


def test_inline_pinyin_error_names_the_position(frontend: Frontend) -> None:
    with pytest.raises(MarkupError) as caught:
        frontend("我们重[chonng2]新开始")
    assert caught.value.position >= 3 and "chonng2" in str(caught.value)


def test_lexicon_levels_request_over_instance_over_builtin() -> None:
    builtin = Frontend()
    assert readings("银行", builtin) == "yin2 hang2"  # built-in override file
    server = Frontend(lexicon={"银行": "yin2 xing2"})
    assert readings("银行", server) == "yin2 xing2"
    result = server("银行", lexicon={"银行": ["yin2", "heng2"]})
    assert [p for _, p in result.sentences[0].pinyin] == ["yin2", "heng2"]
    assert readings("银行", server) == "yin2 xing2"  # the request's lexicon did not stick


def test_lexicon_from_file(tmp_path) -> None:
    path = tmp_path / "words.tsv"
    path.write_text("# mine\n轻音\tqing1 yin1\n", encoding="utf-8")
    assert readings("轻音很好", Frontend(lexicon=path)).startswith("qing1 yin1")
    path.write_text("轻音\tqing1\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"words\.tsv:1: .*2 characters but 1 syllable"):
        Frontend(lexicon=path)


def test_lexicon_readings_still_get_sandhi() -> None:
    # A lexicon gives dictionary readings; third-tone sandhi still applies (unlike inline pinyin).
    assert readings("小美好", Frontend(lexicon=Lexicon({"小美": "xiao3 mei3"}))).startswith("xiao2")


# --- SSML through the pipeline -----------------------------------------------------------------------------


def test_ssml_break_ends_the_sentence_with_its_pause(frontend: Frontend) -> None:
    result = frontend('<speak>请稍等<break time="500ms"/>好了。</speak>')
    assert [s.normalized for s in result.sentences] == ["请稍等", "好了。"]
    assert [s.break_ms for s in result.sentences] == [500, None]


def test_ssml_break_after_a_sentence_replaces_the_default_pause(frontend: Frontend) -> None:
    result = frontend('<speak>你好。<break time="1s"/>再见。</speak>')
    assert [(s.normalized, s.break_ms) for s in result.sentences] == [("你好。", 1000), ("再见。", None)]


def test_ssml_leading_break_is_a_pure_pause(frontend: Frontend) -> None:
    result = frontend('<speak><break time="300ms"/>你好</speak>')
    assert result.sentences[0].phones == [] and result.sentences[0].break_ms == 300
    assert result.sentences[1].phones[0] == "sil"


def test_ssml_prosody_becomes_per_phone_controls(frontend: Frontend) -> None:
    [sentence] = frontend('<speak>你好<prosody rate="fast" volume="loud">世界</prosody></speak>').sentences
    assert sentence.controls is not None and len(sentence.controls) == len(sentence.phones)
    fast = Controls(speed=1.25, energy=1.25)
    assert sentence.controls[1] == Controls() and sentence.controls[-2] == fast


def test_ssml_phoneme_say_as_and_sub(frontend: Frontend) -> None:
    text = ('<speak><phoneme alphabet="py" ph="chong2">重</phoneme>新拨打'
            '<say-as interpret-as="telephone">10086</say-as>，<sub alias="世界卫生组织">WHO</sub>。</speak>')
    [sentence] = frontend(text).sentences
    assert sentence.normalized == "重新拨打幺零零八六，世界卫生组织。"
    assert sentence.pinyin[0] == ("重", "chong2")


def test_ssml_indentation_adds_no_pauses(frontend: Frontend) -> None:
    result = frontend("<speak>\n  你好\n  <prosody rate=\"slow\">世界</prosody>\n</speak>")
    assert "#3" not in result.sentences[0].phones


def test_broken_ssml_is_an_error_with_line_and_column(frontend: Frontend) -> None:
    with pytest.raises(SSMLError) as caught:
        frontend("<speak>\n你好<break time='1s'>\n</speak>")
    assert caught.value.line == 3 and "line 3" in str(caught.value)


def test_unknown_ssml_tag_is_an_error_not_silence(frontend: Frontend) -> None:
    with pytest.raises(SSMLError, match="emphasis"):
        frontend("<speak><emphasis>你好</emphasis></speak>")


# --- bad input: never a crash, never a hang ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", " ", "😀" * 50, "\x00\x01\x1b[31m你好\x7f", "\ud800你\udfff好", "[[[]]]", "重[", "]重[chong2",
     "<notspeak>你好</notspeak>", "<", "&amp;", "𠮷野家\U0010ffff\ue000", "NaN", "inf%", "1e308", "9" * 400,
     "-" * 300, "。" * 300, "Ａ" * 50, "１２３４５６７８９０" * 10],
)
def test_bad_input_never_crashes(frontend: Frontend, text: str) -> None:
    result = frontend(text)
    for sentence in result.sentences:
        assert sentence.phones == [] or (sentence.phones[0] == sentence.phones[-1] == "sil")
        assert set(sentence.phones) <= BAKER_SYMBOLS
        assert len(sentence.pinyin) <= 40
    assert all(isinstance(w, str) for w in result.warnings)


def _peak_while_streaming(frontend: Frontend, text: str) -> tuple[int, int]:
    """(sentences, peak traced bytes) of running `text` through iter_sentences without keeping the output."""
    tracemalloc.start()
    count = sum(1 for _ in frontend.iter_sentences(text))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return count, peak


def test_long_text_streams_in_bounded_memory() -> None:
    # Memory must not grow with the input: 4x the text, about the same peak. (100,000 characters take ~8 s
    # outside tracemalloc; `benchmarks/frontend_speed.py` runs that size.)
    frontend = Frontend()
    unit = "今天是2024年3月5日，气温25℃。我们在公园里散步，聊了很多事情！"
    frontend(unit)
    small_count, small_peak = _peak_while_streaming(frontend, unit * 60)
    large_count, large_peak = _peak_while_streaming(frontend, unit * 240)
    assert large_count == 4 * small_count
    assert large_peak < 1.5 * small_peak + 2**20, f"peak grew from {small_peak} to {large_peak} bytes"


def test_iter_sentences_is_lazy() -> None:
    sentences = Frontend().iter_sentences("你好。" * 100_000)
    assert next(sentences).normalized == "你好。"


def test_text_to_sentences_uses_the_same_pipeline() -> None:
    text = "2024年，银行行长说：我们重新开始。"
    assert text_to_sentences(text) == Frontend()(text)


# --- `qingyin frontend` ----------------------------------------------------------------------------------------


def _frontend_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qingyin.cli", "frontend", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_frontend_json_has_every_stage() -> None:
    done = _frontend_cli("2024年，银行行长来了😀。", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["normalized"] == "二零二四年，银行行长来了。"
    assert report["words"][:2] == ["二零二四", "年"]
    assert report["pinyin"][5:8] == [["银", "yin2"], ["行", "hang2"], ["行", "hang2"]]
    assert len(report["pinyin"]) == sum(c.isalpha() and ord(c) > 0x3000 for c in report["normalized"])
    assert report["phones"].startswith("sil ^ er4 #0 l ing2") and report["phones"].endswith("sil")
    assert report["warnings"] == ['dropped "😀" at 12: no Mandarin reading']
    assert [s["phones"] for s in report["sentences"]] == [report["phones"]]


def test_cli_frontend_reports_broken_ssml_and_exits_2() -> None:
    done = _frontend_cli("<speak><emphasis>你好</emphasis></speak>")
    assert done.returncode == 2
    assert done.stderr.startswith("qingyin: error: SSML error at line 1")


def test_cli_frontend_does_not_import_torch() -> None:
    code = ("import sys; from qingyin.cli import main; main(['frontend', '你好', '--json']); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
