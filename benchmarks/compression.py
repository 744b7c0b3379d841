"""Issue 15's table: every compressed variant of Baker against its teacher and the original runtime, one run.

    .venv/bin/python -m benchmarks.compression [--variant fp32 --variant student ...] [--threads 2]
        [--speed-texts 20] [--rounds 5] [--quality-texts 103 | 0] [--json report.json]

Each variant is an ONNX variant of the Baker voice (qingyin.families.fs2_mbmelgan.export; exported first where it
is not). Per variant:

- parameters (every weight of its three graphs: encoder, decoder, vocoder) and the graphs' file size;
- speed on `--threads` threads over the sentences of the first `--speed-texts` default texts: the original TFLite
  runtime (../shared/reference) and every variant take turns pass by pass for `--rounds` rounds after a warm-up
  pass each; RTF is the median over the rounds, and the ratio to the original the median of each round's ratio
  (the machine is shared: only ratios within a round compare fairly);
- first audio (streamed, median of 5, qingyin.evaluate.bench) and peak RSS (a fresh process per variant);
- quality on the first `--quality-texts` default texts (qingyin.evaluate.runner, against fp32 ONNX, the teacher):
  Whisper CER and its difference to the teacher's, MCD and log-F0 RMSE, speaker similarity, DNSMOS.

The speed part runs first, alone; the quality part does not time anything.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import onnx

from qingyin.evaluate.bench import (
    LATENCY_TEXT,
    QingyinSystem,
    ReferenceSystem,
    frontend_sentences,
    measure_first_audio,
    peak_rss_mb,
)
from qingyin.evaluate.reference import reference_available
from qingyin.evaluate.runner import run_eval
from qingyin.evaluate.variants import parse_variant
from qingyin.families.fs2_mbmelgan.export import MODEL_FILES, available_variants, check_variant, variant_dir
from qingyin.text.corpus import read_texts
from qingyin.voices import registry

VOICE = "baker"
# and every other variant whose shipped models are installed (student-int8-pruned once a pruned vocoder is shipped)
DEFAULT_VARIANTS = ("fp32", "int8-static", "student", "student-int8", "student-int8-pruned")
TEACHER = "fp32"


def spec(variant: str) -> str:
    return f"{VOICE}:onnx:variant={variant}"


def graph_sizes(variant: str) -> dict[str, float]:
    """Parameters (initializer elements, every dtype) and megabytes of the variant's three graphs."""
    folder = variant_dir(registry.voice_dir(VOICE), variant)
    parameters = 0
    for name in MODEL_FILES:
        graph = onnx.load(str(folder / name))
        parameters += sum(math.prod(tensor.dims) for tensor in graph.graph.initializer)
    megabytes = sum((folder / name).stat().st_size for name in MODEL_FILES) / 1e6
    return {"parameters": parameters, "megabytes": megabytes}


def measure_speed(variants: list[str], texts: list[str], threads: int, rounds: int) -> dict[str, dict]:
    """RTF per round, taking turns, for the original and each variant; medians and ratios (see the docstring)."""
    sentences = frontend_sentences(texts)
    unavailable = reference_available()
    if unavailable is not None:
        raise SystemExit(f"the original runtime is needed for the ratios: {unavailable}")
    systems = {"reference": ReferenceSystem(threads)}
    systems.update({variant: QingyinSystem(parse_variant(spec(variant)), threads) for variant in variants})
    for system in systems.values():
        for sentence in sentences:  # warm-up: first allocations
            system.run(sentence)
    per_round: dict[str, list[float]] = {name: [] for name in systems}
    for index in range(rounds):
        order = list(systems) if index % 2 == 0 else list(reversed(systems))  # neither always goes first
        for name in order:
            timings = [systems[name].run(sentence) for sentence in sentences]
            audio = sum(t.audio for t in timings)
            per_round[name].append(sum(t.acoustic + t.vocoder for t in timings) / audio)
        print(f"round {index + 1}/{rounds}: " + ", ".join(f"{n} {v[-1]:.4f}" for n, v in per_round.items()),
              flush=True)
    latency_sentence = frontend_sentences([LATENCY_TEXT])[0]
    results = {}
    for name, system in systems.items():
        rtfs = per_round[name]
        ratios = [mine / theirs for mine, theirs in zip(rtfs, per_round["reference"], strict=True)]
        results[name] = {"rtf": statistics.median(rtfs), "rtf_rounds": rtfs,
                         "vs_reference": statistics.median(ratios),
                         "first_audio_ms": measure_first_audio(system, LATENCY_TEXT, latency_sentence),
                         "peak_rss_mb": peak_rss_mb("reference" if name == "reference" else spec(name), threads,
                                                    texts)}
    return results


