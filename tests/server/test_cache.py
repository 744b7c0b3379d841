from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from qingyin.server.cache import AudioCache, cache_key, source_digest

HEADER = 8 + 32  # magic + SHA-256 in front of the audio in each disk entry


def key(n: int) -> str:
    return cache_key({"n": n})


def audio(n: int, size: int = 100) -> bytes:
    return bytes([n % 256]) * size


def entry(directory: Path, k: str) -> Path:
    return directory / k[:2] / k


# --- cache_key ---------------------------------------------------------------------------------

def test_cache_key_is_the_sha256_of_canonical_json() -> None:
    parts = {"text": "你好", "speed": 1.1, "format": "mp3", "sample_rate": 24000}
    expected = '{"format":"mp3","sample_rate":24000,"speed":1.1,"text":"你好"}'
    assert cache_key(parts) == hashlib.sha256(expected.encode("utf-8")).hexdigest()
    assert cache_key(dict(reversed(parts.items()))) == cache_key(parts)


def test_cache_key_tells_apart_what_differs() -> None:
    base = {"text": "你好", "speed": 0.3, "model": "v1"}
    keys = {cache_key(base), cache_key({**base, "speed": 0.1 + 0.2}), cache_key({**base, "model": "v2"}),
            cache_key({**base, "text": "你好。"}), cache_key({**base, "speed": None})}
    assert len(keys) == 5


def test_cache_key_accepts_numpy_scalars_and_paths_but_not_arbitrary_objects(tmp_path: Path) -> None:
    assert cache_key({"rate": np.int64(24000), "speed": np.float64(1.5)}) == cache_key({"rate": 24000, "speed": 1.5})
    assert cache_key({"lexicon": tmp_path}) == cache_key({"lexicon": str(tmp_path)})
    with pytest.raises(TypeError, match="cannot serialize object"):
        cache_key({"x": object()})


def test_source_digest_follows_the_files_contents_and_names_but_not_bytecode(tmp_path: Path) -> None:
    def digest_of(files: dict[str, str]) -> str:
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        return source_digest(root)

    code = {"style/presets.py": "SAD = -1.0\n", "text/lexicon.txt": "行 hang2\n"}
    first = digest_of(code)
    assert digest_of(code) == first  # another folder with the same files
    assert digest_of(code | {"style/__pycache__/presets.cpython-311.pyc": "bytecode"}) == first
    assert digest_of(code | {"style/presets.py": "SAD = -2.5\n"}) != first  # a preset moved
    assert digest_of({"style/other.py": "SAD = -1.0\n", "text/lexicon.txt": "行 hang2\n"}) != first


def test_the_servers_model_version_carries_the_code_digest(make_client) -> None:
    import qingyin

    service = make_client().app.state.service
    assert f"-{source_digest(Path(qingyin.__file__).parent)}/" in service.model_version("baker")


def test_keys_must_be_digests() -> None:
    with pytest.raises(ValueError, match="SHA-256 hex digests"):
        AudioCache().get("../../etc/passwd")


# --- memory ------------------------------------------------------------------------------------

def test_memory_is_lru_by_item_count() -> None:
    cache = AudioCache(max_items=2)
    cache.put(key(1), audio(1))
    cache.put(key(2), audio(2))
    assert cache.get(key(1)) == audio(1)  # 1 is now more recent than 2
    cache.put(key(3), audio(3))
    assert cache.get(key(2)) is None
    assert cache.get(key(1)) == audio(1) and cache.get(key(3)) == audio(3)
    assert cache.stats() == {"hits": 3, "misses": 1, "items": 2, "bytes": 200, "disk_items": 0, "disk_bytes": 0}


def test_memory_is_bounded_by_bytes_and_skips_oversized_items() -> None:
    cache = AudioCache(max_items=100, max_bytes=250)
    for n in range(3):
        cache.put(key(n), audio(n))
    assert cache.get(key(0)) is None  # 300 bytes > 250: the oldest went
    assert cache.stats()["bytes"] == 200
    cache.put(key(9), audio(9, size=251))
    assert cache.get(key(9)) is None
    assert cache.get(key(1)) == audio(1) and cache.get(key(2)) == audio(2)  # not evicted for nothing


