"""Emotion presets: how each of the seven emotions reshapes a voice's predicted prosody, and how intensity and
mixing scale them.

None of qingyin's voices was trained on emotional speech, and no emotional Mandarin recordings can be obtained
here: an emotion is rendered by editing the prosody the voice predicts (pitch register and range, declination,
the sentence-final contour, focus emphasis, loudness and its dynamics, rate, final lengthening, pauses, and
spectral tilt where the family allows it). It is prosody control, not an emotional voice.

Where the cues come from. The amounts are ours, kept moderate, and measured in BENCHMARKS.md ("Emotion"); the
comment above each preset names its cues.
- Juslin & Laukka 2003, "Communication of emotions in vocal expression and music performance", Psychological
  Bulletin 129(5), the cross-language review of vocal emotion cues: anger fast, loud, high, variable in pitch and
  bright (more high-frequency energy); fear fast and high with little pitch variability; happiness fast-ish, high
  and variable; sadness slow, soft, low, narrow, dark, with falling contours.
- Liu & Pell 2012, Behavior Research Methods 44(4): a validated set of Mandarin vocal emotions (anger, disgust,
  fear, sadness, happiness, pleasant surprise, neutral) with their acoustic profiles: the emotion set, and the
  high, wide pitch of surprise and the low, slow delivery of sadness and disgust.
- Lin & Fon 2012, Speech Prosody (Taiwan Mandarin emotional speech): emotions differ in register, range,
  loudness and tempo, not in the shapes of the tones.
- Tao, Kang & Li 2006, "Prosody conversion from neutral speech to emotional speech", IEEE TASLP 14(4): Mandarin
  neutral-to-emotional conversion, where plain linear scaling of F0 and duration was judged the worst method. So
  the presets move the pitch register and widen or narrow the range around each syllable's own contour, shape the
  final syllable and the focus word separately, and never flatten a tone.
- Gong et al. 2023, Behavior Research Methods (seven Mandarin emotions at two intensities): emotions as graded,
  not on/off. The concave intensity curve (`strength`) is our choice, so that intensity 2 stays short of
  caricature; it is not a finding taken from that study.
Peers' users complain that emotion sounds exaggerated and loses the speaker (CosyVoice #1057, index-tts #314): the
presets stay within a few semitones and decibels, and intensity 2 is only `strength(2)` = 1.37 times the preset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from qingyin.options import EMOTIONS, INTENSITY, MAX_MIX_WEIGHT, NEUTRAL, InvalidOptionError

# Fields that multiply (blended and scaled in the log domain); the others add (semitones, decibels).
FACTORS = frozenset({"range", "final_range", "focus_range", "focus_lengthening", "dynamics", "rate",
                     "final_lengthening", "pause"})


@dataclass(frozen=True)
class Preset:
    """Edits of a voice's predicted prosody. Neutral (the defaults) changes nothing."""

    level_st: float = 0.0  # pitch register, semitones
    range: float = 1.0  # pitch excursions around the register (tonal contours kept, only widened or narrowed)
    declination_st: float = 0.0  # extra pitch change from the sentence's first to its last syllable
    final_st: float = 0.0  # register of the sentence's last syllable, relative to the rest
    final_slope_st: float = 0.0  # pitch movement across the last syllable: > 0 rising, < 0 falling
    final_range: float = 1.0  # excursions of the last syllable (a wider high-falling tone for anger)
    focus_range: float = 1.0  # excursions of the focus word of each phrase (its last prosodic word)
    focus_db: float = 0.0  # loudness of the focus word
    focus_lengthening: float = 1.0  # duration of the focus word
    level_db: float = 0.0  # loudness
    dynamics: float = 1.0  # loudness contrasts: the level differences between syllables times this, on the audio
    rate: float = 1.0  # articulation rate, > 1 faster
    final_lengthening: float = 1.0  # duration of the last syllable of each phrase
    pause: float = 1.0  # length of pauses inside the sentence
    tilt_db: float = 0.0  # spectral balance, high against low frequencies (families with the tilt capability)

    def scaled(self, amount: float) -> Preset:
        """This preset's edits times `amount` (0: neutral; factors scale in the log domain)."""
        return Preset(**{f.name: _scale(f.name, getattr(self, f.name), amount) for f in fields(self)})

    def plus(self, other: Preset) -> Preset:
        """Both edits together (factors multiply, the others add)."""
        return Preset(**{f.name: (getattr(self, f.name) * getattr(other, f.name) if f.name in FACTORS
                                  else getattr(self, f.name) + getattr(other, f.name)) for f in fields(self)})

    @property
    def neutral(self) -> bool:
        return self == NEUTRAL_PRESET


