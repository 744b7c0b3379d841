"""Parity of our PyTorch Baker voice with the original TFLite voice (LiteRT, XNNPACK), on random symbol strings.

    .venv/bin/python -m benchmarks.parity [--seeds 6] [--count 40]

Prints, per seed and for the float model and the model with the reference's INT8 activation
quantization emulated: share of identical durations, largest duration difference, share of symbols
beyond one frame, p99 pitch/energy difference, mel frame cosine (mean, 1st percentile) and mean |diff|
with the reference's durations forced. Also the reference against itself (XNNPACK vs builtin kernels).
"""

from __future__ import annotations

import argparse
import contextlib
import json

import numpy as np

from qingyin.evaluate.reference import load_reference
from qingyin.families.fs2_mbmelgan.fetch import ensure_voice
from qingyin.families.fs2_mbmelgan.torch_runtime import TorchBackend
from tests.activation_quant import xnnpack_dynamic_int8
from tests.test_parity import EMULATED, FLOAT, Parity, random_cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--count", type=int, default=40, help="random strings per seed")
    args = parser.parse_args()

    voice = ensure_voice("baker")
    backend = TorchBackend(voice)
    oracle, builtin = load_reference(), load_reference()
    builtin.use_builtin_kernels()
    syllables = list(json.loads((voice / "symbols.json").read_text())["pinyin_dict"].values())
    print("seed  model     identical  max  >1frame  p99 pitch/energy  cos mean  cos p1  mel |diff|")
    self_identical, self_max, symbols = 0, 0, 0
    for seed in range(args.seeds):
        cases = list(random_cases(oracle, syllables, args.count, seed))
        for label, tolerance, context in (("float", FLOAT, contextlib.nullcontext()),
                                          ("emulated", EMULATED, xnnpack_dynamic_int8(backend.acoustic_model))):
            parity = Parity(tolerance)
            with context:
                for ids, ratios, reference in cases:
                    parity.add(backend, ids, ratios, reference)
            d, c = np.concatenate(parity.duration_diffs), np.concatenate(parity.cosines)
            print(f"{seed:4d}  {label:8s}  {(d == 0).mean():9.3f}  {d.max():3d}  {(d > 1).mean():7.4f}  "
                  f"{np.percentile(np.concatenate(parity.variance_diffs), 99):16.3f}  {c.mean():8.4f}  "
                  f"{np.percentile(c, 1):6.4f}  {np.concatenate(parity.abs_diffs).mean():10.4f}")
        for ids, ratios, reference in cases:
            other = builtin.acoustic_outputs(ids, *ratios)["durations"]
            self_identical += int((other == reference["durations"]).sum())
            self_max = max(self_max, int(np.abs(other - reference["durations"]).max()))
            symbols += len(ids)
    print(f"reference XNNPACK vs builtin kernels: {self_identical / symbols:.3f} identical durations, "
          f"max difference {self_max} frames")


if __name__ == "__main__":
    main()
