"""Kokoro streaming: first-audio latency and how close span-by-span decoding is to whole-sentence decoding.

    .venv/bin/python -m benchmarks.kokoro_streaming [--voice yunxi] [--contexts 0,6,12] [--repeats 7]

For each context size (frames decoded on each side of a span; qingyin.families.kokoro.voice.STREAM_CONTEXT_FRAMES)
it prints the median time to the first chunk of `synthesize_stream` and the mean and worst per-frame absolute
difference of log power spectra (1200-sample frames, hop 300, log10 with a 1e-3 floor) between the stream and
`synthesize()`. For scale it also prints the same difference between the int8 and fp32 variants' whole audio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import qingyin
from qingyin.families.kokoro import voice as kokoro_voice
from qingyin.runtime.pool import ModelPool

TEXT = "今天下午三点，我们在会议室讨论新产品的发布计划。"


def log_spectrogram(audio: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(audio, 1200)[::300] * np.hanning(1200)
    return np.log10(np.abs(np.fft.rfft(frames)) ** 2 + 1e-3)


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = min(len(a), len(b))
    return np.abs(log_spectrogram(a[:n]) - log_spectrogram(b[:n])).mean(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voice", default="yunxi")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--contexts", default="0,6,12")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    tts = qingyin.TTS(voice=args.voice, models=ModelPool(threads=2, fetch=False))
    whole = tts.synthesize(args.text).audio
    print("| context each side | mean | worst frame | first audio (median) | first chunk |\n|---|---|---|---|---|")
    for context in (int(c) for c in args.contexts.split(",")):
        kokoro_voice.STREAM_CONTEXT_FRAMES = context
        times = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            stream = tts.synthesize_stream(args.text)
            first = next(stream)
            times.append(time.perf_counter() - began)
            streamed = np.concatenate([first, *stream])
        d = difference(streamed, whole)
        print(f"| {context} frames | {d.mean():.2f} | {d.max():.2f} | {1000 * statistics.median(times):.0f} ms | "
              f"{len(first) / tts.sample_rate:.2f} s |")
    fp32 = qingyin.TTS(voice=args.voice, models=ModelPool(threads=2, fetch=False, variant="fp32"))
    d = difference(fp32.synthesize(args.text).audio, whole)
    print(f"| for scale: int8 against fp32, whole sentence | {d.mean():.2f} | {d.max():.2f} | | |")


if __name__ == "__main__":
    main()
