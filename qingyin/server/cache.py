"""An LRU cache of synthesized audio bytes: in memory, and optionally in a directory on disk.

Disk entries live in `directory/<key[:2]>/<key>`, written atomically (temp file + os.replace) and prefixed with
a SHA-256 of the audio, so that a truncated or damaged file is noticed, removed and treated as a miss. Disk
errors never escape: they are logged as warnings and the cache carries on as if the entry were missing.
The disk's LRU order is each file's mtime (touched on every read), so it survives restarts; within a process,
an index kept in memory enforces `max_disk_bytes` (other processes sharing the directory each bound what they
know of).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from qingyin.voices.wheels import sha256_file

logger = logging.getLogger(__name__)

_KEY = re.compile(r"[0-9a-f]{64}")
_MAGIC = b"QYAUDIO1"
_DIGEST = 32
_STALE_TEMP_SECONDS = 3600


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"cache_key cannot serialize {type(value).__name__}: {value!r}")


def cache_key(parts: Mapping[str, object]) -> str:
    """SHA-256 hex digest of `parts` as canonical JSON (sorted keys, floats as their repr, UTF-8 text)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_jsonable)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.cache
def source_digest(root: Path) -> str:
    """A digest of every file under `root` (a package's code and data, bytecode caches left out), once per process.

    Audio depends on the code as well as on the model: a style preset, a lexicon or the frontend changed in a
    working copy (where the version number does not move) must not be answered from a disk cache made before."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()[:16]


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"audio cache keys are SHA-256 hex digests from cache_key(), got {key!r}")


def _pack(data: bytes) -> bytes:
    return _MAGIC + hashlib.sha256(data).digest() + data


def _unpack(blob: bytes) -> bytes | None:
    """The audio in a disk entry, or None if the entry is damaged."""
    if not blob.startswith(_MAGIC):
        return None
    start = len(_MAGIC) + _DIGEST
    data = blob[start:]
    return data if hashlib.sha256(data).digest() == blob[len(_MAGIC):start] else None


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        logger.warning("audio cache: could not remove %s: %s", path, error)


def _scan_shard(shard: Path) -> list[tuple[int, str, int]]:
    """(mtime, key, size) of the entries in one `<key[:2]>` folder; removes temp files left by a crash."""
    found = []
    stale = time.time() - _STALE_TEMP_SECONDS
    for entry in shard.iterdir():
        try:
            stat = entry.stat()
        except FileNotFoundError:  # removed meanwhile by another process
            continue
        if _KEY.fullmatch(entry.name) and entry.name.startswith(shard.name):
            found.append((stat.st_mtime_ns, entry.name, stat.st_size))
        elif entry.name.endswith(".tmp") and stat.st_mtime < stale:
            _remove(entry)
    return found


def _write_temporary(folder: Path, key: str, blob: bytes) -> str:
    """A new temp file in `folder` holding `blob`; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(blob)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


