"""Grapheme-to-pinyin: citation readings (before tone sandhi) of Han text, with polyphone disambiguation.

Each character's reading comes from the first of these that has one:

1. a forced reading given by the caller (markup such as ``[行](hang2)``);
2. the pronunciation lexicon (built-in overrides, layered with the user's);
3. a context rule (``CONTEXT_RULES``: 跑得很快 de5, 很长 chang2, ...) that agrees with step 4's dictionary, if any;
4. a phrase dictionary entry for the word that jieba segmented (pypinyin's phrases, then CC-CEDICT's);
5. g2pM, a small BiLSTM trained on the CPP polyphone corpus, for the characters it has classes for;
6. pypinyin's default reading of the single character.

Steps 4 and 5 are combined by a rule tuned on the CPP dev split (see ``_OVERRULE``); the numbers behind
it are in benchmarks/polyphones.py.
"""

from __future__ import annotations

import logging
import pickle
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from pypinyin.constants import PHRASES_DICT, PINYIN_DICT
from pypinyin.contrib.tone_convert import to_tone3
from pypinyin.seg.mmseg import seg as _mmseg

from .hanzi import is_han
from .lexicon import Lexicon, builtin_lexicon
from .numbers import DIGIT_NAMES, NUMERAL_CHARS

if TYPE_CHECKING:
    import jieba

PUNCTUATION = "，。！？；：、"
_READING = re.compile(r"[a-zêv]+[1-5]")
_CITATION = {"一": "yi1", "不": "bu4"}  # the two characters whose tone sandhi dictionaries write out

# When g2pM may overrule a phrase dictionary, per source of the dictionary reading: only inside words that
# jieba counts fewer than MAX_FREQUENCY times (rare words and names, where the dictionaries err most, while
# everyday words stay safe from the model's overconfidence on short sentences) and that have at most
# MAX_LENGTH characters (pypinyin's idioms are reliable; CC-CEDICT's transliterations are not), and only
# when the model gives its own reading at least MIN_PROBABILITY. Tuned on CPP dev; see benchmarks/polyphones.py.
PYPINYIN_PHRASE, CEDICT_PHRASE, PHRASE_PIECE = "pypinyin", "cc-cedict", "piece"
_OVERRULE: dict[str, tuple[float, float, float]] = {  # source: (max frequency, max length, min probability)
    PYPINYIN_PHRASE: (100, 3, 0.999),
    CEDICT_PHRASE: (1000, float("inf"), 0.99),
    PHRASE_PIECE: (100, 3, 0.99),
}
# Whether a dictionary's neutral tone (弟弟 di4 di5) is kept when the model picks the same syllable.
_KEEP_NEUTRAL_TONE = True


# --- segmentation ----------------------------------------------------------------------------------


@cache
def _tokenizer() -> jieba.Tokenizer:
    """One jieba tokenizer for the process, initialized quietly on first use."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jieba imports the deprecated pkg_resources
        import jieba
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


_NUMBER = re.compile(f"[{NUMERAL_CHARS}](?:[{NUMERAL_CHARS}]|点(?=[〇{DIGIT_NAMES}]))+")


def segment(text: str, lexicon: Lexicon | None = None) -> list[str]:
    """Words of a normalized sentence; every punctuation mark and every lexicon match is a word of its own.

    The lexicon defaults to the built-in one. "".join(segment(text)) == text.
    """
    lexicon = builtin_lexicon() if lexicon is None else lexicon
    words: list[str] = []
    position = 0
    for start, end, _ in lexicon.matches(text):
        words.extend(_segment_plain(text[position:start]))
        words.append(text[start:end])
        position = end
    words.extend(_segment_plain(text[position:]))
    return words


def _segment_plain(text: str) -> list[str]:
    """jieba words of `text`, with each punctuation mark split off as its own token and each spelled-out number
    (what normalization made of digits) kept whole: jieba would cut 二零二四年 into 二零二 / 四年."""
    words: list[str] = []
    for is_mark, run in groupby(text, key=lambda char: char in PUNCTUATION):
        chunk = "".join(run)
        if is_mark:
            words.extend(chunk)
            continue
        position = 0
        for number in _NUMBER.finditer(chunk):
            if len(number.group()) >= 3 or any(c in "零〇" for c in number.group()):
                words.extend(_tokenizer().cut(chunk[position : number.start()], HMM=True))
                words.append(number.group())
                position = number.end()
        words.extend(_tokenizer().cut(chunk[position:], HMM=True))
    return words


# --- dictionaries ---------------------------------------------------------------------------------


@cache
def _tone3(marked: str) -> str | None:
    """TONE3 spelling (v for ü, 5 for neutral) of a tone-marked pypinyin syllable; None if not a syllable."""
    reading = to_tone3(marked, neutral_tone_with_five=True).replace("ü", "v")
    return reading if _READING.fullmatch(reading) else None


@cache
def default_reading(char: str) -> str | None:
    """pypinyin's most common reading of one character, or None if it has none."""
    readings = PINYIN_DICT.get(ord(char))
    return _tone3(readings.split(",")[0]) if readings else None


