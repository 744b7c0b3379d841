"""Variants: what `qingyin eval` and `qingyin bench` compare. A variant = voice + backend + options.

Spelled `voice[:backend][:name=value,...]`, e.g. `baker`, `baker:onnx`, `baker:onnx:variant=int8-dynamic`,
`baker:speed=1.2,pitch=1.1`, `yunxi:emotion=happy,intensity=0.5`, `baker:prosody=plain` (the frontend's boundary
mode, see qingyin.text.prosody).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qingyin import families
from qingyin.runtime.synthesizer import InvalidOptionError, SynthesisOptions
from qingyin.text.prosody import MODES
from qingyin.voices.registry import get_voice


@dataclass(frozen=True)
class Variant:
    voice: str
    backend: str | None = None  # None: the voice's family's default (baker: torch; the Kokoro voices: onnx)
    options: dict[str, float | str] = field(default_factory=dict)
    prosody: str = "marks"
    variant: str | None = None  # the backend's model variant (baker on onnx: fp32, int8-dynamic); None = default

    @property
    def name(self) -> str:
        parts = [self.voice]
        if self.backend is not None:
            parts.append(self.backend)
        settings = dict(self.options, **({"prosody": self.prosody} if self.prosody != "marks" else {}),
                        **({"variant": self.variant} if self.variant else {}))
        if settings:
            parts.append(",".join(f"{k}={v}" for k, v in sorted(settings.items())))
        return ":".join(parts)


def parse_variant(spec: str) -> Variant:
    """'baker:speed=1.2' -> Variant; errors name the bad part and the choices."""
    parts = [p.strip() for p in spec.split(":")]
    voice_spec = get_voice(parts[0])  # raises UnknownVoiceError listing the voices
    family = families.family(voice_spec.family)
    backend, options, prosody, model_variant = None, {}, "marks", None
    for part in parts[1:]:
        if "=" not in part:
            if part not in family.BACKENDS:
                raise InvalidOptionError(f"variant {spec!r}: unknown backend {part!r} for voice {voice_spec.name!r}; "
                                         f"available: {', '.join(family.BACKENDS)}")
            backend = part
            continue
        for item in part.split(","):
            name, _, value = item.partition("=")
            name = name.strip()
            if name == "variant":
                try:
                    model_variant = family.check_variant(value.strip())
                except ValueError as error:
                    raise InvalidOptionError(f"variant {spec!r}: {error}") from None
                continue
            if name == "prosody":
                prosody = value.strip()
                if prosody not in MODES:
                    raise InvalidOptionError(f"variant {spec!r}: prosody must be one of {', '.join(MODES)}")
                continue
            if name == "emotion":
                options[name] = value.strip()
                continue
            if name not in SynthesisOptions.__dataclass_fields__ or name == "reference":
                known = "speed, pitch, energy, sentence_pause, emotion, intensity, prosody, variant"
                raise InvalidOptionError(f"variant {spec!r}: unknown option {name!r}; known: {known}")
            options[name] = _number(spec, name, value)
    try:
        SynthesisOptions(**options).validated()
    except InvalidOptionError as error:
        raise InvalidOptionError(f"variant {spec!r}: {error}") from None
    if model_variant not in (None, "fp32") and "torch" in family.BACKENDS:
        if backend == "torch":
            raise InvalidOptionError(f"variant {spec!r}: the torch backend has only the fp32 variant")
        backend = "onnx"  # the other variants exist on ONNX Runtime only
    return Variant(voice_spec.name, backend, options, prosody, model_variant)


def _number(spec: str, name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidOptionError(f"variant {spec!r}: {name} must be a number, got {value!r}") from None
