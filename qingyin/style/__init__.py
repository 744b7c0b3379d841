"""Style: emotion presets, intensity, mixing and reference-prosody transfer, as pure numpy edits of the prosody a
voice predicts (no model code).

    presets.py    the seven emotions as `Preset`s (with the studies behind them), intensity and mixing
    reference.py  a reference recording's prosody, measured; transfer.py: it as a Preset for a given voice
    layout.py     where syllables, words, phrase ends and pauses are among a voice's tokens
    shape.py      a Preset (or one per token: SSML <emotion> spans) applied to a Prosody
    gain.py       loudness edits applied to the audio

The engine (qingyin.runtime.synthesizer) asks `style_for(...)` once per request and voice and calls
`Style.apply` on every sentence's predicted prosody.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from qingyin.families.base import Prosody, Tokens
from qingyin.style.presets import NEUTRAL_PRESET, EmotionLike, Preset, blend
from qingyin.style.shape import apply_style


@dataclass
class Style:
    """A request's emotion and intensity, plus the reference preset for the voice that speaks."""

    emotion: EmotionLike = None
    intensity: float = 1.0
    reference: Preset = NEUTRAL_PRESET
    warnings: list[str] = field(default_factory=list)
    _blends: dict[tuple[object, float], Preset] = field(default_factory=dict, repr=False)

    def preset(self, emotion: EmotionLike = None, intensity: float | None = None) -> Preset:
        """The edits for a span: its own emotion/intensity where SSML set them, else the request's."""
        emotion = self.emotion if emotion is None else emotion
        intensity = self.intensity if intensity is None else intensity
        key = (tuple(sorted(emotion.items())) if isinstance(emotion, Mapping) else emotion, intensity)
        if key not in self._blends:
            self._blends[key] = blend(emotion, intensity).plus(self.reference)
        return self._blends[key]

    def apply(self, prosody: Prosody, tokens: Tokens, capabilities: frozenset[str]) -> None:
        if tokens.controls is None or all(c.emotion is None and c.intensity is None for c in tokens.controls):
            presets: Preset | list[Preset] = self.preset()
        else:
            presets = [self.preset(c.emotion, c.intensity) for c in tokens.controls]
        apply_style(prosody, tokens, presets, capabilities)


def style_for(model: str, speaker: Mapping[str, float], emotion: EmotionLike, intensity: float,
              reference: object = None, reference_strength: float = 1.0) -> Style:
    """The style of a request for one voice (a reference is measured against that voice's neutral profile)."""
    style = Style(emotion, intensity)
    if reference is not None and reference_strength > 0:
        from qingyin.style.transfer import profile_for, reference_preset

        style.reference, warnings = reference_preset(reference, profile_for(model, speaker), reference_strength)
        style.warnings = [*getattr(reference, "warnings", ()), *warnings]
    return style


__all__ = ["Preset", "Style", "blend", "style_for"]
