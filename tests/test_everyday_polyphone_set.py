"""The everyday polyphone benchmark's data (benchmarks/data/everyday_polyphones) is what its README says."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from benchmarks.polyphones import EVERYDAY, MARK, load_everyday

REGISTERS = {"dialogue", "service", "news", "instructions", "children", "numbers"}


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict[str, str]]]:
    result = {}
    for split in ("dev", "test"):
        lines = (EVERYDAY / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        header = lines[0].split("\t")
        assert header == ["char", "reading", "register", "sentence"]
        result[split] = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    return result


def test_every_sentence_marks_its_character_once_with_a_well_formed_reading(rows) -> None:
    for row in rows["dev"] + rows["test"]:
        sentence = row["sentence"]
        assert sentence.count(MARK) == 2 and sentence[sentence.index(MARK) + 1] == row["char"], sentence
        assert sentence.replace(MARK, "").count(row["char"]) == 1, sentence
        assert re.fullmatch("[a-z]+[1-5]", row["reading"]) and "ü" not in row["reading"]
        assert row["register"] in REGISTERS


def test_the_set_covers_150_characters_each_reading_in_both_splits(rows) -> None:
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for split, split_rows in rows.items():
        for row in split_rows:
            counts[row["char"], row["reading"]][split] += 1
    readings_per_char = Counter(char for char, _ in counts)
    assert len(readings_per_char) == 150
    assert min(readings_per_char.values()) >= 2  # polyphonic in everyday use
    assert all(c["dev"] >= 1 and c["test"] >= 1 and c.total() >= 2 for c in counts.values())
    assert sum(len(r) for r in rows.values()) >= 400
    sentences = [row["sentence"] for r in rows.values() for row in r]
    assert len(set(sentences)) == len(sentences)  # no sentence in both splits


def test_every_register_is_in_both_splits(rows) -> None:
    for split_rows in rows.values():
        assert {row["register"] for row in split_rows} == REGISTERS


def test_loader_finds_the_marked_character() -> None:
    cases = load_everyday("dev")
    assert all(case.sentence[case.index] == case.char and MARK not in case.sentence for case in cases)
