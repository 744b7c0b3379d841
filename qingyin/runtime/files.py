"""Output folders: made when missing, and proved writable before any work is spent on them."""

from __future__ import annotations

import os
from pathlib import Path


def writable_folder(directory: Path) -> None:
    """Make `directory` (and its parents) if needed and write and remove a probe file in it; OSError otherwise."""
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f".qingyin-write-test-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()
