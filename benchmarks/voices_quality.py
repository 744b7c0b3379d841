"""Quality of every voice on the same sentences: CER (Whisper-base) and a speaker-similarity matrix (resemblyzer).

    .venv/bin/python -m benchmarks.voices_quality [--limit N] [--voices baker,yunxi,...] [--similarity-limit M]
        [-o report.json]

Each voice speaks the first N sentences of the default evaluation set (qingyin/evaluate/texts/zh_default.txt);
CER is pooled over characters, as `qingyin eval` does. For the similarity matrix each voice's first M clips are
embedded: the diagonal is the mean similarity of a voice's clips to each other (different sentences), the rest
the mean over pairs of clips of two voices. Nine distinct speakers: off-diagonal < 0.80, diagonal > 0.85.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

import qingyin
from qingyin.evaluate.cer import WhisperTranscriber, character_errors
from qingyin.evaluate.speaker import SpeakerEncoder, similarity
from qingyin.runtime.pool import ModelPool
from qingyin.text.corpus import read_texts
from qingyin.voices.registry import VOICES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=103, help="sentences per voice (default: all 103)")
    parser.add_argument("--similarity-limit", type=int, default=12, help="clips per voice for the matrix")
    parser.add_argument("--voices", default=",".join(VOICES), help="comma-separated voices (default: all nine)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--output", type=Path, help="write every transcript and number as JSON")
    args = parser.parse_args()
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    texts = read_texts()[: args.limit]
    asr, encoder = WhisperTranscriber(cpu_threads=args.threads), SpeakerEncoder()
    models = ModelPool(threads=args.threads, fetch=False)
    report: dict[str, dict] = {}
    embeddings: dict[str, list[np.ndarray]] = {}
    for voice in voices:
        tts = qingyin.TTS(voice=voice, models=models)
        errors = chars = 0
        began = time.perf_counter()
        clips = []
        for n, text in enumerate(texts):
            result = tts.synthesize(text)
            heard = asr.transcribe(result.audio, result.sample_rate)
            e, c = character_errors(text, heard, normalize=True)
            errors, chars = errors + e, chars + c
            clips.append({"text": text, "heard": heard, "errors": e, "chars": c})
            if n < args.similarity_limit:
                embeddings.setdefault(voice, []).append(encoder.embed(result.audio, result.sample_rate))
        report[voice] = {"cer": errors / max(chars, 1), "clips": clips}
        print(f"{voice:9} CER {errors / max(chars, 1):.4f} ({errors}/{chars}) in {time.perf_counter() - began:.0f} s",
              file=sys.stderr, flush=True)
    matrix = similarity_matrix(embeddings)
    print(format_tables(report, matrix))
    if args.output:
        args.output.write_text(json.dumps({"voices": report, "similarity": matrix}, ensure_ascii=False, indent=1))


def similarity_matrix(embeddings: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """Mean cosine similarity between the clips of two voices; on the diagonal, between different clips."""
    matrix: dict[str, dict[str, float]] = {}
    for a, b in itertools.product(embeddings, repeat=2):
        if a == b:
            pairs = list(itertools.combinations(embeddings[a], 2))
        else:
            pairs = list(itertools.product(embeddings[a], embeddings[b]))
        matrix.setdefault(a, {})[b] = float(np.mean([similarity(x, y) for x, y in pairs])) if pairs else float("nan")
    return matrix


def format_tables(report: dict[str, dict], matrix: dict[str, dict[str, float]]) -> str:
    lines = ["| voice | CER |", "|---|---|"]
    lines += [f"| {voice} | {entry['cer']:.3f} |" for voice, entry in report.items()]
    names = list(matrix)
    lines += ["", "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {a} | " + " | ".join(f"{matrix[a][b]:.2f}" for b in names) + " |" for a in names]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
