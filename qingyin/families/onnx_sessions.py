"""ONNX Runtime sessions as every family runs them on the CPU (onnxruntime only: no torch)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnxruntime as ort

ARENA_ENV = "QINGYIN_ORT_ARENA"
ARENA_MODES = ("shrink", "on", "off")
DEFAULT_ARENA = "off"


def arena_mode() -> str:
    """How sessions use ONNX Runtime's CPU memory arena, from $QINGYIN_ORT_ARENA (default "off").

    "on": ONNX Runtime's default; the arena keeps what the longest input so far needed, for ever, so a server's
    memory climbs in steps as longer texts arrive. "off": plain malloc/free. "shrink": the arena during a run,
    handed back after each run. Off grew least and was not measurably slower (BENCHMARKS.md, "Soak").
    """
    mode = os.environ.get(ARENA_ENV, DEFAULT_ARENA).strip().lower() or DEFAULT_ARENA
    if mode not in ARENA_MODES:
        raise ValueError(f"{ARENA_ENV}={mode!r} is not one of {', '.join(ARENA_MODES)}; unset it for {DEFAULT_ARENA!r}")
    return mode


def session_options(threads: int) -> ort.SessionOptions:
    """One session runs its nodes in order on `threads` intra-op threads (synthesis is one utterance at a time)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # The files hold the portable ("extended") optimizations already; "all" adds the CPU-specific layouts.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no notes about shape-inference merges
    # No spin-waiting for work after a run: a family runs several sessions one after another, each with its own
    # pool, and a pool that spins while the next session runs takes its cores (2 cores, Baker, 21 sentences: RTF
    # 0.052 -> 0.028-0.037 for fp32, 0.047 -> 0.031 for int8-static; BENCHMARKS.md, "Static INT8").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = arena_mode() != "off"
    return options


class CpuSession:
    """An InferenceSession on the CPU whose runs follow the arena mode chosen when it was made."""

    def __init__(self, path: str | Path, options: ort.SessionOptions) -> None:
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.run_options: ort.RunOptions | None = None
        if options.enable_cpu_mem_arena and arena_mode() == "shrink":
            self.run_options = ort.RunOptions()
            self.run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, Any]) -> list[Any]:
        return self.session.run(output_names, dict(feeds), self.run_options)

    def __getattr__(self, name: str) -> Any:  # get_inputs(), get_outputs(), … of the wrapped session
        return getattr(self.session, name)


def cpu_session(path: str | Path, options: ort.SessionOptions) -> CpuSession:
    return CpuSession(path, options)
