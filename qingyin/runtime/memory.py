"""Hand memory that the C allocator holds but no longer uses back to the system.

With ONNX Runtime's arena off (qingyin.families.onnx_sessions), each synthesis allocates and frees its tensors
through glibc's malloc, which keeps freed memory in its per-thread arenas: measured after one synthesis, 55 MiB
(Baker) and 83 MiB (yunxi) of a 0.6-0.75 GiB process came back with `malloc_trim(0)`, which took about 10 ms on a
loaded machine. A server therefore trims after a request, at most once per `min_interval_s`, and always when the
request was the last one in progress: what an idle server holds is then what it needs.
Elsewhere than on glibc (macOS, musl, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time
from functools import cache


@cache
def _malloc_trim():  # -> the C function, or None
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # no glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Give freed heap memory back to the system now; True when the allocator could do it."""
    trim = _malloc_trim()
    return trim is not None and bool(trim(0))


class MemoryTrimmer:
    """Calls release_free_memory() when asked, but not more often than once per `min_interval_s` unless the work
    done was the last in progress (`idle`)."""

    def __init__(self, min_interval_s: float = 1.0) -> None:
        self.min_interval_s = min_interval_s
        self._last = -float("inf")
        self._lock = threading.Lock()

    def after_work(self, idle: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.min_interval_s and not idle:
                return
            self._last = now
        release_free_memory()
