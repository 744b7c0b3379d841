"""Reference prosody -> a `Preset`: speak like the reference, relative to how the voice itself speaks.

Each voice's neutral prosody (its `VoiceProfile`) was measured once, by benchmarks/voice_profiles.py, with the
same analysis as a reference (`qingyin.style.reference.analyze_reference`) on 12 neutral sentences; the profiles
ship as package data (data/voice_profiles.json). A reference's descriptors are compared with the profile of the
voice that will speak:

    level_st  = s * (reference F0 mean - voice F0 mean)           semitones
    range     = (reference F0 range / voice F0 range) ** s
    rate      = (reference articulation rate / voice rate) ** s
    dynamics  = (reference syllable-level spread / voice spread) ** s
    pause     = (reference pause share / voice pause share) ** s

with s the strength (0: exactly the neutral preset; 1: the whole difference). Articulation rates are calibrated
on both sides (`qingyin.style.reference.calibrated_rate`), so their ratio is the ratio of true rates. The
loudness-contrast ratio (the spread of the syllables' levels) is passed on as it is: `dynamics` scales each
syllable's level difference from the sentence's on the audio (qingyin.style.gain), and the measured spread follows
it about one for one (`.venv/bin/python -m benchmarks.rate_calibration --part dynamics`). Each is then kept within a
range that leaves the voice recognizable and its models inside what they render well (`LIMITS`), with a warning
for every limit reached. A reference without pauses says nothing about how long its pauses would be: the voice's
own pauses are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

from qingyin.options import InvalidOptionError
from qingyin.style.presets import NEUTRAL_PRESET, Preset
from qingyin.style.reference import ReferenceProsody

__all__ = [
    "LIMITS",
    "NoVoiceProfileError",
    "VoiceProfile",
    "profile_for",
    "profiles",
    "reference_preset",
]

PROFILES = "voice_profiles.json"
MEASURE_COMMAND = ".venv/bin/python -m benchmarks.voice_profiles"

# Preset field -> (lowest, highest) after strength: semitones for level_st, factors for the others.
LIMITS: dict[str, tuple[float, float]] = {
    "level_st": (-7.0, 7.0),
    "range": (0.5, 2.0),
    "rate": (0.6, 1.6),
    "dynamics": (0.5, 2.0),
    "pause": (0.4, 2.5),
}


class NoVoiceProfileError(LookupError):
    """No measured neutral prosody for this model or speaker."""


@dataclass(frozen=True)
class VoiceProfile:
    """Neutral prosody of one voice (speaker): the descriptors of `ReferenceProsody`, medians over sentences."""

    f0_mean_st: float  # semitones re 100 Hz
    f0_range_st: float  # semitones
    dynamics_db: float  # dB
    articulation_rate: float  # syllables per second of articulation time
    pause_ratio: float  # pause time / speech duration

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> VoiceProfile:
        return cls(**{f.name: float(data[f.name]) for f in fields(cls)})  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def profiles() -> dict[str, dict[str, VoiceProfile]]:
    """model -> speaker -> VoiceProfile, from the package data."""
    data = json.loads((Path(__file__).resolve().parent / "data" / PROFILES).read_text(encoding="utf-8"))
    return {model: {speaker: VoiceProfile.from_mapping(values) for speaker, values in speakers.items()}
            for model, speakers in data["models"].items()}


def profile_for(model: str, speaker: Mapping[str, float]) -> VoiceProfile:
    """The neutral prosody of `model` speaking as `speaker` (speaker name -> weight: {"baker": 1.0}, or a blend
    {"zf_xiaobei": 0.6, "zm_yunxi": 0.4}): the weighted average of the speakers' profiles, semitones and decibels
    averaged, articulation rates geometrically. Weights need not sum to 1.
    """
    known = profiles()
    if model not in known:
        raise NoVoiceProfileError(f"no prosody profile for model {model!r} (profiled: {', '.join(sorted(known))}); "
                                  f"measure it with `{MEASURE_COMMAND}`")
    if not isinstance(speaker, Mapping) or not speaker:
        raise InvalidOptionError(f"speaker must map speaker names to weights, got {speaker!r}")
    weights: dict[str, float] = {}
    for name, weight in speaker.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise InvalidOptionError(f"speaker weight of {name!r} must be a number >= 0, got {weight!r}")
        if name not in known[model]:
            raise NoVoiceProfileError(f"no prosody profile for speaker {name!r} of model {model!r} (profiled: "
                                      f"{', '.join(sorted(known[model]))}); measure it with `{MEASURE_COMMAND}`")
        weights[name] = weights.get(name, 0.0) + float(weight)
    total = sum(weights.values())
    if total <= 0:
        raise InvalidOptionError(f"speaker weights sum to 0: {dict(speaker)!r}")
    parts = [(known[model][name], weight / total) for name, weight in weights.items() if weight > 0]
    if len(parts) == 1:
        return parts[0][0]

    def mean(field: str) -> float:
        return sum(getattr(p, field) * w for p, w in parts)

    return VoiceProfile(
        f0_mean_st=mean("f0_mean_st"),
        f0_range_st=mean("f0_range_st"),
        dynamics_db=mean("dynamics_db"),
        articulation_rate=math.exp(sum(math.log(p.articulation_rate) * w for p, w in parts)),
        pause_ratio=mean("pause_ratio"),
    )


def _ratio(reference: float, voice: float) -> float | None:
    """reference / voice, or None when either is not a positive finite number (not measured)."""
    if not (math.isfinite(reference) and math.isfinite(voice)) or reference <= 0 or voice <= 0:
        return None
    return reference / voice


def _times(factor: float) -> str:
    return f"{factor:.2f} times"


def reference_preset(reference: ReferenceProsody, profile: VoiceProfile, strength: float = 1.0
                     ) -> tuple[Preset, list[str]]:
    """The preset that makes a voice with `profile` speak like `reference`, `strength` (0..1) of the way, and a
    warning for every edit that was limited (or left out) to keep the voice recognizable.

    strength 0 gives exactly `NEUTRAL_PRESET` (and no warnings).
    """
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not math.isfinite(strength) \
            or not 0.0 <= strength <= 1.0:
        raise InvalidOptionError(f"reference strength must be a number from 0 to 1, got {strength!r}")
    if strength == 0:
        return NEUTRAL_PRESET, []
    s = float(strength)
    warnings: list[str] = []
    values: dict[str, float] = {}

    def clamp(name: str, value: float, message: str) -> None:
        low, high = LIMITS[name]
        if value < low or value > high:
            value = min(max(value, low), high)
            warnings.append(message.format(limit=value, magnitude=abs(value)))
        values[name] = value

    difference = reference.f0_mean_st - profile.f0_mean_st
    if math.isfinite(difference):
        side = "higher" if difference > 0 else "lower"
        clamp("level_st", s * difference,
              f"the reference speaks {abs(difference):.1f} st {side} than this voice; carried over up to "
              "{magnitude:g} st to keep the voice recognizable")

    described = {
        "range": (reference.f0_range_st, profile.f0_range_st, "pitch range (intonation)"),
        "rate": (reference.articulation_rate, profile.articulation_rate, "articulation rate"),
        "dynamics": (reference.dynamics_db, profile.dynamics_db, "loudness contrast"),
    }
    for name, (ours, theirs, what) in described.items():
        ratio = _ratio(ours, theirs)
        if ratio is None:
            warnings.append(f"the reference's {what} could not be measured; the voice's own is kept")
            continue
        clamp(name, ratio ** s,
              f"the reference's {what} is {_times(ratio)} this voice's; carried over as {{limit:.2f}} times "
              "to keep the voice natural")

    if reference.pause_ratio > 0:
        ratio = _ratio(reference.pause_ratio, profile.pause_ratio)
        if ratio is not None:
            clamp("pause", ratio ** s,
                  f"the reference pauses {_times(ratio)} as much as this voice; pauses scaled by {{limit:.2f}} "
                  "to keep the speech fluent")
    # No pause in the reference (a single phrase): nothing says how long its pauses would be; keep the voice's.

    preset = Preset(**values)
    return preset, warnings
