"""`qingyin compress ...`: the command line of qingyin.compress, added to `qingyin`'s parser by `add_compress_parser`.

Light to import: the voice and the engine are loaded only when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qingyin.compress.corpus import DEFAULT_SOURCES, MAX_CHARS, SOURCES
from qingyin.compress.teacher_data import TEACHER_VARIANT
from qingyin.voices.registry import DEFAULT_VOICE

EXAMPLES = """examples:
  qingyin compress teacher-data --limit 200 --workers 2     # the first 200 CPP sentences, into
                                                            # $QINGYIN_HOME/train/teacher/baker/
  qingyin compress teacher-data --workers 2                 # all of it (~26,000 texts); run again to resume
  qingyin compress teacher-data --sources everyday --out /data/teacher-everyday
"""


def add_compress_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `compress` (and its commands) to the `qingyin` command's subparsers; `compress_command` runs it."""
    compress = subparsers.add_parser(
        "compress", help="make smaller voices: teacher data (pruning, students and quantization to come)",
        description="Compression of a voice by distillation. First step: the teacher's data.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = compress.add_subparsers(dest="compress_command", required=True)
    teacher = commands.add_parser(
        "teacher-data", help="render the teacher corpus with a voice into resumable shards",
        description="A voice reads the teacher corpus (qingyin.compress.corpus: CPP's sentences, marks removed, and "
                    "qingyin's everyday polyphone sentences) through the engine; its tokens, durations, pitch, "
                    "energy, mels and audio are kept in shards of --shard-size texts (qingyin.compress.teacher_data). "
                    "Shards already done are skipped: run the same command again to resume.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    teacher.add_argument("--voice", default=DEFAULT_VOICE, help=f"the teacher voice (default: {DEFAULT_VOICE})")
    teacher.add_argument("--out", type=Path, metavar="DIR",
                         help="where the shards go (default: $QINGYIN_HOME/train/teacher/<voice>)")
    teacher.add_argument("--limit", type=int, metavar="N", help="only the first N texts of the corpus (default: all)")
    teacher.add_argument("--workers", type=int, default=1, metavar="N",
                         help="processes, each with the voice loaded and cores // N threads (default: 1)")
    teacher.add_argument("--shard-size", type=int, default=None, metavar="N",
                         help="texts per shard (default: 64; a folder keeps the size it was started with)")
    teacher.add_argument("--sources", default=",".join(DEFAULT_SOURCES), metavar="LIST",
                         help=f"corpus sources in order, comma-separated, of {', '.join(SOURCES)} "
                              f"(default: {','.join(DEFAULT_SOURCES)}; 'default' is the evaluation set)")
    teacher.add_argument("--cpp", type=Path, metavar="DIR", help="CPP's folder (default: ../shared/data/cpp)")
    teacher.add_argument("--max-chars", type=int, default=MAX_CHARS, metavar="N",
                         help=f"leave out texts longer than N characters (default: {MAX_CHARS})")
    teacher.add_argument("--backend", help="the voice's runtime, e.g. torch or onnx (default: the voice's; Baker: "
                                           "torch, the reference; onnx fp32 gives the same mel to ~2e-5, faster)")
    teacher.add_argument("--variant", default=TEACHER_VARIANT,
                         help=f"the runtime's variant (default: {TEACHER_VARIANT}: a teacher runs at full precision)")
    teacher.add_argument("--threads", type=int, metavar="N", help="threads per worker (default: cores // workers)")
    teacher.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return compress


def compress_command(args: argparse.Namespace) -> int:
    """Run the `compress` command parsed by `add_compress_parser`'s parser."""
    if args.compress_command == "teacher-data":
        return _teacher_data(args)
    raise ValueError(f"unknown compress command {args.compress_command!r}")  # argparse refuses it first


def _teacher_data(args: argparse.Namespace) -> int:
    from qingyin.compress.corpus import parse_sources, teacher_corpus
    from qingyin.compress.teacher_data import render_teacher_data

    sources = parse_sources(args.sources)
    corpus = teacher_corpus(sources, cpp_dir=args.cpp, max_chars=args.max_chars)
    described = ",".join(sources) + (f" (cpp: {args.cpp})" if args.cpp and "cpp" in sources else "")
    summary = render_teacher_data(
        corpus, args.voice, args.out, limit=args.limit, workers=args.workers,
        shard_size=args.shard_size, backend=args.backend, variant=args.variant, threads=args.threads,
        progress=args.progress, corpus_name=f"{described}, at most {args.max_chars} characters")
    print(f"qingyin: teacher data in {summary.out}: {summary.shards} shards planned, {summary.rendered} rendered now "
          f"({summary.reused} were done); this run: {summary.texts} texts, {summary.utterances} utterances, "
          f"{summary.audio_seconds:.1f} s of audio, {summary.skipped} texts skipped, in {summary.wall_seconds:.1f} s "
          f"({summary.utterances_per_second:.2f} utterances/s, {summary.audio_seconds_per_second:.2f} audio s/s); "
          f"the folder holds {summary.total_utterances} utterances, {summary.total_seconds / 3600:.2f} h",
          file=sys.stderr)
    return 0