def test_putting_a_key_again_replaces_it() -> None:
    cache = AudioCache()
    cache.put(key(1), audio(1, size=10))
    cache.put(key(1), audio(2, size=30))
    assert cache.get(key(1)) == audio(2, size=30)
    assert cache.stats()["items"] == 1 and cache.stats()["bytes"] == 30


def test_max_items_zero_disables_memory() -> None:
    cache = AudioCache(max_items=0)
    cache.put(key(1), audio(1))
    assert cache.get(key(1)) is None
    assert cache.stats()["items"] == 0


# --- disk --------------------------------------------------------------------------------------

def test_disk_entries_persist_across_instances(tmp_path: Path) -> None:
    AudioCache(directory=tmp_path).put(key(1), audio(1))
    assert entry(tmp_path, key(1)).stat().st_size == 100 + HEADER
    assert [p.name for p in entry(tmp_path, key(1)).parent.iterdir()] == [key(1)]  # no temp file left
    second = AudioCache(directory=tmp_path)
    assert second.stats()["disk_items"] == 1
    assert second.get(key(1)) == audio(1)
    entry(tmp_path, key(1)).unlink()
    assert second.get(key(1)) == audio(1)  # promoted to memory by the first get
    assert second.stats()["hits"] == 2


def test_disk_only_cache_reads_from_disk(tmp_path: Path) -> None:
    cache = AudioCache(max_items=0, directory=tmp_path)
    cache.put(key(1), audio(1))
    assert cache.get(key(1)) == audio(1)
    assert cache.stats()["items"] == 0 and cache.stats()["disk_items"] == 1


def test_items_too_big_for_memory_still_go_to_disk(tmp_path: Path) -> None:
    cache = AudioCache(max_bytes=50, directory=tmp_path)
    cache.put(key(1), audio(1))
    assert cache.stats()["items"] == 0
    assert cache.get(key(1)) == audio(1)


def test_disk_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = AudioCache(max_items=0, directory=tmp_path, max_disk_bytes=3 * (100 + HEADER))
    for n in (1, 2, 3):
        cache.put(key(n), audio(n))
    assert cache.get(key(1)) == audio(1)  # a read makes 1 recent, so 2 is the oldest
    cache.put(key(4), audio(4))
    assert not entry(tmp_path, key(2)).exists()
    assert all(entry(tmp_path, key(n)).exists() for n in (1, 3, 4))
    assert cache.stats()["disk_bytes"] == 3 * (100 + HEADER)


def test_disk_lru_order_survives_a_restart_by_mtime(tmp_path: Path) -> None:
    cache = AudioCache(max_items=0, directory=tmp_path)
    for n in (1, 2, 3):
        cache.put(key(n), audio(n))
    for age, n in enumerate((2, 3, 1)):  # 2 oldest, 1 newest
        os.utime(entry(tmp_path, key(n)), (1_000_000 + age, 1_000_000 + age))
    smaller = AudioCache(max_items=0, directory=tmp_path, max_disk_bytes=2 * (100 + HEADER))
    assert smaller.stats()["disk_items"] == 2
    assert not entry(tmp_path, key(2)).exists()
    assert smaller.get(key(1)) == audio(1)
    assert entry(tmp_path, key(1)).stat().st_mtime > 1_000_002  # touched on read


def test_reading_touches_the_file(tmp_path: Path) -> None:
    cache = AudioCache(max_items=0, directory=tmp_path)
    cache.put(key(1), audio(1))
    os.utime(entry(tmp_path, key(1)), (1_000_000, 1_000_000))
    cache.get(key(1))
    assert entry(tmp_path, key(1)).stat().st_mtime > 1_000_000


def test_entries_bigger_than_the_disk_bound_are_not_written(tmp_path: Path) -> None:
    cache = AudioCache(directory=tmp_path, max_disk_bytes=100)
    cache.put(key(1), audio(1))
    assert not entry(tmp_path, key(1)).exists()
    assert cache.get(key(1)) == audio(1)  # memory still has it


