"""Model families: how each kind of model is provisioned, loaded and run. Adding a family = one folder + one line.

Each family package defines (see qingyin.families.base for the Voice it loads):

    BACKENDS: tuple[str, ...]                 runtimes it can run on, the first being its default
    CAPABILITIES: frozenset[str]              what the engine may edit (qingyin.families.base: DURATION, ...)
    ensure(model, force=False, source=None, quiet=False) -> Path   fetch + convert, idempotent and atomic
    verify(model) -> None                     check the installed files (VoiceNotAvailableError names the fix)
    load(model, directory, backend, variant, threads) -> Voice

Families are imported only when used, so that a process running one never imports another's dependencies.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from qingyin.voices import registry
from qingyin.voices.registry import ModelSpec
from qingyin.voices.wheels import VoiceNotAvailableError

FAMILIES = {
    "fs2_mbmelgan": "qingyin.families.fs2_mbmelgan",
    "kokoro": "qingyin.families.kokoro",
}


def family(name: str) -> ModuleType:
    try:
        return importlib.import_module(FAMILIES[name])
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


def ensure_model(model: ModelSpec, force: bool = False, source: Path | None = None, quiet: bool = False) -> Path:
    """The model's installed folder, fetched and converted first when needed."""
    return family(model.family).ensure(model, force=force, source=source, quiet=quiet)


def installed_model(model: ModelSpec) -> Path:
    """The model's folder, checked; VoiceNotAvailableError naming `qingyin models fetch` when it is not there."""
    directory = registry.model_dir(model.name)
    if not (directory / registry.MANIFEST).is_file():
        voices = [name for name, spec in registry.VOICES.items() if spec.model.name == model.name]
        raise VoiceNotAvailableError(
            f"the files of voice {voices[0] if len(voices) == 1 else model.name!r} are not installed; "
            f"run `qingyin models fetch {model.name}` (or `make serve`, which fetches every voice)")
    family(model.family).verify(model)
    return directory


def capabilities(model: ModelSpec) -> frozenset[str]:
    return family(model.family).CAPABILITIES

