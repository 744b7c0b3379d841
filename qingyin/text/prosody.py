"""Prosodic structure: where a sentence breaks, and how strongly.

The Baker corpus the voice was trained on labels four boundary strengths between syllables: #1 prosodic word,
#2 prosodic phrase, #3 intonation phrase (mostly at commas), #4 sentence end (rendered as `sil`). Plain
syllable joints are #0. Here they are placed from the word segmentation and the punctuation:

- prosodic words (#1) are segmenter words, with particles (的, 了, 吗 …) leaning on the word before them and a
  lone monosyllable joining a short neighbour (很 好 → 很好, 在 家 → 在家), at most four syllables;
- prosodic phrases (#2) gather prosodic words until about five syllables, never leaving a stub of less than
  three before the next punctuation;
- every comma-class mark is a #3.

Also here: cutting raw text into bounded pieces before normalization, so any input streams through in bounded
memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .numbers import NUMERAL_CHARS

MODES = ("marks", "plain")
SENTENCE_END = "。！？；"
CLAUSE_END = "，、："
_LEANING = frozenset("的地得了着过吗呢吧啊呀们么嘛哦啦呗哇")
_NUMERALS = frozenset(NUMERAL_CHARS + "点")
_MAX_WORD = 4
_PHRASE = 5
_MIN_TAIL = 3
_RAW_END = re.compile(r"[。！？!?；;\n]+[”’」』）)\]》\"']*|\.(?=\s|$)")
_ENDS_SENTENCE = re.compile(r"(?:[。！？!?；;\n][”’」』）)\]》\"']*|\.)\s*$")
_SOFT_BREAK = re.compile(r"[，,、：:\s]")
_ALNUM_RUN = re.compile(r"[0-9A-Za-z.,:%/~\-]+$")


@dataclass(frozen=True)
class Plan:
    """The prosodic structure of one sentence's words (punctuation tokens included).

    `prosodic_words` are ranges of word indices (punctuation excluded); `after[i]` is the mark between word i
    and the next spoken word: "#0" inside a prosodic word, else "#1", "#2" or "#3".
    """

    prosodic_words: list[range]
    after: list[str]


def is_punctuation(word: str) -> bool:
    """Whether a segmenter token is a punctuation mark of the normalized text."""
    return len(word) == 1 and word in SENTENCE_END + CLAUSE_END


def plan(words: Sequence[str], syllables: Sequence[int], mode: str = "marks") -> Plan:
    """Boundary marks for `words`, where `syllables[i]` is how many syllables word i has (0 for punctuation)."""
    if mode not in MODES:
        raise ValueError(f"unknown prosody mode {mode!r}; choose one of {', '.join(MODES)}")
    after = ["#0"] * len(words)
    groups: list[range] = []
    start = 0
    for end in [i for i, w in enumerate(words) if is_punctuation(w)] + [len(words)]:
        if end > start:
            phrase_groups = _prosodic_words(words, syllables, start, end)
            groups.extend(phrase_groups)
            if mode == "marks":
                _mark_groups(phrase_groups, syllables, after)
        if end < len(words) and words[end] in CLAUSE_END:
            _mark_before(after, syllables, end, "#3")
        start = end + 1
    return Plan(groups, after)


def _prosodic_words(words: Sequence[str], syllables: Sequence[int], start: int, end: int) -> list[range]:
    """Group words[start:end] (no punctuation) into prosodic words."""
    groups: list[list[int]] = []
    sizes: list[int] = []
    for i in range(start, end):
        if groups and _joins_previous(words, syllables, i, end, groups[-1], sizes[-1]):
            groups[-1].append(i)
            sizes[-1] += syllables[i]
        else:
            groups.append([i])
            sizes.append(syllables[i])
    return [range(g[0], g[-1] + 1) for g in groups]


def _joins_previous(
    words: Sequence[str], syllables: Sequence[int], i: int, end: int, group: list[int], group_size: int
) -> bool:
    """Whether word i belongs to the prosodic word before it."""
    size = syllables[i]
    if words[i] in _LEANING or size == 0:  # particles lean on their host even past the size cap
        return True
    if size == 1 and _is_number(words[group[-1]]):  # 二零二四 + 年, 三点五 + 个
        return True
    if group_size + size > _MAX_WORD:
        return False
    if len(group) == 1 and group_size == 1 and group_size + size <= 3:  # 很 + 好, 在 + 北京
        return True
    return size == 1 and group_size <= 2 and not _followed_by_short(words, syllables, i, end)


def _is_number(word: str) -> bool:
    return all(char in _NUMERALS for char in word)


def _followed_by_short(words: Sequence[str], syllables: Sequence[int], i: int, end: int) -> bool:
    """Whether the lone monosyllable at i would rather join the word after it."""
    return i + 1 < end and syllables[i + 1] <= 2 and words[i + 1] not in _LEANING


def _mark_groups(groups: list[range], syllables: Sequence[int], after: list[str]) -> None:
    """#1 between prosodic words, #2 between phrases of about _PHRASE syllables."""
    total = sum(syllables[i] for g in groups for i in g)
    done = 0
    since_phrase = 0
    for g in groups[:-1]:
        size = sum(syllables[i] for i in g)
        done += size
        since_phrase += size
        if since_phrase >= _PHRASE and total - done >= _MIN_TAIL:
            after[g[-1]] = "#2"
            since_phrase = 0
        else:
            after[g[-1]] = "#1"


