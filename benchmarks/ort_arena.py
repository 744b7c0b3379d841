"""Resident memory and speed of synthesis over random-length texts, with ONNX Runtime's CPU memory arena on or off.

    .venv/bin/python -m benchmarks.ort_arena on 150     # then: off 150 (one process per setting)

Baker and yunxi, one thread each, 150 texts of 1-6 sentences from the default text set (seeded); RSS of this process
after every 25 syntheses, and the real-time factor over all of them. The question it answers: is the server's RSS
growth in the soak (BENCHMARKS.md, "Soak") the arenas growing on new input lengths?
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import onnxruntime as ort

import qingyin.families.onnx_sessions as sessions

TEXTS = Path(__file__).resolve().parent.parent / "qingyin" / "text" / "data" / "zh_default.txt"


def with_arena(arena: bool) -> None:
    """Make every family's sessions use (or not) the CPU arena, before any model is loaded."""
    import qingyin.families.fs2_mbmelgan.onnx_runtime as baker_runtime
    import qingyin.families.kokoro.runtime as kokoro_runtime

    original = sessions.session_options

    def options(threads: int) -> ort.SessionOptions:
        chosen = original(threads)
        chosen.enable_cpu_mem_arena = arena
        return chosen

    for module in (sessions, baker_runtime, kokoro_runtime):
        module.session_options = options


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def main(argv: list[str]) -> int:
    arena, count = argv[0] == "on", int(argv[1]) if len(argv) > 1 else 150
    with_arena(arena)
    from qingyin.runtime.synthesizer import Synthesizer

    sentences = [line.strip() for line in TEXTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(3)
    voices = {name: Synthesizer(name, threads=1) for name in ("baker", "yunxi")}
    audio = busy = 0.0
    marks = []
    for i in range(count):
        voice = rng.choice(list(voices))
        text = "".join(rng.choice(sentences) for _ in range(rng.choice([1, 1, 2, 4, 6])))
        began = time.perf_counter()
        result = voices[voice].synthesize(text)
        busy += time.perf_counter() - began
        audio += result.duration_seconds
        if i % 25 == 24:
            marks.append(round(rss_mib()))
    print(f"arena {'on' if arena else 'off'}: RSS MiB every 25 syntheses {marks}; RTF {busy / audio:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
