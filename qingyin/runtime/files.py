"""Output folders: made when missing, and proved writable before any work is spent on them; files replaced whole."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path


def writable_folder(directory: Path) -> None:
    """Make `directory` (and its parents) if needed and write and remove a probe file in it; OSError otherwise."""
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f".qingyin-write-test-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


def replace_file(path: Path, write: Callable[[Path], object]) -> None:
    """`write(temporary)` next to `path`, then rename it over `path`: readers see the old file or the new one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(temporary)
    os.replace(temporary, path)


def write_json(path: Path, data: object) -> None:
    """`data` as indented UTF-8 JSON, replacing `path` whole (`replace_file`)."""
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    replace_file(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
