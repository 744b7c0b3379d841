"""Batch inputs -> Items: a text file (one utterance a line), JSONL, or a long text/Markdown book.

A line that cannot be read (bad JSON, an unknown field, no text) becomes an Item with its `error` set: the job
records it as failed and goes on. Ids are stable across reruns (given ids, else line or chapter numbers), which
is what makes a job resumable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from qingyin.runtime.limits import check_text

KINDS = ("auto", "lines", "jsonl", "book")
# What a JSONL line may carry besides id, text/ssml and voice: the engine's options, one name everywhere.
OPTION_FIELDS = ("speed", "pitch", "energy", "sentence_pause", "emotion", "intensity", "reference",
                 "reference_strength")
# One synthesis call's text at most (twice the server's request limit); longer is an item error.
MAX_PART_CHARS = 10_000
PART_CHARS = 300  # a book chapter is cut into parts of about this many characters, at paragraph/sentence ends
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CHAPTER = re.compile(r"^\s*(#{1,2}\s+\S.*|第[0-9零一二三四五六七八九十百千两]+[章回节卷篇部].*)$")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…])")


class BatchInputError(ValueError):
    """The input as a whole cannot be read (missing file, unknown kind); a bad line is an Item error instead."""


@dataclass
class Item:
    """One output file: its id, what to say (in parts, for a book chapter), the voice and the options."""

    id: str
    parts: list[str]
    voice: str
    options: dict[str, object] = field(default_factory=dict)
    line: int = 0  # where it starts in the input (1-based)
    error: str | None = None  # the input line could not be read

    @property
    def text(self) -> str:
        return "".join(self.parts)


def detect_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix in (".md", ".markdown"):
        return "book"
    return "lines"


def read_items(path: str | Path, voice: str, options: dict[str, object] | None = None, kind: str = "auto",
               part_chars: int = PART_CHARS) -> list[Item]:
    """The items of `path`; `voice` and `options` are the defaults a JSONL line may override."""
    path = Path(path)
    if kind not in KINDS:
        raise BatchInputError(f"unknown input kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if not path.is_file():
        raise BatchInputError(f"input file {path} does not exist" if not path.exists()
                              else f"input {path} is not a file; give a .txt, .jsonl or .md file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise BatchInputError(f"{path} is not UTF-8 text ({error}); convert it, e.g. iconv -f GBK -t UTF-8") from None
    kind = detect_kind(path) if kind == "auto" else kind
    options = dict(options or {})
    if kind == "jsonl":
        items = _jsonl(text, voice, options)
    elif kind == "book":
        items = _book(text, voice, options, part_chars)
    else:
        items = [Item(f"{n:05d}", [line.strip()], voice, dict(options), n)
                 for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not items:
        raise BatchInputError(f"{path} has nothing to say: no {'records' if kind == 'jsonl' else 'lines of text'} "
                              "in it")
    _check_unique(items)
    _check_lengths(items)
    return items


def _check_lengths(items: list[Item]) -> None:
    """An item with a part longer than MAX_PART_CHARS is an error: one synthesis call would hold a worker for hours
    (a book's parts are cut at sentence ends, so only a run of text without any is that long)."""
    for item in items:
        longest = max((len(part) for part in item.parts), default=0)
        if item.error is None and longest > MAX_PART_CHARS:
            item.error = (f"line {item.line}: {longest:,} characters without a sentence end; at most "
                          f"{MAX_PART_CHARS:,} in one go: split it into lines, or read the file as a book "
                          "(--kind book) with sentence punctuation")


def _jsonl(text: str, voice: str, options: dict[str, object]) -> list[Item]:
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        item = Item(f"{n:05d}", [], voice, dict(options), n)
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("expected a JSON object like {\"id\": \"a1\", \"text\": \"你好。\"}")
            _check_strings(record, "record")
            _fill(item, record)
        except ValueError as error:  # json.JSONDecodeError is one
            item.error = f"line {n}: {error}"
        items.append(item)
    return items


def _check_strings(value: object, where: str) -> None:
    """Every string in a JSON value (names included) is valid Unicode: a "\\ud800" escape would be written into the
    manifest and hashed into the item's key, which UTF-8 cannot do (InvalidTextError names the field)."""
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, dict):
        for name, inner in value.items():
            check_text(name, f"a field name in {where}")
            _check_strings(inner, name if where == "record" else f"{where}.{name}")
    elif isinstance(value, list):
        for inner in value:
            _check_strings(inner, where)


