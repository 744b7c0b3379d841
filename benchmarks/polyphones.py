"""Polyphone accuracy of the frontend's citation pinyin, on CPP and on our own everyday sentences.

    .venv/bin/python -m benchmarks.polyphones [--set cpp|everyday] [--split test|dev] [--errors]

Two sets:
- "cpp" (../shared/data/cpp, `--data` to move it): CPP's Wikipedia sentences; each marks one polyphonic
  character with ▁ on both sides, its pinyin (tone digit, `u:` for ü) on the same line of the .lb file.
- "everyday" (benchmarks/data/everyday_polyphones): sentences written for qingyin in six registers (dialogue,
  service, news, instructions, children, numbers), covering the 150 most frequent polyphonic characters of
  modern Mandarin with every everyday reading of each (see its README). Same marks; labels in the TSV.

Each system reads the whole unmarked sentence and we compare the marked character's reading (found by its
occurrence index among that character's readings). The systems:

- "pypinyin": pypinyin's lazy_pinyin with its phrase dictionary on the whole sentence (without its tone
  sandhi: the labels are citation tones);
- "pypinyin + g2pM": `qingyin.text.g2p` with an empty lexicon;
- "qingyin": `qingyin.text.g2p.pinyin_of` as the synthesizer uses it, with the built-in lexicon.

Tune on dev; test is for reporting only. `--errors` lists qingyin's misses with the source that decided each.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pypinyin import Style, lazy_pinyin

from qingyin.evaluate.reference import REPO
from qingyin.text.g2p import decide, pinyin_of
from qingyin.text.hanzi import is_han
from qingyin.text.lexicon import Lexicon
from qingyin.text.segmentation import segment

MARK = "▁"
EVERYDAY = Path(__file__).resolve().parent / "data" / "everyday_polyphones"
Reader = Callable[[str], list[tuple[str, str]]]


@dataclass(frozen=True)
class Case:
    sentence: str  # without marks
    index: int  # of the marked character
    expected: str  # TONE3 citation reading, v for ü
    register: str  # "wikipedia" for CPP

    @property
    def char(self) -> str:
        return self.sentence[self.index]


def load_cpp(data: Path, split: str) -> list[Case]:
    """CPP's cases of one split."""
    sentences = (data / f"{split}.sent").read_text(encoding="utf-8").splitlines()
    labels = (data / f"{split}.lb").read_text(encoding="utf-8").splitlines()
    return [_case(s, label.strip().replace("u:", "v"), "wikipedia") for s, label in zip(sentences, labels, strict=True)]


def load_everyday(split: str, data: Path = EVERYDAY) -> list[Case]:
    """The everyday set's cases of one split (columns: char, reading, register, sentence)."""
    with open(data / f"{split}.tsv", encoding="utf-8", newline="") as file:
        rows = csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [_case(row["sentence"], row["reading"], row["register"]) for row in rows]


def _case(marked: str, expected: str, register: str) -> Case:
    index = marked.index(MARK)
    return Case(marked.replace(MARK, ""), index, expected, register)


def pypinyin_reader(sentence: str) -> list[tuple[str, str]]:
    """(character, TONE3 reading) of each Han character, from pypinyin alone."""
    raw = lazy_pinyin(sentence, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda chunk: [""] * len(chunk))
    if len(raw) != len(sentence):
        return []
    return [(char, reading.replace("ü", "v")) for char, reading in zip(sentence, raw, strict=True) if is_han(char)]


def without_lexicon(sentence: str) -> list[tuple[str, str]]:
    """(character, TONE3 reading) from qingyin's g2p with no lexicon overrides."""
    return pinyin_of(sentence, lexicon=Lexicon())


SYSTEMS: dict[str, Reader] = {"pypinyin": pypinyin_reader, "pypinyin + g2pM": without_lexicon, "qingyin": pinyin_of}


