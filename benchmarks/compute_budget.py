"""How much arithmetic a second of speech takes, how fast this machine can do it, and so the best RTF possible.

    .venv/bin/python -m benchmarks.compute_budget [--threads 2] [--texts 20] [--variant fp32 --variant int8-static]

1. Work: floating-point operations per second of audio of the acoustic encoder (up to the length regulator),
   the decoder (transformer, mel projection, postnet) and the vocoder, counted by torch's FlopCounterMode
   (a multiply-add is 2) on the sentences of the first `--texts` default texts.
2. Machine: the fp32 matrix-multiply rate of this CPU (torch.mm of 2048 x 2048, best of 10) on 1 and on
   `--threads` threads: the practical peak of any float kernel here.
3. Achieved: each ONNX variant's three graphs, timed in this process on the same sentences (best of
   `--repeats`), as GFLOP/s of the float work they stand for, and as a share of that peak.
4. Floor: the RTF that running all the work at the peak would give, against the target (the reference's RTF
   from BENCHMARKS.md divided by 3, given with `--target-rtf`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.onnx_variants import phone_ids

GRAPHS = ("encoder", "decoder", "vocoder")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--voice", default="baker")
    parser.add_argument("--variant", action="append", dest="variants", help="ONNX variants to time (default: fp32)")
    parser.add_argument("--target-rtf", type=float, help="the RTF to compare the floor with (reference / 3)")
    args = parser.parse_args()
    from qingyin.families.fs2_mbmelgan.fetch import ensure_voice

    voice_dir = ensure_voice(args.voice, quiet=True)
    sequences = phone_ids(voice_dir, args.texts)
    work, audio_seconds, inputs = count_work(voice_dir, sequences)
    peaks = {threads: matmul_gflops(threads) for threads in sorted({1, args.threads})}
    peak = peaks[args.threads]
    total = sum(work.values())
    print(f"{len(sequences)} sentences, {audio_seconds:.1f} s of audio")
    print("fp32 matmul peak: " + ", ".join(f"{gflops:.0f} GFLOP/s on {t} thread(s)" for t, gflops in peaks.items()))
    print(f"\n{'graph':<10}{'GFLOP per audio s':>19}{'floor RTF at peak':>19}")
    for graph in GRAPHS:
        print(f"{graph:<10}{work[graph] / 1e9:>19.3f}{work[graph] / 1e9 / peak:>19.4f}")
    print(f"{'total':<10}{total / 1e9:>19.3f}{total / 1e9 / peak:>19.4f}")
    if args.target_rtf:
        print(f"target RTF {args.target_rtf:.4f}: needs {total / 1e9 / args.target_rtf:.0f} GFLOP/s of float work, "
              f"{total / 1e9 / args.target_rtf / peak:.2f}x this machine's fp32 peak on {args.threads} threads")
    for variant in args.variants or ["fp32"]:
        seconds = time_graphs(voice_dir, variant, inputs, args.threads, args.repeats)
        print(f"\nONNX {variant}, {args.threads} threads: RTF per graph, and the float work per second it does")
        for graph in (*GRAPHS, "total"):
            flops = total if graph == "total" else work[graph]
            took = sum(seconds.values()) if graph == "total" else seconds[graph]
            rate = flops * audio_seconds / took / 1e9
            print(f"  {graph:<10} RTF {took / audio_seconds:.4f}  {rate:6.1f} GFLOP/s = {rate / peak:4.0%} of peak")


def count_work(voice_dir: Path, sequences: list[list[int]]) -> tuple[dict[str, float], float, dict[str, list]]:
    """FLOPs per second of audio for each graph, the audio seconds, and each graph's inputs (for timing)."""
    from qingyin.families.fs2_mbmelgan.export.onnx_export import AcousticDecoderGraph, AcousticEncoderGraph
    from qingyin.families.fs2_mbmelgan.features import AcousticControls
    from qingyin.families.fs2_mbmelgan.torch_runtime import TorchBackend

    backend = TorchBackend(voice_dir, threads=1)
    encoder, decoder = AcousticEncoderGraph(backend.acoustic_model), AcousticDecoderGraph(backend.acoustic_model)
    flops = dict.fromkeys(GRAPHS, 0.0)
    inputs: dict[str, list] = {"ids": [], "states": [], "mels": []}
    samples = 0
    with torch.inference_mode():
        for ids in sequences:
            features = backend.acoustic(ids, AcousticControls())
            count = len(ids)
            ones = torch.ones(1, count)
            with FlopCounterMode(display=False) as counter:
                states, *_ = encoder(torch.tensor([ids]), torch.tensor([count]), torch.tensor([0]), ones, ones, ones)
            flops["encoder"] += counter.get_total_flops()
            expanded = torch.repeat_interleave(states[0], torch.from_numpy(features.durations), dim=0)[None]
            with FlopCounterMode(display=False) as counter:
                decoder(expanded, torch.tensor([expanded.shape[1]]))
            flops["decoder"] += counter.get_total_flops()
            mel = torch.from_numpy(features.mel)[None]
            with FlopCounterMode(display=False) as counter:
                audio = backend.vocoder(mel)
            flops["vocoder"] += counter.get_total_flops()
            samples += audio.shape[-1]
            inputs["ids"].append(ids)
            inputs["states"].append(expanded.numpy())
            inputs["mels"].append(features.mel)
    audio_seconds = samples / 24000
    return {graph: value / audio_seconds for graph, value in flops.items()}, audio_seconds, inputs


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 10) -> float:
    """Best fp32 GEMM rate of this CPU on `threads` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    torch.set_num_threads(before)
    return 2 * size**3 / best / 1e9


def time_graphs(voice_dir: Path, variant: str, inputs: dict[str, list], threads: int, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` seconds of each of the variant's three graphs over all the sentences."""
    from qingyin.families.fs2_mbmelgan.features import AcousticControls
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend, encoder_feed

    backend = OnnxBackend(voice_dir, variant, threads=threads)
    feeds = {
        "encoder": [encoder_feed([(ids, AcousticControls())]) for ids in inputs["ids"]],
        "decoder": [{"states": s, "mel_lengths": np.array([s.shape[1]], np.int64)} for s in inputs["states"]],
        "vocoder": [{"mel": mel[None]} for mel in inputs["mels"]],
    }
    sessions = {"encoder": backend.encoder, "decoder": backend.decoder, "vocoder": backend.vocoder}
    best = dict.fromkeys(GRAPHS, float("inf"))
    for _ in range(repeats):
        for graph in GRAPHS:
            session, graph_feeds = sessions[graph], feeds[graph]
            session.run(None, graph_feeds[0])  # warm-up
            start = time.perf_counter()
            for feed in graph_feeds:
                session.run(None, feed)
            best[graph] = min(best[graph], time.perf_counter() - start)
    return best


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
