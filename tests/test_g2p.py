"""Tests for citation pinyin with polyphone disambiguation (qingyin.text.g2p).

Expected readings are citation tones (before tone sandhi) as 现代汉语词典 gives them, v for ü, 5 for 轻声.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from qingyin.text.g2p import (
    CONTEXT_RULES,
    PUNCTUATION,
    Evidence,
    citation_pinyin,
    context_reading,
    is_han,
    pinyin_of,
    segment,
)
from qingyin.text.lexicon import Lexicon


def readings_of(sentence: str, target: str, lexicon: Lexicon | None = None) -> str:
    """Space-separated readings of the first occurrence of `target` in `sentence`."""
    words = segment(sentence, lexicon)
    flat = [reading for word in citation_pinyin(words, lexicon=lexicon) for reading in word]
    start = sentence.index(target)
    return " ".join(str(reading) for reading in flat[start : start + len(target)])


GOLDEN = [
    # 行
    ("他在银行工作。", "银行", "yin2 hang2"),
    ("我们步行去学校。", "步行", "bu4 xing2"),
    ("行长同意了这个方案。", "行长", "hang2 zhang3"),
    ("这家公司在行业里很有名。", "行业", "hang2 ye4"),
    # 长
    ("孩子们都长大了。", "长大", "zhang3 da4"),
    ("这条河很长。", "长", "chang2"),
    ("他是我们的班长。", "班长", "ban1 zhang3"),
    # 重
    ("我们重新开始吧。", "重新", "chong2 xin1"),
    ("这个箱子很重。", "重", "zhong4"),
    ("重庆是一座山城。", "重庆", "chong2 qing4"),
    # 还
    ("他还没有回来。", "还", "hai2"),
    ("请把书还给我。", "还", "huan2"),
    # 为
    ("我们为人民服务。", "为", "wei4"),
    ("他被选为班长。", "为", "wei2"),
    # 得
    ("他跑得很快。", "得", "de5"),
    ("你得好好学习。", "得", "dei3"),
    ("他得了第一名。", "得", "de2"),
    # 地 的 了 着
    ("他慢慢地走了过来。", "地", "de5"),
    ("这块地很肥沃。", "地", "di4"),
    ("我的书在桌子上。", "的", "de5"),
    ("他的目的很明确。", "目的", "mu4 di4"),
    ("我吃了饭就走。", "了", "le5"),
    ("这件事我很了解。", "了解", "liao3 jie3"),
    ("他笑着说。", "着", "zhe5"),
    ("你别着急。", "着急", "zhao2 ji2"),
    ("孩子已经睡着了。", "着", "zhao2"),
    # 好 乐 觉 便 血 薄
    ("这个孩子很好学。", "好学", "hao4 xue2"),
    ("今天天气很好。", "好", "hao3"),
    ("我喜欢听音乐。", "音乐", "yin1 yue4"),
    ("祝你生日快乐。", "快乐", "kuai4 le4"),
    ("我觉得很好。", "觉得", "jue2 de5"),
    ("我要睡觉了。", "睡觉", "shui4 jiao4"),
    ("这件衣服很便宜。", "便宜", "pian2 yi5"),
    ("这里交通很方便。", "方便", "fang1 bian4"),
    ("他的手指流血了。", "流血", "liu2 xue4"),
    ("血液在血管里流动。", "血液", "xue4 ye4"),
    ("这张纸很薄。", "薄", "bao2"),
    ("他的身体很单薄。", "单薄", "dan1 bo2"),
    # 差 数 调 传 教
    ("他出差去了上海。", "出差", "chu1 chai1"),
    ("这两个数字相差很大。", "相差", "xiang1 cha4"),
    ("他的成绩很差。", "差", "cha4"),
    ("我数了三遍。", "数", "shu3"),
    ("我喜欢数学。", "数学", "shu4 xue2"),
    ("我们要调查这件事。", "调查", "diao4 cha2"),
    ("请把空调关掉。", "空调", "kong1 tiao2"),
    ("他写了一本自传。", "自传", "zi4 zhuan4"),
    ("这个消息很快传开了。", "传", "chuan2"),
    ("他在学校教书。", "教书", "jiao1 shu1"),
    ("教育是国家大事。", "教育", "jiao4 yu4"),
    # 朝 藏 种 处 当 发 将
    ("他朝我走来。", "朝", "chao2"),
    ("这不是一朝一夕的事。", "朝", "zhao1"),
    ("西藏很美。", "西藏", "xi1 zang4"),
    ("他把钱藏起来了。", "藏", "cang2"),
    ("农民在田里种地。", "种地", "zhong4 di4"),
    ("这种花很香。", "种", "zhong3"),
    ("我来处理这件事。", "处理", "chu3 li3"),
    ("到处都是人。", "到处", "dao4 chu4"),
    ("他当上了老师。", "当", "dang1"),
    ("我把你当作朋友。", "当作", "dang4 zuo4"),
    ("我发现了一个问题。", "发现", "fa1 xian4"),
    ("她的头发很长。", "头发", "tou2 fa5"),
    ("他是一名将军。", "将军", "jiang1 jun1"),
    # 看 难 曾 降 给 累 相 应 切 背
    ("他在看书。", "看", "kan4"),
    ("请你看守大门。", "看守", "kan1 shou3"),
    ("这道题很难。", "难", "nan2"),
    ("他们是战争的难民。", "难民", "nan4 min2"),
    ("我曾经去过北京。", "曾经", "ceng2 jing1"),
    ("他的曾祖父是医生。", "曾祖父", "zeng1 zu3 fu4"),
    ("飞机开始降落。", "降落", "jiang4 luo4"),
    ("敌人投降了。", "投降", "tou2 xiang2"),
    ("他给了我一本书。", "给", "gei3"),
    ("国家给予大力支持。", "给予", "ji3 yu3"),
    ("我今天很累。", "累", "lei4"),
    ("经验需要慢慢积累。", "积累", "ji1 lei3"),
    ("我们应该互相帮助。", "互相", "hu4 xiang1"),
    ("他喜欢照相。", "照相", "zhao4 xiang4"),
    ("你应该早点睡。", "应该", "ying1 gai1"),
    ("他答应了我的要求。", "答应", "da1 ying5"),
    ("这是一种化学反应。", "反应", "fan3 ying4"),
    ("请把苹果切开。", "切", "qie1"),
    ("一切都会好的。", "一切", "yi1 qie4"),
    ("他背着一个大包。", "背", "bei1"),
    ("他的背很疼。", "背", "bei4"),
    # neutral tones of common words
    ("我们是好朋友。", "我们", "wo3 men5"),
    ("我们是好朋友。", "朋友", "peng2 you5"),
    ("你是什么时候来的？", "时候", "shi2 hou5"),
    ("这件事情很重要。", "事情", "shi4 qing5"),
    ("我喜欢你。", "喜欢", "xi3 huan5"),
    ("这是什么意思？", "意思", "yi4 si5"),
    pytest.param(
        "我去超市买东西。",
        "东西",
        "dong1 xi5",
        marks=pytest.mark.xfail(
            strict=True,
            reason="东西 'thing' needs context; CC-CEDICT's first reading is xi1 and the built-in lexicon "
            "leaves 东西 out because it would also match 山东西部",
        ),
    ),
    # no tone sandhi at this stage
    ("你好。", "你好", "ni3 hao3"),
    ("一个人不去。", "一个人不去", "yi1 ge4 ren2 bu4 qu4"),
]


@pytest.mark.parametrize(("sentence", "target", "expected"), GOLDEN)
def test_golden_readings(sentence: str, target: str, expected: str) -> None:
    assert readings_of(sentence, target) == expected


def test_golden_table_is_large_enough() -> None:
    assert len(GOLDEN) >= 50


# --- context rules -------------------------------------------------------------------------------

# (sentence, target, expected): each rule's own cases, then neighbours it must leave alone.
CONTEXT_CASES = [
    # modal dei3
    ("时间不早了，我得赶紧回家。", "得", "dei3"),
    ("他还得再等一会儿。", "得", "dei3"),
    ("他得了第一名。", "得", "de2"),
    # complement de5
    ("她唱得非常好听。", "得", "de5"),
    ("他的字写得很漂亮。", "得", "de5"),
    ("他获得很多奖。", "获得", "huo4 de2"),
    # adverbial de5
    ("他悄悄地离开了。", "地", "de5"),
    ("总统历史性地访问了中国。", "地", "de5"),
    ("这里的土地很肥沃。", "土地", "tu3 di4"),
    # graded chang2
    ("这条路太长了。", "长", "chang2"),
    ("这是世界上最长的河。", "长", "chang2"),
    ("孩子长得很快。", "长", "zhang3"),
    # beneficiary wei4
    ("他一心为国家效力。", "为", "wei4"),
    ("我们都为你骄傲。", "为", "wei4"),
    ("这台机器成为服务器。", "为", "wei2"),
    # counting shu3
    ("你再数一下。", "数", "shu3"),
    ("他们数过了，一共十个。", "数", "shu3"),
    ("参加的人数过多。", "人数", "ren2 shu4"),
    # cutting qie1
    ("把肉切成小块。", "切", "qie1"),
    ("他用刀切断了绳子。", "切", "qie1"),
    ("两国关系很密切。", "密切", "mi4 qie4"),
    # carrying bei1
    ("他背起书包上学去了。", "背", "bei1"),
    ("她背着两个孩子过河。", "背", "bei1"),
    # handling nong4
    ("他把衣服弄脏了。", "弄", "nong4"),
    ("我终于弄清楚了。", "弄", "nong4"),
    ("她住在上海的弄堂里。", "弄堂", "long4 tang2"),
    # digging pao2
    ("小狗在地上刨坑。", "刨", "pao2"),
    ("他们刨出了一块古砖。", "刨", "pao2"),
    ("地上都是刨花。", "刨花", "bao4 hua1"),
    # sprinkling sa3
    ("把种子撒在地里。", "撒", "sa3"),
    ("蛋糕上撒满了糖。", "撒", "sa3"),
    ("他从来不撒谎。", "撒谎", "sa1 huang3"),
    # spreading pu1
    ("把桌布铺在桌上。", "铺", "pu1"),
    ("地上铺满了落叶。", "铺", "pu1"),
    ("这家店铺很小。", "店铺", "dian4 pu4"),
]


@pytest.mark.parametrize(("sentence", "target", "expected"), CONTEXT_CASES)
def test_context_rules(sentence: str, target: str, expected: str) -> None:
    assert readings_of(sentence, target) == expected


def test_every_context_rule_has_cases() -> None:
    for rule in CONTEXT_RULES:
        cases = [c for c in CONTEXT_CASES + GOLDEN if not hasattr(c, "marks") and rule.char in c[1]]
        assert sum(expected.split()[target.index(rule.char)] == rule.reading for _, target, expected in cases) >= 2


def test_context_rule_never_contradicts_a_dictionary_word() -> None:
    assert context_reading("他跑得很快", 2) == "de5"
    assert context_reading("他跑得很快", 2, Evidence("de2", "pypinyin", 1000, 2)) is None
    assert context_reading("他跑得很快", 2, Evidence("de5", "cc-cedict", 10, 2)) == "de5"


def test_context_rule_text_ends_are_clause_boundaries() -> None:
    assert context_reading("得好好学习", 0) == "dei3"
    assert context_reading("他跑" + "啊" * 20 + "得好好学习", 22) is None


def test_context_rule_needs_its_context() -> None:
    assert context_reading("这条河长", 3) is None
    assert context_reading("好", 0) is None


# --- precedence ----------------------------------------------------------------------------------


def test_forced_reading_wins_over_everything() -> None:
    lexicon = Lexicon({"银行": "yin2 hang2"})
    assert citation_pinyin(["银行"], forced=[None, "xing2"], lexicon=lexicon) == [["yin2", "xing2"]]


def test_forced_must_cover_every_character() -> None:
    with pytest.raises(ValueError, match="forced"):
        citation_pinyin(["银行"], forced=[None])


def test_lexicon_wins_over_dictionary() -> None:
    assert readings_of("他在银行工作。", "银行", Lexicon({"银行": "yin2 xing2"})) == "yin2 xing2"


def test_user_lexicon_layered_over_builtin() -> None:
    from qingyin.text.lexicon import builtin_lexicon

    lexicon = builtin_lexicon().layered({"重庆": "zhong4 qing4"})
    assert readings_of("重庆很热。", "重庆", lexicon) == "zhong4 qing4"
    assert readings_of("他在银行工作。", "银行", lexicon) == "yin2 hang2"


def test_empty_lexicon_falls_back_to_dictionaries() -> None:
    assert readings_of("他在银行工作。", "银行", Lexicon()) == "yin2 hang2"


def test_punctuation_and_unknown_have_no_reading() -> None:
    assert citation_pinyin(["你好", "，", "世界", "。"]) == [["ni3", "hao3"], [None], ["shi4", "jie4"], [None]]


def test_citation_pinyin_shape_follows_words() -> None:
    words = segment("我们重新开始吧，好吗？")
    result = citation_pinyin(words)
    assert [len(r) for r in result] == [len(w) for w in words]


def test_u_umlaut_written_v() -> None:
    assert readings_of("绿色的女孩。", "绿色的女") == "lv4 se4 de5 nv3"


# --- segment -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["今天天气不错，我们去公园散步吧！", "他说：“好。”", "一、二；三？", "", "，，"])
def test_segment_concatenation_is_the_text(text: str) -> None:
    assert "".join(segment(text)) == text


def test_segment_punctuation_marks_are_tokens() -> None:
    words = segment("你好，世界！今天；明天：后天、大后天。？")
    for mark in PUNCTUATION:
        assert all(word == mark or mark not in word for word in words)
    assert words.count("，") == 1 and words[-2:] == ["。", "？"]


def test_segment_keeps_lexicon_words_whole() -> None:
    lexicon = Lexicon({"天气不": "tian1 qi4 bu4", "公园散": "gong1 yuan2 san4"})
    words = segment("今天天气不错，我们去公园散步吧", lexicon)
    assert "天气不" in words and "公园散" in words
    assert "".join(words) == "今天天气不错，我们去公园散步吧"


def test_segment_does_not_change_jieba_for_later_calls() -> None:
    segment("今天天气不错", Lexicon({"天气不": "tian1 qi4 bu4"}))
    assert "天气不" not in segment("今天天气不错", Lexicon())


def test_segment_uses_builtin_lexicon_by_default() -> None:
    assert "银行" in segment("中国银行行长")


# --- pinyin_of and helpers -----------------------------------------------------------------------


def test_pinyin_of_gives_han_characters_only() -> None:
    assert pinyin_of("我有3本书，abc。") == [("我", "wo3"), ("有", "you3"), ("本", "ben3"), ("书", "shu1")]


def test_pinyin_of_pairs_characters_with_tone3() -> None:
    assert pinyin_of("银行行长") == [("银", "yin2"), ("行", "hang2"), ("行", "hang2"), ("长", "zhang3")]


@pytest.mark.parametrize(
    ("char", "expected"), [("中", True), ("，", False), ("a", False), ("中国", False), ("", False)]
)
def test_is_han(char: str, expected: bool) -> None:
    assert is_han(char) is expected


def test_g2p_does_not_import_torch() -> None:
    code = "import sys, qingyin.text.g2p, qingyin.text.lexicon; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
