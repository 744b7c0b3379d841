"""A batch job: items in, audio files and manifest.jsonl out, resumable, on the local or the Ray engine.

The job (this process) validates every item before any work starts (voice names and options need no model, so
an unknown voice on line 17 is recorded as that item's error at once), skips the items the manifest shows done
with the same input, sends the parts of the rest to the engine, and as each item's last part arrives joins the
parts, encodes the file (qingyin.runtime.audio: the server's encoder), writes it atomically (name.part, then
renamed) and appends its record to the manifest. Files are written only here, so the output folder only has to
exist where the job runs, whichever engine rendered the audio.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qingyin.batch.engines import make_engine, plan_workers
from qingyin.batch.items import MAX_PART_CHARS, Item
from qingyin.batch.manifest import DONE, ERROR, Manifest
from qingyin.batch.work import UnitResult, WorkerSettings, WorkUnit
from qingyin.runtime.audio import FORMATS, AudioFormatError, check_format, encode
from qingyin.runtime.files import writable_folder
from qingyin.runtime.limits import WorkLimits

MANIFEST = "manifest.jsonl"
# What one line, record or book part may ask for: the server's limits for the longest part (MAX_PART_CHARS), so
# 3,000 s of audio; `qingyin batch --max-audio-seconds` etc. change them.
LIMITS = WorkLimits.for_chars(MAX_PART_CHARS)


class OutputError(ValueError):
    """The output folder cannot be made or written; the message names it."""


@dataclass
class BatchReport:
    total: int = 0  # items in the input
    skipped: int = 0  # done by an earlier run with the same input
    done: int = 0  # made by this run
    failed: int = 0  # recorded as errors by this run
    audio_seconds: float = 0.0  # made by this run
    wall_seconds: float = 0.0
    engine: str = ""
    workers: int = 0
    threads: int = 0
    errors: list[str] = field(default_factory=list)  # "id: message", this run's

    @property
    def speed(self) -> float:
        """Audio seconds made per wall-clock second."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0


def check_output(directory: Path) -> None:
    """Make `directory` if needed and check that files can be written in it."""
    try:
        writable_folder(directory)
    except OSError as error:
        raise OutputError(f"cannot write to the output folder {directory} ({error.strerror or error}); "
                          "choose another with -o/--output or fix its permissions") from None


