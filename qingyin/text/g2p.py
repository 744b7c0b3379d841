"""Grapheme-to-pinyin: citation readings (before tone sandhi) of Han text, with polyphone disambiguation.

Each character's reading comes from the first of these that has one, and `decide` records which it was:

1. a forced reading given by the caller (inline pinyin such as ``行[hang2]``, SSML, or the letter names that
   normalization spells out, B → 比): source "markup";
2. the pronunciation lexicon (built-in overrides, layered with the user's): "lexicon";
3. a context rule (`context_rules`: measure words after numerals, one-character verbs before their objects,
   particles by the parts of speech around them, ...) that agrees with step 4's dictionary: "rule";
4. a phrase dictionary entry for the word that jieba segmented (pypinyin's phrases, then CC-CEDICT's): "phrase";
5. g2pM, a small BiLSTM trained on the CPP polyphone corpus, for the characters it has classes for: "model";
6. pypinyin's default reading of the single character: "default".

Steps 4 and 5 are combined by the rule in ``_combine``, chosen on the dev splits of CPP and of our everyday
set; the numbers behind it are in BENCHMARKS.md ("Polyphones").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TypeVar

from .context_rules import RULE_CHARACTERS, matching_rule
from .g2pm import polyphone_model
from .hanzi import is_han
from .lexicon import Lexicon, builtin_lexicon
from .phrases import CEDICT_PHRASE, Evidence, default_reading, phrase_evidence
from .segmentation import segment, tokenizer, word_tag

# When g2pM may overrule a phrase dictionary: only in a CC-CEDICT word that jieba tags as a name (CC-CEDICT's
# transliterations err, its everyday words do not) and counts fewer than _OVERRULE_MAX_FREQUENCY times, and only
# when the model gives its own reading at least _OVERRULE_MIN_PROBABILITY. pypinyin's curated phrases (and the
# pieces cut from them) never are: on CPP dev overruling them won 9 sentences of 9,893 (several of them CPP label
# slips such as 封禅 chan2), on the everyday dev set it lost 25 of 648 (看家, 校对, 落枕, 着凉 ... read by the
# model as if in Wikipedia). See BENCHMARKS.md, "Polyphones".
_OVERRULE_MAX_FREQUENCY, _OVERRULE_MIN_PROBABILITY = 1000, 0.99
_NAME_TAG = re.compile("nr|ns|nz|nt|x")  # jieba's tags of names (x: not in its dictionary at all)
# Whether a dictionary's neutral tone (弟弟 di4 di5) is kept when the model picks the same syllable.
_KEEP_NEUTRAL_TONE = True

MARKUP, LEXICON, RULE, PHRASE, MODEL, DEFAULT = "markup", "lexicon", "rule", "phrase", "model", "default"
FIXED_SOURCES = frozenset({MARKUP, LEXICON, RULE})  # readings fixed before the dictionaries and the model compete


@dataclass(frozen=True)
class Decision:
    """The citation reading of one character and what decided it.

    `source` is one of MARKUP, LEXICON, RULE, PHRASE, MODEL, DEFAULT; `detail` says more: the rule's name, the
    dictionary and word (``pypinyin:银行``), or the model's probability (and the dictionary reading it overruled).
    """

    reading: str | None
    source: str
    detail: str = ""


def decide(
    words: Sequence[str],
    forced: Sequence[str | None] | None = None,
    lexicon: Lexicon | None = None,
) -> list[Decision]:
    """The citation reading of every character of "".join(words), with its source (see the module docstring).

    `forced` (one entry per character) wins over everything; `lexicon` defaults to the built-in one. Readings
    use v for ü and 5 for the neutral tone; characters without one (punctuation, letters) get reading None.
    """
    text = "".join(words)
    if forced is not None and len(forced) != len(text):
        raise ValueError(f"forced has {len(forced)} entries for {len(text)} characters")
    lexicon = builtin_lexicon() if lexicon is None else lexicon
    decisions: list[Decision | None] = [Decision(f, MARKUP) if f else None for f in forced or [None] * len(text)]
    for start, end, readings in lexicon.matches(text):
        for position, reading in zip(range(start, end), readings, strict=True):
            decisions[position] = decisions[position] or Decision(reading, LEXICON, text[start:end])
    evidence = [item for word in words for item in phrase_evidence(word)]
    word_of = [w for w, word in enumerate(words) for _ in word]
    starts = [0, *accumulate(len(word) for word in words)]
    for p, char in enumerate(text):
        if decisions[p] is None and char in RULE_CHARACTERS:
            w = word_of[p]
            previous_word, next_word = words[w - 1] if w else "", words[w + 1] if w + 1 < len(words) else ""
            # stands alone: a word of its own, or the start of a word no phrase dictionary knows (削得, 剥几瓣)
            alone = len(words[w]) == 1 or (p == starts[w] and evidence[p] is None)
            rule = matching_rule(text, p, evidence[p], previous_word, next_word, alone)
            decisions[p] = Decision(rule.reading, RULE, rule.name) if rule else None
    model = polyphone_model()
    open_polyphones = [p for p, char in enumerate(text) if decisions[p] is None and model.is_polyphonic(char)]
    probabilities = model.predict(text, open_polyphones) if open_polyphones else {}
    for p, char in enumerate(text):
        if decisions[p] is not None:
            continue
        if p in probabilities:
            decisions[p] = _combine(probabilities[p], evidence[p])
        elif evidence[p] is not None:
            decisions[p] = _from_phrase(evidence[p])
        else:
            decisions[p] = Decision(default_reading(char) if is_han(char) else None, DEFAULT)
    return [d for d in decisions if d is not None]


def is_polyphonic(char: str) -> bool:
    """Whether `char` has more than one reading to choose from (g2pM's candidate lists, from CC-CEDICT)."""
    return polyphone_model().is_polyphonic(char)


def citation_pinyin(
    words: list[str], forced: list[str | None] | None = None, lexicon: Lexicon | None = None
) -> list[list[str | None]]:
    """TONE3 reading of every character of every word, before tone sandhi; None where there is none (see decide)."""
    return per_word(words, [d.reading for d in decide(words, forced, lexicon)])


T = TypeVar("T")


def per_word(words: Sequence[str], values: Sequence[T]) -> list[list[T]]:
    """`values` (one per character of "".join(words)) cut into one list per word."""
    result, position = [], 0
    for word in words:
        result.append(list(values[position : position + len(word)]))
        position += len(word)
    return result


def _from_phrase(evidence: Evidence) -> Decision:
    return Decision(evidence.reading, PHRASE, f"{evidence.source}:{evidence.word}")


def _combine(probabilities: dict[str, float], evidence: Evidence | None) -> Decision:
    """The model's reading or the phrase dictionary's, whichever the overrule rule (see _OVERRULE_*) picks.

    A dictionary's neutral tone counts as the toned reading of the same syllable, and is kept if that wins.
    A dictionary reading that is none of the model's candidates loses: the model's candidate lists come from
    CC-CEDICT's single-character readings and are complete in practice.
    """
    best = max(probabilities, key=probabilities.__getitem__)
    model_decision = Decision(best, MODEL, f"p={probabilities[best]:.3f}")
    if evidence is None:
        return model_decision
    supported = (
        evidence.reading if evidence.reading in probabilities else _toned_candidate(evidence.reading, probabilities)
    )
    if supported is None:
        return model_decision
    overrulable = (
        evidence.source == CEDICT_PHRASE
        and _NAME_TAG.match(word_tag(evidence.word)) is not None
        and tokenizer().FREQ.get(evidence.word, 0) < _OVERRULE_MAX_FREQUENCY
    )
    if best != supported and overrulable and probabilities[best] >= _OVERRULE_MIN_PROBABILITY:
        return Decision(
            best, MODEL, f"p={probabilities[best]:.3f} over {evidence.source}:{evidence.word} {evidence.reading}"
        )
    phrase = _from_phrase(evidence)
    return phrase if _KEEP_NEUTRAL_TONE else Decision(supported, PHRASE, phrase.detail)


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
