"""Where batch units run: `local` (a process pool on this machine, the default) or `ray` (a Ray cluster).

Both run the same function (qingyin.batch.work.render) on the same units, and yield exactly one result per unit:
a unit whose worker process died is run again (up to MAX_ATTEMPTS times, then it is an error result), so a
killed worker costs time, never an item. At most `window` units are in flight, so memory stays bounded on any
corpus size. Ray is imported only here, only by RayEngine.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from urllib.parse import urlparse

from qingyin.batch.work import UnitResult, WorkerSettings, WorkUnit, render

ENGINES = ("local", "ray")
MAX_ATTEMPTS = 3  # runs of one unit whose worker died, before it is recorded as an error
RAY_CONNECT_TIMEOUT = 5.0  # seconds to reach RAY_ADDRESS before saying it cannot be reached


class EngineError(RuntimeError):
    """The engine cannot start (Ray not installed, RAY_ADDRESS unreachable); the message says what to do."""


def plan_workers(workers: int | None, threads: int | None, cores: int | None = None) -> tuple[int, int]:
    """(worker processes, threads per worker): by default one single-threaded worker per core, since items are
    independent and one thread per synthesis is the most efficient use of a core; given one, the other fills the
    cores."""
    cores = cores or os.cpu_count() or 1
    if workers is None and threads is None:
        return cores, 1
    if workers is None:
        return max(1, cores // threads), threads  # type: ignore[operator]
    if threads is None:
        return workers, max(1, cores // workers)
    return workers, threads


def _dead(unit: WorkUnit, attempts: int, why: str) -> UnitResult:
    return UnitResult(unit.item, unit.index, error=f"the worker process died {attempts} times on this item ({why})")


class LocalEngine:
    """A pool of `workers` spawned processes (spawn: no inherited model or thread state), each loading a voice
    on first use and keeping it."""

    name = "local"

    def __init__(self, settings: WorkerSettings, workers: int):
        self.settings, self.workers = settings, workers
        self.window = 2 * workers
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def worker_pids(self) -> list[int]:
        return list(self._pool._processes) if self._pool is not None else []  # noqa: SLF001

    def run(self, units: Iterable[WorkUnit]) -> Iterator[UnitResult]:
        pending = iter(units)
        running: dict[Future, WorkUnit] = {}
        retry: list[WorkUnit] = []
        attempts: dict[tuple[str, int], int] = {}
        self._pool = self._new_pool()
        try:
            while True:
                while len(running) < self.window:
                    unit = retry.pop() if retry else next(pending, None)
                    if unit is None:
                        break
                    attempts[unit.key] = attempts.get(unit.key, 0) + 1
                    running[self._pool.submit(render, unit, self.settings)] = unit
                if not running:
                    return
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in finished:
                    unit = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        if attempts[unit.key] >= MAX_ATTEMPTS:
                            yield _dead(unit, attempts[unit.key], "killed or out of memory")
                        else:
                            retry.append(unit)
                if broken:  # every unit still in flight died with the pool: start a new pool and run them again
                    for future, unit in running.items():
                        if future.done() and future.exception() is None:
                            yield future.result()
                        elif attempts[unit.key] >= MAX_ATTEMPTS:
                            yield _dead(unit, attempts[unit.key], "killed or out of memory")
                        else:
                            retry.append(unit)
                    running.clear()
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._new_pool()
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def ray_address() -> str | None:
    return os.environ.get("RAY_ADDRESS") or None


def check_reachable(address: str, timeout: float = RAY_CONNECT_TIMEOUT) -> None:
    """Raise EngineError naming `address` unless something listens there (ray.init would otherwise retry for
    minutes). "auto" and "local" are Ray's own words and are left to it."""
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise EngineError(f"RAY_ADDRESS={address!r} is not host:port (e.g. 10.0.0.5:6379 or ray://10.0.0.5:10001)")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        raise EngineError(f"cannot reach the Ray cluster at RAY_ADDRESS={address} ({error}); start it with "
                          "`ray start --head` there, fix RAY_ADDRESS, or unset it to run a local Ray") from None


def import_ray():  # -> module
    try:
        import ray
    except ImportError:
        raise EngineError("the ray engine needs Ray: pip install 'qingyin[cluster]' (or use --engine local)") from None
    return ray


def init_ray(cpus: int | None = None) -> str:
    """Connect to RAY_ADDRESS, or start a local Ray on 127.0.0.1 (reused when this process already has one);
    returns where it runs."""
    ray = import_ray()
    address = ray_address()
    if ray.is_initialized():
        return address or "local"
    if address:
        check_reachable(address)
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        return address
    ray.init(address="local", num_cpus=cpus or os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    return "local Ray on 127.0.0.1"


class RayEngine:
    """Ray tasks (one CPU bundle of `threads` each); Ray reuses its worker processes, so each keeps its voices
    loaded across tasks. A task whose worker died is retried by Ray (max_retries), then reported as an error."""

    name = "ray"

    def __init__(self, settings: WorkerSettings, workers: int):
        self.settings, self.workers = settings, workers
        self.window = 2 * workers
        self.where = init_ray(cpus=workers * settings.threads if not ray_address() else None)
        ray = import_ray()
        self._render = ray.remote(render).options(num_cpus=settings.threads, max_retries=MAX_ATTEMPTS - 1)
        self._settings_ref = ray.put(settings)

    def run(self, units: Iterable[WorkUnit]) -> Iterator[UnitResult]:
        ray = import_ray()
        pending = iter(units)
        running: dict[object, WorkUnit] = {}
        try:
            while True:
                while len(running) < self.window:
                    unit = next(pending, None)
                    if unit is None:
                        break
                    running[self._render.remote(unit, self._settings_ref)] = unit
                if not running:
                    return
                finished, _ = ray.wait(list(running), num_returns=1)
                for ref in finished:
                    unit = running.pop(ref)
                    try:
                        yield ray.get(ref)
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayTaskError,
                            ray.exceptions.NodeDiedError) as error:
                        yield _dead(unit, MAX_ATTEMPTS, type(error).__name__)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)


def make_engine(name: str, settings: WorkerSettings, workers: int) -> LocalEngine | RayEngine:
    if name == "local":
        return LocalEngine(settings, workers)
    if name == "ray":
        return RayEngine(settings, workers)
    raise EngineError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
