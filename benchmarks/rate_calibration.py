"""How the reference analysis responds to a change of speaking rate and of loudness contrasts, on our own voices.

    .venv/bin/python -m benchmarks.rate_calibration [--voices baker,yunxi,yunjian,xiaoyi] [--sentences 3]
        [--speeds 0.7,0.85,1.0,1.2,1.4] [--dynamics-voices baker,yunxi] [--part rate|dynamics|all] [--threads 2]
        [--json FILE]

The constants in qingyin/style/reference.py come from `--part rate --sentences 12` (80 renderings, about 23 min
of CPU on 2 cores); the default (one passage per voice, both parts) takes about 7 min of CPU.

**Rate.** Each voice speaks the first `--sentences` sentences of the default evaluation set
(qingyin/text/data/zh_default.txt) as passages of three, as benchmarks/voice_profiles.py builds them, at every
speed; every rendering is measured with `qingyin.style.reference.analyze_reference`. The sentences are all hanzi,
so the true syllable count is known: the true rate is it over the articulation time the analysis measured, the
estimated rate the syllable nuclei over the same time (before the calibration). Relative to the same passage at
speed 1, log(estimated ratio) = k * log(true ratio) is fitted through the origin per voice and over all voices,
with the RMS of the residuals (log units: 0.05 is about 5 %). The pivot P is where the calibrated rate
P * (estimated / P) ** (1 / k) best matches the true rate over all renderings (least squares in log units).
qingyin/style/reference.py carries k and P (RATE_RESPONSE, RATE_PIVOT); the table also shows how far its
calibrated rate is from the true one.

**Dynamics.** Baker and yunxi (`--dynamics-voices`) read the same passages with the style preset's `dynamics`
(loudness contrasts: each syllable's level difference from the sentence's, times the factor, on the audio) at 0.5,
0.7, 1.4 and 2.0 (set through a reference that matches the voice's profile in everything else), and dynamics_db
(the standard deviation of the smoothed level at the syllable nuclei) is measured: how much of the requested
change the voices realize.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.voice_profiles import HANZI, passages
from qingyin.runtime.pool import ModelPool
from qingyin.runtime.synthesizer import Synthesizer
from qingyin.style.reference import RATE_PIVOT, RATE_RESPONSE, ReferenceProsody, analyze_reference
from qingyin.style.transfer import profile_for
from qingyin.text.corpus import read_texts
from qingyin.voices.registry import VOICES

DYNAMICS = (0.5, 0.7, 1.0, 1.4, 2.0)


def slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares k in y = k * x (through the origin) and the RMS of the residuals."""
    k = float(x @ y / (x @ x))
    return k, float(np.sqrt(np.mean((y - k * x) ** 2)))


# --- rate ---------------------------------------------------------------------------------------------------


def rate_rows(voices: list[str], texts: list[str], speeds: list[float], models: ModelPool) -> list[dict]:
    rows = []
    for voice in voices:
        tts = Synthesizer(voice, models=models)
        began = time.perf_counter()
        for index, text in enumerate(texts):
            for speed in speeds:
                result = tts.synthesize(text, speed=speed)
                prosody = analyze_reference(result.audio, result.sample_rate)
                articulation_s = prosody.duration_s * (1.0 - prosody.pause_ratio)
                rows.append({"voice": voice, "passage": index, "speed": speed, "articulation_s": articulation_s,
                             "syllables": len(HANZI.findall(text)), "nuclei": prosody.syllable_nuclei,
                             "calibrated_rate": prosody.articulation_rate})
        print(f"  {voice}: {len(texts) * len(speeds)} renderings in {time.perf_counter() - began:.0f} s",
              file=sys.stderr, flush=True)
    return rows