def _scale(name: str, value: float, amount: float) -> float:
    return value ** amount if name in FACTORS else value * amount


NEUTRAL_PRESET = Preset()

PRESETS: dict[str, Preset] = {
    NEUTRAL: NEUTRAL_PRESET,
    # Higher and wider, a little faster and louder, brighter; less declination, a lightly raised end.
    "happy": Preset(level_st=2.0, range=1.25, declination_st=0.5, final_st=0.5, final_slope_st=0.5,
                    focus_range=1.15, focus_db=1.0, level_db=1.5, dynamics=1.15, rate=1.06, pause=0.9, tilt_db=1.5),
    # Lower and narrower, slower and softer, longer pauses and finals, darker; the end low and flat. Narrowing the
    # last syllable takes out part of a declarative's final fall, so its register goes down 2.5 st to end low
    # (at -1 st Kokoro's end sat above the neutral one: BENCHMARKS.md, "Sad's low end").
    "sad": Preset(level_st=-2.0, range=0.7, declination_st=-0.5, final_st=-2.5, final_range=0.7, level_db=-3.0,
                  dynamics=0.8, rate=0.85, final_lengthening=1.2, pause=1.35, tilt_db=-2.5),
    # Loud, wide and bright, steeper declination, a high-falling end, the focus word hit hard. Range 1.25: at 1.35
    # yunxi's Whisper CER sat just above the +0.02 gate (BENCHMARKS.md, "What angry costs Whisper on yunxi").
    "angry": Preset(level_st=1.5, range=1.25, declination_st=-1.0, final_st=1.0, final_slope_st=-1.5,
                    final_range=1.4, focus_range=1.25, focus_db=1.5, level_db=3.0, dynamics=1.3, rate=1.08,
                    final_lengthening=0.95, pause=0.85, tilt_db=2.0),
    # Highest and widest, a rising and lengthened end. The last syllable's excursions are narrowed: a wider range
    # deepens a declarative's final fall (it widens around the voice's mean) and hid the rise.
    "surprise": Preset(level_st=2.5, range=1.4, declination_st=1.0, final_st=2.0, final_slope_st=4.0,
                       final_range=0.75, focus_range=1.2, focus_db=1.5, level_db=2.0, dynamics=1.2,
                       final_lengthening=1.15, tilt_db=1.5),
    # High but narrow (tense), fast, quieter, with hesitant pauses.
    "fear": Preset(level_st=2.5, range=0.85, final_st=0.5, final_slope_st=0.5, final_range=0.9, level_db=-1.0,
                   dynamics=0.9, rate=1.12, final_lengthening=0.95, pause=1.15, tilt_db=0.5),
    # Low, slow and drawn out, the focus word lengthened, a falling end.
    "disgust": Preset(level_st=-1.5, range=0.9, declination_st=-0.5, final_st=-1.0, final_slope_st=-1.0,
                      final_range=1.2, focus_lengthening=1.15, level_db=-1.0, rate=0.88, final_lengthening=1.25,
                      pause=1.15, tilt_db=-1.0),
}
assert tuple(PRESETS) == EMOTIONS

# Concave: strength(0) = 0, strength(1) = 1, strength(2) = 1.37; the step from neutral to the preset is the big one.
# (At 1.6 times the preset, intensity 2 cost Baker up to +0.09 CER and -0.3 DNSMOS: BENCHMARKS.md, "Emotion".)
_CURVE = 1.0


