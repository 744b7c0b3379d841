"""Accuracy of text normalization on the hand-checked cases in tests/data, and its speed.

    .venv/bin/python -m benchmarks.normalization [--repeat 20]

Each case (tests/data/normalization_cases.tsv and normalization_known_failures.tsv: category, input, the
reading a newsreader would give; a known failure also says why it fails) counts as correct when the normalized
text equals the expected text exactly.
Two systems are compared:

- "wetext only": zhconv, full-width folding and the wetext normalizer on the whole input, followed by the same
  punctuation and letter clean-up as qingyin, so the difference is about numbers and symbols;
- "qingyin": `qingyin.text.normalize.normalize`, wetext with our own rules around it.

Speed is normalize() characters per second over the case inputs, one call per input, repeated.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from pathlib import Path

from qingyin.text.normalize import normalize, wetext_baseline

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CASE_FILES = ("normalization_cases.tsv", "normalization_known_failures.tsv")


def load(data: Path) -> list[tuple[str, str, str]]:
    """(category, input, expected) for every case in both files."""
    cases = []
    for name in CASE_FILES:
        with open(data / name, encoding="utf-8", newline="") as file:
            cases += [(row["category"], row["input"], row["expected"]) for row in _rows(file)]
    return cases


def _rows(file) -> csv.DictReader:
    return csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)


def scores(cases: list[tuple[str, str, str]], system: Callable[[str], str]) -> dict[str, list[bool]]:
    """Per category, whether each case came out exactly right."""
    correct: dict[str, list[bool]] = {}
    for category, text, expected in cases:
        correct.setdefault(category, []).append(system(text) == expected)
    return correct


def characters_per_second(cases: list[tuple[str, str, str]], repeat: int) -> float:
    """normalize() throughput on the case inputs, one call per input (wetext already loaded)."""
    inputs = [text for _, text, _ in cases]
    normalize(inputs[0])
    start = time.perf_counter()
    for _ in range(repeat):
        for text in inputs:
            normalize(text)
    return repeat * sum(map(len, inputs)) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeat", type=int, default=20, help="passes over the inputs for the speed figure")
    args = parser.parse_args()
    cases = load(args.data)
    systems = {"wetext only": scores(cases, wetext_baseline), "qingyin": scores(cases, lambda t: normalize(t).text)}
    width = max(12, *map(len, systems["qingyin"]))
    print(f"{'category':<{width}} {'cases':>5}" + "".join(f" {name:>12}" for name in systems))
    for category in systems["qingyin"]:
        count = len(systems["qingyin"][category])
        accuracies = "".join(f" {sum(s[category]) / count:>12.3f}" for s in systems.values())
        print(f"{category:<{width}} {count:>5}{accuracies}")
    overall = "".join(f" {sum(map(sum, s.values())) / len(cases):>12.3f}" for s in systems.values())
    print(f"{'overall':<{width}} {len(cases):>5}{overall}")
    speed = characters_per_second(cases, args.repeat)
    print(f"normalize(): {speed:,.0f} characters/s ({args.repeat} passes over {len(cases)} inputs)")


if __name__ == "__main__":
    main()