class _DiskStore:
    """Entries on disk, bounded by total file size, least recently used evicted first.

    Files are written and read outside the lock; what makes an entry appear or disappear (os.replace, unlink)
    happens under it, together with the index update, so that the index and the directory agree.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()  # key -> file size, least recently used first
        self._bytes = 0
        directory.mkdir(parents=True, exist_ok=True)
        for key, size in self._scan():
            self._add(key, size)

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / key

    def _scan(self) -> list[tuple[str, int]]:
        """(key, size) of the entries in the directory, oldest mtime first."""
        found: list[tuple[int, str, int]] = []
        try:
            for shard in self.directory.iterdir():
                if shard.is_dir() and len(shard.name) == 2:
                    found.extend(_scan_shard(shard))
        except OSError as error:
            logger.warning("audio cache: could not list %s: %s", self.directory, error)
        return [(key, size) for _, key, size in sorted(found)]

    def stats(self) -> tuple[int, int]:
        with self._lock:
            return len(self._sizes), self._bytes

    def read(self, key: str) -> bytes | None:
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            blob = None
        except OSError as error:
            logger.warning("audio cache: could not read %s (%s); dropping it", path, error)
            self._drop(key)
            return None
        data = None if blob is None else _unpack(blob)
        if blob is not None and data is None:
            logger.warning("audio cache: %s is damaged; dropping it", path)
            self._drop(key)
            return None
        if data is not None:
            try:
                os.utime(path)
            except OSError:
                pass  # evicted meanwhile, or read-only: it just does not count as recently used
        with self._lock:
            self._sync(key)
        return data

    def write(self, key: str, data: bytes) -> None:
        blob = _pack(data)
        if len(blob) > self.max_bytes:
            return
        path = self.path(key)
        try:
            temporary = _write_temporary(path.parent, key, blob)
            with self._lock:
                try:
                    os.replace(temporary, path)
                except OSError:
                    Path(temporary).unlink(missing_ok=True)
                    raise
                self._add(key, len(blob))
        except OSError as error:
            logger.warning("audio cache: could not write %s: %s", path, error)

    def clear(self) -> None:
        with self._lock:
            self._sizes.clear()
            self._bytes = 0
            for key, _ in self._scan():
                _remove(self.path(key))

    def _add(self, key: str, size: int) -> None:
        """Index `key` as the most recent entry and evict the least recent ones beyond the bound (lock held)."""
        self._bytes += size - self._sizes.get(key, 0)
        self._sizes[key] = size
        self._sizes.move_to_end(key)
        while self._bytes > self.max_bytes and self._sizes:
            victim, victim_size = self._sizes.popitem(last=False)
            self._bytes -= victim_size
            _remove(self.path(victim))

    def _sync(self, key: str) -> None:
        """Index `key` as it is on disk now: most recent if present, absent if not (lock held)."""
        try:
            size = self.path(key).stat().st_size
        except OSError:
            self._bytes -= self._sizes.pop(key, 0)
            return
        self._add(key, size)

    def _drop(self, key: str) -> None:
        with self._lock:
            self._bytes -= self._sizes.pop(key, 0)
            _remove(self.path(key))


class AudioCache:
    """Encoded audio by cache_key(): an LRU in memory (bounded by items and bytes) over an optional LRU on disk.

    Thread-safe. max_items=0 turns the memory part off; an item bigger than max_bytes is kept on disk only.
    """

    def __init__(self, max_items: int = 256, max_bytes: int = 64 * 2**20, directory: Path | None = None,
                 max_disk_bytes: int = 512 * 2**20) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.directory = None if directory is None else Path(directory)
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._disk = self._open_disk(max_disk_bytes)

    def _open_disk(self, max_disk_bytes: int) -> _DiskStore | None:
        if self.directory is None:
            return None
        try:
            return _DiskStore(self.directory, max_disk_bytes)
        except OSError as error:
            logger.warning("audio cache: cannot use %s (%s); caching in memory only", self.directory, error)
            return None

    def get(self, key: str) -> bytes | None:
        """The audio stored under `key` (from memory, else from disk, then kept in memory), or None."""
        _check_key(key)
        with self._lock:
            data = self._memory.get(key)
            if data is not None:
                self._memory.move_to_end(key)
                self._hits += 1
                return data
        data = self._disk.read(key) if self._disk is not None else None
        with self._lock:
            if data is None:
                self._misses += 1
            else:
                self._hits += 1
                self._remember(key, data)
        return data

    def put(self, key: str, data: bytes) -> None:
        """Keep `data` under `key`, in memory if it fits and on disk if there is a directory."""
        _check_key(key)
        data = bytes(data)
        with self._lock:
            self._remember(key, data)
        if self._disk is not None:
            self._disk.write(key, data)

    def _remember(self, key: str, data: bytes) -> None:
        if key in self._memory:
            self._bytes -= len(self._memory.pop(key))
        if self.max_items <= 0 or len(data) > self.max_bytes:
            return
        self._memory[key] = data
        self._bytes += len(data)
        while len(self._memory) > self.max_items or self._bytes > self.max_bytes:
            self._bytes -= len(self._memory.popitem(last=False)[1])

    def stats(self) -> dict[str, int]:
        disk_items, disk_bytes = self._disk.stats() if self._disk is not None else (0, 0)
        with self._lock:
            return {"hits": self._hits, "misses": self._misses, "items": len(self._memory), "bytes": self._bytes,
                    "disk_items": disk_items, "disk_bytes": disk_bytes}

    def clear(self) -> None:
        """Forget every entry, in memory and on disk; the hit and miss counts are kept."""
        with self._lock:
            self._memory.clear()
            self._bytes = 0
        if self._disk is not None:
            self._disk.clear()
