"""Every public synthesis knob, defined once: name, default, range and help. The CLI flags, Python kwargs, JSON
schemas, SSML <prosody> limits and the web UI's sliders all read this table (dependency-free: importable from
every layer)."""

from __future__ import annotations

from dataclasses import dataclass


class InvalidOptionError(ValueError):
    """A synthesis option is out of range; the message names the option and the valid range."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: float
    low: float
    high: float
    help: str

    @property
    def range(self) -> tuple[float, float]:
        return self.low, self.high

    def describe(self) -> str:
        """The help with the range, e.g. 'speaking rate, 2 = twice as fast (0.25-4, default 1)'."""
        return f"{self.help} ({self.low:g}-{self.high:g}, default {self.default:g})"


SPEED = Setting("speed", 1.0, 0.25, 4.0, "speaking rate, 2 = twice as fast")
PITCH = Setting("pitch", 1.0, 0.0, 3.0,
                "pitch excursion scale: >1 livelier, <1 flatter intonation (not a transposition)")
ENERGY = Setting("energy", 1.0, 0.0, 3.0, "energy excursion scale (not a gain)")
SENTENCE_PAUSE = Setting("sentence_pause", 0.2, 0.0, 5.0, "seconds of silence between sentences")

SETTINGS = {s.name: s for s in (SPEED, PITCH, ENERGY, SENTENCE_PAUSE)}

# Emotion and reference prosody (qingyin.style): rendered by editing the predicted prosody of every voice.
NEUTRAL = "neutral"
EMOTIONS = (NEUTRAL, "happy", "sad", "angry", "surprise", "fear", "disgust")
INTENSITY = Setting("intensity", 1.0, 0.0, 2.0,
                    "emotion intensity: 0 = neutral, 1 = the preset, 2 = strong (capped below caricature)")
REFERENCE_STRENGTH = Setting("reference_strength", 1.0, 0.0, 1.0,
                             "how far the reference recording's prosody is carried over: 0 = not at all, 1 = fully")
MAX_MIX_WEIGHT = 2.0  # the weights of an emotion mix ({"happy": 0.6, "surprise": 0.3}) sum to at most this
STYLE_SETTINGS = {s.name: s for s in (INTENSITY, REFERENCE_STRENGTH)}
