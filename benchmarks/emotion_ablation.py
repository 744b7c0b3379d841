"""What in an emotion preset costs intelligibility: Whisper CER of Baker reading the default set with the preset,
with each group of its edits removed in turn, and with edits overridden, against the neutral reading.

    .venv/bin/python -m benchmarks.emotion_ablation --emotion sad [--parts all] [--set rate=0.9 --set level_st=-1.5]
                                                    [--limit N] [--voice baker:onnx:fp32]

Rows: neutral, the preset, the preset without each part (`PARTS`), and, when `--set` is given, the preset with those
fields changed (and that candidate without each part, with `--parts all`). CER pools errors over the characters of
the texts (qingyin.evaluate.cer); about 4 minutes a row on 2 cores for the 103 sentences.
"""

from __future__ import annotations

import argparse
import dataclasses

from tqdm import tqdm

from qingyin.evaluate.cer import WhisperTranscriber, character_errors
from qingyin.options import EMOTIONS
from qingyin.runtime.synthesizer import Synthesizer
from qingyin.style import presets
from qingyin.text.corpus import read_texts

# Groups of Preset fields removed together (set to neutral).
PARTS = {
    "timing": ("rate", "final_lengthening", "pause", "focus_lengthening"),
    "register": ("level_st",),
    "contour": ("declination_st", "final_st", "final_slope_st"),
    "range": ("range", "final_range", "focus_range"),
    "loudness": ("level_db", "dynamics", "focus_db"),
    "tilt": ("tilt_db",),
}


def without(preset: presets.Preset, part: str) -> presets.Preset:
    neutral = presets.NEUTRAL_PRESET
    return dataclasses.replace(preset, **{name: getattr(neutral, name) for name in PARTS[part]})


def overridden(preset: presets.Preset, settings: list[str]) -> presets.Preset:
    values = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if name not in {f.name for f in dataclasses.fields(presets.Preset)}:
            raise SystemExit(f"--set {setting!r}: {name!r} is not a Preset field")
        values[name] = float(value)
    return dataclasses.replace(preset, **values)


def corpus_cer(tts: Synthesizer, asr: WhisperTranscriber, texts: list[str], emotion: str | None,
               preset: presets.Preset | None, label: str) -> float:
    errors = chars = 0
    original = presets.PRESETS.get(emotion) if emotion else None
    try:
        if emotion:
            presets.PRESETS[emotion] = preset  # what blend() reads for this emotion
        for text in tqdm(texts, desc=label, unit="text", leave=False):
            result = tts.synthesize(text, emotion=emotion, intensity=1.0) if emotion else tts.synthesize(text)
            e, c = character_errors(text, asr.transcribe(result.audio, result.sample_rate), normalize=True)
            errors, chars = errors + e, chars + c
    finally:
        if emotion:
            presets.PRESETS[emotion] = original
    return errors / chars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emotion", required=True, choices=EMOTIONS[1:])
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a candidate: the preset with these fields changed (repeatable)")
    parser.add_argument("--parts", default="all", help=f"comma-separated of {', '.join(PARTS)}, all or none")
    parser.add_argument("--limit", type=int, help="only the first N sentences")
    parser.add_argument("--voice", default="baker:onnx:fp32", help="voice[:backend[:variant]]")
    args = parser.parse_args()
    parts = list(PARTS) if args.parts == "all" else [] if args.parts == "none" else args.parts.split(",")
    texts = read_texts()[: args.limit]
    selector, backend, *variant = args.voice.split(":")
    tts = Synthesizer(selector, backend=backend or None,
                      variant=variant[0] if variant else None)
    asr = WhisperTranscriber()
    base = presets.PRESETS[args.emotion]
    rows = {"neutral": (None, None), "preset": (args.emotion, base)}
    rows |= {f"preset without {p}": (args.emotion, without(base, p)) for p in parts}
    if args.set:
        candidate = overridden(base, args.set)
        rows[f"candidate ({', '.join(args.set)})"] = (args.emotion, candidate)
        rows |= {f"candidate without {p}": (args.emotion, without(candidate, p)) for p in parts}
    neutral = None
    print(f"| {args.voice}, {args.emotion}, {len(texts)} sentences | CER | change |\n|---|---|---|")
    for label, (emotion, preset) in rows.items():
        value = corpus_cer(tts, asr, texts, emotion, preset, label)
        neutral = value if neutral is None else neutral
        print(f"| {label} | {value:.4f} | {value - neutral:+.4f} |", flush=True)


if __name__ == "__main__":
    main()
