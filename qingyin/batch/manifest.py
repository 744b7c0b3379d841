"""manifest.jsonl: what a batch job made, one JSON line per item, and what lets a rerun resume.

A record: id, path (relative to the manifest), seconds, sha256 (of the file), voice, options, format, sample_rate,
key (a hash of everything that decides the audio), status ("done" or "error"), error and warnings (what the
frontend and the style layer said). Records are appended as
items finish, each as one write of one whole line, flushed to disk; so an interrupted job (SIGINT, a crash, a
lost machine) leaves every finished item recorded and at most a torn last line, which reading skips. The last
record of an id wins; `compact()` rewrites the file atomically with one record per id, in input order, which is
what a job does when it starts and when it ends: the manifest never holds an id twice after a run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

DONE, ERROR = "done", "error"
FIELDS = ("id", "path", "seconds", "sha256", "voice", "options", "format", "sample_rate", "key", "status", "error",
          "warnings")


class Manifest:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, object]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:  # a torn last line from an interrupted run
                    continue
                if isinstance(record, dict) and isinstance(record.get("id"), str):
                    self.records[record["id"]] = record
        self._file = None

    def done(self, item_id: str, key: str) -> bool:
        """Whether `item_id` was made from the same input (same key) and its file is still there."""
        record = self.records.get(item_id)
        return bool(record and record.get("status") == DONE and record.get("key") == key
                    and (self.path.parent / str(record.get("path"))).is_file())

    def add(self, record: dict[str, object]) -> None:
        """Record one finished item: appended and flushed to disk at once."""
        record = {name: record.get(name) for name in FIELDS}
        self.records[str(record["id"])] = record
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  (closed in close())
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def compact(self, order: Iterable[str] = ()) -> None:
        """Rewrite the file atomically: one record per id, ids of `order` first in that order, then the rest."""
        self.close()
        ids = [i for i in dict.fromkeys(order) if i in self.records]
        ids += [i for i in self.records if i not in set(ids)]
        partial = self.path.with_name(self.path.name + ".part")
        with open(partial, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(self.records[i], ensure_ascii=False) + "\n" for i in ids)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
