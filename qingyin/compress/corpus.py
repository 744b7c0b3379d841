"""The teacher corpus: the texts a teacher voice reads to make distillation data, as (id, text) pairs.

The choice (sources, in this order; `--limit N` takes the first N):

- "cpp": the sentences of CPP (../shared/data/cpp/{dev,test}.sent, `cpp_dir` to move it), Wikipedia sentences
  that each mark one polyphonic character as `▁X▁`; the marks are removed. ~19,900 distinct sentences of
  everyday written Mandarin, up to 49 characters. Ids: "cpp-dev-000001" (split, 1-based line number).
- "everyday": our everyday polyphone sentences (benchmarks/data/everyday_polyphones/{dev,test}.tsv, the
  `sentence` column, marks removed; the first column holds the marked character only). ~6,460 short sentences
  in six registers (dialogue, news, children's stories, service, instructions, numbers with measure words),
  written for qingyin. Ids: "everyday-dev-0001" (1-based data row).
- "default" (not in DEFAULT_SOURCES): qingyin/text/data/zh_default.txt, 110 sentences. It is left out by default
  because it is the evaluation set: `qingyin eval` and `bench` speak it, the quality gate measures on its first
  lines and int8-static calibrates on its last ones, so a student trained on it would be gated on its own
  training texts. Ids: "default-001" (1-based among its sentences).

Every text is kept once (its first occurrence, by text). Texts with nothing speakable (no Han character: the
frontend reads Han characters, digits and a few symbols, and a text without Chinese would be letters or
punctuation only) and texts longer than `max_chars` (MAX_CHARS: Baker's position table holds 2,048 frames,
25.6 s, about 120 characters at its ~4.9 characters per second; the engine halves longer sentences at a
prosodic boundary, but training wants whole sentences) are dropped.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from qingyin.text.corpus import DEFAULT_TEXTS, read_texts

MARK = "▁"  # CPP's and the everyday set's mark around the polyphonic character
REPO = Path(__file__).resolve().parents[2]
CPP_DIR = REPO.parent / "shared" / "data" / "cpp"
EVERYDAY_DIR = REPO / "benchmarks" / "data" / "everyday_polyphones"
SPLITS = ("dev", "test")
SOURCES = ("cpp", "everyday", "default")
DEFAULT_SOURCES = ("cpp", "everyday")
MAX_CHARS = 100
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


class CorpusError(ValueError):
    """A corpus source that cannot be read, or a bad corpus setting; the message names the file or setting."""


class CorpusText(NamedTuple):
    id: str  # stable: the source, the split and the line (or row) it came from
    text: str


def teacher_corpus(sources: Sequence[str] = DEFAULT_SOURCES, cpp_dir: str | Path | None = None,
                   everyday_dir: str | Path | None = None, max_chars: int = MAX_CHARS) -> list[CorpusText]:
    """The corpus: the texts of `sources` (in the order given), deduplicated and filtered (see the module)."""
    sources = parse_sources(sources)
    readers = {"cpp": lambda: cpp_texts(cpp_dir or CPP_DIR), "everyday": lambda: everyday_texts(everyday_dir),
               "default": default_texts}
    texts = [item for source in sources for item in readers[source]()]
    return filter_texts(texts, max_chars)[0]


def parse_sources(sources: str | Iterable[str]) -> tuple[str, ...]:
    """("cpp", "everyday") from "cpp,everyday" or a list; CorpusError names an unknown source."""
    names = [s.strip() for s in (sources.split(",") if isinstance(sources, str) else sources)]
    names = [s for s in names if s]
    unknown = [s for s in names if s not in SOURCES]
    if unknown or not names:
        raise CorpusError(f"unknown corpus source(s) {unknown or names}; known: {', '.join(SOURCES)}")
    return tuple(dict.fromkeys(names))


def filter_texts(texts: Iterable[CorpusText], max_chars: int = MAX_CHARS) -> tuple[list[CorpusText], dict[str, int]]:
    """The texts kept (first occurrence of each text, speakable, at most `max_chars` characters) and how many
    were dropped for each reason ("duplicate", "unspeakable", "too long")."""
    if not isinstance(max_chars, int) or isinstance(max_chars, bool) or max_chars < 1:
        raise CorpusError(f"max_chars must be a whole number >= 1, got {max_chars!r}")
    kept: list[CorpusText] = []
    seen_texts: set[str] = set()
    seen_ids: set[str] = set()
    dropped = {"duplicate": 0, "unspeakable": 0, "too long": 0}
    for item in texts:
        if item.id in seen_ids:
            raise CorpusError(f"corpus id {item.id!r} is used twice")
        seen_ids.add(item.id)
        text = item.text.strip()
        if text in seen_texts:
            dropped["duplicate"] += 1
        elif not speakable(text):
            dropped["unspeakable"] += 1
        elif len(text) > max_chars:
            dropped["too long"] += 1
        else:
            seen_texts.add(text)
            kept.append(CorpusText(item.id, text))
    return kept, dropped


def speakable(text: str) -> bool:
    """Whether the text has something a Mandarin voice reads: at least one Han character."""
    return bool(_HAN.search(text))


def unmarked(text: str) -> str:
    return text.replace(MARK, "").strip()


def cpp_texts(cpp_dir: str | Path = CPP_DIR) -> list[CorpusText]:
    """CPP's sentences of both splits, marks removed, as they are (not yet deduplicated or filtered)."""
    folder = Path(cpp_dir)
    if not folder.is_dir():
        raise CorpusError(f"CPP folder {folder} not found: it should hold dev.sent and test.sent "
                          "(give another with --cpp DIR, or leave out the source: --sources everyday)")
    texts = []
    for split in SPLITS:
        for number, line in enumerate(_read_lines(folder / f"{split}.sent"), start=1):
            if line.strip():
                texts.append(CorpusText(f"cpp-{split}-{number:06d}", unmarked(line)))
    return texts


def everyday_texts(everyday_dir: str | Path | None = None) -> list[CorpusText]:
    """The everyday polyphone sentences of both splits (their `sentence` column), marks removed."""
    folder = Path(everyday_dir or EVERYDAY_DIR)
    texts = []
    for split in SPLITS:
        path = folder / f"{split}.tsv"
        try:
            with open(path, encoding="utf-8", newline="") as file:
                rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
        except (OSError, UnicodeDecodeError) as error:
            raise CorpusError(f"cannot read the everyday polyphone sentences {path}: {error}") from None
        if rows and "sentence" not in rows[0]:
            raise CorpusError(f"{path} has no 'sentence' column (columns: {', '.join(rows[0])})")
        texts += [CorpusText(f"everyday-{split}-{number:04d}", unmarked(row["sentence"] or ""))
                  for number, row in enumerate(rows, start=1)]
    return texts


def default_texts() -> list[CorpusText]:
    """qingyin's default evaluation sentences (see the module for why they are not a default source)."""
    return [CorpusText(f"default-{number:03d}", text) for number, text in enumerate(read_texts(DEFAULT_TEXTS), 1)]


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CorpusError(f"cannot read {path}: {error}") from None
