"""Emotion and reference prosody, measured: what each preset does to each voice family, and how far a reference
recording's prosody carries over.

    .venv/bin/python -m benchmarks.emotion [--voices baker:onnx:variant=fp32,yunxi] [--texts 8]
                                           [--part emotions|reference|all] [--intensities 0.5,1,2]
                                           [--emotions happy,sad,...] [--json FILE]

**Emotions.** For every voice, each emotion at intensity 0.5, 1 and 2 against the same voice's neutral reading of
the first `--texts` sentences of the default text set (`qingyin eval`'s runner: Whisper CER, DNSMOS, resemblyzer
speaker similarity to the neutral reading of the same sentence, WORLD prosody descriptors). Per row: the change
of mean F0 (semitones), of F0 spread (standard deviation of log-F0, semitones; 95th-5th percentile range in the
JSON), of loudness (dB RMS over speech), the articulation-rate ratio, the change of pause time, of the final
syllable's level against the sentence's mean and of its slope (semitones over its last 200 ms of voicing), and
the change of CER and DNSMOS. The gates: CER within +0.02 of neutral at intensity 1 and +0.04 at 2; DNSMOS within
-0.2; speaker similarity >= 0.85 at intensity 1. "monotonic" checks that each cue the preset moves moves further
at 1 than at 0.5 and at 2 than at 1.

**Reference.** References rendered by our own voices at other settings (another speaker, slower or faster,
sadder or livelier; one with its loudness stepped up and down afterwards, for contrasts no setting gives), each
measured with `qingyin.style.reference.analyze_reference`; every target voice reads five other sentences
(TARGET_TEXT) neutrally and with the reference at strength 1, measured the same way. "moved" is
(with reference - neutral) / (reference - neutral) per descriptor: 1 = all the way to the reference, 0 = not at
all; the transfer's limits (qingyin.style.transfer.LIMITS) stop it short for references far from the voice, and
a reference closer to the voice than RESOLUTION is "too close to tell".
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qingyin.evaluate.runner import run_eval
from qingyin.evaluate.variants import parse_variant
from qingyin.options import EMOTIONS
from qingyin.runtime.synthesizer import Synthesizer
from qingyin.style.reference import analyze_reference
from qingyin.text.corpus import read_texts

INTENSITIES = (0.5, 1.0, 2.0)
# The direction the studies report (qingyin/style/presets.py names them), next to what we measure.
REPORTED = {
    "happy": "F0 up, wider; louder; faster",
    "sad": "F0 down, narrower; softer; slower; longer pauses; low flat end",
    "angry": "louder; F0 up, wider; faster; high-falling end",
    "surprise": "F0 up most, widest; rising end",
    "fear": "F0 up, narrow; faster",
    "disgust": "F0 down; slower, drawn out; falling end",
}
# The cues each preset moves, by the descriptor that shows them: (descriptor, sign of the change)
CUES = {
    "happy": [("f0_mean_st", 1), ("rms_dbfs", 1), ("speaking_rate", 1)],
    "sad": [("f0_mean_st", -1), ("rms_dbfs", -1), ("speaking_rate", -1)],
    "angry": [("f0_mean_st", 1), ("rms_dbfs", 1), ("speaking_rate", 1)],
    "surprise": [("f0_mean_st", 1), ("f0_std_st", 1), ("final_slope_st", 1)],
    "fear": [("f0_mean_st", 1), ("speaking_rate", 1)],
    "disgust": [("f0_mean_st", -1), ("speaking_rate", -1)],
}
REFERENCE_DESCRIPTORS = ("f0_mean_st", "f0_range_st", "articulation_rate", "pause_ratio", "dynamics_db")


def emotion_rows(voice: str, texts: list[str], intensities: tuple[float, ...] = INTENSITIES,
                 emotions: tuple[str, ...] = EMOTIONS[1:]) -> dict[str, object]:
    """The emotion table of one voice (and the runner's report)."""
    variants = [voice] + [f"{voice}:emotion={e},intensity={i:g}" for e in emotions for i in intensities]
    with tqdm(total=len(texts) * len(variants), desc=f"emotions on {voice}", unit="clip") as bar:
        report = run_eval(texts, variants, reference_spec=voice, metrics=("cer", "dnsmos", "prosody", "speaker"),
                          progress=bar.update)
    summary = report["summary"]
    base = summary[report["reference_variant"]]["mean"]
    rows = []
    for emotion in emotions:
        levels = []
        for intensity in intensities:
            name = next(n for n in summary if f"emotion={emotion}," in n and f"intensity={intensity:g}" in n)
            mean = summary[name]["mean"]
            levels.append(mean)
            rows.append({
                "emotion": emotion, "intensity": intensity,
                "f0_st": mean["f0_mean_st"] - base["f0_mean_st"],
                "f0_spread_st": mean["f0_std_st"] - base["f0_std_st"],
                "f0_range_st": mean["f0_range_st"] - base["f0_range_st"],
                "loudness_db": mean["rms_dbfs"] - base["rms_dbfs"],
                "rate_ratio": mean["speaking_rate"] / base["speaking_rate"],
                "pause_s": mean["pause_time_s"] - base["pause_time_s"],
                "final_level_st": mean["final_level_st"] - base["final_level_st"],
                "final_slope_st": mean["final_slope_st"] - base["final_slope_st"],
                "cer": mean["cer"] - base["cer"],
                "dnsmos": mean["dnsmos_ovrl"] - base["dnsmos_ovrl"],
                "speaker_similarity": mean["speaker_similarity"],
            })
        rows[-1]["monotonic"] = all(_monotonic(base, levels, key, sign) for key, sign in CUES[emotion])
        for row in rows[-len(intensities):]:
            row["monotonic"] = rows[-1]["monotonic"]
    return {"voice": voice, "neutral": base, "rows": rows, "report": report}


def _monotonic(base: dict, levels: list[dict], key: str, sign: int) -> bool:
    changes = [sign * (level[key] - base[key]) for level in levels]
    return changes[0] > 0 and all(b > a for a, b in zip(changes, changes[1:], strict=False))


def gates(row: dict) -> str:
    """Which of the issue's gates the row misses ('' when none)."""
    misses = []
    if row["intensity"] == 1.0 and row["cer"] > 0.02 or row["intensity"] == 2.0 and row["cer"] > 0.04:
        misses.append("CER")
    if row["dnsmos"] < -0.2:
        misses.append("DNSMOS")
    if row["intensity"] == 1.0 and row["speaker_similarity"] < 0.85:
        misses.append("speaker")
    return ", ".join(misses)


def format_emotions(result: dict) -> str:
    lines = [f"#### {result['voice']}", "",
             "| emotion | int. | F0 st | F0 spread st | loudness dB | rate × | pause s | final level st | "
             "final slope st | CER Δ | DNSMOS Δ | spk sim | monotonic | gates missed | reported direction |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(
            f"| {row['emotion']} | {row['intensity']:g} | {row['f0_st']:+.2f} | {row['f0_spread_st']:+.2f} | "
            f"{row['loudness_db']:+.2f} | {row['rate_ratio']:.3f} | {row['pause_s']:+.3f} | "
            f"{row['final_level_st']:+.2f} | {row['final_slope_st']:+.2f} | {row['cer']:+.3f} | "
            f"{row['dnsmos']:+.2f} | {row['speaker_similarity']:.3f} | {'yes' if row['monotonic'] else 'no'} | "
            f"{gates(row) or '-'} | {REPORTED[row['emotion']] if row['intensity'] == 1.0 else ''} |")
    base = result["neutral"]
    lines.append("")
    lines.append(f"Neutral: F0 {base['f0_mean_st']:.2f} st re 100 Hz, CER {base['cer']:.3f}, DNSMOS "
                 f"{base['dnsmos_ovrl']:.2f}, {base['speaking_rate']:.2f} syllables/s.")
    return "\n".join(lines)


# --- reference transfer ---------------------------------------------------------------------------------------

REFERENCE_TEXT = ("今天天气很好，我们一起去公园散步吧。请您在听到提示音后留言，我们会尽快给您回复。"
                  "他昨天晚上十点才回到家里。")
CONTRAST_DB, CONTRAST_S = 8.0, 0.5  # the "stronger loudness contrasts" reference: +-8 dB, switching every 0.5 s


def louder_and_softer(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """`audio` alternately CONTRAST_DB louder and softer, switching every CONTRAST_S seconds (40 ms ramps), peak
    normalized: stronger loudness contrasts between syllables than the voice's own. A sine of the same depth would
    also hide syllables in its troughs and read as slower speech."""
    seconds = np.arange(audio.size) / sample_rate
    square = np.tanh(8.0 * np.sin(np.pi * seconds / CONTRAST_S))  # (N,) +-1
    out = audio * 10.0 ** (CONTRAST_DB * square / 20.0)
    return (0.9 * out / np.max(np.abs(out))).astype(np.float32)


# name -> (voice, options, what is done to the rendering afterwards)
REFERENCES: dict[str, tuple[str, dict[str, object], Callable[[np.ndarray, int], np.ndarray] | None]] = {
    "yunjian (low male), slow": ("yunjian", {"speed": 0.75}, None),
    "xiaoyi (high female), fast, happy": ("xiaoyi", {"speed": 1.35, "emotion": "happy", "intensity": 1.5}, None),
    "baker, sad, slow, long pauses": ("baker", {"emotion": "sad", "intensity": 2.0, "speed": 0.85,
                                                "sentence_pause": 0.6}, None),
    f"xiaobei, ±{CONTRAST_DB:g} dB every {CONTRAST_S:g} s afterwards": ("xiaobei", {}, louder_and_softer),
}
# Smaller differences between a reference and the neutral voice than these are within the measurement's noise:
# "moved" is not computed for them.
RESOLUTION = {"f0_mean_st": 1.0, "f0_range_st": 1.0, "articulation_rate": 0.3, "pause_ratio": 0.03,
              "dynamics_db": 0.5}
TARGET_TEXT = ("周末的时候，我喜欢在家里看书，有时候也会去图书馆。这家店的咖啡很好喝，价格也不贵。"
               "明天早上我们八点出发，路上大概要走两个小时。如果下雨的话，比赛就改到下个星期。"
               "她说这本小说的结尾让人很感动。")


def reference_rows(voices: list[str]) -> list[dict]:
    engines: dict[str, Synthesizer] = {}

    def engine(name: str) -> Synthesizer:  # a variant as the emotion table takes it (qingyin eval's)
        if name not in engines:
            spec = parse_variant(name)
            engines[name] = Synthesizer(spec.voice, backend=spec.backend, variant=spec.variant, prosody=spec.prosody)
        return engines[name]

    neutral = {}
    for target in voices:
        plain = engine(target).synthesize(TARGET_TEXT)
        neutral[target] = analyze_reference(plain.audio, plain.sample_rate)
    rows = []
    for label, (voice, options, after) in tqdm(REFERENCES.items(), desc="references", unit="reference"):
        result = engine(voice).synthesize(REFERENCE_TEXT, **options)
        audio = result.audio if after is None else after(result.audio, result.sample_rate)
        reference = analyze_reference(audio, result.sample_rate)
        for target in voices:
            moved = engine(target).synthesize(TARGET_TEXT, reference=reference, reference_strength=1.0)
            before, after_ = neutral[target], analyze_reference(moved.audio, moved.sample_rate)
            row = {"reference": label, "target": target, "warnings": list(moved.warnings)}
            for key in REFERENCE_DESCRIPTORS:
                ref, start, end = getattr(reference, key), getattr(before, key), getattr(after_, key)
                row[key] = {"reference": ref, "neutral": start, "with_reference": end,
                            "moved": (end - start) / (ref - start) if abs(ref - start) >= RESOLUTION[key]
                            else math.nan}
            rows.append(row)
    return rows


def format_reference(rows: list[dict]) -> str:
    lines = ["| reference | target | " + " | ".join(REFERENCE_DESCRIPTORS) + " |",
             "|---|---|" + "---|" * len(REFERENCE_DESCRIPTORS)]
    for row in rows:
        cells = [f"{row[k]['neutral']:.2f} → {row[k]['with_reference']:.2f} (ref {row[k]['reference']:.2f}; "
                 + ("too close to tell)" if math.isnan(row[k]["moved"]) else f"moved {row[k]['moved']:.0%})")
                 for k in REFERENCE_DESCRIPTORS]
        lines.append(f"| {row['reference']} | {row['target']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", default="baker:onnx,yunxi", help="comma-separated variants (qingyin eval's)")
    parser.add_argument("--texts", type=int, default=8, help="sentences of the default text set")
    parser.add_argument("--intensities", default=",".join(f"{i:g}" for i in INTENSITIES),
                        help="comma-separated intensities of the emotion table (monotonic: over these)")
    parser.add_argument("--emotions", default=",".join(EMOTIONS[1:]), help="comma-separated emotions of the table")
    parser.add_argument("--part", choices=("emotions", "reference", "all"), default="all")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*pkg_resources.*")
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    out: dict[str, object] = {}
    if args.part in ("emotions", "all"):
        texts = read_texts()[: args.texts]
        intensities = tuple(float(i) for i in args.intensities.split(","))
        emotions = tuple(e.strip() for e in args.emotions.split(",") if e.strip())
        unknown = [e for e in emotions if e not in EMOTIONS[1:]]
        if unknown:
            raise SystemExit(f"--emotions: unknown {unknown}; known: {', '.join(EMOTIONS[1:])}")
        out["emotions"] = [emotion_rows(voice, texts, intensities, emotions) for voice in voices]
        for result in out["emotions"]:
            print(format_emotions(result), "\n", flush=True)
        _write(args.json, out)  # kept even if the reference part then fails
    if args.part in ("reference", "all"):
        out["reference"] = reference_rows(voices)
        print(format_reference(out["reference"]))
        _write(args.json, out)


def _write(path: Path | None, out: dict[str, object]) -> None:
    if path:
        path.write_text(json.dumps(out, ensure_ascii=False, indent=1, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
