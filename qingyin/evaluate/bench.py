"""Speed benchmark: every variant and the original voice (LiteRT reference), same sentences, same run.

Measures, per system: real-time factor (acoustic and vocoder separately; best of `repeats` passes),
first-audio latency for a ~20-character sentence (median), throughput at several concurrencies
(seconds of audio per wall-clock second, each worker thread with its own session where the runtime
needs one), and peak RSS (in a child process per system, since a process's peak only grows).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version

from qingyin.evaluate.reference import load_reference, reference_available
from qingyin.evaluate.variants import Variant, parse_variant
from qingyin.runtime.synthesizer import Synthesizer
from qingyin.text import FrontendResult, Sentence, text_to_sentences

LATENCY_TEXT = "今天下午三点，我们在会议室讨论新产品的发布计划。"  # 20 Han characters + punctuation
SAMPLE_RATE = 24000


@dataclass
class Timing:
    acoustic: float  # seconds
    vocoder: float
    audio: float  # seconds of audio produced


@dataclass
class SystemResult:
    name: str
    rtf: float
    acoustic_rtf: float
    vocoder_rtf: float
    first_audio_ms: float
    throughput: dict[int, float] = field(default_factory=dict)  # concurrency -> audio seconds per second
    peak_rss_mb: float | None = None


class System:
    """Something that turns one sentence of the frontend into audio, timing its two stages."""

    name: str

    def run(self, sentence: Sentence) -> Timing:
        raise NotImplementedError

    def first_audio(self, text: str, sentence: Sentence) -> None:
        """Produce the first audio of `text` (`sentence`): by default the whole sentence."""
        self.run(sentence)

    def worker(self) -> System:
        """An instance that can run on another thread at the same time as this one."""
        return self


class QingyinSystem(System):
    def __init__(self, variant: Variant, threads: int):
        self.name = variant.name
        self.options = dict(variant.options)
        self.tts = Synthesizer(variant.voice, threads=threads, prosody=variant.prosody, backend=variant.backend,
                               variant=variant.variant)

    def run(self, sentence: Sentence) -> Timing:
        pieces = list(self.tts.iter_sentences(FrontendResult([sentence], []), **self.options))
        return Timing(sum(p.acoustic_seconds for p in pieces), sum(p.vocoder_seconds for p in pieces),
                      sum(len(p.audio) for p in pieces) / SAMPLE_RATE)

    def first_audio(self, text: str, sentence: Sentence) -> None:
        """The first chunk of the stream, from the text: frontend, acoustics, first rendered chunk."""
        stream = self.tts.synthesize_stream(text, **self.options)
        next(stream)
        stream.close()


class ReferenceSystem(System):
    name = "reference"

    def __init__(self, threads: int):
        self.threads = threads
        self.oracle = load_reference(threads=threads)

    def run(self, sentence: Sentence) -> Timing:
        start = time.perf_counter()
        mel, _ = self.oracle.mel(self.oracle.ids(" ".join(sentence.phones)))
        middle = time.perf_counter()
        audio = self.oracle.audio(mel)
        return Timing(middle - start, time.perf_counter() - middle, len(audio) / SAMPLE_RATE)

    def worker(self) -> ReferenceSystem:
        return ReferenceSystem(self.threads)  # a LiteRT interpreter must not be shared between threads


def frontend_sentences(texts: Sequence[str]) -> list[Sentence]:
    """The spoken sentences of `texts` through qingyin's frontend (each voice turns them into its own tokens)."""
    return [s for text in texts for s in text_to_sentences(text).sentences if s.phones]


def measure_rtf(system: System, sentences: list[Sentence], repeats: int) -> tuple[float, float, float]:
    """Best pass: (rtf, acoustic_rtf, vocoder_rtf)."""
    system.run(sentences[0])  # warm-up: first allocations are slow in every runtime
    best = None
    for _ in range(repeats):
        timings = [system.run(sentence) for sentence in sentences]
        audio = sum(t.audio for t in timings)
        acoustic, vocoder = sum(t.acoustic for t in timings) / audio, sum(t.vocoder for t in timings) / audio
        if best is None or acoustic + vocoder < best[0]:
            best = (acoustic + vocoder, acoustic, vocoder)
    return best


def measure_first_audio(system: System, text: str, sentence: Sentence, repeats: int = 5) -> float:
    """Median milliseconds from request to the first audio (whole sentence for sentence-level systems)."""
    system.first_audio(text, sentence)  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        system.first_audio(text, sentence)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def measure_throughput(system: System, sentences: list[Sentence], concurrency: int) -> float:
    """Seconds of audio per wall-clock second with `concurrency` requests in flight."""
    workers = [system] + [system.worker() for _ in range(concurrency - 1)]
    work = [sentences[i % len(sentences)] for i in range(max(len(sentences), 2 * concurrency))]
    lock, audio = threading.Lock(), [0.0]
    queue = iter(work)

    def drain(worker: System) -> None:
        while True:
            with lock:
                sentence = next(queue, None)
            if sentence is None:
                return
            seconds = worker.run(sentence).audio
            with lock:
                audio[0] += seconds

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(drain, workers))
    return audio[0] / (time.perf_counter() - start)


