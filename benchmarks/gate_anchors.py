"""Where the quality gate's bounds come from: how far the original voice is from fp32 torch, and from itself.

    .venv/bin/python -m benchmarks.gate_anchors [--texts 20]

On the gate's sentences (the first `--texts` lines of qingyin/evaluate/texts/zh_default.txt), with the gate's
own metric code (qingyin.evaluate.gate): the original TFLite voice (../shared/reference, LiteRT with XNNPACK)
against fp32 torch, and the original against itself run with LiteRT's builtin kernels. Its mel against
torch's is taken with the original's durations forced into torch, so that the frames line up.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=20)
    args = parser.parse_args()
    from qingyin.evaluate.gate import _duration_agreement, _render, _Rendering, _signal_metrics
    from qingyin.evaluate.reference import load_reference, reference_available
    from qingyin.families.fs2_mbmelgan.features import AcousticControls
    from qingyin.families.fs2_mbmelgan.fetch import ensure_voice
    from qingyin.families.fs2_mbmelgan.torch_runtime import TorchBackend
    from qingyin.families.fs2_mbmelgan.voice import sentence_ids
    from qingyin.text.corpus import read_texts

    reason = reference_available()
    if reason:
        raise SystemExit(f"the original voice is needed: {reason}")
    voice_dir = ensure_voice("baker", quiet=True)
    sequences = sentence_ids(voice_dir, read_texts()[: args.texts])
    torch_backend = TorchBackend(voice_dir, threads=2)
    xnnpack, builtin = load_reference(threads=2), load_reference(threads=2)
    builtin.use_builtin_kernels()
    original = original_rendering(xnnpack, sequences, _Rendering)
    renderings = {"torch": _render(torch_backend, sequences), "original": original,
                  "original, builtin kernels": original_rendering(builtin, sequences, _Rendering)}
    for name, reference in (("torch", renderings["torch"]), ("original", original)):
        for other in renderings:
            if other == name or (name == "original" and other == "torch"):
                continue
            metrics = {**_duration_agreement(reference, renderings[other]),
                       **_signal_metrics(reference, renderings[other], 24000)}
            print(f"{other} against {name}: durations identical {metrics['durations_identical']:.3f}, "
                  f"MCD {metrics['mcd_db']:.2f} dB, F0 RMSE {metrics['f0_rmse_cents']:.0f} cents")
    forced = [torch_backend.acoustic(ids, AcousticControls(durations=durations)).mel
              for ids, durations in zip(sequences, original.durations, strict=True)]
    l1 = sum(float(np.abs(a - b).sum()) for a, b in zip(forced, original.mels, strict=True))
    print(f"original against torch, its durations forced: mel L1 {l1 / sum(m.size for m in forced):.4f}")


def original_rendering(oracle, sequences: list[list[int]], rendering_type):
    """The original's durations, mel and audio; its symbol ids are ours (the parity tests check the table)."""
    start = time.perf_counter()
    outputs = [oracle.acoustic_outputs(ids) for ids in sequences]
    audio = [oracle.audio(out["mel"]) for out in outputs]
    return rendering_type([out["durations"] for out in outputs], [out["mel"] for out in outputs], audio,
                          time.perf_counter() - start)


if __name__ == "__main__":
    main()
