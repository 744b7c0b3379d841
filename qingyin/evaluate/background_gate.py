"""Gate Baker's INT8 variants in the background while a server runs, and switch to each one that passes.

A first `make serve` must not wait minutes for the quality gate: the server starts on the best variant already
gated (fp32 when none is, see qingyin.families.fs2_mbmelgan.export.default_variant), and this runs, one after the
other,

    nice -n 19 python -m qingyin.cli export baker --variant int8-static --gate
    nice -n 19 python -m qingyin.cli export baker --variant student-int8 --gate --cer --texts 79
    nice -n 19 python -m qingyin.cli export baker --variant student-int8-pruned --gate --cer --texts 79

in a low-priority subprocess, its output going to the log. The second and third export the shipped student (the
third with the shipped pruned vocoder) first and are gated by how they sound (Whisper's CER on the texts static INT8
does not calibrate on, speaker similarity, DNSMOS; about 6 minutes each on 2 cores). After each gate, when the
default variant changed (the gate passed and the variant is the fastest that passed), the loaded model is reloaded
in the server's ModelPool, `on_switch` runs (the server forgets the engines made with the old voice) and one line of
the log says what was switched and why. A variant is skipped when its gate is already current (passed or failed),
its packages are missing or what it is exported from is not shipped
(qingyin.families.fs2_mbmelgan.export.available_variants); nothing runs when the model is not installed, the runtime
is not ONNX with the gated default, or QINGYIN_BACKGROUND_GATE is false.
Several server workers share one gate run (a lock file in the onnx folder).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

from qingyin.families.fs2_mbmelgan.export import (
    ONNX_FOLDER,
    STUDENT_VARIANTS,
    available_variants,
    current_gate,
    default_variant,
)
from qingyin.runtime.pool import ModelPool
from qingyin.voices import registry
from qingyin.voices.registry import ModelSpec

ENV = "QINGYIN_BACKGROUND_GATE"
MODEL = "baker"
# gated in this order, those that can be exported (a student variant: where its student is shipped)
VARIANTS = ("int8-static", "student-int8", "pruned70-int8", "pruned50-int8", "pruned30-int8", "student-int8-pruned")
LOCK_FILE = ".background-gate.lock"
NEEDS = ("torch", "onnx", "pyworld", "pysptk")  # the gate compares against fp32 torch; its MCD needs the eval extra
STUDENT_NEEDS = ("faster_whisper", "resemblyzer", "speechmos")  # a student's gate: CER, speaker, DNSMOS
STUDENT_GATE_TEXTS = 79  # the default texts that static INT8 does not calibrate on (as `make gate`)
LOGGER = logging.getLogger("qingyin.gate")
PR_SET_PDEATHSIG = 1

Runner = Callable[[list[str]], int]  # runs the gate command, returns its exit status


def enabled(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    return environ.get(ENV, "true").strip().lower() not in ("0", "false", "no", "off")


def gate_command(model: str = MODEL, variant: str = VARIANTS[0]) -> list[str]:
    nice = ["nice", "-n", "19"] if shutil.which("nice") else []
    student = ["--cer", "--texts", str(STUDENT_GATE_TEXTS)] if variant in STUDENT_VARIANTS else []
    return [*nice, sys.executable, "-m", "qingyin.cli", "export", model, "--variant", variant, "--gate", *student]


def run_logged(command: list[str]) -> int:
    """Run `command`, each line of its output going to the log; its exit status. The command ends with the
    server (on Linux, even a killed one): a gate cut short leaves no verdict, so the next start gates again."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          text=True, errors="replace", preexec_fn=_parent_death_signal()) as process:
        for line in process.stdout:
            LOGGER.info("gate: %s", line.rstrip())
        return process.wait()