def reading_of(case: Case, reader: Reader) -> str:
    """What `reader` reads for the case's marked character ("" if it gives none)."""
    occurrence = case.sentence[: case.index].count(case.char)
    readings = [reading for c, reading in reader(case.sentence) if c == case.char]
    return readings[occurrence] if occurrence < len(readings) else ""


def same_syllable_one_neutral(got: str, expected: str) -> bool:
    """Right but for the neutral tone: CPP labels full tones where 现代汉语词典 has 弟弟 di4·di, 枇杷 pi2·pa."""
    return got[:-1] == expected[:-1] and "5" in (got[-1:], expected[-1:])


def scores(cases: list[Case], reader: Reader = pinyin_of) -> tuple[dict[str, list[bool]], float]:
    """Per register, whether each case was read exactly right; and the share right but for a neutral tone."""
    exact: dict[str, list[bool]] = defaultdict(list)
    lenient = 0
    for case in cases:
        got = reading_of(case, reader)
        exact[case.register].append(got == case.expected)
        lenient += got == case.expected or same_syllable_one_neutral(got, case.expected)
    return dict(exact), lenient / len(cases)


def misses(cases: list[Case]) -> list[tuple[Case, str, str]]:
    """qingyin's wrong readings: (case, what it read, which source decided and why)."""
    result = []
    for case in cases:
        decision = decide(segment(case.sentence))[case.index]  # pinyin_of's decisions, with their sources
        if decision.reading != case.expected:
            result.append((case, decision.reading or "", f"{decision.source} {decision.detail}".strip()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="name", choices=["cpp", "everyday"], default="cpp")
    parser.add_argument("--split", choices=["test", "dev"], default="test")
    parser.add_argument("--data", type=Path, help="the set's folder (default: ../shared/data/cpp for cpp)")
    parser.add_argument("--errors", action="store_true", help="list qingyin's misses and the confusions")
    args = parser.parse_args()
    if args.name == "cpp":
        cases = load_cpp(args.data or REPO.parent / "shared" / "data" / "cpp", args.split)
    else:
        cases = load_everyday(args.split, args.data or EVERYDAY)
    characters = sum(len(case.sentence) for case in cases)
    pinyin_of("预热。")  # load jieba, the dictionaries and g2pM before timing
    print(f"{args.name} {args.split}: {len(cases)} sentences, {characters} characters")
    registers = sorted({case.register for case in cases})
    rows = []
    for name, reader in SYSTEMS.items():
        start = time.perf_counter()
        per_register, lenient = scores(cases, reader)
        elapsed = time.perf_counter() - start
        overall = [ok for oks in per_register.values() for ok in oks]
        rows.append([name, *(_share(per_register[r]) for r in registers), _share(overall), f"{lenient:.4f}"])
        print(
            f"  {name:<16} accuracy {sum(overall) / len(overall):.4f}  (neutral tone as full: {lenient:.4f})  "
            f"({elapsed:.1f} s, {characters / elapsed:,.0f} chars/s)"
        )
    if len(registers) > 1:
        counts = Counter(case.register for case in cases)
        header = ["system", *(f"{r} ({counts[r]})" for r in registers), f"all ({len(cases)})", "neutral as full"]
        print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    if args.errors:
        _print_errors(misses(cases))


def _share(results: list[bool]) -> str:
    return f"{sum(results) / len(results):.4f}"


def _print_errors(wrong: list[tuple[Case, str, str]]) -> None:
    print(f"\nqingyin's misses ({len(wrong)}):")
    for case, got, why in wrong:
        marked = case.sentence[: case.index] + f"[{case.char}]" + case.sentence[case.index + 1 :]
        print(f"  {case.char} {case.expected:>7} → {got or '-':<7} {case.register:<12} {marked}   ({why})")
    confusions = Counter(f"{case.char} {case.expected}→{got or '-'}" for case, got, _ in wrong)
    print("\nconfusions: " + ", ".join(f"{pair} ×{n}" for pair, n in confusions.most_common()))


if __name__ == "__main__":
    main()
