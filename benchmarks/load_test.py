"""Load test of the HTTP server: latency percentiles, errors, throughput and the server's memory under load.

    # start a server (torch, no UI, cache off), run 1, 8 and 32 concurrent clients, 100 requests each
    .venv/bin/python -m benchmarks.load_test --start --concurrency 1,8,32 --requests 100 --json load.json
    # the same against a server that is already running (no memory figures: the process is not ours)
    .venv/bin/python -m benchmarks.load_test --url http://127.0.0.1:8000 --concurrency 1,8 --requests 100
    # memory run: 8 clients, 5,000 requests, RSS after every 10 % of them and a verdict
    .venv/bin/python -m benchmarks.load_test --start --memory-run 5000 --json memory.json

Targets (2 CPU cores):
    * no errors and no memory growth over 5,000 requests (`--memory-run 5000`);
    * p95 latency < 1 s for ~20-character texts with 8 concurrent clients (`--concurrency 8`).

Every request is POST /v1/tts {"text": ..., "format": "wav"} with a different ~20-character sentence (18-22
characters, from qingyin/text/data/zh_default.txt; later rounds prefix "第N条，" so no text repeats), so
nothing is a cache hit; `--start` also turns the cache off. Latency is send -> whole body received. Each
level's clients send requests back to back until `--requests` are done or `--duration` seconds have passed.

With `--start`, the server's resident memory (VmRSS of its process and children, from /proc) is sampled every
0.5 s and read again after every 10 % of a level's requests. Memory rule (MEMORY_RULE): between the request at
50 % and the last one, RSS may grow by at most max(5 % of the RSS at 50 %, 20 MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

TEXTS = Path(__file__).resolve().parent.parent / "qingyin" / "text" / "data" / "zh_default.txt"
MIN_CHARS, MAX_CHARS = 18, 22
MEMORY_RULE = "RSS growth over the last 50 % of requests < max(5 % of RSS, 20 MiB)"
GROWTH_FRACTION, GROWTH_FLOOR_MIB = 0.05, 20.0
P95_TARGET_MS, P95_TARGET_CLIENTS = 1000.0, 8
SAMPLE_SECONDS = 0.5
MIB = 2**20


# --- pure helpers (unit-tested) ---------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between ranks (numpy's default); NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def check_local_url(url: str) -> str:
    """The URL without a trailing slash if it points at this machine (127.0.0.0/8, ::1, localhost), else
    ValueError: this tool must not load anyone else's server."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r} (e.g. http://127.0.0.1:8000)")
    host = parts.hostname
    if host != "localhost":
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = False
        if not local:
            raise ValueError(f"refusing to load {host!r}: only 127.0.0.1, ::1 or localhost may be tested")
    return url.rstrip("/")


def read_sentences(path: Path = TEXTS) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def iter_texts(sentences: list[str], low: int = MIN_CHARS, high: int = MAX_CHARS) -> Iterator[str]:
    """Endless distinct texts of `low`-`high` characters: first the sentences that fit as they are, then round
    n = 1, 2, ... with the prefix "第n条，" on the sentences that fit with it (the frontend reads the number)."""
    if not sentences:
        raise ValueError("no sentences")
    shortest = min(map(len, sentences))
    seen: set[str] = set()
    for round_number in itertools.count():
        prefix = f"第{round_number}条，" if round_number else ""
        fresh = [prefix + s for s in sentences if low <= len(prefix + s) <= high and prefix + s not in seen]
        if not fresh and len(prefix) + shortest > high:  # the prefix only gets longer
            raise ValueError(f"no sentence fits {low}-{high} characters")
        seen.update(fresh)
        yield from fresh


def memory_verdict(rss_at_half: float, rss_end: float) -> tuple[bool, float, float]:
    """(passes, growth, allowed) in bytes for the RSS growth from the request at 50 % to the last one."""
    allowed = max(GROWTH_FRACTION * rss_at_half, GROWTH_FLOOR_MIB * MIB)
    growth = rss_end - rss_at_half
    return growth < allowed, growth, allowed


