"""Polyphone accuracy of the frontend's citation pinyin on the CPP benchmark (../shared/data/cpp).

    .venv/bin/python -m benchmarks.polyphones [--split test|dev] [--data DIR]

Each CPP sentence marks one polyphonic character with ▁ on both sides; its pinyin (tone digit, `u:` for ü)
is on the same line of the .lb file. Each system reads the whole unmarked sentence and we compare the marked
character's reading (found by its occurrence index among that character's readings). The systems:

- "pypinyin": pypinyin's lazy_pinyin with its phrase dictionary on the whole sentence (the old baseline,
  without its tone sandhi: CPP labels citation tones);
- "pypinyin + g2pM": `qingyin.text.g2p` (jieba words, phrase dictionaries, g2pM) with an empty lexicon;
- "qingyin": `qingyin.text.g2p.pinyin_of` as the synthesizer uses it, with the built-in lexicon.

Tune on dev; test is for reporting only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from pypinyin import Style, lazy_pinyin

from qingyin.evaluate.reference import REPO
from qingyin.text.g2p import is_han, pinyin_of
from qingyin.text.lexicon import Lexicon

MARK = "▁"
Reader = Callable[[str], list[tuple[str, str]]]


def load(data: Path, split: str) -> list[tuple[str, int, str]]:
    """(sentence without marks, index of the marked character, expected TONE3 pinyin with v for ü)."""
    sentences = (data / f"{split}.sent").read_text(encoding="utf-8").splitlines()
    labels = (data / f"{split}.lb").read_text(encoding="utf-8").splitlines()
    cases = []
    for sentence, label in zip(sentences, labels, strict=True):
        index = sentence.index(MARK)
        cases.append((sentence.replace(MARK, ""), index, label.strip().replace("u:", "v")))
    return cases


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


def accuracy(cases: list[tuple[str, int, str]], reader: Reader = pinyin_of) -> tuple[float, float]:
    """Share of cases whose marked character `reader` reads as labelled: exactly, and counting a neutral
    tone as right when the syllable matches (CPP labels full tones where 现代汉语词典 has 弟弟 di4·di, 枇杷 pi2·pa)."""
    exact = syllable = 0
    for sentence, index, expected in cases:
        char, occurrence = sentence[index], sentence[:index].count(sentence[index])
        readings = [reading for c, reading in reader(sentence) if c == char]  # this character's readings, in order
        got = readings[occurrence] if occurrence < len(readings) else ""
        exact += got == expected
        syllable += got == expected or (got.endswith("5") and got[:-1] == expected[:-1])
    return exact / len(cases), syllable / len(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["test", "dev"], default="test")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cpp")
    args = parser.parse_args()
    cases = load(args.data, args.split)
    characters = sum(len(sentence) for sentence, _, _ in cases)
    pinyin_of("预热。")  # load jieba, the dictionaries and g2pM before timing
    print(f"CPP {args.split}: {len(cases)} sentences, {characters} characters")
    for name, reader in SYSTEMS.items():
        start = time.perf_counter()
        exact, neutral_as_full = accuracy(cases, reader)
        elapsed = time.perf_counter() - start
        print(f"  {name:<16} accuracy {exact:.4f}  (neutral tone as full: {neutral_as_full:.4f})  "
              f"({elapsed:.1f} s, {characters / elapsed:,.0f} chars/s)")


if __name__ == "__main__":
    main()
