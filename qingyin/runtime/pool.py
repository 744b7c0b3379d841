"""Loaded models shared by every engine of a process, and voice selectors ("yunxi", "xiaobei:0.6,yunxi:0.4").

Voices of one model share one loaded copy (the eight Kokoro speakers are one model). Models load on first use;
when the loaded models hold more than `max_mb` of memory (each measured as the growth of the process's resident
memory while it loaded), the least recently used ones are dropped, never the one just asked for (engines
holding a dropped model keep their reference until they are made again).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from qingyin import families
from qingyin.families.base import MIX, Speaker, Voice
from qingyin.voices import registry
from qingyin.voices.registry import ModelSpec, VoiceSpec
from qingyin.voices.wheels import ModelDamagedError, VoiceNotAvailableError


class VoiceSelectionError(ValueError):
    """A voice selector that names no catalogued voice, or a mix that cannot be made; the message says why."""


@dataclass(frozen=True)
class Selection:
    """A voice as a request asked for it: the model to run and the speaker (or mix of speakers) to use."""

    name: str  # the selector as given, e.g. "yunxi" or "xiaobei:0.6,yunxi:0.4"
    spec: VoiceSpec  # the (first) voice named
    speaker: Speaker  # the model's speaker names -> weights summing to 1
    voice: Voice


def parse_selector(selector: str) -> tuple[VoiceSpec, Speaker]:
    """The voice (the heaviest of a mix) and the speaker weights; a mix needs voices of one model whose family
    can mix speakers (VoiceSelectionError says which rule a selector breaks)."""
    if not isinstance(selector, str) or not selector.strip():
        raise VoiceSelectionError(f"voice must be a name, one of: {', '.join(registry.VOICES)}")
    weights: dict[str, float] = {}
    specs: list[VoiceSpec] = []
    parts = [p.strip() for p in selector.split(",")]
    for part in parts:
        name, _, weight_text = part.partition(":")
        spec = registry.get_voice(name.strip())  # UnknownVoiceError lists the voices
        weight = 1.0 if not weight_text and len(parts) == 1 else _weight(part, weight_text)
        specs.append(spec)
        weights[spec.speaker] = weights.get(spec.speaker, 0.0) + weight
    models = list(dict.fromkeys(s.model.name for s in specs))
    if len(models) > 1:
        by_model = "; ".join(f"{model}: {', '.join(dict.fromkeys(s.name for s in specs if s.model.name == model))}"
                             for model in models)
        raise VoiceSelectionError(f"voice {selector!r} blends voices of different models ({by_model}): a voice mix "
                                  "needs voices of one model")
    if len(parts) > 1 and MIX not in families.capabilities(specs[0].model):
        mixable = [name for name, spec in registry.VOICES.items() if MIX in families.capabilities(spec.model)]
        raise VoiceSelectionError(f"voice {specs[0].name!r} ({specs[0].family}) cannot be blended; voices that can: "
                                  f"{', '.join(mixable)}")
    total = sum(weights.values())
    if not total > 0:
        raise VoiceSelectionError(f"the weights of {selector!r} must add up to more than 0")
    heaviest = max(specs, key=lambda s: weights[s.speaker])
    return heaviest, MappingProxyType({name: w / total for name, w in weights.items()})


def _weight(part: str, text: str) -> float:
    try:
        weight = float(text)
    except ValueError:
        weight = math.nan
    if not math.isfinite(weight) or weight < 0:
        raise VoiceSelectionError(
            f"bad voice mix entry {part!r}: write name:weight with a weight >= 0, e.g. xiaobei:0.6,yunxi:0.4")
    return weight


class ModelPool:
    """Loads models on demand (fetching them first when `fetch`), with one runtime setting for all."""

    def __init__(self, backend: str | None = None, variant: str | None = None, threads: int | None = None,
                 fetch: bool = True, max_mb: float = 4096):
        self.backend, self.variant, self.threads, self.fetch = backend, variant, threads, fetch
        self.max_mb = max_mb
        self._loaded: OrderedDict[str, Voice] = OrderedDict()
        self._sizes: dict[str, float] = {}  # MB each loaded model added to the process when it loaded
        self._lock = threading.Lock()

    def select(self, selector: str) -> Selection:
        spec, speaker = parse_selector(selector)
        return Selection(selector, spec, speaker, self.model(spec.model))

    def model(self, model: ModelSpec) -> Voice:
        with self._lock:
            if model.name in self._loaded:
                self._loaded.move_to_end(model.name)
                return self._loaded[model.name]
        directory = families.ensure_model(model, quiet=True) if self.fetch else families.installed_model(model)
        if self.fetch:
            families.family(model.family).verify(model)
        before = resident_mb()
        loaded = self._load(model, directory)
        with self._lock:
            self._loaded[model.name] = loaded
            self._sizes[model.name] = max(0.0, resident_mb() - before)
            while sum(self._sizes[name] for name in self._loaded) > self.max_mb and len(self._loaded) > 1:
                dropped, _ = self._loaded.popitem(last=False)
                del self._sizes[dropped]
        return loaded

    def reload(self, model: ModelSpec) -> Voice | None:
        """Load `model` again from its installed files (e.g. after the quality gate changed its default variant)
        and replace the loaded copy: every selection from now on gets the new one; engines made before keep the
        old one until they are made again. None (and nothing loaded) when the model was not loaded."""
        with self._lock:
            if model.name not in self._loaded:
                return None
        loaded = self._load(model, families.installed_model(model))
        with self._lock:
            self._loaded[model.name] = loaded
        return loaded

    def _load(self, model: ModelSpec, directory: Path) -> Voice:
        """The loaded model; ModelDamagedError naming the repair when its files are there but do not load (a graph
        or weights file damaged on disk: the manifest check hashes the fetched files, not every derived one)."""
        try:
            return families.family(model.family).load(model, directory, backend=self.backend, variant=self.variant,
                                                      threads=self.threads)
        except (ValueError, ImportError, VoiceNotAvailableError):  # a bad setting, a missing extra, a named fix
            raise
        except Exception as error:  # onnxruntime's InvalidProtobuf, a truncated safetensors file, an OSError, ...
            fix = f"qingyin models fetch {model.name} --force"
            raise ModelDamagedError(f"the files of model {model.name!r} in {directory} do not load "
                                    f"({type(error).__name__}: {error}); they may be damaged: run `{fix}`",
                                    fix) from error

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def loaded_mb(self) -> dict[str, float]:
        """MB each loaded model added to the process's resident memory when it loaded."""
        with self._lock:
            return {name: round(self._sizes[name], 1) for name in self._loaded}


def resident_mb() -> float:
    """This process's resident memory in MB (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0