def error_kind(status: int | None, error: BaseException | None) -> str | None:
    if error is not None:
        return type(error).__name__
    return None if status == 200 else f"HTTP {status}"


# --- memory of the server process -------------------------------------------------------------------------
def rss_bytes(pid: int) -> int | None:
    """VmRSS of `pid` and its descendants, or None when the process is gone."""
    total = 0
    for each in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total or None


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child), *_descendants(int(child))]
    return found


# --- one level of load --------------------------------------------------------------------------------------
@dataclass
class Result:
    latency_ms: float
    status: int | None
    error: str | None
    body_bytes: int
    audio_seconds: float


@dataclass
class Level:
    clients: int
    planned: int
    results: list[Result] = field(default_factory=list)
    wall_seconds: float = 0.0
    rss_samples: list[int] = field(default_factory=list)  # every SAMPLE_SECONDS
    rss_checkpoints: list[tuple[int, int]] = field(default_factory=list)  # (requests done, RSS) every 10 %

    def summary(self) -> dict[str, object]:
        latencies = [r.latency_ms for r in self.results]
        errors = Counter(r.error for r in self.results if r.error)
        ok = [r for r in self.results if r.error is None]
        wall = self.wall_seconds or math.nan
        summary: dict[str, object] = {
            "clients": self.clients, "requests": len(self.results), "errors": sum(errors.values()),
            "errors_by_kind": dict(errors),
            **{f"p{q}_ms": round(percentile(latencies, q), 1) for q in (50, 95, 99)},
            "max_ms": round(max(latencies, default=math.nan), 1),
            "requests_per_s": round(len(ok) / wall, 2),
            "audio_s_per_s": round(sum(r.audio_seconds for r in ok) / wall, 2),
            "mean_audio_s": round(sum(r.audio_seconds for r in ok) / max(len(ok), 1), 2),
            "wall_s": round(self.wall_seconds, 1),
        }
        return summary | self._memory()

    def _memory(self) -> dict[str, object]:
        if not self.rss_samples:
            return {}
        first_tenth = self.rss_checkpoints[0][1] if self.rss_checkpoints else self.rss_samples[0]
        end = self.rss_samples[-1]  # read after the last response
        return {"rss_start_mib": _mib(self.rss_samples[0]), "rss_peak_mib": _mib(max(self.rss_samples)),
                "rss_end_mib": _mib(end), "rss_growth_after_10pct_mib": _mib(end - first_tenth),
                "rss_trend_mib": [[done, _mib(rss)] for done, rss in self.rss_checkpoints]}


def _mib(value: float) -> float:
    return round(value / MIB, 1)


async def _one_request(client: httpx.AsyncClient, url: str, text: str) -> Result:
    began = time.perf_counter()
    status, error, size, seconds = None, None, 0, 0.0
    try:
        response = await client.post(f"{url}/v1/tts", json={"text": text, "format": "wav"})
        status, size = response.status_code, len(response.content)
        seconds = float(response.headers.get("x-audio-duration", 0.0))
    except (httpx.HTTPError, ValueError) as caught:
        error = caught
    return Result((time.perf_counter() - began) * 1000, status, error_kind(status, error), size, seconds)


async def run_level(url: str, clients: int, requests: int, duration: float | None, texts: Iterator[str],
                    pid: int | None, timeout: float = 120.0) -> Level:
    """`clients` tasks sending back to back until `requests` are done or `duration` seconds have passed."""
    level = Level(clients, requests)
    checkpoints = {math.ceil(requests * k / 10) for k in range(1, 11)}
    began = time.perf_counter()
    deadline = began + duration if duration else math.inf
    started = 0

    async def client_task(client: httpx.AsyncClient) -> None:
        nonlocal started
        while started < requests and time.perf_counter() < deadline:
            started += 1
            level.results.append(await _one_request(client, url, next(texts)))
            if pid is not None and len(level.results) in checkpoints:
                level.rss_checkpoints.append((len(level.results), rss_bytes(pid) or 0))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        sampler = asyncio.create_task(_sample_rss(pid, level.rss_samples)) if pid is not None else None
        await asyncio.gather(*(client_task(client) for _ in range(clients)))
        level.wall_seconds = time.perf_counter() - began
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            level.rss_samples.append(rss_bytes(pid) or 0)
    return level