@cache
def _cedict_phrases() -> dict[str, list[list[str]]]:
    """CC-CEDICT's phrases as pypinyin-dict ships them (read once, never loaded into pypinyin's globals)."""
    from pypinyin_dict.phrase_pinyin_data import cc_cedict

    return cc_cedict.phrases_dict


def _entry_readings(word: str, entry: list[list[str]] | None) -> list[str | None] | None:
    """First-choice TONE3 readings of a phrase-dictionary entry, if it has one per character of `word`."""
    if entry is None or len(entry) != len(word):
        return None
    return [_undo_sandhi(char, _tone3(choices[0])) for char, choices in zip(word, entry, strict=True)]


def _undo_sandhi(char: str, reading: str | None) -> str | None:
    """Citation tone of 一 and 不, which pypinyin's phrases store already changed by sandhi (一个 yi2 ge4)."""
    if char in _CITATION and reading is not None and not reading.endswith("5"):
        return _CITATION[char]
    return reading


@dataclass(frozen=True)
class Evidence:
    """A phrase dictionary's reading of one character, and how far to trust it against the model."""

    reading: str
    source: str  # PYPINYIN_PHRASE, CEDICT_PHRASE or PHRASE_PIECE
    word_frequency: int  # jieba's count of the word (or piece) it was found in
    word_length: int


def phrase_evidence(word: str) -> list[Evidence | None]:
    """Per character of `word`, the phrase dictionaries' reading, or None.

    The whole word is looked up in pypinyin's phrases, else in CC-CEDICT's, else it is cut into pieces by
    pypinyin's maximum matching and the pieces are looked up in pypinyin's phrases.
    """
    evidence: list[Evidence | None] = [None] * len(word)
    if len(word) < 2:
        return evidence
    frequency = _tokenizer().FREQ.get(word, 0)
    for dictionary, source in ((PHRASES_DICT, PYPINYIN_PHRASE), (_cedict_phrases(), CEDICT_PHRASE)):
        readings = _entry_readings(word, dictionary.get(word))
        if readings is not None:
            return [Evidence(r, source, frequency, len(word)) if r else None for r in readings]
    offset = 0
    for piece in _mmseg.cut(word):
        readings = _entry_readings(piece, PHRASES_DICT.get(piece)) if len(piece) > 1 else None
        piece_frequency = _tokenizer().FREQ.get(piece, 0)
        for index, reading in enumerate(readings or ()):
            evidence[offset + index] = Evidence(reading, PHRASE_PIECE, piece_frequency, len(piece)) if reading else None
        offset += len(piece)
    return evidence


# --- context rules --------------------------------------------------------------------------------

_CLAUSE = f"[{PUNCTUATION}“”‘’「」（）《》\\s]"  # a clause boundary (the text's ends count as one)
_SUBJECT = "(?:我|你|他|她|它|您|咱|们|谁|大家|自己)"  # a pronoun subject, just before the verb
_DEGREE = "(?:很|非常|太|十分|特别|相当|更|真|极|较|较为|比较|越来越|这么|那么|这样|那样)"
_WINDOW = 12  # characters of context each side; enough for every pattern below


