"""ONNX Runtime sessions as every family runs them on the CPU (onnxruntime only: no torch)."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


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
    return options


def cpu_session(path: str | Path, options: ort.SessionOptions) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