async def _sample_rss(pid: int, samples: list[int]) -> None:
    while True:
        rss = rss_bytes(pid)
        if rss:
            samples.append(rss)
        await asyncio.sleep(SAMPLE_SECONDS)


# --- starting and stopping a server ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(port: int, backend: str | None, queue_size: int, server_concurrency: int | None,
                  threads: int | None) -> list[str]:
    command = [sys.executable, "-m", "qingyin.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-ui",
               "--queue-size", str(queue_size), "--cache-items", "0", "--cache-dir", "off"]
    if backend:
        command += ["--backend", backend]
    if server_concurrency:
        command += ["--concurrency", str(server_concurrency)]
    if threads:
        command += ["--threads", str(threads)]
    return command


@contextlib.contextmanager
def started_server(command: list[str], port: int, wait_seconds: float = 300.0) -> Iterator[tuple[str, int]]:
    """Runs `command` (its log in a temporary file, so a full pipe never blocks it), waits for /healthz, yields
    (url, pid); then SIGTERM, and SIGKILL after 30 s."""
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ | {
            "QINGYIN_WARMUP": "true"})
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(process, url, wait_seconds, log)
            yield url, process.pid
        finally:
            _stop(process)


def _wait_healthy(process: subprocess.Popen, url: str, wait_seconds: float, log) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            raise RuntimeError(f"qingyin serve did not become healthy:\n{log.read()[-3000:]}")
        time.sleep(0.25)


