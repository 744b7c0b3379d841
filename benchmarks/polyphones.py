"""Polyphone accuracy of the frontend's pinyin on the CPP benchmark (../shared/data/cpp).

    .venv/bin/python -m benchmarks.polyphones [--split test] [--data DIR]

Each CPP sentence marks one polyphonic character with ▁ on both sides; its pinyin (tone digit, `u:` for ü)
is on the same line of the .lb file. We read the whole unmarked sentence with `qingyin.text.g2p.pinyin_of`
(what the synthesizer uses) and compare the marked character's reading.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from qingyin.evaluate.reference import REPO
from qingyin.text.g2p import pinyin_of

MARK = "▁"


def load(data: Path, split: str) -> list[tuple[str, int, str]]:
    """(sentence without marks, index of the marked character, expected TONE3 pinyin with v for ü)."""
    sentences = (data / f"{split}.sent").read_text(encoding="utf-8").splitlines()
    labels = (data / f"{split}.lb").read_text(encoding="utf-8").splitlines()
    cases = []
    for sentence, label in zip(sentences, labels, strict=True):
        index = sentence.index(MARK)
        cases.append((sentence.replace(MARK, ""), index, label.strip().replace("u:", "v")))
    return cases


def accuracy(cases: list[tuple[str, int, str]]) -> float:
    correct = 0
    for sentence, index, expected in cases:
        char, occurrence = sentence[index], sentence[:index].count(sentence[index])
        readings = [reading for c, reading in pinyin_of(sentence) if c == char]  # this character's readings, in order
        correct += occurrence < len(readings) and readings[occurrence] == expected
    return correct / len(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["test", "dev"], default="test")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cpp")
    args = parser.parse_args()
    cases = load(args.data, args.split)
    start = time.perf_counter()
    score = accuracy(cases)
    print(f"CPP {args.split}: {len(cases)} sentences, accuracy {score:.4f} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
