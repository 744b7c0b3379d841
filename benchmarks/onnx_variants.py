"""Speed, memory and fidelity of the inference backends: torch vs ONNX Runtime fp32, int8-dynamic and int8-static.

    .venv/bin/python -m benchmarks.onnx_variants [--threads 2] [--texts 20] [--repeats 3]

On the sentences of the first `--texts` lines of qingyin/evaluate/texts/zh_default.txt, each backend runs in
its own process (so its peak RSS, VmHWM, is its own and the ONNX ones never load torch) and reports the
real-time factor (compute seconds per audio second; best of `--repeats` passes) in total, for the acoustic
model and for the vocoder. Fidelity is against torch: the share of identical durations (and within one
frame), then with torch's durations forced so the frames line up, the mel mean |diff| (L1) and the SNR of
the audio each backend makes from its own mel.

With `--graphs`, every ONNX variant's three graphs instead run in this one process on the same inputs (the
encoder's inputs, fp32's length-regulated states and fp32's mels), taking turns graph by graph, and the
table gives each graph's RTF and its ratio to fp32 in the same run: the comparison to trust on a busy machine.
`--allow-spinning` turns ONNX Runtime's spin-waiting back on (the backend turns it off) to measure that choice.

fp16 is not offered (see fs2_mbmelgan.export.onnx_export): ONNX Runtime's CPU provider runs fp16 graphs through
Cast nodes to fp32 kernels, which only adds work.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BACKENDS = ("torch", "onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=20, help="lines of the default texts to synthesize")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--voice", default="baker")
    parser.add_argument("--graphs", action="store_true", help="time each ONNX graph per variant, in one process")
    parser.add_argument("--allow-spinning", action="store_true", help="ONNX Runtime threads spin-wait after a run")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.allow_spinning:
        allow_spinning()
    if args.worker:
        run_worker(args)
    elif args.graphs:
        run_graphs(args)
    else:
        run_all(args)


def allow_spinning() -> None:
    """Make the ONNX backend's sessions spin-wait for work after each run, as ONNX Runtime does by default."""
    import onnxruntime as ort

    from qingyin.families.fs2_mbmelgan import onnx_runtime as onnx_backend

    ort.set_default_logger_severity(3)  # no warning that the entry overrides the backend's
    plain = onnx_backend.session_options

    def spinning(threads: int):
        options = plain(threads)
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        return options

    onnx_backend.session_options = spinning


def run_all(args: argparse.Namespace) -> None:
    """Export what is missing, run every backend in a subprocess (torch first), print the table."""
    from qingyin.families.fs2_mbmelgan.export.onnx_export import VARIANTS, export_voice

    for variant in VARIANTS:
        export_voice(args.voice, variant)
    with tempfile.TemporaryDirectory(prefix="qingyin-onnx-bench-") as scratch:
        results = {}
        for backend in BACKENDS:
            command = [sys.executable, "-m", "benchmarks.onnx_variants", "--worker", backend,
                       "--results", scratch, "--threads", str(args.threads), "--texts", str(args.texts),
                       "--repeats", str(args.repeats), "--voice", args.voice,
                       *(["--allow-spinning"] if args.allow_spinning else [])]
            subprocess.run(command, check=True)
            results[backend] = json.loads((Path(scratch) / f"{backend}.json").read_text())
        print_table(results, args)