def _stop(process: subprocess.Popen, grace: float = 30.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


# --- reporting -----------------------------------------------------------------------------------------------
COLUMNS = [("clients", "clients"), ("requests", "reqs"), ("errors", "errors"), ("p50_ms", "p50 ms"),
           ("p95_ms", "p95 ms"), ("p99_ms", "p99 ms"), ("max_ms", "max ms"), ("requests_per_s", "req/s"),
           ("audio_s_per_s", "audio s/s"), ("rss_start_mib", "RSS start"), ("rss_peak_mib", "RSS peak"),
           ("rss_end_mib", "RSS end"), ("rss_growth_after_10pct_mib", "growth 10%->end")]


def format_table(summaries: list[dict[str, object]]) -> str:
    columns = [(key, title) for key, title in COLUMNS if any(key in s for s in summaries)]
    rows = [[title for _, title in columns]] + [[str(s.get(key, "")) for key, _ in columns] for s in summaries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    for s in summaries:
        if s["errors_by_kind"]:
            lines.append(f"clients={s['clients']} errors: {s['errors_by_kind']}")
    if any("rss_start_mib" in s for s in summaries):
        lines.append("RSS in MiB (server process); growth = end - after the first 10 % of the level's requests")
    return "\n".join(lines)


def p95_target_line(summaries: list[dict[str, object]]) -> str | None:
    for s in summaries:
        if s["clients"] == P95_TARGET_CLIENTS:
            ok = float(s["p95_ms"]) < P95_TARGET_MS  # type: ignore[arg-type]
            return (f"target p95 < {P95_TARGET_MS:.0f} ms at {P95_TARGET_CLIENTS} clients: "
                    f"{'PASS' if ok else 'FAIL'} (p95 {s['p95_ms']} ms)")
    return None


def memory_report(level: Level) -> tuple[list[str], dict[str, object]]:
    """Lines with the RSS after each 10 % of requests and the verdict, and the same as JSON."""
    trend = level.rss_checkpoints
    lines = ["RSS after each 10 % of requests:"]
    lines += [f"  {done:>6} requests: {_mib(rss):8.1f} MiB" for done, rss in trend]
    errors = sum(1 for r in level.results if r.error)
    if len(trend) < 2:
        return lines + ["memory verdict: not enough RSS readings"], {"verdict": None}
    half = min(trend, key=lambda point: abs(point[0] - len(level.results) / 2))
    passes, growth, allowed = memory_verdict(half[1], trend[-1][1])
    verdict = passes and errors == 0
    lines.append(f"memory verdict: {'PASS' if verdict else 'FAIL'} — growth {growth / MIB:+.1f} MiB from request "
                 f"{half[0]} to {trend[-1][0]} (allowed < {allowed / MIB:.1f} MiB; rule: {MEMORY_RULE}); "
                 f"errors {errors} (allowed 0)")
    return lines, {"verdict": "pass" if verdict else "fail", "rule": MEMORY_RULE, "growth_mib": _mib(growth),
                   "allowed_mib": _mib(allowed), "errors": errors}


# --- command line --------------------------------------------------------------------------------------------
def _levels(value: str) -> list[int]:
    levels = [int(part) for part in value.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("give positive client counts, e.g. 1,8,32")
    return levels


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_test", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server on this machine, e.g. http://127.0.0.1:8000")
    where.add_argument("--start", action="store_true", help="start `qingyin serve` (no UI, cache off) on a free port")
    parser.add_argument("--concurrency", type=_levels, default=[1, 8, 32], help="client counts (default: 1,8,32)")
    parser.add_argument("--requests", type=int, default=100, help="requests per level (default: 100)")
    parser.add_argument("--duration", type=float, help="seconds per level at most (default: 600; memory run: none)")
    parser.add_argument("--memory-run", type=int, metavar="N", help="one level of N requests with an RSS trend "
                        "and a verdict (clients: --concurrency if given as one number, else 8)")
    parser.add_argument("--backend", choices=("torch", "onnx"),
                        help="with --start: the server's --backend (default: the server's, onnx)")
    parser.add_argument("--server-concurrency", type=int, help="with --start: the server's --concurrency")
    parser.add_argument("--threads", type=int, help="with --start: the server's --threads")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default: 120)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    return parser


def _plan(args: argparse.Namespace) -> tuple[list[int], int, float | None]:
    if args.memory_run:
        clients = args.concurrency[0] if len(args.concurrency) == 1 else P95_TARGET_CLIENTS
        return [clients], args.memory_run, args.duration
    return args.concurrency, args.requests, args.duration if args.duration is not None else 600.0


async def _run_levels(url: str, pid: int | None, args: argparse.Namespace) -> list[Level]:
    levels, requests, duration = _plan(args)
    texts = iter_texts(read_sentences())
    done = []
    for clients in levels:
        print(f"... {clients} clients, {requests} requests", file=sys.stderr, flush=True)
        done.append(await run_level(url, clients, requests, duration, texts, pid, args.timeout))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.requests < 1 or (args.memory_run is not None and args.memory_run < 1):
        parser.error("--requests and --memory-run must be >= 1")
    try:
        url = check_local_url(args.url) if args.url else None
    except ValueError as error:
        parser.error(str(error))
    if url is not None:
        levels = asyncio.run(_run_levels(url, None, args))
    else:
        port = free_port()
        queue = max(_plan(args)[0]) + 8
        with started_server(serve_command(port, args.backend, queue, args.server_concurrency, args.threads),
                            port) as (url, pid):
            levels = asyncio.run(_run_levels(url, pid, args))
    return _report(levels, args, url)


def _report(levels: list[Level], args: argparse.Namespace, url: str) -> int:
    summaries = [level.summary() for level in levels]
    print(format_table(summaries))
    output: dict[str, object] = {"url": url, "started": args.start, "backend": args.backend if args.start else None,
                                 "cpus": os.cpu_count(), "levels": summaries,
                                 "latencies_ms": {str(lv.clients): [round(r.latency_ms, 1) for r in lv.results]
                                                  for lv in levels}}
    target = p95_target_line(summaries)
    if target:
        print(target)
    if args.memory_run:
        lines, verdict = memory_report(levels[0])
        print("\n".join(lines))
        output["memory"] = verdict
    if args.json:
        args.json.write_text(json.dumps(output, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
