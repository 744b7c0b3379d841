"""Kokoro stage graphs: parity of predict → prosody → decode against the stock graph, and real-time factors.

    python benchmarks/kokoro_graphs.py --stock /path/to/kokoro.onnx --voice /path/to/zf_xiaobei.bin \
        --vocab /path/to/vocab.json [--work DIR] [--threads 2] [--repeats 5] [--no-bench]

Builds the int8 and fp32 stage graphs into --work (default: a temporary folder), then
1. parity: for a few token sequences, int8 stages vs the stock graph at speed 1 (durations, frames, audio);
   Round vs np.rint on halves; fp32 stages vs int8 stages (same frames) as SNR and log-mel distance;
2. speed: RTF (synthesis seconds / audio seconds) of stock, int8 stages and fp32 stages (plus offline-optimized
   copies) for ~30, ~80 and ~150 tokens, median of --repeats alternating runs, with the load average.
Never imports torch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from qingyin.families.kokoro.graphs import build_graphs
from qingyin.families.kokoro.runtime import SAMPLE_RATE, KokoroGraphs, frames_from_durations
from qingyin.families.onnx_sessions import session_options

# Mandarin IPA in Kokoro's (misaki's) notation: tone arrows after the nucleus, ꭧ = tʂ, ʦ = ts, ʨ = tɕ.
SENTENCES = [
    "ni↓ xau↓, ʨin→tʰjɛ→n tʰjɛ→nʨʰi↘ xə↓n xau↓.",
    "wo↓mən tɕʰy↘ kʊ→ŋjɥɛ↘n san↘pu↘ pa.",
    "ꭧə↘ ʂɨ↘ i→ kə↘ jʊ↓ŋ lai↗ tsʰə↘ʂɨ↘ jy↓jin→ xə↗ʨʰəŋ↗ tə ʨʰy↘ ʦɨ.",
    "ta→ mei↓tʰjɛ→n ʦau↓ʂaŋ↘ tʂʰi→ wa↓n ʦau↓fan↘ ʨjou↘ tɕʰy↘ ʂaŋ↘pa→n.",
    "ʨin→nʲɛ↗n tə ʨʰʊ→ŋtʰjɛ→n pi↓ ʨʰy↘nʲɛ↗n nuan↓xwo, xwa→ ji↓ʨiŋ→ kʰai→ lə.",
    "ʐʊ↗kwo↓ ni↓ jou↓ ʂɨ↗ʨjɛ→n, wo↓mən i→ʨʰi↓ tɕʰy↘ tʰu↗ʂu→kwa↓n kʰa↘n ʂu→ xa↓u pu xa↓u?",
]
TARGET_LENGTHS = (30, 80, 150)


def load_vocab(path: Path) -> dict[str, int]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data.get("vocab", data)


def token_ids(vocab: dict[str, int], length: int) -> np.ndarray:
    """`length` ids (without the pads) from the example sentences, padded with a 0 at both ends."""
    text = " ".join(SENTENCES * (1 + length // 20))
    ids = [vocab[c] for c in text if c in vocab]
    cut = ids[:length]
    return np.array([0, *cut, 0], dtype=np.int64)


def style_for(pack: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return pack[len(ids) - 3].reshape(1, 256)  # Kokoro takes pack[n - 1] for n ids without the pads


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - other) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / noise)


def log_mel(audio: np.ndarray, n_fft: int = 1024, hop: int = 256, n_mels: int = 80) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(audio, n_fft // 2), n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(0), mel(SAMPLE_RATE / 2), n_mels + 2) / 2595) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    weights = np.maximum(0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    return np.log10(np.maximum(power @ weights.T, 1e-10))


class Stock:
    """The stock graph, optionally also returning its rounded durations."""

    def __init__(self, path: Path, threads: int, with_frames: bool = False) -> None:
        model = onnx.load(str(path))
        if with_frames:
            for name in ("/encoder/Div_output_0", "/encoder/Round_output_0"):
                model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        self.session = ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                            providers=["CPUExecutionProvider"])

    def run(self, ids: np.ndarray, style: np.ndarray, speed: float = 1.0) -> list[np.ndarray]:
        return self.session.run(None, {"tokens": ids.reshape(1, -1), "style": style,
                                       "speed": np.array([speed], dtype=np.float32)})


def check_rounding() -> None:
    """ONNX Round vs np.rint (both half to even) on exact halves and near-halves."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Round", ["x"], ["y"])], "round",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None])])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 20)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.concatenate([np.arange(0, 40, 0.5), np.nextafter(np.arange(0.5, 40, 1), 0),
                        np.nextafter(np.arange(0.5, 40, 1), 100)]).astype(np.float32)
    (y,) = session.run(None, {"x": x})
    print(f"Round vs np.rint on {x.size} halves/near-halves: {'equal' if np.array_equal(y, np.rint(x)) else 'DIFFER'}"
          f" (Round(2.5)={y[5]:.0f}, Round(3.5)={y[7]:.0f})")


