"""Throughput of `qingyin batch` on the local and the Ray engine, and Ray Serve vs the plain server under load.

    # 200 sentences, local process pool vs Ray (a local Ray on 127.0.0.1), same workers: Ray's overhead as a ratio
    .venv/bin/python -m benchmarks.batch_throughput batch --sentences 200 --json batch.json
    # Ray Serve vs `qingyin serve` at 1/8/32 clients (p50/p95 latency, errors), with benchmarks.load_test
    .venv/bin/python -m benchmarks.batch_throughput serve --concurrency 1,8,32 --requests 64 --json serve.json

The sentences are the built-in evaluation set (qingyin.text.corpus), repeated with a "第N句，" prefix up to
--sentences so that no two are equal. Each engine runs the whole job once into a fresh folder, wav output; the
time counted is the whole run_batch (worker start and voice loading included: what a user waits for), and
separately the steady rate after the first results. Per-core throughput = audio seconds per wall second / cores,
the figure the cost estimate in BENCHMARKS.md scales from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from qingyin.batch import Item, run_batch


def sentences(count: int) -> list[str]:
    from qingyin.text.corpus import read_texts

    base = read_texts(None)
    return [(f"第{n // len(base) + 1}句，" if n >= len(base) else "") + base[n % len(base)] for n in range(count)]


def batch_bench(count: int, workers: int | None, engines: list[str]) -> dict[str, object]:
    texts = sentences(count)
    items = [Item(f"{n:05d}", [text], "baker", {}, n) for n, text in enumerate(texts, 1)]
    report: dict[str, object] = {"sentences": count, "cores": os.cpu_count(), "engines": {}}
    for engine in engines:
        arrivals: list[float] = []
        with tempfile.TemporaryDirectory() as folder:
            began = time.perf_counter()
            result = run_batch(items, Path(folder) / "out", engine=engine, workers=workers, progress=False,
                               on_result=lambda r, seen=arrivals: seen.append(time.perf_counter()))
            wall = time.perf_counter() - began
        tenth = arrivals[len(arrivals) // 10]
        steady = (len(arrivals) - len(arrivals) // 10) / (arrivals[-1] - tenth) if arrivals[-1] > tenth else 0.0
        report["engines"][engine] = {  # type: ignore[index]
            "done": result.done, "failed": result.failed, "workers": result.workers, "threads": result.threads,
            "wall_s": round(wall, 2), "audio_s": round(result.audio_seconds, 1),
            "audio_s_per_s": round(result.audio_seconds / wall, 2),
            "audio_s_per_s_per_core": round(result.audio_seconds / wall / (result.workers * result.threads), 2),
            "items_per_s_steady": round(steady, 2)}
        print(f"{engine}: {report['engines'][engine]}", file=sys.stderr)  # type: ignore[index]
    engines_done = report["engines"]
    if "local" in engines_done and "ray" in engines_done:  # type: ignore[operator]
        report["ray_over_local_wall"] = round(engines_done["ray"]["wall_s"] / engines_done["local"]["wall_s"], 3)  # type: ignore[index]
    return report


def serve_bench(levels: list[int], requests: int, queue_size: int,
                engines: tuple[str, ...] = ("local", "ray")) -> dict[str, object]:
    from benchmarks import load_test

    results: dict[str, object] = {}
    for engine in engines:
        port = load_test.free_port()
        command = load_test.serve_command(port, None, queue_size, None, None) + ["--engine", engine]
        with load_test.started_server(command, port) as (url, _pid):
            texts = load_test.iter_texts(load_test.read_sentences())
            rows = []
            for clients in levels:
                level = asyncio.run(load_test.run_level(url, clients, requests, None, texts, None))
                latencies = sorted(r.latency_ms for r in level.results if r.error is None)
                errors = sum(1 for r in level.results if r.error is not None)
                rows.append({"clients": clients, "requests": len(level.results), "errors": errors,
                             "p50_ms": round(load_test.percentile(latencies, 50), 1) if latencies else None,
                             "p95_ms": round(load_test.percentile(latencies, 95), 1) if latencies else None,
                             "req_per_s": round(len(level.results) / level.wall_seconds, 2)})
                print(f"{engine}: {rows[-1]}", file=sys.stderr)
            results[engine] = rows
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parts = parser.add_subparsers(dest="part", required=True)
    batch = parts.add_parser("batch", help="local vs ray throughput of qingyin batch")
    batch.add_argument("--sentences", type=int, default=200)
    batch.add_argument("--workers", type=int, help="default: one per core")
    batch.add_argument("--engines", default="local,ray")
    batch.add_argument("--json", type=Path)
    serve = parts.add_parser("serve", help="Ray Serve vs the plain server at several client counts")
    serve.add_argument("--concurrency", default="1,8,32")
    serve.add_argument("--requests", type=int, default=64, help="requests per level")
    serve.add_argument("--queue-size", type=int, default=64)
    serve.add_argument("--engines", default="local,ray")
    serve.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.part == "batch":
        report = batch_bench(args.sentences, args.workers, [e for e in args.engines.split(",") if e])
    else:
        report = serve_bench([int(c) for c in args.concurrency.split(",")], args.requests, args.queue_size,
                             tuple(e for e in args.engines.split(",") if e))
    text = json.dumps(report, indent=1, ensure_ascii=False)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
