"""Gate Baker's static INT8 variant in the background while a server runs, and switch to it when it passes.

A first `make serve` must not wait minutes for the quality gate: the server starts on the best variant already
gated (fp32 when none is, see qingyin.families.fs2_mbmelgan.export.default_variant), and this runs

    nice -n 19 python -m qingyin.cli export baker --variant int8-static --gate

in a low-priority subprocess, its output going to the log. When it finishes and the default variant changed
(the gate passed and the variant is faster than fp32), the loaded model is reloaded in the server's ModelPool,
`on_switch` runs (the server forgets the engines made with the old voice) and one line of the log says what was
switched and why. Nothing happens when the gate is already current (passed or failed), the model is not
installed, the runtime is not ONNX with the gated default, the gate's packages are missing, or
QINGYIN_BACKGROUND_GATE is false. Several server workers share one gate run (a lock file in the onnx folder).
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

from qingyin.families.fs2_mbmelgan.export import ONNX_FOLDER, current_gate, default_variant
from qingyin.runtime.pool import ModelPool
from qingyin.voices import registry
from qingyin.voices.registry import ModelSpec

ENV = "QINGYIN_BACKGROUND_GATE"
MODEL = "baker"
VARIANT = "int8-static"
LOCK_FILE = ".background-gate.lock"
NEEDS = ("torch", "onnx", "pyworld", "pysptk")  # the gate compares against fp32 torch; its MCD needs the eval extra
LOGGER = logging.getLogger("qingyin.gate")
PR_SET_PDEATHSIG = 1

Runner = Callable[[list[str]], int]  # runs the gate command, returns its exit status


def enabled(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    return environ.get(ENV, "true").strip().lower() not in ("0", "false", "no", "off")


def gate_command(model: str = MODEL, variant: str = VARIANT) -> list[str]:
    nice = ["nice", "-n", "19"] if shutil.which("nice") else []
    return [*nice, sys.executable, "-m", "qingyin.cli", "export", model, "--variant", variant, "--gate"]


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
    """One background gate run for `model`'s `variant`, switching `pool` to the new default when it changes."""

    def __init__(self, pool: ModelPool, on_switch: Callable[[], None] = lambda: None, *, model: str = MODEL,
                 variant: str = VARIANT, run: Runner = run_logged):
        self.pool, self.on_switch, self.variant, self.run = pool, on_switch, variant, run
        self.model: ModelSpec = registry.get_model(model)
        self.directory = registry.model_dir(self.model.name)
        self.thread: threading.Thread | None = None
        self.switched: tuple[str, str] | None = None  # (from, to) once switched

    def reason_not_to_run(self) -> str | None:
        """Why no gate is needed or possible now; None when it should run."""
        if not (self.directory / registry.MANIFEST).is_file():
            return f"{self.model.name} is not installed"
        if self.pool.backend != "onnx" or self.pool.variant is not None:
            return f"the runtime is {self.pool.backend or 'default'} {self.pool.variant or ''}, not gated ONNX"
        if current_gate(self.directory, self.variant) is not None:
            return f"the {self.variant} gate is current"
        missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
        if missing:
            return f"the gate needs {', '.join(missing)}: pip install 'qingyin[convert,onnx,eval]'"
        return None

    def start(self) -> bool:
        """Start the gate in a daemon thread when it is needed; whether it started."""
        reason = self.reason_not_to_run()
        if reason is not None:
            LOGGER.debug("no background gate: %s", reason)
            return False
        LOGGER.info("serving %s on %s; gating %s in the background (low priority), switching if it passes",
                    self.model.name, self._loaded_variant() or default_variant(self.directory), self.variant)
        self.thread = threading.Thread(target=self._gate_and_switch, name="qingyin-gate", daemon=True)
        self.thread.start()
        return True

    def _gate_and_switch(self) -> None:
        try:
            with self._lock():
                if current_gate(self.directory, self.variant) is None:  # another worker may have gated it
                    status = self.run(gate_command(self.model.name, self.variant))
                    if status not in (0, 1):  # 1: the gate ran and failed, a verdict too
                        LOGGER.warning("the background gate of %s %s exited with status %s", self.model.name,
                                       self.variant, status)
            self.switch_if_changed()
        except Exception:  # a daemon thread: say what went wrong, the server keeps serving what it has
            LOGGER.exception("the background gate of %s %s failed", self.model.name, self.variant)

    def switch_if_changed(self) -> bool:
        """Reload the model when the default variant now differs from the loaded one; log why. Whether it did."""
        before = self._loaded_variant()
        after = default_variant(self.directory)
        gate = current_gate(self.directory, self.variant)
        if before is None or after == before:
            verdict = "no verdict" if gate is None else ("passed" if gate.get("passed") else "failed")
            LOGGER.info("background gate of %s %s: %s; %s stays on %s", self.model.name, self.variant, verdict,
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
