"""Measure every voice's neutral prosody (qingyin/style/data/voice_profiles.json) and check the syllable counter.

    .venv/bin/python -m benchmarks.voice_profiles [--limit 12] [--voices baker,yunxi,...] [--threads 2]
        [-o qingyin/style/data/voice_profiles.json]

Each voice of the catalog (Baker; Kokoro's eight Mandarin speakers) speaks the first `--limit` sentences of the
default evaluation set (qingyin/text/data/zh_default.txt) with neutral settings, three at a time as one passage (a
reference recording usually holds several sentences, so the pauses between sentences count on both sides); every
passage is measured with `qingyin.style.reference.analyze_reference`, exactly as a reference recording is, and the
profile is the median of each descriptor over the passages. Reference prosody transfer (qingyin.style.transfer)
divides a reference's descriptors by these, so both sides go through one analysis.

The sentences are all hanzi, one syllable each, so the true syllable count is known: the table printed compares
it with the count `syllable_nuclei` estimates without the text (pooled over the sentences, and the mean absolute
error per passage); "est rate" is that count over the articulation time, "true rate" the true count over it, and
the profile's articulation_rate the calibrated rate (qingyin.style.reference.calibrated_rate). Measured voices
replace their entries in the output file; the others are kept.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path

from qingyin.runtime.pool import ModelPool
from qingyin.runtime.synthesizer import Synthesizer
from qingyin.style.reference import analyze_reference
from qingyin.style.transfer import PROFILES, VoiceProfile
from qingyin.text.corpus import DEFAULT_TEXTS, read_texts
from qingyin.voices.registry import VOICES

OUTPUT = Path(__file__).resolve().parent.parent / "qingyin" / "style" / "data" / PROFILES
COMMAND = ".venv/bin/python -m benchmarks.voice_profiles"
HANZI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
DESCRIPTORS = [name for name in VoiceProfile.__dataclass_fields__]
PASSAGE = 3  # sentences per measured passage


def passages(sentences: list[str]) -> list[str]:
    """`sentences`, each ended with a full stop, joined PASSAGE at a time."""
    ended = [t if t[-1] in "。！？!?…" else t + "。" for t in sentences]
    return ["".join(ended[i: i + PASSAGE]) for i in range(0, len(ended), PASSAGE)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=12, help="sentences per voice (default 12)")
    parser.add_argument("--voices", default=",".join(VOICES), help="comma-separated voices (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    sentences = read_texts()[: args.limit]
    texts = passages(sentences)
    models = ModelPool(threads=args.threads, fetch=False)
    data = json.loads(args.output.read_text(encoding="utf-8")) if args.output.is_file() else {}
    data.setdefault("models", {})
    total_est = total_true = 0
    errors: list[float] = []
    print(f"{'voice':9} {'model':7} {'speaker':11} {'est':>5} {'true':>5} {'ratio':>6} {'|err|/pass':>10} "
          f"{'est rate':>8} {'true rate':>9}  F0 st  range  dyn dB  pause", flush=True)
    for voice in voices:
        spec = VOICES[voice]
        began = time.perf_counter()
        tts = Synthesizer(voice, models=models)
        measured = []
        est_sum = true_sum = 0
        sentence_errors = []
        articulation_sum = 0.0
        for text in texts:
            result = tts.synthesize(text)
            prosody = analyze_reference(result.audio, result.sample_rate)
            articulation_s = prosody.duration_s * (1.0 - prosody.pause_ratio)
            estimated = prosody.syllable_nuclei
            true = len(HANZI.findall(text))
            est_sum, true_sum = est_sum + estimated, true_sum + true
            articulation_sum += articulation_s
            sentence_errors.append(abs(estimated / true - 1.0))
            measured.append(prosody)
            if prosody.warnings:
                print(f"  {voice}: {text}: {'; '.join(prosody.warnings)}", file=sys.stderr)
        profile = {name: round(statistics.median(getattr(p, name) for p in measured), 4) for name in DESCRIPTORS}
        data["models"].setdefault(spec.model.name, {})[spec.speaker] = {
            "voice": voice,
            **profile,
            "syllables_estimated": est_sum,
            "syllables_true": true_sum,
        }
        total_est, total_true = total_est + est_sum, total_true + true_sum
        errors.extend(sentence_errors)
        print(f"{voice:9} {spec.model.name:7} {spec.speaker:11} {est_sum:5d} {true_sum:5d} {est_sum / true_sum:6.3f} "
              f"{statistics.mean(sentence_errors):10.3f} {est_sum / articulation_sum:8.2f} "
              f"{true_sum / articulation_sum:9.2f}  {profile['f0_mean_st']:5.2f} {profile['f0_range_st']:6.2f} "
              f"{profile['dynamics_db']:6.2f} {profile['pause_ratio']:6.3f}   ({time.perf_counter() - began:.0f} s)",
              flush=True)
    print(f"all       {total_est:5d} {total_true:5d} {total_est / max(total_true, 1):6.3f} "
          f"{statistics.mean(errors) if errors else float('nan'):10.3f}")
    data["command"] = COMMAND
    data["measured"] = (
        f"{datetime.date.today().isoformat()}, {platform.machine()} {platform.system()}: each voice speaks the first "
        f"{len(sentences)} sentences of qingyin/text/data/{DEFAULT_TEXTS.name} (neutral, default settings) as "
        f"passages of {PASSAGE}; medians over the passages of qingyin.style.reference.analyze_reference. "
        "syllables_estimated (syllable_nuclei, without the text) against syllables_true (one per hanzi), summed over "
        "the passages."
    )
    data["sentences"] = len(sentences)
    ordered = {"command": data.pop("command"), "measured": data.pop("measured"), "sentences": data.pop("sentences"),
               **{k: v for k, v in data.items() if k != "models"}, "models": data["models"]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(ordered, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
