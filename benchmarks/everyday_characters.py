"""The character list behind the everyday polyphone set: the most frequent polyphonic characters of modern Mandarin.

    .venv/bin/python -m benchmarks.everyday_characters [--count 150] [--data ../shared/data/cpp]

A character counts as polyphonic when g2pM has more than one candidate reading for it and at least two
readings are attested: twice among CPP's labels, or in ≥ 0.5 % (and ≥ 500 counts) of the jieba frequency of
the pypinyin phrases that contain it. A neutral tone is folded into the full tone of the same syllable (子,
头), except for the particle 得 de5, which dictionaries keep apart from 得 de2. 一 and 不 are left out: their
changes are tone sandhi, not polyphony. Characters are ranked by how often they occur in jieba's dictionary
(word frequency × occurrences). The characters in SET_ASIDE were set aside by the sentence writers because
they have only one reading in everyday use (see benchmarks/data/everyday_polyphones/README.md); the next
ones in the ranking took their places. Prints `rank char frequency readings`.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

from pypinyin.constants import PHRASES_DICT

from qingyin.evaluate.reference import REPO
from qingyin.text.g2pm import polyphone_model
from qingyin.text.phrases import tone3
from qingyin.text.segmentation import tokenizer

# Only one reading in everyday use: 句 gou1 (高句丽), 甚 shen2 (archaic 甚么), 贾 gu3 (literary), 丽 li2 (丽水),
# 仇 qiu2 (a surname), 番 pan1 (番禺), 观 guan4 (道观); 啊 (its tones are intonation); and, from the writers,
# 秘 bi4 (only 秘鲁), 涌 chong1 (Cantonese place names), 悄 qiao1 (only 悄悄), 夹 jia2 (夹袄; 审音表 2016 reads jiā).
SET_ASIDE = frozenset("句甚贾丽啊仇番观秘涌悄夹")


def _fold_neutral(counts: Counter[str]) -> Counter[str]:
    toned = {reading[:-1] for reading in counts if not reading.endswith("5")}
    folded: Counter[str] = Counter()
    for reading, n in counts.items():
        if reading.endswith("5") and reading[:-1] in toned:
            reading = max((r for r in counts if r[:-1] == reading[:-1] and not r.endswith("5")), key=counts.get)
        folded[reading] += n
    return folded


def ranked_polyphones(cpp: Path) -> list[tuple[str, int, list[str]]]:
    """(character, frequency, readings) of every polyphonic character, most frequent first."""
    frequency = tokenizer().FREQ
    char_frequency: Counter[str] = Counter()
    for word, n in frequency.items():
        for char in word:
            char_frequency[char] += n
    labelled: dict[str, Counter[str]] = defaultdict(Counter)
    for split in ("dev", "test"):
        sentences = (cpp / f"{split}.sent").read_text(encoding="utf-8").splitlines()
        labels = (cpp / f"{split}.lb").read_text(encoding="utf-8").splitlines()
        for sentence, label in zip(sentences, labels, strict=True):
            labelled[sentence[sentence.index("▁") + 1]][label.strip().replace("u:", "v")] += 1
    in_phrases: dict[str, Counter[str]] = defaultdict(Counter)
    for word, entry in PHRASES_DICT.items():
        n = frequency.get(word, 0)
        if n >= 50 and len(entry) == len(word):
            for char, choices in zip(word, entry, strict=True):
                if reading := tone3(choices[0]):
                    in_phrases[char][reading] += n
    model = polyphone_model()
    rows = []
    for char in set(labelled) | set(in_phrases):
        if not model.is_polyphonic(char) or char in "一不":
            continue
        cpp_counts, phrase_counts = _fold_neutral(labelled[char]), _fold_neutral(in_phrases[char])
        total = sum(phrase_counts.values()) or 1
        readings = {r for r, n in cpp_counts.items() if n >= 2}
        readings |= {r for r, n in phrase_counts.items() if n / total >= 0.005 and n >= 500}
        if char == "得":
            readings.add("de5")
        if len(readings) >= 2:
            rows.append((char, char_frequency[char], sorted(readings)))
    return sorted(rows, key=lambda row: -row[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cpp")
    args = parser.parse_args()
    chosen = [row for row in ranked_polyphones(args.data) if row[0] not in SET_ASIDE][: args.count]
    for rank, (char, frequency, readings) in enumerate(chosen, 1):
        print(f"{rank:3d} {char} {frequency:>7} {' '.join(readings)}")


if __name__ == "__main__":
    main()
