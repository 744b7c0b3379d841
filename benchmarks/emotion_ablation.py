"""What in an emotion preset costs intelligibility: Whisper CER of Baker reading the default set with the preset,
with each group of its edits removed in turn, and with edits overridden, against the neutral reading.

    .venv/bin/python -m benchmarks.emotion_ablation --emotion sad [--parts all] [--set rate=0.9 --set level_st=-1.5]
                                                    [--only rate,tilt] [--intensity 1] [--limit N]
                                                    [--voice baker:onnx:fp32] [--noise-floor] [--json F]

Rows: neutral, the preset, the preset without each part (`PARTS`), the preset with nothing but each part of
`--only`, and, when `--set` is given, the preset with those fields changed (and that candidate without each part,
with `--parts all`). Every row but the noise floor's is rendered at `--intensity`. CER pools errors over the
characters of the texts (qingyin.evaluate.cer); about 1.5 minutes a row on a quiet 2-core machine for the 103
sentences (4 under load).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from tqdm import tqdm

from qingyin.evaluate.cer import WhisperTranscriber, character_errors
from qingyin.options import EMOTIONS
from qingyin.runtime.synthesizer import Synthesizer
from qingyin.style import presets
from qingyin.text.corpus import read_texts

# Groups of Preset fields removed together (set to neutral). `--parts all` removes the groups of GROUPS in turn; the
# timing group's three parts can be named on their own.
PARTS = {
    "timing": ("rate", "final_lengthening", "pause", "focus_lengthening"),
    "register": ("level_st",),
    "contour": ("declination_st", "final_st", "final_slope_st"),
    "range": ("range", "final_range", "focus_range"),
    "loudness": ("level_db", "dynamics", "focus_db"),
    "tilt": ("tilt_db",),
    "rate": ("rate",),
    "lengthening": ("final_lengthening", "focus_lengthening"),
    "pauses": ("pause",),
}
GROUPS = ("timing", "register", "contour", "range", "loudness", "tilt")


def without(preset: presets.Preset, part: str) -> presets.Preset:
    neutral = presets.NEUTRAL_PRESET
    return dataclasses.replace(preset, **{name: getattr(neutral, name) for name in PARTS[part]})


def only(preset: presets.Preset, part: str) -> presets.Preset:
    return dataclasses.replace(presets.NEUTRAL_PRESET, **{name: getattr(preset, name) for name in PARTS[part]})


def overridden(preset: presets.Preset, settings: list[str]) -> presets.Preset:
    values = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if name not in {f.name for f in dataclasses.fields(presets.Preset)}:
            raise SystemExit(f"--set {setting!r}: {name!r} is not a Preset field")
        values[name] = float(value)
    return dataclasses.replace(preset, **values)


def corpus_cer(tts: Synthesizer, asr: WhisperTranscriber, texts: list[str], emotion: str | None,
               preset: presets.Preset | None, label: str, intensity: float = 1.0) -> tuple[float, list[dict]]:
    """(pooled CER, per sentence: errors, characters, transcript)."""
    rows = []
    original = presets.PRESETS.get(emotion) if emotion else None
    try:
        if emotion:
            presets.PRESETS[emotion] = preset  # what blend() reads for this emotion
        for text in tqdm(texts, desc=label, unit="text", leave=False):
            result = tts.synthesize(text, emotion=emotion, intensity=intensity) if emotion else tts.synthesize(text)
            heard = asr.transcribe(result.audio, result.sample_rate)
            errors, chars = character_errors(text, heard, normalize=True)
            rows.append({"text": text, "heard": heard, "errors": errors, "chars": chars})
    finally:
        if emotion:
            presets.PRESETS[emotion] = original
    return sum(r["errors"] for r in rows) / sum(r["chars"] for r in rows), rows


def concentration(rows: list[dict], neutral: list[dict], top: int = 3) -> str:
    """How much of the change from neutral the `top` sentences that changed most account for."""
    changes = sorted((r["errors"] - n["errors"] for r, n in zip(rows, neutral, strict=True)), key=abs, reverse=True)
    total = sum(changes)
    return f"{top} sentences: {sum(changes[:top]):+d} of {total:+d} errors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emotion", required=True, choices=EMOTIONS[1:])
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a candidate: the preset with these fields changed (repeatable)")
    parser.add_argument("--parts", default="all", help=f"comma-separated of {', '.join(PARTS)}; all (the groups "
                        f"{', '.join(GROUPS)}) or none")
    parser.add_argument("--only", default="", help="comma-separated parts: a row with nothing but each")
    parser.add_argument("--intensity", type=float, default=1.0, help="the intensity every row is rendered at")
    parser.add_argument("--limit", type=int, help="only the first N sentences")
    parser.add_argument("--voice", default="baker:onnx:fp32", help="voice[:backend[:variant]]")
    parser.add_argument("--noise-floor", action="store_true",
                        help="add neutral rendered 2 %% slower and 2 %% faster: the CER's noise")
    parser.add_argument("--json", type=Path, help="write every row's per-sentence errors and transcripts here")
    args = parser.parse_args()
    parts = list(GROUPS) if args.parts == "all" else [] if args.parts == "none" else args.parts.split(",")
    kept = [p for p in args.only.split(",") if p]
    unknown = [p for p in parts + kept if p not in PARTS]
    if unknown:
        raise SystemExit(f"--parts/--only: unknown {unknown}; known: {', '.join(PARTS)}, all, none")
    texts = read_texts()[: args.limit]
    selector, backend, *variant = args.voice.split(":")
    tts = Synthesizer(selector, backend=backend or None,
                      variant=variant[0] if variant else None)
    asr = WhisperTranscriber()
    base = presets.PRESETS[args.emotion]
    rows = {"neutral": (None, None), "preset": (args.emotion, base)}
    rows |= {f"preset without {p}": (args.emotion, without(base, p)) for p in parts}
    rows |= {f"only {p}": (args.emotion, only(base, p)) for p in kept}
    if args.set:
        candidate = overridden(base, args.set)
        rows[f"candidate ({', '.join(args.set)})"] = (args.emotion, candidate)
        rows |= {f"candidate without {p}": (args.emotion, without(candidate, p)) for p in parts}
    if args.noise_floor:  # near-neutral edits: how far the CER moves when nothing audible changes
        rows |= {f"neutral at rate {rate:g}": (args.emotion, presets.Preset(rate=rate)) for rate in (0.98, 1.02)}
    neutral: tuple[float, list[dict]] | None = None
    report = []
    print(f"| {args.voice}, {args.emotion} at {args.intensity:g}, {len(texts)} sentences | CER | change | "
          "the most changed |\n"
          "|---|---|---|---|")
    for label, (emotion, preset) in rows.items():
        # the noise-floor rows are exact rates: rendered at intensity 1, where a preset is taken as it is
        intensity = 1.0 if label.startswith("neutral at rate") else args.intensity
        value, sentences = corpus_cer(tts, asr, texts, emotion, preset, label, intensity)
        neutral = neutral or (value, sentences)
        print(f"| {label} | {value:.4f} | {value - neutral[0]:+.4f} | {concentration(sentences, neutral[1])} |",
              flush=True)
        report.append({"row": label, "cer": value, "preset": dataclasses.asdict(preset) if preset else None,
                       "sentences": sentences})
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
