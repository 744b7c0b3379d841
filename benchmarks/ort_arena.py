"""Resident memory and speed of synthesis over random-length texts, with ONNX Runtime's CPU memory arena on or off.

    .venv/bin/python -m benchmarks.ort_arena shrink 150   # then on, off … (one process per mode, alternated)

Baker and yunxi, one thread each, 150 texts of 1-6 sentences from the default text set (seeded); RSS of this process
after every 25 syntheses, and the real-time factor over all of them, with $QINGYIN_ORT_ARENA set to the mode given
(qingyin.families.onnx_sessions.ARENA_MODES). The question it answers: is the server's RSS growth in the soak
(BENCHMARKS.md, "Soak") the arenas growing on new input lengths, and what does each remedy cost in speed?
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import qingyin.families.onnx_sessions as sessions

TEXTS = Path(__file__).resolve().parent.parent / "qingyin" / "text" / "data" / "zh_default.txt"


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def main(argv: list[str]) -> int:
    mode, count = argv[0], int(argv[1]) if len(argv) > 1 else 150
    if mode not in sessions.ARENA_MODES:
        raise SystemExit(f"mode must be one of {', '.join(sessions.ARENA_MODES)}")
    os.environ[sessions.ARENA_ENV] = mode
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
    print(f"arena {mode}: RSS MiB every 25 syntheses {marks}; RTF {busy / audio:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
