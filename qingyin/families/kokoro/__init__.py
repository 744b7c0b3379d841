"""The Kokoro-82M model family: the int8 ONNX model from PyPI and eight Mandarin style packs from npm
(qingyin.families.kokoro.provision), cut into three graphs so that durations, F0 and energy can be edited between
them (qingyin.families.kokoro.graphs), fed with qingyin's own frontend (qingyin.families.kokoro.tokens)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from qingyin.families.base import DURATION, ENERGY, MIX, PITCH
from qingyin.voices.registry import ModelSpec
from qingyin.voices.wheels import VoiceNotAvailableError

if TYPE_CHECKING:
    from qingyin.families.kokoro.voice import KokoroVoice

BACKENDS = ("onnx",)
CAPABILITIES = frozenset({DURATION, PITCH, ENERGY, MIX})
VARIANTS = ("int8", "fp32")  # the stage graphs with the stock int8 weights, or dequantized
DEFAULT_VARIANT = "int8"
GRAPHS_FOLDER = "graphs"
GRAPHS_DONE = "graphs.json"  # written last in graphs/<variant>/: the source model's sha256 and the format
GRAPHS_FORMAT = 1


def graphs_dir(directory: Path, variant: str) -> Path:
    return Path(directory) / GRAPHS_FOLDER / variant


def check_variant(variant: str | None) -> str:
    name = {None: DEFAULT_VARIANT, "int8-dynamic": "int8"}.get(variant, variant)
    if name not in VARIANTS:
        raise ValueError(f"unknown Kokoro variant {variant!r}; available: {', '.join(VARIANTS)}")
    return name


def graphs_ready(directory: Path, variant: str) -> bool:
    from qingyin.families.kokoro.provision import MODEL_SHA256

    try:
        done = json.loads((graphs_dir(directory, variant) / GRAPHS_DONE).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return done == {"format": GRAPHS_FORMAT, "source_sha256": MODEL_SHA256}


def ensure(model: ModelSpec, force: bool = False, source: Path | None = None, quiet: bool = False) -> Path:
    """Fetch the model and speakers (provision.ensure_kokoro), then cut the stage graphs of every variant."""
    from qingyin.families.kokoro import provision
    from qingyin.families.kokoro.graphs import build_graphs

    directory = provision.ensure_kokoro(force=force, source=source, quiet=quiet)
    for variant in VARIANTS:
        if graphs_ready(directory, variant) and not force:
            continue
        if not quiet:
            print(f"qingyin: cutting Kokoro's graphs ({variant}) ...", flush=True)
        folder = graphs_dir(directory, variant)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / GRAPHS_DONE).unlink(missing_ok=True)
        build_graphs(directory / provision.MODEL_FILE, folder, variant)
        done = {"format": GRAPHS_FORMAT, "source_sha256": provision.MODEL_SHA256}
        (folder / GRAPHS_DONE).write_text(json.dumps(done))
    return directory


def verify(model: ModelSpec) -> None:
    from qingyin.families.kokoro.provision import verify_kokoro

    verify_kokoro()


def load(model: ModelSpec, directory: Path, backend: str | None = None, variant: str | None = None,
         threads: int | None = None) -> KokoroVoice:
    from qingyin.families.kokoro.voice import KokoroVoice

    if backend not in (None, *BACKENDS):
        raise ValueError(f"the Kokoro voices run on {', '.join(BACKENDS)} only, not {backend!r}")
    variant = check_variant(variant)
    if not graphs_ready(directory, variant):
        raise VoiceNotAvailableError(f"Kokoro's {variant} graphs are missing in {graphs_dir(directory, variant)}; "
                                     f"run `qingyin models fetch {model.name}`")
    return KokoroVoice(model, directory, variant, threads)
