"""Freed heap memory handed back to the system (qingyin.runtime.memory)."""

from __future__ import annotations

import sys

import pytest

from qingyin.runtime import memory


def test_release_says_whether_the_allocator_could_trim():
    released = memory.release_free_memory()
    assert isinstance(released, bool)
    if not sys.platform.startswith("linux"):
        assert released is False


@pytest.mark.skipif(memory._malloc_trim() is None, reason="no glibc malloc_trim here")
def test_trimming_gives_back_a_freed_heap_block():
    def rss_kib() -> int:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

    memory.release_free_memory()
    blocks = [bytearray(64 * 1024) for _ in range(1600)]  # 100 MiB in heap-sized pieces (below mmap's threshold)
    keep = blocks[-1]  # the top of the heap stays in use, so glibc cannot shrink the heap by itself
    del blocks
    before = rss_kib()
    assert memory.release_free_memory()
    assert rss_kib() < before - 50 * 1024
    assert keep  # held until here


def test_the_trimmer_trims_at_most_once_per_interval(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: calls.append(1) or True)
    clock = iter([100.0, 100.5, 101.2, 101.3])
    monkeypatch.setattr(memory.time, "monotonic", lambda: next(clock))
    trimmer = memory.MemoryTrimmer(min_interval_s=1.0)
    for _ in range(4):
        trimmer.after_work()
    assert len(calls) == 2  # at 100.0 and at 101.2


def test_the_trimmer_trims_whenever_the_server_goes_idle(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: calls.append(1) or True)
    clock = iter([100.0, 100.2, 100.4])
    monkeypatch.setattr(memory.time, "monotonic", lambda: next(clock))
    trimmer = memory.MemoryTrimmer(min_interval_s=1.0)
    trimmer.after_work()
    trimmer.after_work(idle=False)  # within the interval, others still at work: skipped
    trimmer.after_work(idle=True)  # the last request done: trimmed at once
    assert len(calls) == 2