def measure_quality(variants: list[str], texts: list[str]) -> dict[str, dict]:
    names = [spec(TEACHER)] + [spec(v) for v in variants if v != TEACHER]
    report = run_eval(texts, names, spec(TEACHER), metrics=("cer", "dnsmos", "pair", "speaker"))
    return {variant: report["summary"][spec(variant)] for variant in variants}


def table(variants: list[str], sizes: dict, speed: dict, quality: dict) -> str:
    teacher_size = sizes[TEACHER]
    lines = ["| variant | parameters | size (MB) | smaller | RTF | vs original | first audio | peak RSS | CER | ΔCER | "
             "MCD (dB) | log-F0 RMSE (cents) | spk sim | DNSMOS (Δ) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    reference = speed["reference"]
    lines.append(f"| original (TFLite, int8) | | | | {reference['rtf']:.4f} | 1.00× | "
                 f"{reference['first_audio_ms']:.0f} ms | {_mb(reference['peak_rss_mb'])} | | | | | | |")
    for variant in variants:
        size, fast = sizes[variant], speed[variant]
        lines.append(
            f"| {variant} | {size['parameters']:,} | {size['megabytes']:.1f} | "
            f"{teacher_size['megabytes'] / size['megabytes']:.2f}× | {fast['rtf']:.4f} | {fast['vs_reference']:.2f}× | "
            f"{fast['first_audio_ms']:.0f} ms | {_mb(fast['peak_rss_mb'])} | {_quality_cells(variant, quality)} |")
    return "\n".join(lines)


def _quality_cells(variant: str, quality: dict) -> str:
    """The quality columns of a row; blank where quality was not measured (--quality-texts 0)."""
    if variant not in quality:
        return " | " * 5 + " "
    heard = quality[variant]
    mean, delta = heard["mean"], heard.get("delta", {})
    teacher = variant == TEACHER
    versus = _blank if teacher else _cell
    dnsmos = f"{mean['dnsmos_ovrl']:.2f}" + ("" if teacher else f" ({delta.get('dnsmos_ovrl', math.nan):+.2f})")
    return (f"{mean['cer']:.3f} | {versus(delta.get('cer'), '+.3f')} | {versus(mean.get('mcd_db'), '.2f')} | "
            f"{versus(mean.get('log_f0_rmse_cents'), '.0f')} | {versus(mean.get('speaker_similarity'), '.3f')} | "
            f"{dnsmos}")


def _cell(value: float | None, form: str) -> str:
    return "" if value is None else format(value, form)


def _blank(value: float | None, form: str) -> str:  # the teacher's own row has no differences to itself
    return ""


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", dest="variants",
                        help=f"an ONNX variant of {VOICE}, repeatable (default: {', '.join(DEFAULT_VARIANTS)}); "
                             f"{TEACHER}, the teacher, is always measured")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speed-texts", type=int, default=20, help="first N default texts for speed (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes per system, taking turns (default 5)")
    parser.add_argument("--quality-texts", type=int, default=103,
                        help="first N default texts for quality (default 103; 0: speed and size only)")
    parser.add_argument("--json", type=Path, help="also write the whole report here")
    args = parser.parse_args()
    exportable = available_variants(registry.voice_dir(VOICE))
    variants = [check_variant(v) for v in (args.variants or [v for v in DEFAULT_VARIANTS if v in exportable])]
    if TEACHER not in variants:
        variants.insert(0, TEACHER)
    from qingyin.families.fs2_mbmelgan.export.onnx_export import export_voice

    for variant in variants:
        export_voice(VOICE, variant)
    texts = read_texts()
    sizes = {variant: graph_sizes(variant) for variant in variants}
    speed = measure_speed(variants, texts[: args.speed_texts], args.threads, args.rounds)
    quality = measure_quality(variants, texts[: args.quality_texts]) if args.quality_texts > 0 else {}
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "speed_texts": args.speed_texts,
                                         "rounds": args.rounds, "quality_texts": args.quality_texts,
                                         "sizes": sizes, "speed": speed, "quality": quality}, indent=1,
                                        ensure_ascii=False))
    print(table(variants, sizes, speed, quality))


if __name__ == "__main__":
    main()
