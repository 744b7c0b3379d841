"""Variants: what `qingyin eval` and `qingyin bench` compare. A variant = voice + backend + options.

Spelled `voice[:backend][:name=value,...]`, e.g. `baker`, `baker:onnx`, `baker:onnx:variant=int8-dynamic`,
`baker:speed=1.2,pitch=1.1`, `baker:prosody=plain` (the frontend's boundary mode, see qingyin.text.prosody).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qingyin.export import VARIANT_CHOICES, UnknownVariantError, check_variant
from qingyin.runtime.backends import BACKENDS
from qingyin.runtime.synthesizer import InvalidOptionError, SynthesisOptions
from qingyin.text.prosody import MODES
from qingyin.voices.registry import get_voice

DEFAULT_TEXTS = Path(__file__).with_name("texts") / "zh_default.txt"


@dataclass(frozen=True)
class Variant:
    voice: str
    backend: str = "torch"
    options: dict[str, float | str] = field(default_factory=dict)
    prosody: str = "marks"
    variant: str | None = None  # the backend's model variant (onnx: fp32, int8-dynamic); None = its default

    @property
    def name(self) -> str:
        parts = [self.voice]
        if self.backend != "torch":
            parts.append(self.backend)
        settings = dict(self.options, **({"prosody": self.prosody} if self.prosody != "marks" else {}),
                        **({"variant": self.variant} if self.variant else {}))
        if settings:
            parts.append(",".join(f"{k}={v}" for k, v in sorted(settings.items())))
        return ":".join(parts)


def parse_variant(spec: str) -> Variant:
    """'baker:speed=1.2' -> Variant; errors name the bad part and the choices."""
    parts = [p.strip() for p in spec.split(":")]
    voice = get_voice(parts[0]).name  # raises UnknownVoiceError listing the voices
    backend, options, prosody, model_variant = "torch", {}, "marks", None
    for part in parts[1:]:
        if "=" not in part:
            if part not in BACKENDS:
                raise InvalidOptionError(
                    f"variant {spec!r}: unknown backend {part!r}; available: {', '.join(BACKENDS)}")
            backend = part
            continue
        for item in part.split(","):
            name, _, value = item.partition("=")
            name = name.strip()
            if name == "variant":
                try:
                    model_variant = check_variant(value.strip())
                except UnknownVariantError:
                    raise InvalidOptionError(f"variant {spec!r}: variant must be one of {VARIANT_CHOICES}") from None
                continue
            if name == "prosody":
                prosody = value.strip()
                if prosody not in MODES:
                    raise InvalidOptionError(f"variant {spec!r}: prosody must be one of {', '.join(MODES)}")
                continue
            if name not in SynthesisOptions.__dataclass_fields__:
                known = "speed, pitch, energy, speaker, prosody, variant"
                raise InvalidOptionError(f"variant {spec!r}: unknown option {name!r}; known: {known}")
            options[name] = value.strip() if name == "speaker" else _number(spec, name, value)
    try:
        SynthesisOptions(**options).validated()
    except InvalidOptionError as error:
        raise InvalidOptionError(f"variant {spec!r}: {error}") from None
    if model_variant is not None and backend != "onnx" and model_variant != "fp32":
        raise InvalidOptionError(f"variant {spec!r}: the {backend} backend has only the fp32 variant")
    return Variant(voice, backend, options, prosody, model_variant)


def _number(spec: str, name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidOptionError(f"variant {spec!r}: {name} must be a number, got {value!r}") from None


def sentence_ids(voice_dir: str | Path, texts: list[str]) -> list[list[int]]:
    """Symbol ids (eos appended) of every spoken sentence of `texts`, through qingyin's frontend."""
    from qingyin.text import SymbolTable, text_to_sentences

    table = SymbolTable.from_json(Path(voice_dir) / "symbols.json")
    return [table.ids(sentence.phones) + [table.eos_id]
            for text in texts for sentence in text_to_sentences(text).sentences if sentence.phones]


def read_texts(path: str | Path | None = None) -> list[str]:
    """One sentence per line; blank lines and lines starting with '#' are skipped."""
    source = Path(path) if path else DEFAULT_TEXTS
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidOptionError(f"cannot read texts from {source}: {error}") from None
    texts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not texts:
        raise InvalidOptionError(f"{source} has no sentences (one per line; '#' starts a comment)")
    return texts
