"""Pruned MB-MelGAN vocoders against their teacher: parameters, torch RTF, log-mel L1 to the teacher's audio.

    .venv/bin/python -m benchmarks.prune_vocoder [--run DIR ...] [--ratio 0.5 ...] [--threads 1] [--repeats 5]
        [--cer N]

Rows: the teacher vocoder (the installed fp32 one, on the mels as stored: the metric's floor), each `--ratio`
pruned afresh without recovery, and each `--run` folder of `qingyin compress prune-vocoder` (its
pruned_vocoder.safetensors, as of its last checkpoint). Utterances: the held-out ones of the teacher data (the last
`--utterances`, as the recovery's validation uses). The log-mel L1 is the recovery's validation measure; the next
column counts only what lies within 30 dB of each utterance's loudest bin, since the vocoder's sub-band rounding
rules the quiet bins (vocoder_losses.log_mel_l1). RTF: the best of `--repeats` passes over them, each utterance
vocoded whole in one call, in torch on `--threads` threads, after one pass that measures the distances.

`--cer N`: also Whisper's CER (as the quality gate measures it) of the first N default evaluation texts (the gate's
79), each read by the installed teacher acoustic model (torch fp32) and vocoded by every vocoder: what the vocoder
alone costs, without the student decoder or INT8 of an exported variant.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from qingyin.compress.prune import load_pruned_vocoder, load_teacher_vocoder, prune_vocoder
from qingyin.compress.teacher_data import TeacherData, default_out
from qingyin.compress.vocoder_losses import LOUD_RANGE_DB, LogMel, log_mel_l1
from qingyin.families.fs2_mbmelgan.model.widths import parameter_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, action="append", default=[], help="a prune-vocoder run folder")
    parser.add_argument("--ratio", type=float, action="append", default=[], help="also prune afresh at this ratio")
    parser.add_argument("--teacher", type=Path, default=default_out("baker"), help="teacher data")
    parser.add_argument("--utterances", type=int, default=8, help="the last N utterances of the teacher data")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cer", type=int, metavar="N", help="also Whisper's CER on the first N default texts")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    data = TeacherData(args.teacher)
    held_out = [data[i] for i in range(len(data) - args.utterances, len(data))]
    teacher = load_teacher_vocoder(data.info["teacher"]["model"])
    vocoders = {"teacher fp32": teacher}
    vocoders.update({f"pruned {r:g}, no recovery": prune_vocoder(teacher, r) for r in args.ratio})
    vocoders.update({f"{run.name} (step {_step(run)})": load_pruned_vocoder(run) for run in args.run})

    log_mel = LogMel.for_vocoder(data.sample_rate, teacher.config.hop_length, teacher.config.num_mels)
    mels = [torch.from_numpy(u.mel)[None] for u in held_out]
    seconds = sum(u.seconds for u in held_out)
    best = {name: float("inf") for name in vocoders}
    distance, loud = {}, {}
    with torch.inference_mode():
        for name, vocoder in vocoders.items():
            pairs = [(vocoder(mel)[0], torch.from_numpy(u.audio)) for mel, u in zip(mels, held_out, strict=True)]
            distance[name] = float(np.mean([log_mel_l1(log_mel, audio, target) for audio, target in pairs]))
            loud[name] = float(np.mean([log_mel_l1(log_mel, audio, target, LOUD_RANGE_DB) for audio, target in pairs]))
        for name, vocoder in vocoders.items():  # one vocoder at a time (interleaving them gave erratic times)
            for _ in range(args.repeats):
                begun = time.perf_counter()
                for mel in mels:
                    vocoder(mel)
                best[name] = min(best[name], time.perf_counter() - begun)
    print(f"{len(held_out)} held-out utterances, {seconds:.1f} s of audio; torch {torch.__version__}, "
          f"{args.threads} thread(s), best of {args.repeats}\n")
    print(f"| vocoder | parameters | RTF | speed-up | log-mel L1 to the teacher's audio | the same within "
          f"{LOUD_RANGE_DB:g} dB of the loudest |")
    print("|---|---|---|---|---|---|")
    base = best["teacher fp32"]
    for name, vocoder in vocoders.items():
        print(f"| {name} | {parameter_count(vocoder):,} | {best[name] / seconds:.4f} | {base / best[name]:.2f}x | "
              f"{distance[name]:.4f} | {loud[name]:.4f} |")
    if args.cer:
        _print_cer(data.info["teacher"]["model"], vocoders, args.cer, args.threads, data.sample_rate)


def _print_cer(model: str, vocoders: dict, count: int, threads: int, sample_rate: int) -> None:
    """Whisper's CER of the first `count` default texts, the teacher's mels through each vocoder."""
    from qingyin.evaluate.cer import WhisperTranscriber, character_errors
    from qingyin.families.fs2_mbmelgan.features import AcousticControls
    from qingyin.families.fs2_mbmelgan.torch_runtime import TorchBackend
    from qingyin.families.fs2_mbmelgan.voice import sentence_ids
    from qingyin.text.corpus import read_texts
    from qingyin.voices import registry

    folder = registry.model_dir(model)
    backend = TorchBackend(folder, threads=threads)
    texts = read_texts()[:count]
    mels = [[backend.acoustic(ids, AcousticControls()).mel for ids in sentence_ids(folder, [text])] for text in texts]
    transcriber, errors = WhisperTranscriber(), {}
    with torch.inference_mode():
        for name, vocoder in vocoders.items():
            backend.vocoder = vocoder
            counts = [character_errors(text, transcriber.transcribe(np.concatenate([backend.vocode(m) for m in parts]),
                                                                    sample_rate), normalize=True)
                      for text, parts in zip(texts, mels, strict=True)]
            errors[name] = (sum(e for e, _ in counts), sum(c for _, c in counts))
    print(f"\nWhisper CER, the first {count} default texts ({errors['teacher fp32'][1]} characters), the teacher "
          "acoustic model's mels (torch fp32) through each vocoder\n")
    print("| vocoder | CER | change | errors |")
    print("|---|---|---|---|")
    base_errors, characters = errors["teacher fp32"]
    for name, (wrong, _) in errors.items():
        print(f"| {name} | {wrong / characters:.4f} | {(wrong - base_errors) / characters:+.4f} | {wrong} |")


def _step(run: Path) -> str:
    import json

    return str(json.loads((run / "pruned_vocoder.json").read_text()).get("step", "?"))


if __name__ == "__main__":
    main()