@dataclass(frozen=True)
class ContextRule:
    """A reading of `char` that its neighbours settle, whatever the model thinks.

    The rule holds where the text before the character ends with a match of `before` and the text after it
    begins with a match of `after`; the text's start and end count as clause boundaries.
    """

    name: str
    char: str
    reading: str
    before: str
    after: str

    @property
    def patterns(self) -> tuple[re.Pattern[str], re.Pattern[str]]:
        """`before` anchored at the end of the text before, `after` at the start of the text after."""
        return _compiled(self.before, self.after)


@cache
def _compiled(before: str, after: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compiled patterns of a rule, built once."""
    return re.compile(f"(?:{before})$"), re.compile(after)


_HAN_NOT_SUBJECT = "(?![我你他她它您咱们谁])[\u3400-\u9fff]"
# What may follow 地 di4 "land" as a noun (地方, 地上, 这块地的), where it is not the adverbial particle.
_DI_NOUN = (
    "方区带点面上下里图址位名形质理震球铁板毯道产主税价层势盘段域基标界貌表租契皮瓜头步狱窖堡勤心核壳幔平级市委宫热雷的"
)
_ADVERBIAL = r"([\u3400-\u9fff])\1|[\u3400-\u9fff](?:性|然|般|断)"  # 慢慢, 预见性, 突然, 奇迹般, 不断

CONTEXT_RULES: tuple[ContextRule, ...] = (
    # 得 dei3 "must": a modal after a subject or at a clause start, before a verb phrase (你得好好学习).
    ContextRule(
        "modal dei3",
        "得",
        "dei3",
        f"{_CLAUSE}|{_SUBJECT}|还|就|也|都|总",
        "好好|赶紧|赶快|马上|立刻|立即|先|再|去(?!年|世)|走|小心|注意|抓紧|想办法|跟|把|给|让|花|等|靠|重新",
    ),
    # 得 de5: the structural particle between a verb or adjective and its degree complement (跑得很快).
    ContextRule("complement de5", "得", "de5", _HAN_NOT_SUBJECT, _DEGREE),
    # 地 de5: the adverbial particle after a reduplicated word or an adverbial suffix (慢慢地, 历史性地).
    ContextRule("adverbial de5", "地", "de5", _ADVERBIAL, f"(?![{_DI_NOUN}])"),
    # 长 chang2 "long" after a degree adverb (很长); 长 zhang3 "grow" is not graded that way.
    ContextRule("graded chang2", "长", "chang2", f"{_DEGREE}|最|挺|好|多", "(?![见知脸进大高得出成胖个肉芽势])"),
    # 为 wei4 "for the sake of": a beneficiary then a verb of serving (为人民服务, 为国效力).
    ContextRule(
        "beneficiary wei4",
        "为",
        "wei4",
        f"{_CLAUSE}|{_SUBJECT}|要|应|愿|肯|在|都|也|还|就|又|曾|将|正|专门|一心|努力|继续",
        f"[^{PUNCTUATION}]{{0,8}}?(?:服务(?![器业站商费])|效力|效劳|奋斗|着想|操心|担心|骄傲|自豪|牺牲|献身|捐躯|而战|争光)",
    ),
    # 数 shu3 "count": a verb with an aspect particle or a count complement (我数了三遍).
    ContextRule(
        "counting shu3",
        "数",
        "shu3",
        f"{_CLAUSE}|{_SUBJECT}|再|又|也|都|还|就|先|仔细|认真|在|不|没",
        "了|过|着|一数|一下|一遍|到|完|不清|不过来",
    ),
    # 切 qie1 "cut", before a result or what is cut (切开, 切成块); not 一切, 密切, 亲切 and the like (qie4).
    ContextRule(
        "cutting qie1",
        "切",
        "qie1",
        "(?<![一密亲迫急确真恳贴关殷悲凄深热])",
        "开|成|断|碎|片|下|掉|好|菜|肉|丝|块|面包|蛋糕|西瓜|苹果",
    ),
    # 背 bei1 "carry on the back", with a load (背着一个大包); 背着 alone may be bei4 "behind one's back".
    ContextRule(
        "carrying bei1",
        "背",
        "bei1",
        "",
        "着(?:一|两|三|几|个|只|把|袋|包|书包|行李|背包|孩子|枪|筐)|[起上](?:书包|行李|背包|行囊|孩子|枪)",
    ),
    # 弄 nong4 "make, handle" is a verb and takes results (弄干, 弄清楚); 弄 long4 "lane" is a noun (里弄).
    ContextRule("handling nong4", "弄", "nong4", "", "[干清坏脏乱丢错懂明湿断死伤成到出得不了好]"),
    # 刨 pao2 "dig" before what is dug up (刨坑, 刨出); 刨 bao4 is the carpenter's plane.
    ContextRule("digging pao2", "刨", "pao2", "", "[坑土地出根坟洞]"),
    # 撒 sa3 "sprinkle, scatter" before where it lands (撒在, 撒上); 撒 sa1 "let go" is in 撒手, 撒谎.
    ContextRule("sprinkling sa3", "撒", "sa3", "", "[在上满入到落向遍些点]"),
    # 铺 pu1 "spread" before a place or result (铺上, 铺在); 铺 pu4 "shop, bunk" is a noun.
    ContextRule("spreading pu1", "铺", "pu1", "", "[上满在开成平好]"),
)
_RULES_BY_CHAR: dict[str, tuple[ContextRule, ...]] = {
    char: tuple(rule for rule in CONTEXT_RULES if rule.char == char) for char in {r.char for r in CONTEXT_RULES}
}


def context_reading(text: str, position: int, evidence: Evidence | None = None) -> str | None:
    """The reading a context rule gives the character at `position` of `text`, or None.

    A rule never contradicts a phrase dictionary's reading of the word the character is in (获得, 地方, 长宁):
    it only settles what the model would decide, and the model is least reliable on short everyday sentences.
    """
    before = ("。" + text)[max(0, position + 1 - _WINDOW) : position + 1]  # the text's start is a boundary
    after = (text + "。")[position + 1 : position + 1 + _WINDOW]
    for rule in _RULES_BY_CHAR.get(text[position], ()):
        before_pattern, after_pattern = rule.patterns
        agrees = evidence is None or evidence.reading == rule.reading
        if agrees and before_pattern.search(before) and after_pattern.match(after):
            return rule.reading
    return None


# --- polyphone model ------------------------------------------------------------------------------


class PolyphoneModel:
    """g2pM's BiLSTM (Park & Lee 2020, trained on CPP), run in numpy to give a distribution per character.

    Only the character's own candidate readings compete: the softmax is taken over them, not all classes.
    """

    _BOS, _EOS, _UNK = "시", "끝", "<UNK>"  # g2pM's sentence-boundary tokens

    def __init__(self, directory: Path) -> None:
        def load(name: str):
            with open(directory / name, "rb") as file:
                return pickle.load(file)  # noqa: S301 - the package's own files

        readings: dict[str, list[str]] = load("digest_cedict.pkl")
        class_ids: dict[str, int] = load("class2idx.pkl")
        self._char_ids: dict[str, int] = load("char2idx.pkl")
        self._candidates = {
            char: (tuple(r.replace("u:", "v") for r in options), np.array([class_ids[r] for r in options]))
            for char, options in readings.items()
            if len(options) > 1
        }
        self._load_weights(load("np_ckpt.pkl"))

    def _load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Arrange the LSTM so that both directions advance in one matrix product per step."""
        self._embedding = weights["embedding.weight"].astype(np.float32)
        hidden = weights["lstm.weight_hh_l0"].shape[1]
        self._hidden = hidden
        self._input_forward = weights["lstm.weight_ih_l0"].T.copy()
        self._input_backward = weights["lstm.weight_ih_l0_reverse"].T.copy()
        self._bias_forward = weights["lstm.bias_ih_l0"] + weights["lstm.bias_hh_l0"]
        self._bias_backward = weights["lstm.bias_ih_l0_reverse"] + weights["lstm.bias_hh_l0_reverse"]
        # Recurrent weights as one block-diagonal [2h, 8h] matrix; gate columns are regrouped so that the
        # product's layout is (i_f, i_b, f_f, f_b, g_f, g_b, o_f, o_b).
        recurrent = np.zeros((2 * hidden, 8 * hidden), dtype=np.float32)
        for gate in range(4):
            rows = slice(gate * hidden, (gate + 1) * hidden)
            recurrent[:hidden, (2 * gate) * hidden : (2 * gate + 1) * hidden] = weights["lstm.weight_hh_l0"][rows].T
            recurrent[hidden:, (2 * gate + 1) * hidden : (2 * gate + 2) * hidden] = weights[
                "lstm.weight_hh_l0_reverse"
            ][rows].T
        self._recurrent = recurrent
        self._hidden_layer = (weights["logit_layer.0.weight"].T.copy(), weights["logit_layer.0.bias"])
        self._output_layer = (weights["logit_layer.2.weight"], weights["logit_layer.2.bias"])

    def is_polyphonic(self, char: str) -> bool:
        """Whether the model has more than one reading to choose from for `char`."""
        return char in self._candidates

    def predict(self, sentence: str, positions: Sequence[int]) -> dict[int, dict[str, float]]:
        """Probability of each candidate reading of the characters at `positions` of `sentence`."""
        positions = [p for p in positions if sentence[p] in self._candidates]
        if not positions:
            return {}
        states = self._states(sentence)
        hidden_weight, hidden_bias = self._hidden_layer
        output_weight, output_bias = self._output_layer
        result = {}
        for position in positions:
            readings, classes = self._candidates[sentence[position]]
            features = np.maximum(states[position + 1] @ hidden_weight + hidden_bias, 0.0)
            logits = output_weight[classes] @ features + output_bias[classes]
            odds = np.exp(logits - logits.max())
            result[position] = dict(zip(readings, (odds / odds.sum()).tolist(), strict=True))
        return result

    def _states(self, sentence: str) -> np.ndarray:
        """[len+2, 2h] forward and backward hidden states over BOS + sentence + EOS."""
        ids = [self._char_ids[self._BOS]]
        ids += [self._char_ids.get(char, self._char_ids[self._UNK]) for char in sentence]
        ids.append(self._char_ids[self._EOS])
        embedded = self._embedding[ids]
        steps, h = len(ids), self._hidden
        forward_in = (embedded @ self._input_forward + self._bias_forward).reshape(steps, 4, 1, h)
        backward_in = (embedded[::-1] @ self._input_backward + self._bias_backward).reshape(steps, 4, 1, h)
        inputs = np.concatenate([forward_in, backward_in], axis=2).reshape(steps, 8 * h)
        state = np.zeros(2 * h, dtype=np.float32)
        cell = np.zeros(2 * h, dtype=np.float32)
        outputs = np.empty((steps, 2 * h), dtype=np.float32)
        for step in range(steps):
            gates = inputs[step] + state @ self._recurrent
            sigmoid = 0.5 * np.tanh(0.5 * gates) + 0.5
            cell = sigmoid[2 * h : 4 * h] * cell + sigmoid[: 2 * h] * np.tanh(gates[4 * h : 6 * h])
            state = sigmoid[6 * h :] * np.tanh(cell)
            outputs[step] = state
        forward, backward = outputs[:, :h], outputs[::-1, h:]
        return np.concatenate([forward, backward], axis=1)


@cache
def polyphone_model() -> PolyphoneModel:
    """The g2pM model, loaded once on first use."""
    import g2pM

    return PolyphoneModel(Path(g2pM.__file__).parent)


# --- citation pinyin ------------------------------------------------------------------------------


def citation_pinyin(
    words: list[str], forced: list[str | None] | None = None, lexicon: Lexicon | None = None
) -> list[list[str | None]]:
    """TONE3 reading of every character of every word, before tone sandhi; None where there is none.

    `forced` (one entry per character of "".join(words)) wins over everything; `lexicon` defaults to the
    built-in one. Readings use v for ü and 5 for the neutral tone.
    """
    text = "".join(words)
    if forced is not None and len(forced) != len(text):
        raise ValueError(f"forced has {len(forced)} entries for {len(text)} characters")
    lexicon = builtin_lexicon() if lexicon is None else lexicon
    chosen: list[str | None] = list(forced) if forced is not None else [None] * len(text)
    for start, end, readings in lexicon.matches(text):
        for position, reading in zip(range(start, end), readings, strict=True):
            chosen[position] = chosen[position] or reading
    _fill_from_dictionary_and_model(words, chosen)
    return per_word(words, chosen)


T = TypeVar("T")


def per_word(words: Sequence[str], values: Sequence[T]) -> list[list[T]]:
    """`values` (one per character of "".join(words)) cut into one list per word."""
    result, position = [], 0
    for word in words:
        result.append(list(values[position : position + len(word)]))
        position += len(word)
    return result


def _fill_from_dictionary_and_model(words: list[str], chosen: list[str | None]) -> None:
    """Give a reading to every character of "".join(words) that `chosen` leaves open (in place)."""
    text = "".join(words)
    evidence = [item for word in words for item in phrase_evidence(word)]
    for p, char in enumerate(text):
        if chosen[p] is None and char in _RULES_BY_CHAR:
            chosen[p] = context_reading(text, p, evidence[p])
    model = polyphone_model()
    open_polyphones = [p for p, char in enumerate(text) if chosen[p] is None and model.is_polyphonic(char)]
    probabilities = model.predict(text, open_polyphones) if open_polyphones else {}
    for p, char in enumerate(text):
        if chosen[p] is not None:
            continue
        if p in probabilities:
            chosen[p] = _combine(probabilities[p], evidence[p])
        elif evidence[p] is not None:
            chosen[p] = evidence[p].reading
        elif is_han(char):
            chosen[p] = default_reading(char)


def _combine(probabilities: dict[str, float], evidence: Evidence | None) -> str:
    """The model's reading or the phrase dictionary's, whichever the overrule rule (_OVERRULE) picks.

    A dictionary's neutral tone counts as the toned reading of the same syllable, and is kept if that wins.
    A dictionary reading that is none of the model's candidates loses: the model's candidate lists come from
    CC-CEDICT's single-character readings and are complete in practice.
    """
    best = max(probabilities, key=probabilities.__getitem__)
    if evidence is None:
        return best
    supported = (
        evidence.reading if evidence.reading in probabilities else _toned_candidate(evidence.reading, probabilities)
    )
    if supported is None:
        return best
    max_frequency, max_length, min_probability = _OVERRULE[evidence.source]
    overrulable = evidence.word_frequency < max_frequency and evidence.word_length <= max_length
    if best != supported and overrulable and probabilities[best] >= min_probability:
        return best
    return evidence.reading if _KEEP_NEUTRAL_TONE else supported


def _toned_candidate(reading: str, candidates: dict[str, float]) -> str | None:
    """For a neutral-tone reading such as "di5", the likeliest candidate of the same syllable ("di4")."""
    if not reading.endswith("5"):
        return None
    same_syllable = [c for c in candidates if c[:-1] == reading[:-1]]
    return max(same_syllable, key=candidates.__getitem__) if same_syllable else None


def pinyin_of(text: str, lexicon: Lexicon | None = None) -> list[tuple[str, str]]:
    """(character, TONE3 citation pinyin) for each Han character of `text` that has a reading; ü is v."""
    words = segment(text, lexicon)
    readings = citation_pinyin(words, lexicon=lexicon)
    pairs = zip("".join(words), (reading for word in readings for reading in word), strict=True)
    return [(char, reading) for char, reading in pairs if reading and is_han(char)]