def parity(stock_path: Path, dirs: dict[str, Path], vocab: dict[str, int], pack: np.ndarray, threads: int) -> None:
    stock = Stock(stock_path, threads, with_frames=True)
    int8 = KokoroGraphs(dirs["int8"], threads)
    fp32 = KokoroGraphs(dirs["fp32"], threads)
    check_rounding()
    print("\nint8 stages vs stock (speed 1), and fp32 stages vs int8 stages (int8 frames):")
    print(f"{'ids':>4} {'samples':>7} | {'dur maxdiff':>11} {'frames eq':>9} {'audio maxabs':>12} {'SNR dB':>7} |"
          f" {'fp32 frames≠':>12} {'fp32 SNR dB':>11} {'f0 MAE':>7} {'logmel L1':>9}")
    for length in (10, *TARGET_LENGTHS, 200):
        ids = token_ids(vocab, length)
        style = style_for(pack, ids)
        audio_ref, div_ref, round_ref = stock.run(ids, style)
        predicted = int8.predict(ids, style)
        frames = frames_from_durations(predicted.durations)
        f0, energy = int8.prosody(predicted, frames, style)
        audio = int8.decode(predicted, frames, f0, energy, style)
        frames_equal = np.array_equal(frames, np.maximum(round_ref[0], 1).astype(np.int64))
        duration_diff = float(np.abs(predicted.durations - div_ref[0]).max())
        same_len = audio.shape == audio_ref.shape
        max_abs = float(np.abs(audio - audio_ref).max()) if same_len else float("nan")
        snr = snr_db(audio_ref, audio) if same_len else float("nan")

        predicted32 = fp32.predict(ids, style)
        frames32 = frames_from_durations(predicted32.durations)
        f0_32, energy32 = fp32.prosody(predicted32, frames, style)
        audio32 = fp32.decode(predicted32, frames, f0_32, energy32, style)
        voiced = f0 > 50
        f0_mae = float(np.abs(f0_32 - f0)[voiced].mean()) if voiced.any() else float("nan")
        mel_l1 = float(np.abs(log_mel(audio32) - log_mel(audio)).mean())
        print(f"{len(ids) - 2:>4} {audio.size:>7} | {duration_diff:>11.2e} {str(frames_equal):>9} {max_abs:>12.2e}"
              f" {snr:>7.1f} | {int((frames32 != frames).sum()):>5}/{frames.size:<6} {snr_db(audio, audio32):>11.1f}"
              f" {f0_mae:>7.2f} {mel_l1:>9.3f}")
    ids = token_ids(vocab, 80)
    style = style_for(pack, ids)
    for speed in (0.8, 1.25):
        audio_ref, _, round_ref = stock.run(ids, style, speed)
        audio = int8.synthesize(ids, style, speed)
        frames_equal = np.array_equal(frames_from_durations(int8.predict(ids, style).durations, speed),
                                      np.maximum(round_ref[0], 1).astype(np.int64))
        same = audio.shape == audio_ref.shape and np.array_equal(audio, audio_ref)
        print(f"speed {speed}: frames equal to the stock graph's: {frames_equal}, audio identical: {same}")
    print("(f0 MAE: mean |f0_fp32 - f0_int8| in Hz where int8 f0 > 50 Hz; logmel L1: mean |Δ log10 mel power|, "
          "80 mels, for scale: int8 vs stock is 0)")


