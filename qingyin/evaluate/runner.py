"""`qingyin eval`: synthesize every text with every variant, measure, and summarize against a reference variant.

Per utterance: CER (Whisper), DNSMOS, prosody descriptors, and against the reference variant's rendering
of the same text: MCD, log-F0 RMSE, V/UV error, duration difference and speaker similarity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qingyin.evaluate.variants import Variant, parse_variant
from qingyin.runtime.synthesizer import InvalidOptionError, NothingToSayError, Synthesizer
from qingyin.text import text_to_sentences

METRICS = ("cer", "dnsmos", "prosody", "pair", "speaker")
COLUMNS = [  # (metric key, column label, lower is better? None when neither)
    ("cer", "CER", True),
    ("dnsmos_ovrl", "DNSMOS", False),
    ("speaker_similarity", "spk sim", False),
    ("mcd_db", "MCD dB", True),
    ("log_f0_rmse_cents", "F0 RMSE c", True),
    ("vuv_error", "V/UV err", True),
    ("duration_difference_s", "dur diff s", None),
    ("f0_mean_st", "F0 st", None),
    ("f0_range_st", "F0 rng st", None),
    ("speaking_rate", "syl/s", None),
    ("pause_time_s", "pause s", None),
    ("rms_dbfs", "RMS dBFS", None),
]


@dataclass
class Utterance:
    variant: str
    index: int
    text: str
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    transcript: str | None = None


class Meters:
    """The measuring models, loaded once and only when asked for."""

    def __init__(self, metrics: Sequence[str]):
        unknown = sorted(set(metrics) - set(METRICS))
        if unknown:
            raise InvalidOptionError(f"unknown metric(s) {unknown}; available: {', '.join(METRICS)}")
        self.metrics = set(metrics)
        from qingyin.evaluate import signal_metrics  # needs the eval extra (pyworld, pysptk)

        self.signal = signal_metrics
        self.transcriber = self.encoder = self.dnsmos = None
        if "cer" in self.metrics:
            from qingyin.evaluate.cer import WhisperTranscriber

            self.transcriber = WhisperTranscriber()
        if "speaker" in self.metrics:
            from qingyin.evaluate.speaker import SpeakerEncoder

            self.encoder = SpeakerEncoder()
        if "dnsmos" in self.metrics:
            from qingyin.evaluate.quality import dnsmos

            self.dnsmos = dnsmos


def syllable_count(text: str) -> int:
    return sum(len(s.pinyin) for s in text_to_sentences(text).sentences)


def run_eval(
    texts: Sequence[str],
    variant_specs: Sequence[str],
    reference_spec: str | None = None,
    metrics: Sequence[str] = METRICS,
    progress: Callable[[int], None] = lambda _n: None,
) -> dict[str, object]:
    """Evaluate; `progress(n)` is called after each of the len(texts) * len(variants) syntheses."""
    variants = [parse_variant(s) for s in variant_specs]
    reference = parse_variant(reference_spec) if reference_spec else variants[0]
    if reference.name not in {v.name for v in variants}:
        variants.insert(0, reference)
    meters = Meters(metrics)
    voices: dict[tuple[str, str, str, str | None], Synthesizer] = {}
    utterances: list[Utterance] = []
    skipped: list[str] = []
    for index, text in enumerate(texts):
        syllables = syllable_count(text)
        clips: dict[str, tuple[np.ndarray, object, np.ndarray | None]] = {}
        for variant in variants:
            key = (variant.voice, variant.backend, variant.prosody, variant.variant)
            if key not in voices:
                voices[key] = Synthesizer(variant.voice, prosody=variant.prosody, backend=variant.backend,
                                          variant=variant.variant)
            tts = voices[key]
            try:
                audio = tts.synthesize(text, **variant.options).audio
            except NothingToSayError:
                skipped.append(text)
                break
            finally:
                progress(1)
            utterance = Utterance(variant.name, index, text, len(audio) / tts.sample_rate)
            analysis = meters.signal.analyze(audio, tts.sample_rate)
            embedding = meters.encoder.embed(audio, tts.sample_rate) if meters.encoder else None
            _measure_clip(meters, utterance, audio, tts.sample_rate, analysis, syllables)
            clips[variant.name] = (audio, analysis, embedding)
            utterances.append(utterance)
        if reference.name in clips:
            _measure_pairs(meters, [u for u in utterances if u.index == index], clips, reference)
    return {
        "reference_variant": reference.name,
        "variants": [v.name for v in variants],
        "texts": len(texts),
        "skipped_texts": skipped,
        "summary": summarize(utterances, variants, reference),
        "utterances": [vars(u) for u in utterances],
    }


def _measure_clip(meters: Meters, utterance: Utterance, audio: np.ndarray, rate: int, analysis, syllables: int) -> None:
    m = utterance.metrics
    if meters.transcriber:
        from qingyin.evaluate.cer import character_errors

        utterance.transcript = meters.transcriber.transcribe(audio, rate)
        errors, length = character_errors(utterance.text, utterance.transcript, normalize=True)
        m["cer_errors"], m["cer_chars"] = float(errors), float(length)
        m["cer"] = errors / length if length else math.nan
    if meters.dnsmos:
        scores = meters.dnsmos(audio, rate)
        m["dnsmos_ovrl"], m["dnsmos_sig"], m["dnsmos_bak"] = scores["ovrl_mos"], scores["sig_mos"], scores["bak_mos"]
    if "prosody" in meters.metrics:
        p = meters.signal.prosody_descriptors(analysis, syllables=syllables or None)
        m.update(f0_mean_st=p.f0_mean_st, f0_std_st=p.f0_std_st, f0_range_st=p.f0_range_st, rms_dbfs=p.rms_dbfs,
                 speaking_rate=p.speaking_rate if p.speaking_rate is not None else math.nan,
                 pause_time_s=p.pause_time_s, final_level_st=p.final_level_st, final_slope_st=p.final_slope_st)


def _measure_pairs(meters: Meters, utterances: list[Utterance], clips: dict, reference: Variant) -> None:
    _, ref_analysis, ref_embedding = clips[reference.name]
    for utterance in utterances:
        if utterance.variant == reference.name:
            continue
        _, analysis, embedding = clips[utterance.variant]
        if "pair" in meters.metrics:
            pair = meters.signal.compare(ref_analysis, analysis)
            utterance.metrics.update(mcd_db=pair.mcd_db, log_f0_rmse_cents=pair.log_f0_rmse_cents,
                                     vuv_error=pair.vuv_error, duration_difference_s=pair.duration_difference_s)
        if meters.encoder is not None:
            from qingyin.evaluate.speaker import similarity

            utterance.metrics["speaker_similarity"] = similarity(ref_embedding, embedding)


def summarize(utterances: list[Utterance], variants: list[Variant], reference: Variant) -> dict[str, dict]:
    """Per variant: mean of each metric (CER pooled over characters), and its difference to the reference."""
    summary: dict[str, dict] = {}
    for variant in variants:
        rows = [u.metrics for u in utterances if u.variant == variant.name]
        keys = sorted({k for r in rows for k in r} - {"cer_errors", "cer_chars"})
        means = {k: _nanmean([r.get(k, math.nan) for r in rows]) for k in keys}
        chars = sum(r.get("cer_chars", 0.0) for r in rows)
        if chars:
            means["cer"] = sum(r.get("cer_errors", 0.0) for r in rows) / chars
        means["utterances"] = len(rows)
        means["audio_seconds"] = sum(u.seconds for u in utterances if u.variant == variant.name)
        summary[variant.name] = {"mean": means}
    base = summary[reference.name]["mean"]
    for name, entry in summary.items():
        entry["delta"] = {k: v - base[k] for k, v in entry["mean"].items()
                          if k in base and name != reference.name and isinstance(v, float)}
    return summary


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def format_table(report: dict[str, object]) -> str:
    summary = report["summary"]
    present = [(k, label) for k, label, _ in COLUMNS if any(k in entry["mean"] for entry in summary.values())]
    rows = [[name] + [_cell(entry, key) for key, _ in present] for name, entry in summary.items()]
    table = [["variant"] + [label for _, label in present]] + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [f"reference variant: {report['reference_variant']}   texts: {report['texts']}"]
    for row in table:
        cells = [cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells))
    lines.append("(in parentheses: difference to the reference variant; CER pooled over characters)")
    if report["skipped_texts"]:
        lines.append(f"skipped {len(report['skipped_texts'])} text(s) with nothing to say")
    return "\n".join(lines)


def _cell(entry: dict, key: str) -> str:
    value, delta = entry["mean"].get(key, math.nan), entry["delta"].get(key)
    cell = "-" if math.isnan(value) else f"{value:.3f}"
    if delta is not None and not math.isnan(delta):
        cell += f" ({delta:+.2f})"
    return cell