@pytest.mark.parametrize("damage", [
    lambda blob: blob[:-1],  # truncated
    lambda blob: blob[:50] + bytes([blob[50] ^ 1]) + blob[51:],  # a flipped bit
    lambda blob: b"",
    lambda blob: b"RIFF" + blob[4:],  # not one of our entries
])
def test_damaged_disk_entries_are_misses_and_removed(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                     damage) -> None:
    AudioCache(directory=tmp_path).put(key(1), audio(1))
    path = entry(tmp_path, key(1))
    path.write_bytes(damage(path.read_bytes()))
    cache = AudioCache(directory=tmp_path)
    with caplog.at_level(logging.WARNING, logger="qingyin.server.cache"):
        assert cache.get(key(1)) is None
    assert "damaged" in caplog.text
    assert not path.exists()
    assert cache.stats()["misses"] == 1 and cache.stats()["disk_items"] == 0


def test_unreadable_entry_is_a_miss(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    entry(tmp_path, key(1)).mkdir(parents=True)  # a directory where the file should be
    cache = AudioCache(directory=tmp_path)
    with caplog.at_level(logging.WARNING, logger="qingyin.server.cache"):
        assert cache.get(key(1)) is None
    assert "could not read" in caplog.text


def test_disk_write_errors_are_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = AudioCache(directory=tmp_path)
    (tmp_path / key(1)[:2]).write_bytes(b"a file where the folder should be")
    with caplog.at_level(logging.WARNING, logger="qingyin.server.cache"):
        cache.put(key(1), audio(1))
    assert "could not write" in caplog.text
    assert cache.get(key(1)) == audio(1)  # from memory
    assert cache.stats()["disk_items"] == 0


def test_unusable_directory_falls_back_to_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="qingyin.server.cache"):
        cache = AudioCache(directory=blocker / "cache")
    assert "memory only" in caplog.text
    cache.put(key(1), audio(1))
    assert cache.get(key(1)) == audio(1)


def test_stale_temp_files_are_cleaned_on_start(tmp_path: Path) -> None:
    shard = tmp_path / "ab"
    shard.mkdir()
    (shard / f".{'ab' * 32}.x.tmp").write_bytes(b"half")
    (shard / f".{'ab' * 32}.y.tmp").write_bytes(b"being written")
    os.utime(shard / f".{'ab' * 32}.x.tmp", (1_000_000, 1_000_000))
    AudioCache(directory=tmp_path)
    assert [p.name for p in shard.iterdir()] == [f".{'ab' * 32}.y.tmp"]


def test_clear_empties_memory_and_disk(tmp_path: Path) -> None:
    cache = AudioCache(directory=tmp_path)
    for n in range(3):
        cache.put(key(n), audio(n))
    cache.clear()
    assert cache.get(key(0)) is None
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    assert cache.stats() == {"hits": 0, "misses": 1, "items": 0, "bytes": 0, "disk_items": 0, "disk_bytes": 0}


# --- threads -----------------------------------------------------------------------------------

def test_concurrent_puts_and_gets_stay_consistent(tmp_path: Path) -> None:
    cache = AudioCache(max_items=10, max_bytes=1500, directory=tmp_path, max_disk_bytes=20 * (100 + HEADER))
    keys = [key(n) for n in range(40)]
    errors: list[BaseException] = []
    gets = 0
    counter = threading.Lock()

    def work(seed: int) -> None:
        nonlocal gets
        rng = np.random.default_rng(seed)
        try:
            for _ in range(200):
                n = int(rng.integers(len(keys)))
                if rng.random() < 0.5:
                    cache.put(keys[n], audio(n))
                else:
                    data = cache.get(keys[n])
                    assert data is None or data == audio(n)
                    with counter:
                        gets += 1
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] == gets
    assert stats["items"] <= 10 and stats["bytes"] == 100 * stats["items"] <= 1500
    on_disk = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(on_disk) == stats["disk_items"] <= 20
    assert stats["disk_bytes"] == sum(p.stat().st_size for p in on_disk)