def fit_rate(rows: list[dict]) -> dict:
    """Per voice and overall: k, residual RMS (log units), and the pivot P over all renderings."""
    for row in rows:
        row["true_rate"] = row["syllables"] / row["articulation_s"]
        row["estimated_rate"] = row["nuclei"] / row["articulation_s"]
    base = {(r["voice"], r["passage"]): r for r in rows if r["speed"] == 1.0}
    moved = [r for r in rows if r["speed"] != 1.0 and (r["voice"], r["passage"]) in base]
    for row in moved:
        one = base[(row["voice"], row["passage"])]
        row["true_ratio"] = row["true_rate"] / one["true_rate"]
        row["estimated_ratio"] = row["estimated_rate"] / one["estimated_rate"]
        row["calibrated_ratio"] = row["calibrated_rate"] / one["calibrated_rate"]

    def logs(subset: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
        return (np.log([r["true_ratio"] for r in subset]), np.log([r[key] for r in subset]))

    fit: dict = {"voices": {}}
    for voice in dict.fromkeys(r["voice"] for r in moved):
        subset = [r for r in moved if r["voice"] == voice]
        k, residual = slope(*logs(subset, "estimated_ratio"))
        k_calibrated, residual_calibrated = slope(*logs(subset, "calibrated_ratio"))
        at_one = [base[key] for key in base if key[0] == voice]
        fit["voices"][voice] = {
            "k": k, "residual": residual, "k_calibrated": k_calibrated, "residual_calibrated": residual_calibrated,
            "nuclei_over_true_at_speed_1": sum(r["nuclei"] for r in at_one) / sum(r["syllables"] for r in at_one)}
    k, residual = slope(*logs(moved, "estimated_ratio"))
    k_calibrated, residual_calibrated = slope(*logs(moved, "calibrated_ratio"))
    # log P * (1 - 1/k) = mean(log true - log estimated / k): the calibrated rate matches the true one on average
    true, estimated = np.log([r["true_rate"] for r in rows]), np.log([r["estimated_rate"] for r in rows])
    pivot = float(np.exp(np.mean(true - estimated / k) / (1.0 - 1.0 / k)))
    calibrated = np.log([r["calibrated_rate"] for r in rows])
    fit["all"] = {"k": k, "residual": residual, "pivot": pivot, "k_calibrated": k_calibrated,
                  "residual_calibrated": residual_calibrated,
                  "calibrated_vs_true_rms": float(np.sqrt(np.mean((calibrated - true) ** 2))),
                  "calibrated_vs_true_mean": float(np.mean(calibrated - true))}
    return fit


def format_rate(rows: list[dict], fit: dict, speeds: list[float]) -> str:
    lines = ["| voice | k (nuclei) | residual | k (calibrated) | residual | nuclei / true syllables at speed 1 |",
             "|---|---|---|---|---|---|"]
    for voice, v in fit["voices"].items():
        lines.append(f"| {voice} | {v['k']:.2f} | {v['residual']:.3f} | {v['k_calibrated']:.2f} | "
                     f"{v['residual_calibrated']:.3f} | {v['nuclei_over_true_at_speed_1']:.3f} |")
    a = fit["all"]
    lines.append(f"| all | **{a['k']:.2f}** | {a['residual']:.3f} | {a['k_calibrated']:.2f} | "
                 f"{a['residual_calibrated']:.3f} | |")
    lines += ["", "| speed | true ratio | nuclei ratio | calibrated ratio |", "|---|---|---|---|"]
    for speed in speeds:
        subset = [r for r in rows if r["speed"] == speed and "true_ratio" in r]
        if subset:
            mean = {key: math.exp(float(np.mean(np.log([r[key] for r in subset]))))
                    for key in ("true_ratio", "estimated_ratio", "calibrated_ratio")}
            lines.append(f"| {speed:g} | {mean['true_ratio']:.3f} | {mean['estimated_ratio']:.3f} | "
                         f"{mean['calibrated_ratio']:.3f} |")
    lines += ["", f"Fitted pivot P = {a['pivot']:.2f} syllables/s (k = {a['k']:.2f}); "
              f"qingyin.style.reference uses RATE_RESPONSE = {RATE_RESPONSE:g}, RATE_PIVOT = {RATE_PIVOT:g}: its "
              f"calibrated rate is {100 * (math.exp(a['calibrated_vs_true_mean']) - 1):+.1f} % from the true rate "
              f"on average, RMS {a['calibrated_vs_true_rms']:.3f} (log units, voices' own biases included)."]
    return "\n".join(lines)


# --- dynamics -----------------------------------------------------------------------------------------------


def dynamics_rows(voices: list[str], texts: list[str], models: ModelPool) -> list[dict]:
    rows = []
    for voice in voices:
        spec = VOICES[voice]
        profile = profile_for(spec.model.name, {spec.speaker: 1.0})
        same = ReferenceProsody(f0_mean_st=profile.f0_mean_st, f0_range_st=profile.f0_range_st,
                                dynamics_db=profile.dynamics_db, articulation_rate=profile.articulation_rate,
                                pause_ratio=profile.pause_ratio, duration_s=10.0)
        tts = Synthesizer(voice, models=models)
        for index, text in enumerate(texts):
            for factor in DYNAMICS:
                reference = replace(same, dynamics_db=profile.dynamics_db * factor)
                result = tts.synthesize(text, reference=reference if factor != 1.0 else None)
                prosody = analyze_reference(result.audio, result.sample_rate)
                rows.append({"voice": voice, "passage": index, "dynamics": factor, "dynamics_db": prosody.dynamics_db})
    return rows


def format_dynamics(rows: list[dict]) -> str:
    lines = ["| voice | " + " | ".join(f"dynamics {f:g}" for f in DYNAMICS) + " | k (dB ratio per factor) |",
             "|---|" + "---|" * (len(DYNAMICS) + 1)]
    for voice in dict.fromkeys(r["voice"] for r in rows):
        subset = [r for r in rows if r["voice"] == voice]
        base = {r["passage"]: r["dynamics_db"] for r in subset if r["dynamics"] == 1.0}
        cells = [f"{np.mean([r['dynamics_db'] for r in subset if r['dynamics'] == f]):.2f} dB" for f in DYNAMICS]
        moved = [r for r in subset if r["dynamics"] != 1.0]
        k, _ = slope(np.log([r["dynamics"] for r in moved]),
                     np.log([r["dynamics_db"] / base[r["passage"]] for r in moved]))
        lines.append(f"| {voice} | " + " | ".join(cells) + f" | {k:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", default="baker,yunxi,yunjian,xiaoyi")
    parser.add_argument("--dynamics-voices", default="baker,yunxi")
    parser.add_argument("--sentences", type=int, default=3, help="sentences per voice, as passages of 3")
    parser.add_argument("--speeds", default="0.7,0.85,1.0,1.2,1.4")
    parser.add_argument("--part", choices=("rate", "dynamics", "all"), default="all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    speeds = sorted({float(s) for s in args.speeds.split(",")} | {1.0})
    texts = passages(read_texts()[: args.sentences])
    models = ModelPool(threads=args.threads, fetch=False)
    out: dict[str, object] = {}
    if args.part in ("rate", "all"):
        rows = rate_rows([v.strip() for v in args.voices.split(",") if v.strip()], texts, speeds, models)
        fit = fit_rate(rows)
        out["rate"] = {"rows": rows, "fit": fit}
        print(format_rate(rows, fit, speeds), "\n", flush=True)
    if args.part in ("dynamics", "all"):
        rows = dynamics_rows([v.strip() for v in args.dynamics_voices.split(",") if v.strip()], texts, models)
        out["dynamics"] = rows
        print(format_dynamics(rows), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