def item_key(item: Item, format: str, sample_rate: int | None) -> str:
    """A hash of everything that decides an item's audio: a rerun redoes an item whose key changed."""
    data = json.dumps([item.parts, item.voice, item.options, format, sample_rate], ensure_ascii=False,
                      sort_keys=True, default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def check_item(item: Item, limits: WorkLimits | None = None) -> str | None:
    """Why `item` cannot be synthesized, found without a model (bad voice, bad options, bad markup, a part over
    `limits`); None when it can."""
    from qingyin.runtime.pool import parse_selector
    from qingyin.runtime.synthesizer import SynthesisOptions

    if item.error:
        return item.error
    try:
        parse_selector(item.voice)
        options = {k: v for k, v in item.options.items() if k != "reference"}
        speed = SynthesisOptions(**options).validated().speed  # type: ignore[arg-type]
        for part in item.parts if limits is not None else ():
            limits.check(part, speed)
    except (ValueError, TypeError) as error:
        return f"line {item.line}: {error}"
    reference = item.options.get("reference")
    if reference is not None and not Path(str(reference)).is_file():
        return f"line {item.line}: reference recording {reference} does not exist"
    return None


def _ensure_voices(items: list[Item]) -> None:
    """Install the models the items need once, here, before the workers start (they do not fetch)."""
    from qingyin import families
    from qingyin.runtime.pool import parse_selector
    from qingyin.voices import registry

    models = {parse_selector(item.voice)[0].model.name for item in items}
    for name in sorted(models):
        families.ensure_model(registry.get_model(name), quiet=True)


def run_batch(items: list[Item], output: str | Path, *, format: str = "wav", sample_rate: int | None = None,
              engine: str = "local", workers: int | None = None, threads: int | None = None,
              backend: str | None = None, variant: str | None = None, retry_failed: bool = True,
              limits: WorkLimits | None = LIMITS, progress: bool | None = None,
              on_result: Callable[[UnitResult], None] | None = None) -> BatchReport:
    """Render `items` into `output`/<id>.<format> with `output`/manifest.jsonl; returns what this run did.

    `limits` bound each line, record or book part (qingyin.runtime.limits): one over them is that item's error.

    `progress`: a tqdm bar on stderr (None: only on a terminal). `on_result` sees every unit result as it
    arrives (benchmarks; tests kill workers from it). KeyboardInterrupt stops the job with the manifest
    consistent: every finished item recorded, no partial file under an item's name.
    """
    from tqdm import tqdm

    if sample_rate is not None:
        check_format(format, sample_rate)
    elif format not in FORMATS:  # at the voice's own rate; a rate the format cannot take fails per item
        raise AudioFormatError(f"unknown audio format {format!r}; choose one of: {', '.join(FORMATS)}")
    output = Path(output)
    check_output(output)
    manifest = Manifest(output / MANIFEST)
    order = [item.id for item in items]
    manifest.compact(order)
    report = BatchReport(total=len(items), engine=engine)
    keys = {item.id: item_key(item, format, sample_rate) for item in items}

    todo: list[Item] = []
    for item in items:
        if manifest.done(item.id, keys[item.id]):
            report.skipped += 1
            continue
        problem = check_item(item, limits)
        if problem is not None:
            _record_error(manifest, report, item, keys[item.id], format, sample_rate, problem)
        elif not retry_failed and manifest.records.get(item.id, {}).get("status") == ERROR:
            report.skipped += 1
        else:
            todo.append(item)

    start = time.perf_counter()
    if todo:
        _ensure_voices(todo)
        report.workers, report.threads = plan_workers(workers, threads)
        settings = WorkerSettings(threads=report.threads, backend=backend, variant=variant, fetch=engine == "ray",
                                  limits=limits)
        runner = make_engine(engine, settings, report.workers)
        by_id = {item.id: item for item in todo}
        parts: dict[str, dict[int, UnitResult]] = {item.id: {} for item in todo}
        units = (WorkUnit(item.id, i, len(item.parts), text, item.voice, tuple(sorted(item.options.items())))
                 for item in todo for i, text in enumerate(item.parts))
        total_units = sum(len(item.parts) for item in todo)
        bar = tqdm(total=total_units, unit="part", file=sys.stderr, disable=None if progress is None else not progress,
                   desc=f"{engine} x{report.workers}")
        try:
            for result in runner.run(units):
                if on_result is not None:
                    on_result(result)
                bar.update(1)
                got = parts.get(result.item)
                if got is None or result.index in got:
                    continue  # an item already finished (or a duplicate result): recorded once only
                got[result.index] = result
                item = by_id[result.item]
                if len(got) == len(item.parts) or result.error:
                    del parts[result.item]
                    _finish(manifest, report, item, keys[item.id], got, output, format, sample_rate)
                    report.wall_seconds = time.perf_counter() - start
                    bar.set_postfix_str(f"{report.speed:.1f} audio-s/s, {report.failed} failed", refresh=False)
        finally:
            bar.close()
            report.wall_seconds = time.perf_counter() - start
            manifest.compact(order)
    else:
        manifest.compact(order)
    return report


def _finish(manifest: Manifest, report: BatchReport, item: Item, key: str, got: dict[int, UnitResult],
            output: Path, format: str, sample_rate: int | None) -> None:
    errors = [r.error for _, r in sorted(got.items()) if r.error]
    if errors:
        _record_error(manifest, report, item, key, format, sample_rate, errors[0])
        return
    results = [got[i] for i in range(len(item.parts))]
    rate = results[0].sample_rate
    audio = np.concatenate([r.audio for r in results])
    try:
        data = encode(audio, rate, format, sample_rate)
    except ValueError as error:
        _record_error(manifest, report, item, key, format, sample_rate, str(error))
        return
    path = output / f"{item.id}.{format}"
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    seconds = round(len(audio) / rate, 3)
    manifest.add({"id": item.id, "path": path.name, "seconds": seconds, "sha256": hashlib.sha256(data).hexdigest(),
                  "voice": item.voice, "options": item.options, "format": format,
                  "sample_rate": sample_rate or rate, "key": key, "status": DONE,
                  "warnings": [w for r in results for w in r.warnings]})
    report.done += 1
    report.audio_seconds += seconds


def _record_error(manifest: Manifest, report: BatchReport, item: Item, key: str, format: str,
                  sample_rate: int | None, message: str) -> None:
    manifest.add({"id": item.id, "path": None, "seconds": None, "sha256": None, "voice": item.voice,
                  "options": item.options, "format": format, "sample_rate": sample_rate, "key": key,
                  "status": ERROR, "error": message})
    report.failed += 1
    report.errors.append(f"{item.id}: {message}")
