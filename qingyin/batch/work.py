"""The unit of batch work and what a worker process does with it.

A unit is one part of one item (a line, a JSONL record, or a slice of a book chapter). A worker keeps one
ModelPool and one Synthesizer per voice for its whole life, so each voice loads once per worker process, not once
per item. It returns the float32 audio (with the pause that follows the part when more parts follow), so the job
assembles and encodes every file the same way whichever engine ran the units.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from qingyin.runtime.limits import WorkLimits


@dataclass(frozen=True)
class WorkerSettings:
    """How every worker loads its models (one setting for the whole job)."""

    threads: int = 1
    backend: str | None = None
    variant: str | None = None
    fetch: bool = False  # install a missing model on the worker's machine (ray: nodes may not have it yet)
    limits: WorkLimits | None = None  # per unit (a line, a record, a book part); None = none


@dataclass(frozen=True)
class WorkUnit:
    item: str  # the item's id
    index: int  # which part of the item
    count: int  # how many parts the item has
    text: str
    voice: str
    options: tuple[tuple[str, object], ...] = ()  # sorted (name, value) pairs: hashable and picklable

    @property
    def key(self) -> tuple[str, int]:
        return self.item, self.index


@dataclass
class UnitResult:
    item: str
    index: int
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    sample_rate: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0  # wall time the worker spent
    pid: int = 0  # the worker process (tests kill it; logs name it)

    @property
    def key(self) -> tuple[str, int]:
        return self.item, self.index


_engines: dict[tuple[WorkerSettings, str], object] = {}
_pools: dict[WorkerSettings, object] = {}
_lock = threading.Lock()


def synthesizer(settings: WorkerSettings, voice: str):  # -> Synthesizer
    """This process's engine for `voice` (made once; every engine of the process shares one model pool)."""
    from qingyin.runtime.pool import ModelPool
    from qingyin.runtime.synthesizer import Synthesizer

    with _lock:
        if (settings, voice) not in _engines:
            if settings not in _pools:
                _pools[settings] = ModelPool(backend=settings.backend, variant=settings.variant,
                                             threads=settings.threads, fetch=settings.fetch)
            _engines[settings, voice] = Synthesizer(voice, models=_pools[settings])  # type: ignore[arg-type]
        return _engines[settings, voice]


def render(unit: WorkUnit, settings: WorkerSettings) -> UnitResult:
    """Synthesize one unit; every error is returned (as its message), never raised, so a bad item stays one."""
    start = time.perf_counter()
    result = UnitResult(unit.item, unit.index, pid=os.getpid())
    try:
        tts = synthesizer(settings, unit.voice)
        options = dict(unit.options)
        spoken = tts.synthesize(unit.text, limits=settings.limits, **options)
        audio = spoken.audio
        if unit.index < unit.count - 1:
            audio = np.concatenate([audio, tts.pause(**options)])
        result.audio = audio.astype(np.float32, copy=False)
        result.sample_rate = spoken.sample_rate
        result.warnings = list(spoken.warnings)
    except Exception as error:  # noqa: BLE001  (recorded in the manifest; the job goes on)
        result.error = f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else str(error)
    result.seconds = time.perf_counter() - start
    return result