def _fill(item: Item, record: dict[str, object]) -> None:
    unknown = sorted(set(record) - {"id", "text", "ssml", "voice", *OPTION_FIELDS})
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; known: id, text, ssml, voice, "
                         f"{', '.join(OPTION_FIELDS)}")
    if "id" in record:
        item.id = str(record["id"])
        if not _ID.match(item.id):
            raise ValueError(f"id {item.id!r} must be 1-128 letters, digits, '.', '_' or '-' (it names the file)")
    if ("text" in record) == ("ssml" in record):
        raise ValueError("give exactly one of text or ssml")
    spoken = record.get("text", record.get("ssml"))
    if not isinstance(spoken, str) or not spoken.strip():
        raise ValueError("text/ssml must be a non-empty string")
    if "ssml" in record and not spoken.lstrip().startswith("<speak"):
        spoken = f"<speak>{spoken}</speak>"
    item.parts = [spoken.strip()]
    if "voice" in record:
        if not isinstance(record["voice"], str):
            raise ValueError("voice must be a string such as \"baker\" or \"xiaobei:0.6,yunxi:0.4\"")
        item.voice = record["voice"]
    item.options.update({name: record[name] for name in OPTION_FIELDS if name in record})


def _book(text: str, voice: str, options: dict[str, object], part_chars: int) -> list[Item]:
    """Chapters (Markdown # / ## headings, or lines like 第三章 ...) -> one item each, cut into parts."""
    chapters: list[tuple[int, list[str]]] = []
    in_code = False
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if _CHAPTER.match(raw) or not chapters:
            chapters.append((n, []))
        line = _plain(raw)
        if line or (chapters[-1][1] and chapters[-1][1][-1]):
            chapters[-1][1].append(line)  # "" marks a paragraph end
    items = []
    for number, (line, lines) in enumerate(((n, ls) for n, ls in chapters if any(ls)), 1):
        parts = split_parts(lines, part_chars)
        items.append(Item(f"ch{number:03d}", parts, voice, dict(options), line))
    return items


def _plain(line: str) -> str:
    """Markdown line -> the text to read: headings, emphasis, links, images, quotes and list marks removed."""
    line = line.strip()
    line = re.sub(r"^#{1,6}\s+", "", line)
    line = re.sub(r"^(>\s*)+", "", line)
    line = re.sub(r"^([-*+]|\d+[.)])\s+", "", line)
    line = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", line)
    line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)
    line = re.sub(r"(\*\*|__|\*|`|~~)", "", line)
    if re.fullmatch(r"[-*_=\s]{3,}", line):  # rules
        return ""
    if line and line[-1] not in "。！？!?；;：:，,…”」』）)":
        line += "。"  # a heading or list entry without an end mark still ends a sentence
    return line


def split_parts(lines: list[str], part_chars: int) -> list[str]:
    """Paragraphs (lines; "" between paragraphs) -> parts of about `part_chars`, cut only at sentence ends."""
    sentences = [s for line in lines for s in _SENTENCE_END.split(line) if s.strip()]
    parts: list[str] = []
    current = ""
    for sentence in sentences:
        if current and len(current) + len(sentence) > part_chars:
            parts.append(current)
            current = ""
        current += sentence
    if current:
        parts.append(current)
    return parts


def _check_unique(items: list[Item]) -> None:
    seen: dict[str, int] = {}
    for item in items:
        if item.error is None and item.id in seen:
            item.error = f"line {item.line}: id {item.id!r} is used already on line {seen[item.id]}; ids must be unique"
            item.id = f"{item.id}@line{item.line}"  # its own manifest entry, not the first one's
        elif item.error is None:
            seen[item.id] = item.line
