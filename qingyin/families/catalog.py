"""The catalog as a table for people and clients (`qingyin voices`, GET /v1/voices): one row per voice."""

from __future__ import annotations

from qingyin import families
from qingyin.voices import registry


def voice_table() -> list[dict[str, object]]:
    """name, gender, family, model, sample rate, capabilities, licence, measured RTF and CER, installed, fetch
    command."""
    rows = []
    for name, spec in registry.VOICES.items():
        rows.append({
            "name": name, "gender": spec.gender, "family": spec.family, "model": spec.model.name,
            "speaker": spec.speaker, "sample_rate": spec.sample_rate, "description": spec.description,
            "capabilities": sorted(families.capabilities(spec.model)), "license": spec.license,
            "rtf": spec.model.measured_rtf, "cer": spec.measured_cer, "installed": registry.is_installed(name),
            "fetch": f"qingyin models fetch {spec.model.name}",
        })
    return rows