def _parent_death_signal() -> Callable[[], None] | None:
    """A function for the child, before exec: SIGTERM when the thread that started it (the gate's) ends. Linux
    only; libc is loaded here, in the parent, since loading a library in the child of a threaded process may hang."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class BackgroundGate:
    """One background run of the gates of `model`'s `variants`, in order, switching `pool` to the new default
    after each gate that changes it."""

    def __init__(self, pool: ModelPool, on_switch: Callable[[], None] = lambda: None, *, model: str = MODEL,
                 variants: tuple[str, ...] = VARIANTS, run: Runner = run_logged):
        self.pool, self.on_switch, self.variants, self.run = pool, on_switch, variants, run
        self.model: ModelSpec = registry.get_model(model)
        self.directory = registry.model_dir(self.model.name)
        self.thread: threading.Thread | None = None
        self.switched: tuple[str, str] | None = None  # (from, to) after the last switch

    def pending(self) -> list[str]:
        """The variants whose gate should run: shipped, not current, and with the packages their gate needs."""
        exportable = self._exportable()
        return [variant for variant in self.variants if variant in exportable
                and current_gate(self.directory, variant) is None and not _missing(variant)]

    def _exportable(self) -> list[str]:
        try:
            return available_variants(self.directory)
        except (OSError, ValueError):  # not installed: reason_not_to_run says so
            return []

    def reason_not_to_run(self) -> str | None:
        """Why no gate is needed or possible now; None when one should run."""
        if not (self.directory / registry.MANIFEST).is_file():
            return f"{self.model.name} is not installed"
        if self.pool.backend != "onnx" or self.pool.variant is not None:
            return f"the runtime is {self.pool.backend or 'default'} {self.pool.variant or ''}, not gated ONNX"
        if self.pending():
            return None
        exportable = self._exportable()
        reasons = [f"no {variant} is shipped" if variant not in exportable else
                   f"the {variant} gate is current" if current_gate(self.directory, variant) is not None else
                   f"the {variant} gate needs {', '.join(_missing(variant))}: pip install "
                   "'qingyin[convert,onnx,eval]'" for variant in self.variants]
        return "; ".join(reasons)

    def start(self) -> bool:
        """Start the gates in a daemon thread when one is needed; whether it started."""
        reason = self.reason_not_to_run()
        if reason is not None:
            LOGGER.debug("no background gate: %s", reason)
            return False
        LOGGER.info("serving %s on %s; gating %s in the background (low priority), switching if it passes",
                    self.model.name, self._loaded_variant() or default_variant(self.directory),
                    " then ".join(self.pending()))
        self.thread = threading.Thread(target=self._gate_and_switch, name="qingyin-gate", daemon=True)
        self.thread.start()
        return True

    def _gate_and_switch(self) -> None:
        for variant in self.pending():
            try:
                with self._lock():
                    if current_gate(self.directory, variant) is None:  # another worker may have gated it
                        status = self.run(gate_command(self.model.name, variant))
                        if status not in (0, 1):  # 1: the gate ran and failed, a verdict too
                            LOGGER.warning("the background gate of %s %s exited with status %s", self.model.name,
                                           variant, status)
                self.switch_if_changed(variant)
            except Exception:  # a daemon thread: say what went wrong, the server keeps serving what it has
                LOGGER.exception("the background gate of %s %s failed", self.model.name, variant)

    def switch_if_changed(self, variant: str) -> bool:
        """After `variant`'s gate: reload the model when the default variant now differs from the loaded one; log
        why. Whether it did."""
        before = self._loaded_variant()
        after = default_variant(self.directory)
        gate = current_gate(self.directory, variant)
        if before is None or after == before:
            verdict = "no verdict" if gate is None else ("passed" if gate.get("passed") else "failed")
            LOGGER.info("background gate of %s %s: %s; %s stays on %s", self.model.name, variant, verdict,
                        self.model.name, after if before is None else before)
            return False
        self.pool.reload(self.model)
        self.on_switch()
        self.switched = (before, after)
        LOGGER.info("switched %s from %s to %s: %s", self.model.name, before, after,
                    _why(current_gate(self.directory, after)))
        return True

    def _loaded_variant(self) -> str | None:
        if self.model.name not in self.pool.loaded():
            return None
        return getattr(self.pool.model(self.model), "variant", None)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        folder = self.directory / ONNX_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _missing(variant: str) -> list[str]:
    """The packages `variant`'s gate needs that are not installed."""
    needs = NEEDS + (STUDENT_NEEDS if variant in STUDENT_VARIANTS else ())
    return [name for name in needs if importlib.util.find_spec(name) is None]


def _why(gate: dict | None) -> str:
    if not gate:
        return "its default variant changed"
    try:
        speed = f"rtf {float(gate['rtf']):.4f}, {float(gate['rtf']) / float(gate['fp32_rtf']):.2f}x fp32 ONNX's"
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        speed = "faster than fp32"
    return f"the quality gate passed ({speed})"


def start_background_gate(pool: ModelPool, on_switch: Callable[[], None] = lambda: None) -> BackgroundGate | None:
    """What a server calls once at start: the running gate, or None (disabled, or nothing to do)."""
    if not enabled():
        return None
    gate = BackgroundGate(pool, on_switch)
    return gate if gate.start() else None
