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
