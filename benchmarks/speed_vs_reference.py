"""Real-time factor of our PyTorch voice vs the original TFLite voice (LiteRT + XNNPACK), same run, same sentences.

    .venv/bin/python -m benchmarks.speed_vs_reference [--threads 2] [--repeats 3]

RTF = synthesis seconds / audio seconds (lower is faster); best of `repeats` passes over the sentences.
"""

from __future__ import annotations

import argparse
import time

import torch

from qingyin.evaluate.reference import load_reference
from qingyin.runtime.backends import AcousticControls, TorchBackend
from qingyin.text import SymbolTable, text_to_sentences
from qingyin.voices.fetch import ensure_voice

SENTENCES = [
    "今天天气不错，我们去公园散步吧。", "欢迎使用轻音语音合成系统。", "请问最近的地铁站怎么走？",
    "这本书我已经看了三遍，每一遍都有新的收获。", "会议改到明天下午三点，请大家准时参加。",
    "春眠不觉晓，处处闻啼鸟。", "你好，很高兴认识你！", "他说的话让所有人都沉默了。",
    "窗外的雨下了一整夜，直到清晨才慢慢停下来。", "感谢您的耐心等待，客服人员马上为您服务。",
]


def rtf_of(run, phone_lists: list[list[str]], repeats: int) -> tuple[float, float, float]:
    """Best (acoustic, vocoder, audio seconds) over repeats."""
    best = None
    for _ in range(repeats):
        acoustic = vocoder = seconds = 0.0
        for phones in phone_lists:
            a, v, s = run(phones)
            acoustic, vocoder, seconds = acoustic + a, vocoder + v, seconds + s
        if best is None or acoustic + vocoder < best[0] + best[1]:
            best = (acoustic, vocoder, seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    voice = ensure_voice("baker")
    backend = TorchBackend(voice, threads=args.threads)
    symbols = SymbolTable.from_json(voice / "symbols.json")
    reference = load_reference(threads=args.threads)
    phone_lists = [s.phones for text in SENTENCES for s in text_to_sentences(text).sentences]

    def ours(phones):
        t0 = time.perf_counter()
        features = backend.acoustic(symbols.ids(phones) + [symbols.eos_id], AcousticControls())
        t1 = time.perf_counter()
        audio = backend.vocode(features.mel)
        return t1 - t0, time.perf_counter() - t1, len(audio) / 24000

    def theirs(phones):
        t0 = time.perf_counter()
        mel, _ = reference.mel(reference.ids(" ".join(phones)))
        t1 = time.perf_counter()
        audio = reference.audio(mel)
        return t1 - t0, time.perf_counter() - t1, len(audio) / 24000

    for run in (ours, theirs):  # warm-up: first allocations are slow in both runtimes
        run(phone_lists[0])
    results = {"qingyin torch": rtf_of(ours, phone_lists, args.repeats),
               "reference tflite": rtf_of(theirs, phone_lists, args.repeats)}
    base = sum(results["reference tflite"][:2]) / results["reference tflite"][2]
    print(f"threads={args.threads} torch={torch.__version__} sentences={len(phone_lists)} "
          f"audio={results['reference tflite'][2]:.1f}s")
    print("system            acoustic_rtf  vocoder_rtf  rtf     vs reference")
    for name, (acoustic, vocoder, seconds) in results.items():
        rtf = (acoustic + vocoder) / seconds
        print(f"{name:16s}  {acoustic / seconds:12.4f}  {vocoder / seconds:11.4f}  {rtf:.4f}  {rtf / base:.2f}x")


if __name__ == "__main__":
    main()