def _mark_before(after: list[str], syllables: Sequence[int], index: int, mark: str) -> None:
    """Put `mark` after the last spoken word before `index`."""
    for i in range(index - 1, -1, -1):
        if syllables[i]:
            after[i] = mark
            return


def split_raw(text: str, max_len: int = 300) -> Iterator[tuple[int, str]]:
    """Cut raw input into (offset, piece) at sentence ends, each piece at most about `max_len` characters.

    A piece with no sentence end in reach is cut at the last comma or space, else at `max_len` — but never
    inside a run of digits and Latin letters (a number or word), unless that run itself is enormous.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    start = 0
    while start < len(text):
        window_end = min(len(text), start + max_len)
        match = _RAW_END.search(text, start, window_end)
        if match is not None:
            cut = _extend_end(text, match.end())
        elif window_end == len(text):
            cut = window_end
        else:
            cut = _soft_cut(text, start, window_end)
        yield start, text[start:cut]
        start = cut


def ends_sentence(piece: str) -> bool:
    """Whether a raw piece from split_raw closes a sentence (rather than being cut for length)."""
    return _ENDS_SENTENCE.search(piece) is not None


def _extend_end(text: str, cut: int) -> int:
    """Keep punctuation-and-space directly after a sentence end with the sentence it closes."""
    while cut < len(text) and text[cut].isspace():
        cut += 1
    return cut


def _soft_cut(text: str, start: int, end: int) -> int:
    """Where to cut text[start:end] that has no sentence end: after the last soft break, else outside a word."""
    breaks = list(_SOFT_BREAK.finditer(text, start, end))
    if breaks and breaks[-1].end() > start + (end - start) // 2:
        return breaks[-1].end()
    run = _ALNUM_RUN.search(text, start, end)
    if run is not None and run.start() > start:
        return run.start()
    return end


def cut_points(marks: Sequence[str], max_syllables: int) -> list[int]:
    """Where to cut a sentence of len(marks)+1 syllables into chunks of at most `max_syllables`.

    `marks[k]` is the boundary after syllable k ("" for a joint that must not be cut, e.g. before erhua). Returns the
    syllable indices at which new chunks start: at the strongest boundary (#3 > #2 > #1 > #0) that fits,
    preferring the latest one of that strength; "" joints are never cut.
    """
    if max_syllables < 1:
        raise ValueError(f"max_syllables must be at least 1, got {max_syllables}")
    cuts = []
    start = 0
    count = len(marks) + 1
    while count - start > max_syllables:
        window = range(start, start + max_syllables)  # joints after syllable k, k in window, k+1 <= limit
        best = None
        for strength in ("#3", "#2", "#1", "#0"):
            candidates = [k for k in window if marks[k] == strength]
            if candidates:
                best = candidates[-1] + 1
                break
        if best is None or best <= start:
            best = start + max_syllables
        cuts.append(best)
        start = best
    return cuts