def run_graphs(args: argparse.Namespace) -> None:
    """Every variant's encoder, decoder and vocoder on the same inputs, in turns; best of `--repeats` each."""
    from qingyin.families.fs2_mbmelgan.export import VARIANTS, VOCODER_FILE, variant_dir
    from qingyin.families.fs2_mbmelgan.export.onnx_export import export_voice
    from qingyin.families.fs2_mbmelgan.export.static_quant import graph_feeds
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend

    voice_dir = export_voice(args.voice, "fp32").parent.parent
    backends = {variant: OnnxBackend(voice_dir, variant, threads=args.threads) for variant in VARIANTS}
    sequences = phone_ids(voice_dir, args.texts)
    feeds = graph_feeds(variant_dir(voice_dir, "fp32"), sequences)
    sessions = {variant: dict(zip(feeds, (b.encoder, b.decoder, b.vocoder), strict=True))
                for variant, b in backends.items()}
    best = {variant: dict.fromkeys(feeds, float("inf")) for variant in sessions}
    for graph, graph_inputs in feeds.items():
        for variant in sessions:
            sessions[variant][graph].run(None, graph_inputs[0])  # warm-up
    for _ in range(args.repeats):
        for graph, graph_inputs in feeds.items():
            for variant, graphs in sessions.items():
                start = time.perf_counter()
                for inputs in graph_inputs:
                    graphs[graph].run(None, inputs)
                best[variant][graph] = min(best[variant][graph], time.perf_counter() - start)
    frames = sum(inputs["mel"].shape[1] for inputs in feeds[VOCODER_FILE])
    audio_seconds = frames * backends["fp32"].hop_length / _sample_rate(args.voice)
    print(f"{args.texts} texts, {audio_seconds:.1f} s of audio, {args.threads} threads, best of {args.repeats}; "
          "RTF per graph (ratio to fp32 in this run)")
    reference = best["fp32"]
    for variant, seconds in best.items():
        cells = [f"{graph.removesuffix('.onnx'):>16} {seconds[graph] / audio_seconds:.4f} "
                 f"({seconds[graph] / reference[graph]:.2f})" for graph in feeds]
        total = sum(seconds.values())
        print(f"{variant:<13} {' '.join(cells)}   total {total / audio_seconds:.4f} "
              f"({total / sum(reference.values()):.2f})")


def _sample_rate(voice: str) -> int:
    from qingyin.voices import registry

    return registry.get_voice(voice).sample_rate


def run_worker(args: argparse.Namespace) -> None:
    """Time one backend; save its timings, peak RSS and outputs (next to torch's, for the fidelity figures)."""
    from qingyin.voices import registry

    voice_dir = registry.voice_dir(args.voice)
    backend = load(args.worker, voice_dir, args.threads)
    sequences = phone_ids(voice_dir, args.texts)
    timings = time_backend(backend, sequences, args.repeats)
    audio_seconds = timings.pop("samples") / registry.get_voice(args.voice).sample_rate
    outputs = Path(args.results) / f"{args.worker}.npz"
    fidelity = {}
    if args.worker == "torch":
        save_outputs(backend, sequences, outputs)
    else:
        fidelity = compare_with_torch(backend, sequences, Path(args.results) / "torch.npz")
    summary = {"rtf": {stage: seconds / audio_seconds for stage, seconds in timings.items()},
               "audio_seconds": audio_seconds, "peak_rss_mb": peak_rss_mb(), "fidelity": fidelity}
    (Path(args.results) / f"{args.worker}.json").write_text(json.dumps(summary))


def load(name: str, voice_dir: Path, threads: int):
    """The backend named like BACKENDS."""
    if name == "torch":
        from qingyin.families.fs2_mbmelgan.torch_runtime import TorchBackend

        return TorchBackend(voice_dir, threads=threads)
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend

    return OnnxBackend(voice_dir, variant=name.removeprefix("onnx-"), threads=threads)


def phone_ids(voice_dir: Path, count: int) -> list[list[int]]:
    """Symbol ids (eos appended) of every sentence of the first `count` default texts."""
    from qingyin.families.fs2_mbmelgan.voice import sentence_ids
    from qingyin.text.corpus import read_texts

    return sentence_ids(voice_dir, read_texts()[:count])