def strength(intensity: float) -> float:
    """How much of a preset an intensity gives: monotonic, exactly 0 at 0 and 1 at 1, about 1.37 at 2."""
    return (1.0 - math.exp(-_CURVE * intensity)) / (1.0 - math.exp(-_CURVE))


EmotionLike = str | Mapping[str, float] | None


def parse_mix(text: str) -> dict[str, float]:
    """"happy" -> {"happy": 1.0}; "happy:0.6,surprise:0.3" -> {"happy": 0.6, "surprise": 0.3} (unchecked)."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, colon, weight = part.partition(":")
        try:
            value = float(weight) if colon else 1.0
        except ValueError:
            raise InvalidOptionError(f"emotion mix {text!r}: {weight!r} is not a weight; write e.g. "
                                     "happy:0.6,surprise:0.3") from None
        mix[name.strip().lower()] = mix.get(name.strip().lower(), 0.0) + value
    return mix


def emotion_weights(emotion: EmotionLike) -> dict[str, float]:
    """An emotion name, a mix {"happy": 0.6, "surprise": 0.3} or its text form "happy:0.6,surprise:0.3", as checked
    weights (neutral: {})."""
    if emotion is None:
        return {}
    if isinstance(emotion, str):
        emotion = parse_mix(emotion)
    if isinstance(emotion, Mapping):
        mix = {}
        for name, weight in emotion.items():
            if not isinstance(name, str):
                raise InvalidOptionError(f"emotion mix keys must be emotion names, got {name!r}")
            if not isinstance(weight, int | float) or isinstance(weight, bool) or not math.isfinite(weight) \
                    or weight < 0:
                raise InvalidOptionError(f"emotion weight of {name!r} must be a number >= 0, got {weight!r}")
            mix[name.strip().lower()] = mix.get(name.strip().lower(), 0.0) + float(weight)
    else:
        raise InvalidOptionError(f"emotion must be a name or a mapping of names to weights, got "
                                 f"{type(emotion).__name__}")
    unknown = sorted(name for name in mix if name not in PRESETS)
    if unknown:
        raise InvalidOptionError(f"unknown emotion(s) {unknown}; known: {', '.join(EMOTIONS)}")
    total = sum(mix.values())
    if total > MAX_MIX_WEIGHT + 1e-9:
        raise InvalidOptionError(f"emotion weights sum to {total:g}; at most {MAX_MIX_WEIGHT:g} "
                                 "(e.g. {\"happy\": 0.6, \"surprise\": 0.3})")
    return {name: weight for name, weight in mix.items() if name != NEUTRAL or len(mix) > 1}


def check_intensity(intensity: object) -> float:
    low, high = INTENSITY.range
    if not isinstance(intensity, int | float) or isinstance(intensity, bool) or not math.isfinite(intensity) \
            or not low <= intensity <= high:
        raise InvalidOptionError(f"intensity must be a number between {low:g} and {high:g}, got {intensity!r}")
    return float(intensity)


def blend(emotion: EmotionLike, intensity: float = INTENSITY.default) -> Preset:
    """The edits of an emotion (or mix) at an intensity.

    A mix is the weighted average of its presets, at the strength of intensity times the weights' sum: so
    {"happy": 0.6, "surprise": 0.3} is two parts happy to one part surprise at intensity 0.9. Neutral in a mix
    dilutes it. Intensity 0, or neutral alone, gives exactly NEUTRAL_PRESET.
    """
    weights = emotion_weights(emotion)
    intensity = check_intensity(intensity)
    total = sum(weights.values())
    if total == 0 or intensity == 0:
        return NEUTRAL_PRESET
    amount = strength(intensity * total)
    combined = NEUTRAL_PRESET
    for name, weight in weights.items():
        combined = combined.plus(PRESETS[name].scaled(weight / total))
    return combined.scaled(amount)