def offline_optimized(src: Path, dst: Path, level: ort.GraphOptimizationLevel) -> Path:
    """Copies of src's stage graphs with onnxruntime's optimizations at `level` applied and saved."""
    dst.mkdir(parents=True, exist_ok=True)
    for stage in ("predict", "prosody", "decode"):
        options = session_options(1)
        options.graph_optimization_level = level
        options.optimized_model_filepath = str(dst / f"{stage}.tmp.onnx")
        ort.InferenceSession(str(src / f"{stage}.onnx"), options, providers=["CPUExecutionProvider"])
        os.replace(dst / f"{stage}.tmp.onnx", dst / f"{stage}.onnx")
    return dst


def bench(stock_path: Path, dirs: dict[str, Path], vocab: dict[str, int], pack: np.ndarray, threads: int,
          repeats: int) -> None:
    runners: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}
    load_seconds = {}
    start = time.perf_counter()
    stock = Stock(stock_path, threads)
    load_seconds["stock"] = time.perf_counter() - start
    runners["stock"] = lambda ids, style: stock.run(ids, style)[0]
    for name, directory in dirs.items():
        start = time.perf_counter()
        graphs = KokoroGraphs(directory, threads)
        load_seconds[name] = time.perf_counter() - start
        runners[name] = graphs.synthesize

    print("\nsession load seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in load_seconds.items()))
    print(f"load average before: {os.getloadavg()}")
    print(f"RTF on {threads} threads, median of {repeats} alternating runs (one warm-up each), as wall / CPU: "
          "wall-clock or process CPU seconds (all threads) per audio second")
    print(f"{'ids':>4} {'audio s':>7} | " + " ".join(f"{name:>14}" for name in runners))
    for length in TARGET_LENGTHS:
        ids = token_ids(vocab, length)
        style = style_for(pack, ids)
        wall: dict[str, list[float]] = {name: [] for name in runners}
        cpu: dict[str, list[float]] = {name: [] for name in runners}
        audio_seconds = {}
        for run in runners.values():
            run(ids, style)
        for _ in range(repeats):
            for name, run in runners.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                audio = run(ids, style)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
                audio_seconds[name] = audio.size / SAMPLE_RATE
        print(f"{len(ids) - 2:>4} {audio_seconds['stock']:>7.2f} | " + " ".join(
            f"{statistics.median(wall[n]) / audio_seconds[n]:>7.3f}/{statistics.median(cpu[n]) / audio_seconds[n]:.3f}"
            .rjust(14) for n in runners), flush=True)
    print(f"load average after: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stock", type=Path, required=True)
    parser.add_argument("--voice", type=Path, required=True, help="a voice pack .bin: float32 [510, 1, 256]")
    parser.add_argument("--vocab", type=Path, required=True, help="Kokoro's vocab.json (config.json works too)")
    parser.add_argument("--work", type=Path, help="where to build the graphs (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-bench", action="store_true")
    parser.add_argument("--no-parity", action="store_true")
    parser.add_argument("--offline", action="store_true", help="also time copies saved with ORT optimizations")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="kokoro-graphs-"))
    vocab = load_vocab(args.vocab)
    pack = np.fromfile(args.voice, dtype=np.float32).reshape(-1, 1, 256)
    dirs = {}
    for precision in ("int8", "fp32"):
        start = time.perf_counter()
        build_graphs(args.stock, work / precision, precision)
        dirs[precision] = work / precision
        print(f"build_graphs({precision}): {time.perf_counter() - start:.1f} s -> {dirs[precision]}")
    if not args.no_parity:
        parity(args.stock, dirs, vocab, pack, args.threads)
    if not args.no_bench:
        if args.offline:
            for precision in ("int8", "fp32"):
                dirs[f"{precision}-ortall"] = offline_optimized(
                    dirs[precision], work / f"{precision}-ortall", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        bench(args.stock, dirs, vocab, pack, args.threads, args.repeats)


if __name__ == "__main__":
    main()
