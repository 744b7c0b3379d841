"""The original voice as distributed (TFLite, run by LiteRT): the oracle for parity and the speed baseline.

It lives outside the package (../shared/reference/reference.py beside the repository, or
$QINGYIN_REFERENCE_DIR) and needs `ai-edge-litert`; this module loads it and adds what we need.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def reference_dir() -> Path:
    """$QINGYIN_REFERENCE_DIR, else ../shared/reference beside the repository checkout."""
    return Path(os.environ.get("QINGYIN_REFERENCE_DIR") or REPO.parent / "shared" / "reference")


def reference_available() -> str | None:
    """None when the oracle can run, else the reason it cannot."""
    if not (reference_dir() / "reference.py").is_file():
        return f"no reference runner in {reference_dir()} (set QINGYIN_REFERENCE_DIR)"
    if importlib.util.find_spec("ai_edge_litert") is None:
        return "ai-edge-litert is not installed (pip install -e '.[test]')"
    return None


def load_reference(threads: int = 1):
    """An instance of the reference runner's `Reference` with an extra `acoustic_outputs` method."""
    spec = importlib.util.spec_from_file_location("qingyin_reference", reference_dir() / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Oracle(module.Reference):
        def use_builtin_kernels(self) -> None:
            """Run the acoustic model with LiteRT's builtin kernels instead of XNNPACK (its second opinion)."""
            from ai_edge_litert.interpreter import Interpreter, OpResolverType

            self.acoustic = Interpreter(
                model_path=str(reference_dir() / "fs2_nodrop.tflite"), num_threads=threads,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)

        def acoustic_outputs(self, ids: list[int], speed: float = 1.0, f0: float = 1.0, energy: float = 1.0):
            a = self.acoustic
            inputs = a.get_input_details()
            a.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
            a.allocate_tensors()
            values = (np.array([ids], np.int32), np.array([0], np.int32), np.array([speed], np.float32),
                      np.array([f0], np.float32), np.array([energy], np.float32))
            for detail, value in zip(inputs, values, strict=True):
                a.set_tensor(detail["index"], value)
            a.invoke()
            out = [a.get_tensor(d["index"])[0] for d in a.get_output_details()]
            # outputs: mel_before, mel_after, durations, f0, energy
            return {"mel": out[1], "durations": out[2].astype(np.int64), "pitch": out[3], "energy": out[4]}

    return Oracle(threads)
