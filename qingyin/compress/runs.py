"""What every training run of `qingyin compress` shares: the teacher data it learns from, its folder (recipe.json,
checkpoint.pt, log.jsonl of validations) and its loop of steps, validations and checkpoints with a progress bar.

    data = open_teacher_data(path, family="fs2_mbmelgan", needs="vocoder recovery")
    checkpoint = open_run(out, resume)                        # None for a fresh run
    write_json(out / RECIPE, recipe); append_log(out, {"step": 0, ...})
    loop = train_loop(trainer.step, validate, save, out, step, steps, metric="val_mel_l1", ...)
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from qingyin.compress.checkpoint import load_checkpoint
from qingyin.compress.teacher_data import INFO, TeacherData
from qingyin.runtime.files import write_json

RECIPE = "recipe.json"
CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"


class RunError(ValueError):
    """Teacher data a run cannot learn from, or a run folder that does not fit the request."""


def open_teacher_data(path: str | Path, family: str, needs: str, error: type[ValueError] = RunError) -> TeacherData:
    """The teacher data in `path`, checked to come from a voice of `family` and to hold utterances; `needs` names
    what wants it, for the error (raised as `error`)."""
    path = Path(path)
    if not (path / INFO).is_file():
        raise error(f"no teacher data in {path}: render it first with `qingyin compress teacher-data` "
                    f"(e.g. --limit 300 --workers 2; --out {path} for this folder)")
    data = TeacherData(path)
    teacher = data.info["teacher"]
    if teacher.get("family") != family:
        raise error(f"{data.path} holds teacher data of {teacher['voice']} ({teacher.get('family')}); "
                    f"{needs} needs a voice of the {family} family, e.g. baker")
    if len(data) == 0:
        raise error(f"{data.path} holds no utterances yet: run `qingyin compress teacher-data` again")
    return data


def prepare_training(steps: int, validate_every: int, checkpoint_every: int, threads: int | None,
                     error: type[ValueError] = RunError) -> None:
    """Check the loop's counts (raised as `error`), set torch's threads and flush denormals to zero."""
    torch.set_flush_denormal(True)  # denormals in the backward pass otherwise slow steps down 40-170 times
    if threads is not None:
        torch.set_num_threads(threads)
    for name, value in (("steps", steps), ("validate_every", validate_every), ("checkpoint_every", checkpoint_every)):
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "steps" else 1):
            raise error(f"{name} must be a whole number >= {0 if name == 'steps' else 1}, got {value!r}")


def open_run(out: Path, resume: bool, error: type[ValueError] = RunError) -> dict | None:
    """The checkpoint in `out` to resume from, or None for a fresh run; a run already there needs `resume`, and
    `resume` needs one."""
    checkpoint = load_checkpoint(out / CHECKPOINT)
    if checkpoint is not None and not resume:
        raise error(f"{out} holds a run at step {checkpoint['step']}: resume it (--resume), or give another --out")
    if checkpoint is None and resume:
        raise error(f"nothing to resume in {out} (no {CHECKPOINT}): start the run without --resume")
    return checkpoint


def resumed_recipe(out: Path, settings: dict | None, data: TeacherData, error: type[ValueError] = RunError) -> dict:
    """The recipe.json of the run in `out`, checked against the settings given to resume it (None: any) and the
    teacher data given."""
    recipe = json.loads((out / RECIPE).read_text())
    if settings is not None and settings != recipe["settings"]:
        changed = sorted(k for k in settings.keys() | recipe["settings"].keys()
                         if settings.get(k) != recipe["settings"].get(k))
        raise error(f"{out} was started with other settings ({', '.join(changed)}); resume with the same, or give "
                    "another --out")
    if data.info["teacher"] != recipe["teacher"]:
        raise error(f"{out} was trained on teacher data of {recipe['teacher']}, {data.path} holds "
                    f"{data.info['teacher']}")
    return recipe


def start_run(out: Path, recipe: dict, metric: str, value: float) -> None:
    """A fresh run's folder: its recipe.json, and a log whose first line is `metric` before any step."""
    out.mkdir(parents=True, exist_ok=True)
    (out / LOG).unlink(missing_ok=True)
    write_json(out / RECIPE, recipe)
    append_log(out, {"step": 0, metric: value})


@dataclass
class LoopResult:
    step: int  # where the loop stopped
    last: float | None  # the last validation's value (None if none ran)
    seconds_per_step: float | None  # mean of this call's steps


def train_loop(step_once: Callable[[], dict[str, float]], validate: Callable[[], float | dict[str, float]],
               save: Callable[[int], None], out: Path, step: int, steps: int, *, validate_every: int,
               checkpoint_every: int, metric: str, description: str, progress: bool) -> LoopResult:
    """Run `step_once` from `step` to `steps`; every `validate_every` steps (and at the end) log the mean losses
    since the last validation and `validate()` as `metric` (or, when it returns a dict, all of it: `metric` one of
    its keys); every `checkpoint_every` steps, at the end and on Ctrl-C or SIGTERM call `save(step)`."""
    bar = progress_bar(step, steps, progress, description)
    sums: dict[str, float] = {}
    counted, begun, spent, last = 0, step, 0.0, None
    restore = terminate_as_interrupt()
    try:
        while step < steps:
            clock = time.perf_counter()
            losses = step_once()
            spent += time.perf_counter() - clock
            step += 1
            counted += 1
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + value
            if bar is not None:
                bar.set_postfix_str(f"loss {losses['loss']:.3f}", refresh=False)
                bar.update(1)
            if step % validate_every == 0 or step == steps:
                measured = validate()
                measured = measured if isinstance(measured, dict) else {metric: measured}
                last = measured[metric]
                line = {"step": step, **{k: round(v / counted, 5) for k, v in sums.items()},
                        "seconds_per_step": round(spent / (step - begun), 4),
                        **{k: round(v, 5) for k, v in measured.items()}}
                append_log(out, line)
                if bar is not None:
                    bar.write(f"step {step}: loss {line['loss']:.4f}, {metric} {last:.4f}", file=sys.stderr)
                sums, counted = {}, 0
            if step % checkpoint_every == 0 or step == steps:
                save(step)
    except KeyboardInterrupt:
        save(step)
        raise
    finally:
        restore()
        if bar is not None:
            bar.close()
    return LoopResult(step, last, spent / (step - begun) if step > begun else None)


def terminate_as_interrupt() -> Callable[[], None]:
    """Make SIGTERM (`kill`, the end of a session) raise KeyboardInterrupt as Ctrl-C does, so that the loop saves
    its checkpoint; a job started in the background from a script ignores Ctrl-C's SIGINT. Returns what puts the
    previous handler back. Only the main thread can set handlers: elsewhere it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def append_log(out: Path, line: dict) -> None:
    with open(out / LOG, "a", encoding="utf-8") as file:
        file.write(json.dumps(line) + "\n")


def truncate_log(out: Path, step: int) -> None:
    """Drop the log's lines after `step` (a resumed run validates them again)."""
    lines = (out / LOG).read_text(encoding="utf-8").splitlines() if (out / LOG).is_file() else []
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
    (out / LOG).write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LOG).read_text().splitlines() if line.strip()]


def progress_bar(done: int, total: int, enabled: bool, description: str):  # noqa: ANN201 - tqdm or None
    if not enabled or total <= done:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="step", desc=description, file=sys.stderr, dynamic_ncols=True)


def learning_rate_at(base: float, half_life: int, step: int) -> float:
    """`base` halved every `half_life` steps, smoothly (`half_life` 0: `base` at every step)."""
    return base * 0.5 ** (step / half_life) if half_life else base
