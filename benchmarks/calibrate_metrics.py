"""Calibrate the evaluation metrics: do they rank a good voice, a robotic one and real speech sensibly?

    .venv/bin/python -m benchmarks.calibrate_metrics [--limit 103] [--syllables 40]

Needs the eval extra, Debian's `espeak-ng` and `gcin-voice` packages (apt-get install espeak-ng gcin-voice)
and `soundfile` (to read gcin-voice's Ogg files).

1. CER (Whisper-base) and DNSMOS on the default text set: the Baker voice vs espeak-ng's Mandarin voice
   (`-v cmn-latn-pinyin` reading our pinyin; formant synthesis: the negative control a good metric must rank
   far worse).
2. Real recordings (gcin-voice: isolated, tone-labelled syllables, two speakers): DNSMOS, and the pitch
   movement of each tone (semitones from the first to the last third of the voiced part) next to the
   Baker voice saying the same syllables: tone 1 level, 2 rising, 3 low, 4 falling.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from qingyin.evaluate.cer import WhisperTranscriber, character_errors
from qingyin.evaluate.quality import dnsmos
from qingyin.evaluate.signal_metrics import analyze
from qingyin.runtime.audio import read_wav
from qingyin.runtime.synthesizer import Synthesizer
from qingyin.text import text_to_sentences
from qingyin.text.corpus import read_texts

GCIN = Path("/usr/share/gcin-voice/ogg")
GCIN_TONES = {"": 1, "2": 2, "3": 3, "4": 4}  # gcin names tone 1 with no digit
# Bopomofo -> pinyin for plain syllables of a single-letter initial and a simple final (all the calibration uses).
BOPOMOFO = dict(zip("ㄅㄆㄇㄈㄉㄊㄋㄌㄍㄎㄏ", "bpmfdtnlgkh", strict=True)) | {
    "ㄚ": "a", "ㄛ": "o", "ㄜ": "e", "ㄞ": "ai", "ㄟ": "ei", "ㄠ": "ao",
    "ㄡ": "ou", "ㄢ": "an", "ㄣ": "en", "ㄤ": "ang", "ㄥ": "eng"}


def espeak(text: str, folder: Path) -> tuple[np.ndarray, int]:
    """espeak-ng's Mandarin formant voice reading our frontend's pinyin (its Hanzi reading is worse still)."""
    pinyin = ", ".join(" ".join(p for _, p in s.pinyin) for s in text_to_sentences(text).sentences)
    path = folder / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "-w", str(path), pinyin], check=True, capture_output=True)
    return read_wav(path)


def intelligibility(texts: list[str]) -> dict[str, dict[str, float]]:
    transcriber, tts = WhisperTranscriber(), Synthesizer("baker")
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])  # errors, chars, dnsmos sum, count
    with tempfile.TemporaryDirectory() as tmp:
        for text in texts:
            for name, (audio, rate) in (("baker", (tts.synthesize(text).audio, tts.sample_rate)),
                                        ("espeak-ng pinyin", espeak(text, Path(tmp)))):
                errors, chars = character_errors(text, transcriber.transcribe(audio, rate), normalize=True)
                row = totals[name]
                row[0] += errors
                row[1] += chars
                row[2] += dnsmos(audio, rate)["ovrl_mos"]
                row[3] += 1
    return {name: {"cer": e / c, "dnsmos_ovrl": d / n, "clips": n} for name, (e, c, d, n) in totals.items()}


def tone_movement(audio: np.ndarray, rate: int) -> tuple[float, float] | None:
    """(semitone change first->last third of the voiced frames, mean semitones re 100 Hz), or None."""
    f0 = analyze(audio, rate).f0_hz
    voiced = 12 * np.log2(f0[f0 > 0] / 100.0)
    if len(voiced) < 9:
        return None
    third = len(voiced) // 3
    return float(voiced[-third:].mean() - voiced[:third].mean()), float(voiced.mean())


def gcin_syllables(count: int, seed: int = 0) -> list[tuple[str, int, str]]:
    """Up to `count` (folder, tone, pinyin) per tone, plain initial+final syllables only."""
    import re

    chosen = []
    rng = random.Random(seed)
    for digit, tone in GCIN_TONES.items():
        folders = []
        for folder in sorted(GCIN.iterdir()):
            match = re.fullmatch(r"(\D+?)(\d?)", folder.name)
            plain = match and len(match.group(1)) == 2 and all(c in BOPOMOFO for c in match.group(1))
            if plain and match.group(2) == digit:
                folders.append((folder.name, tone, "".join(BOPOMOFO[c] for c in match.group(1))))
        chosen += rng.sample(folders, min(count, len(folders)))
    return chosen


def tones(count: int) -> dict[str, dict[int, tuple[float, float, int]]]:
    import soundfile

    tts = Synthesizer("baker")
    moves: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    mos: dict[str, list[float]] = defaultdict(list)
    for folder, tone, pinyin in gcin_syllables(count):
        for speaker in ("3", "5"):
            path = GCIN / folder / f"{speaker}.ogg"
            if path.exists():
                audio, rate = soundfile.read(path, dtype="float32")
                audio = audio.mean(axis=1) if audio.ndim > 1 else audio
                if (move := tone_movement(audio, rate)) is not None:
                    moves[f"gcin speaker {speaker}"][tone].append(move)
                mos[f"gcin speaker {speaker}"].append(dnsmos(audio, rate)["ovrl_mos"])
        result = tts.synthesize_phones(f"sil {pinyin[0]} {pinyin[1:]}{tone} sil")  # single-letter initials only
        if (move := tone_movement(result.audio, result.sample_rate)) is not None:
            moves["baker"][tone].append(move)
        mos["baker"].append(dnsmos(result.audio, result.sample_rate)["ovrl_mos"])
    table = {}
    for system, by_tone in moves.items():
        table[system] = {t: (float(np.mean([m[0] for m in v])), float(np.mean([m[1] for m in v])), len(v))
                         for t, v in sorted(by_tone.items())}
        table[system]["dnsmos"] = float(np.mean(mos[system]))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=103, help="sentences of the default set to use")
    parser.add_argument("--syllables", type=int, default=40, help="gcin-voice syllables per tone")
    args = parser.parse_args()

    print("intelligibility and quality on the default text set")
    for name, row in intelligibility(read_texts()[: args.limit]).items():
        print(f"  {name:16s} CER {row['cer']:.3f}  DNSMOS ovrl {row['dnsmos_ovrl']:.2f}  ({row['clips']} clips)")
    print("isolated syllables: semitones moved from first to last third (mean F0 st re 100 Hz), per tone")
    for system, row in tones(args.syllables).items():
        cells = "  ".join(f"tone {t}: {v[0]:+5.1f} ({v[1]:4.1f}) n={v[2]}" for t, v in row.items() if t != "dnsmos")
        print(f"  {system:16s} {cells}  DNSMOS ovrl {row['dnsmos']:.2f}")


if __name__ == "__main__":
    main()