def peak_rss_mb(system_spec: str, threads: int, texts: Sequence[str]) -> float | None:
    """Peak resident memory (MB) of a fresh process that loads the voice and synthesizes the texts' sentences
    (their frontend runs first, for every system alike: the reference has none of its own)."""
    command = [sys.executable, "-m", "qingyin.evaluate.bench", system_spec, str(threads), json.dumps(list(texts))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        return None
    return float(result.stdout.strip().splitlines()[-1])


def run_bench(
    variants: Sequence[str],
    texts: Sequence[str],
    threads: int = 2,
    concurrency: Sequence[int] = (1, 4, 16),
    repeats: int = 3,
    with_reference: bool = True,
    progress: Callable[[str], None] = lambda _msg: None,
) -> dict[str, object]:
    sentences = frontend_sentences(texts)
    if not sentences:
        raise ValueError("no speakable sentences in the benchmark texts")
    latency_sentence = frontend_sentences([LATENCY_TEXT])[0]
    systems: list[tuple[str, Callable[[], System]]] = [
        (spec, lambda spec=spec: QingyinSystem(parse_variant(spec), threads)) for spec in variants
    ]
    unavailable = reference_available() if with_reference else "not requested"
    if unavailable is None:
        systems.append(("reference", lambda: ReferenceSystem(threads)))

    results = []
    for spec, build in systems:
        progress(f"bench: {spec}")
        system = build()
        rtf, acoustic, vocoder = measure_rtf(system, sentences, repeats)
        first_audio = measure_first_audio(system, LATENCY_TEXT, latency_sentence)
        result = SystemResult(system.name, rtf, acoustic, vocoder, first_audio)
        for level in concurrency:
            progress(f"bench: {spec} at concurrency {level}")
            result.throughput[level] = measure_throughput(system, sentences, level)
        result.peak_rss_mb = peak_rss_mb(spec, threads, texts)
        results.append(result)

    reference = next((r for r in results if r.name == "reference"), None)
    variants_out = {}
    for r in results:
        if r is not reference:
            variants_out[r.name] = asdict(r) | ({"rtf_vs_reference": r.rtf / reference.rtf} if reference else {})
    return {
        "threads": threads,
        "sentences": len(sentences),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
        "reference": asdict(reference) if reference else {"unavailable": unavailable},
        "variants": variants_out,
    }


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def format_report(report: dict[str, object]) -> str:
    rows = list(report["variants"].values())
    if "rtf" in report["reference"]:
        rows.append(report["reference"])
    rows = [dict(r, throughput={int(n): v for n, v in r["throughput"].items()}) for r in rows]  # JSON keys: str
    levels = sorted({int(k) for r in rows for k in r["throughput"]})
    header = (f"{'system':24s} {'rtf':>7s} {'acoustic':>9s} {'vocoder':>8s} {'vs ref':>7s} {'first ms':>9s} "
              f"{'RSS MB':>7s} " + " ".join(f"{'x' + str(n) + ' audio s/s':>14s}" for n in levels))
    lines = [f"threads={report['threads']} sentences={report['sentences']} torch={report['torch']} "
             f"onnxruntime={report.get('onnxruntime')}", header]
    reference_rtf = report["reference"].get("rtf")
    for r in rows:
        ratio = f"{r['rtf'] / reference_rtf:.2f}x" if reference_rtf else "-"
        rss = f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "-"
        lines.append(f"{r['name']:24s} {r['rtf']:7.4f} {r['acoustic_rtf']:9.4f} {r['vocoder_rtf']:8.4f} {ratio:>7s} "
                     f"{r['first_audio_ms']:9.1f} {rss:>7s} "
                     + " ".join(f"{r['throughput'][n]:14.1f}" for n in levels))
    if "unavailable" in report["reference"]:
        lines.append(f"reference: unavailable ({report['reference']['unavailable']})")
    return "\n".join(lines)


def _rss_child(spec: str, threads: int, texts: list[str]) -> None:
    """Child process entry: load one system, synthesize the texts' sentences, print peak RSS in MB."""
    system = ReferenceSystem(threads) if spec == "reference" else QingyinSystem(parse_variant(spec), threads)
    for sentence in frontend_sentences(texts):
        system.run(sentence)
    print(peak_rss_of_this_process() / 2**20)


def peak_rss_of_this_process() -> int:
    """Peak resident bytes of this process's own address space.

    Not getrusage's ru_maxrss: after fork + exec, Linux carries the parent's peak over into the child's, so a
    child started from a process holding models would report the parent's memory.
    """
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


if __name__ == "__main__":
    _rss_child(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