def time_backend(backend, sequences: list[list[int]], repeats: int) -> dict[str, float]:
    """Best-of-`repeats` seconds for the acoustic model, the vocoder and both, over all sequences."""
    from qingyin.families.fs2_mbmelgan.features import AcousticControls

    backend.vocode(backend.acoustic(sequences[0], AcousticControls()).mel)  # warm-up: first-run allocations
    best = {"acoustic": float("inf"), "vocoder": float("inf"), "total": float("inf")}
    samples = 0
    for _ in range(repeats):
        acoustic = vocoder = 0.0
        samples = 0
        for ids in sequences:
            start = time.perf_counter()
            mel = backend.acoustic(ids, AcousticControls()).mel
            middle = time.perf_counter()
            samples += len(backend.vocode(mel))
            acoustic, vocoder = acoustic + middle - start, vocoder + time.perf_counter() - middle
        best = {"acoustic": min(best["acoustic"], acoustic), "vocoder": min(best["vocoder"], vocoder),
                "total": min(best["total"], acoustic + vocoder)}
    return {**best, "samples": samples}


def save_outputs(backend, sequences: list[list[int]], path: Path) -> None:
    """Torch's durations, mels and audio per sequence, for the other backends to compare against."""
    from qingyin.families.fs2_mbmelgan.features import AcousticControls

    arrays = {}
    for index, ids in enumerate(sequences):
        features = backend.acoustic(ids, AcousticControls())
        arrays[f"durations{index}"] = features.durations
        arrays[f"mel{index}"] = features.mel
        arrays[f"audio{index}"] = backend.vocode(features.mel)
    np.savez(path, **arrays)


def compare_with_torch(backend, sequences: list[list[int]], torch_outputs: Path) -> dict[str, float]:
    """Duration agreement with torch; mel L1 and audio SNR with torch's durations forced."""
    from qingyin.families.fs2_mbmelgan.features import AcousticControls

    reference = np.load(torch_outputs)
    duration_diffs, mel_diffs, signal, noise = [], [], 0.0, 0.0
    for index, ids in enumerate(sequences):
        durations = reference[f"durations{index}"]
        duration_diffs.append(np.abs(backend.acoustic(ids, AcousticControls()).durations - durations))
        mel = backend.acoustic(ids, AcousticControls(durations=durations)).mel
        mel_diffs.append(np.abs(mel - reference[f"mel{index}"]).ravel())
        audio, target = backend.vocode(mel), reference[f"audio{index}"]
        signal, noise = signal + float(np.sum(target**2)), noise + float(np.sum((audio - target) ** 2))
    diffs = np.concatenate(duration_diffs)
    return {"durations_identical": float(np.mean(diffs == 0)), "durations_within_1": float(np.mean(diffs <= 1)),
            "mel_l1": float(np.concatenate(mel_diffs).mean()), "snr_db": 10 * np.log10(signal / max(noise, 1e-30))}


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def print_table(results: dict[str, dict], args: argparse.Namespace) -> None:
    seconds = next(iter(results.values()))["audio_seconds"]
    print(f"{args.texts} texts, {seconds:.1f} s of audio, {args.threads} threads, best of {args.repeats}")
    print(f"{'backend':<19} {'RTF total':>9} {'acoustic':>9} {'vocoder':>8} {'peak RSS':>9}  "
          f"{'dur =':>6} {'dur ±1':>6} {'mel L1':>8} {'SNR dB':>7}")
    for name, result in results.items():
        rtf, fidelity = result["rtf"], result["fidelity"]
        quality = (f"{fidelity['durations_identical']:6.3f} {fidelity['durations_within_1']:6.3f} "
                   f"{fidelity['mel_l1']:8.5f} {fidelity['snr_db']:7.1f}" if fidelity else
                   f"{'(reference)':>30}")
        print(f"{name:<19} {rtf['total']:9.4f} {rtf['acoustic']:9.4f} {rtf['vocoder']:8.4f} "
              f"{result['peak_rss_mb']:7.0f}MB  {quality}")


if __name__ == "__main__":
    main()
