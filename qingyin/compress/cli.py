"""`qingyin compress ...`: the command line of qingyin.compress, added to `qingyin`'s parser by `add_compress_parser`.

Light to import: the voice and the engine are loaded only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from qingyin.compress.corpus import DEFAULT_SOURCES, MAX_CHARS, SOURCES
from qingyin.compress.student_recipe import StudentError, StudentSettings, StudentShape
from qingyin.compress.teacher_data import TEACHER_VARIANT
from qingyin.compress.vocoder_recipe import RATIOS, RecoveryError, RecoverySettings
from qingyin.families.fs2_mbmelgan.export import VARIANT_CHOICES
from qingyin.voices.registry import DEFAULT_VOICE

THE_TEACHERS = "the teacher's"
SHIPPED_VOCODER_RATIO = 0.3  # the run ship-vocoder takes by default
SHIPPED_DECODER_RATIO = 0.5  # and ship-decoder
# RecoverySettings fields on the command line
RECIPE_FLAGS = ("batch_size", "segment_samples", "learning_rate", "learning_rate_half_life", "log_floor",
                "waveform_weight", "mel_weight", "quantization_aware", "hint_weight", "adversarial_weight",
                "discriminator_learning_rate", "discriminator_warmup_steps", "seed")
SHAPE_FLAGS = tuple(StudentShape.__dataclass_fields__)  # StudentShape fields on the command line
# StudentSettings fields, likewise
STUDENT_FLAGS = ("batch_size", "learning_rate", "learning_rate_half_life", "hint_weight", "validation_utterances",
                 "seed")
EXAMPLES = """examples:
  qingyin compress teacher-data --limit 200 --workers 2     # the first 200 CPP sentences, into
                                                            # $QINGYIN_HOME/train/teacher/baker/
  qingyin compress teacher-data --workers 2                 # all of it (~26,000 texts); run again to resume
  qingyin compress teacher-data --sources everyday --out /data/teacher-everyday
  qingyin compress prune-vocoder --ratio 0.5 --steps 20000  # prune Baker's vocoder by half, fine-tune it on the
                                                            # teacher data, into $QINGYIN_HOME/train/prune/vocoder-0.5/
  qingyin compress prune-vocoder --ratio 0.5 --steps 40000 --resume   # go on from the last checkpoint
  qingyin compress prune-vocoder --init-from ~/.cache/qingyin/train/prune/vocoder-0.3 --adversarial-weight 2.5 \
      --learning-rate 1e-4 --steps 10000    # an adversarial phase from that run's vocoder (vocoder-0.3-adversarial/)
  qingyin compress student --steps 20000                  # a 2 x 192 decoder, 3 x 256 postnet trained on the
                                                          # teacher's mels, in $QINGYIN_HOME/train/student/baker-192x2/
  qingyin compress prune-decoder --ratio 0.3 --steps 20000   # the decoder and postnet with 30 % of their channels
                                                          # cut, retrained, in $QINGYIN_HOME/train/prune/decoder-0.3/
  qingyin compress ship-student                           # that student's own tensors (fp16) + manifest into the
                                                          # package, for `qingyin export baker --variant student`
  qingyin compress ship-vocoder                           # the 30 % pruned vocoder (fp16) + manifest into the package,
                                                          # for `qingyin export baker --variant student-int8-pruned`
  qingyin compress ship-decoder                           # the 50 % pruned decoder (fp16) + manifest into the package,
                                                          # for `qingyin export baker --variant pruned50-int8`
  qingyin compress bundle baker --variant int8-static     # a mobile bundle (ORT format) into
                                                          # $QINGYIN_HOME/bundles/baker-int8-static/
"""


def add_compress_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `compress` (and its commands) to the `qingyin` command's subparsers; `compress_command` runs it."""
    compress = subparsers.add_parser(
        "compress", help="make smaller voices: teacher data, vocoder pruning, student acoustic models and their "
                         "shipping, mobile bundles",
        description="Compression of a voice: the teacher's data, then pruned and student models trained on it; a "
                    "variant as a mobile bundle.", epilog=EXAMPLES,
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
    _add_prune_vocoder(commands)
    _add_student(commands)
    for name, help, description, run in SHIP_COMMANDS:
        _add_ship(commands, name, help, description, run)
    _add_bundle(commands)
    return compress


def _add_prune_vocoder(commands: argparse._SubParsersAction) -> None:
    defaults = RecoverySettings()
    prune = commands.add_parser(
        "prune-vocoder", help="prune the MB-MelGAN vocoder's channels and fine-tune it against the teacher",
        description="Structured channel pruning of the teacher data's MB-MelGAN vocoder (torch-pruning, the "
                    "`compress` extra), then recovery fine-tuning on the teacher's mels and audio: multi-resolution "
                    "STFT (full band and sub-bands) and waveform L1 (qingyin.compress.vocoder_recovery), optionally "
                    "with a discriminator (--adversarial-weight). Checkpoints every --checkpoint-every steps, at the "
                    "end and on Ctrl-C or SIGTERM; --resume goes on from the last. The teacher data comes first: "
                    "`qingyin compress teacher-data`.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    prune.add_argument("--ratio", type=float, default=defaults.ratio,
                       help=f"fraction of each layer's channels removed, e.g. {', '.join(map(str, RATIOS))} "
                            f"(default: {defaults.ratio}; with --resume it only picks the default --out)")
    prune.add_argument("--steps", type=int, required=True, metavar="N",
                       help="train until step N (counted from the start of the run, so a resumed run does the rest)")
    prune.add_argument("--resume", action="store_true", help="go on from the checkpoint in --out")
    prune.add_argument("--teacher", type=Path, metavar="DIR",
                       help=f"teacher data (default: $QINGYIN_HOME/train/teacher/{DEFAULT_VOICE})")
    prune.add_argument("--out", type=Path, metavar="DIR",
                       help="run folder (default: $QINGYIN_HOME/train/prune/vocoder-<ratio>; with --init-from RUN: "
                            "RUN-adversarial when --adversarial-weight is given, else RUN-continued, beside RUN)")
    prune.add_argument("--init-from", type=Path, metavar="RUN",
                       help="start a fresh run from the pruned vocoder of this run folder (its last checkpoint) "
                            "instead of pruning the teacher again; the ratio is that run's. For a second phase "
                            "with another recipe, e.g. --adversarial-weight")
    recipe = prune.add_argument_group("recipe", "fixed when a run starts (recipe.json); --resume takes none of them")
    recipe.add_argument("--batch-size", type=int, metavar="N",
                        help=f"segments per step (default: {defaults.batch_size})")
    recipe.add_argument("--segment-samples", type=int, metavar="N",
                        help=f"audio samples per segment, a multiple of the hop (default: {defaults.segment_samples})")
    recipe.add_argument("--learning-rate", type=float, metavar="LR",
                        help=f"Adam's learning rate at the start (default: {defaults.learning_rate:g})")
    recipe.add_argument("--learning-rate-half-life", type=int, metavar="N",
                        help="steps over which the learning rate halves, smoothly; 0 keeps it constant (default: "
                             f"{defaults.learning_rate_half_life})")
    recipe.add_argument("--log-floor", type=float, metavar="F",
                        help="the STFT losses' magnitudes are at least F before their logs: a higher floor leaves "
                             f"the quietest bins (sub-band quantization noise) out (default: {defaults.log_floor:g})")
    recipe.add_argument("--quantization-aware", action="store_const", const=True, default=None,
                        help="train through the vocoder's sub-band rounding (straight-through gradient) rather than "
                             "on unrounded sub-bands")
    recipe.add_argument("--waveform-weight", type=float, metavar="W",
                        help="weight of the L1 loss on the audio samples; it pulls what cannot be matched sample by "
                             f"sample (noise) towards silence (0: off; default: {defaults.waveform_weight:g})")
    recipe.add_argument("--mel-weight", type=float, metavar="W",
                        help="weight of an L1 loss between the student's and the teacher's log-mel spectrograms "
                             f"(0: off; default: {defaults.mel_weight:g})")
    recipe.add_argument("--hint-weight", type=float, metavar="W",
                        help="weight of the layer hints: every layer's output against the teacher's on the channels "
                             f"it kept (the teacher runs on every batch; 0: off; default: {defaults.hint_weight:g})")
    recipe.add_argument("--adversarial-weight", type=float, metavar="W",
                        help="train a multi-scale discriminator on the teacher's audio against the student's and add "
                             "W x the student's least-squares adversarial loss (MB-MelGAN: 2.5; 0: no discriminator; "
                             f"default: {defaults.adversarial_weight:g})")
    recipe.add_argument("--discriminator-learning-rate", type=float, metavar="LR",
                        help=f"the discriminator's Adam learning rate (default: "
                             f"{defaults.discriminator_learning_rate:g})")
    recipe.add_argument("--discriminator-warmup-steps", type=int, metavar="N",
                        help="steps in which only the discriminator learns from the adversarial loss (default: "
                             f"{defaults.discriminator_warmup_steps})")
    recipe.add_argument("--seed", type=int, help=f"random seed (default: {defaults.seed})")
    _add_run_options(prune)


def _add_student(commands: argparse._SubParsersAction) -> None:
    defaults = StudentSettings()
    student = commands.add_parser(
        "student", help="train a smaller decoder and postnet on the teacher's mels",
        description="A student acoustic model: the teacher's encoder and variance predictors (frozen, so durations "
                    "and pitch stay the teacher's) with a smaller decoder and postnet cut from the teacher's and "
                    "trained on the teacher data's mels, mel L1 before and after the postnet "
                    "(qingyin.compress.student_training). Checkpoints every --checkpoint-every steps, at the end "
                    "and on Ctrl-C or SIGTERM; --resume goes on from the last. The teacher data comes first: "
                    "`qingyin compress teacher-data`.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    recipe = _add_acoustic_training(student, "$QINGYIN_HOME/train/student/<voice>-<decoder hidden>x<decoder layers>")
    for name in SHAPE_FLAGS:
        default = getattr(defaults.shape, name)
        recipe.add_argument("--" + name.replace("_", "-"), type=int, metavar="N",
                            help=f"the student's {name.replace('_', ' ')} (default: "
                                 f"{THE_TEACHERS if default is None else default})")
    pruned = commands.add_parser(
        "prune-decoder", help="prune the decoder's and postnet's channels and heads, and fine-tune them against the "
                              "teacher",
        description="Structured pruning of the teacher's decoder and postnet: --ratio of every width (the decoder's "
                    "residual channels, its feed-forward channels, the postnet's channels) and of the attention "
                    "heads removed by weight magnitude, layers kept (qingyin.compress.student: the cut a student "
                    "starts from, with the teacher's layer counts), then recovery training on the teacher data's "
                    "mels with the encoder and variance predictors frozen, mel L1 before and after the postnet, "
                    "and feature hints with --hint-weight (qingyin.compress.student_training). Checkpoints every "
                    "--checkpoint-every steps, at the end and on Ctrl-C or SIGTERM; --resume goes on from the last.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    pruned.add_argument("--ratio", type=float, default=0.5,
                        help="fraction of each width's channels removed, e.g. 0.3, 0.5, 0.7 (default: 0.5; with "
                             "--resume it only picks the default --out)")
    _add_acoustic_training(pruned, "$QINGYIN_HOME/train/prune/decoder-<ratio>")


def _add_acoustic_training(parser: argparse.ArgumentParser, out: str) -> argparse._ArgumentGroup:
    """The options `student` and `prune-decoder` share; returns the recipe's group."""
    defaults = StudentSettings()
    parser.add_argument("--steps", type=int, required=True, metavar="N",
                        help="train until step N (counted from the start of the run, so a resumed run does the "
                             "rest)")
    parser.add_argument("--resume", action="store_true", help="go on from the checkpoint in --out")
    parser.add_argument("--teacher", type=Path, metavar="DIR",
                        help=f"teacher data (default: $QINGYIN_HOME/train/teacher/{DEFAULT_VOICE})")
    parser.add_argument("--out", type=Path, metavar="DIR", help=f"run folder (default: {out})")
    recipe = parser.add_argument_group("recipe", "fixed when a run starts (recipe.json); --resume takes none of "
                                                 "them")
    recipe.add_argument("--batch-size", type=int, metavar="N",
                        help=f"utterances per step (default: {defaults.batch_size})")
    recipe.add_argument("--learning-rate", type=float, metavar="LR",
                        help=f"Adam's learning rate after the warm-up (default: {defaults.learning_rate:g})")
    recipe.add_argument("--learning-rate-half-life", type=int, metavar="N",
                        help="steps after the warm-up over which the learning rate halves, smoothly; 0 keeps it "
                             f"constant (default: {defaults.learning_rate_half_life})")
    recipe.add_argument("--hint-weight", type=float, metavar="W",
                        help="weight of the feature hints: each decoder layer's output against the teacher layer's "
                             "it was cut from, on the channels kept; the teacher then runs on every batch "
                             f"(default: {defaults.hint_weight:g}, none)")
    recipe.add_argument("--validation-utterances", type=int, metavar="N",
                        help=f"the teacher data's last N utterances, held out (default: "
                             f"{defaults.validation_utterances})")
    recipe.add_argument("--seed", type=int, help=f"random seed (default: {defaults.seed})")
    _add_run_options(parser)
    return recipe


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """How a training run reports and saves itself, for every training command."""
    parser.add_argument("--validate-every", type=int, default=500, metavar="N",
                        help="steps between validations on held-out teacher utterances (default: 500)")
    parser.add_argument("--checkpoint-every", type=int, default=200, metavar="N",
                        help="steps between checkpoints (default: 200)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch threads (default: torch's, all cores)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _add_ship(commands: argparse._SubParsersAction, name: str, help: str, description: str, run: str) -> None:
    ship = commands.add_parser(name, help=help, description=description, epilog=EXAMPLES,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    ship.add_argument("run", nargs="?", type=Path, metavar="RUN", help=f"the training run's folder (default: {run})")
    ship.add_argument("-o", "--out", type=Path, metavar="DIR",
                      help="where to write it (default: the package's folder for the teacher model)")


SHIP_COMMANDS = (  # name, help, description, default run
    ("ship-student", "put a trained student into the package (fp16, with a manifest)",
     "Write a student training run's own tensors (everything outside the teacher's front) in fp16, its config and a "
     "manifest (sha256, the teacher's weights' sha256 and licence, the recipe and log) into the package's folder "
     "for its teacher (qingyin/families/fs2_mbmelgan/students/<model>/), from where `qingyin export <voice> "
     "--variant student` exports it. The run's front must be the installed teacher's (qingyin.compress.ship).",
     f"$QINGYIN_HOME/train/student/{DEFAULT_VOICE}-192x2"),
    ("ship-vocoder", "put a pruned, retrained vocoder into the package (fp16, with a manifest)",
     "Write a prune-vocoder run's vocoder as of its checkpoint (its config and channel widths, every tensor in "
     "fp16) and a manifest (sha256, the teacher's weights' sha256 and licence, the recipe and log) into the "
     "package's folder for its teacher (qingyin/families/fs2_mbmelgan/students/<model>/vocoder/), from where "
     "`qingyin export <voice> --variant student-int8-pruned` exports it (qingyin.compress.ship).",
     f"$QINGYIN_HOME/train/prune/vocoder-{SHIPPED_VOCODER_RATIO:g}"),
    ("ship-decoder", "put a pruned, retrained decoder into the package (fp16, with a manifest)",
     "Write a prune-decoder run's decoder and postnet as of its checkpoint (as ship-student writes a student: its "
     "own tensors in fp16, its config and a manifest) into the package's folder for its teacher and ratio "
     "(qingyin/families/fs2_mbmelgan/students/<model>/decoder-<percent>/), from where `qingyin export <voice> "
     "--variant pruned<percent>[-int8]` exports it. Its shape must be the teacher's pruned by 0.3, 0.5 or 0.7 "
     "(qingyin.compress.ship).",
     f"$QINGYIN_HOME/train/prune/decoder-{SHIPPED_DECODER_RATIO:g}"),
)


def _add_bundle(commands: argparse._SubParsersAction) -> None:
    bundle = commands.add_parser(
        "bundle", help="a voice variant as a mobile bundle: ORT-format graphs, operator list, symbols, manifest",
        description="Convert an exported variant's ONNX graphs to ONNX Runtime's ORT format (onnxruntime's "
                    "convert_onnx_models_to_ort, Fixed optimization style, target arm) with the operator list for a "
                    "reduced-operator build, add the symbol table, the configs the runtime reads and the licence "
                    "notice, write a manifest (sizes, sha256, versions), and check that the bundle synthesizes "
                    "like the ONNX graphs (qingyin.compress.bundle).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    bundle.add_argument("voice", nargs="?", default=DEFAULT_VOICE, help=f"the voice (default: {DEFAULT_VOICE})")
    bundle.add_argument("--variant", default="fp32",
                        help=f"the exported variant to bundle, one of {VARIANT_CHOICES} (default: fp32)")
    bundle.add_argument("-o", "--out", type=Path, metavar="DIR",
                        help="the bundle's folder (default: $QINGYIN_HOME/bundles/<voice>-<variant>)")
    bundle.add_argument("--force", action="store_true", help="replace a bundle already in the folder")


def compress_command(args: argparse.Namespace) -> int:
    """Run the `compress` command parsed by `add_compress_parser`'s parser."""
    if args.compress_command == "teacher-data":
        return _teacher_data(args)
    if args.compress_command == "prune-vocoder":
        return _prune_vocoder(args)
    if args.compress_command in ("student", "prune-decoder"):
        return _student(args)
    if args.compress_command == "ship-student":
        return _ship_student(args)
    if args.compress_command == "ship-vocoder":
        return _ship_vocoder(args)
    if args.compress_command == "ship-decoder":
        return _ship_decoder(args)
    if args.compress_command == "bundle":
        return _bundle(args)
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


def _prune_vocoder(args: argparse.Namespace) -> int:
    from qingyin.compress import teacher_data, vocoder_recovery

    given = {name: getattr(args, name) for name in RECIPE_FLAGS if getattr(args, name) is not None}
    if args.resume and given:  # a resumed run keeps its recipe; only the step count and the schedule may change
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise RecoveryError(f"--resume keeps the run's recipe (recipe.json): leave out {flags}")
    ratio, out = args.ratio, args.out or vocoder_recovery.default_out(args.ratio)
    if args.init_from is not None:
        ratio = vocoder_recovery.saved_ratio(args.init_from)
        phase = "adversarial" if given.get("adversarial_weight") else "continued"
        out = args.out or args.init_from.parent / f"{args.init_from.name}-{phase}"
    settings = None if args.resume else replace(RecoverySettings(), ratio=ratio, **given)
    result = vocoder_recovery.recover_vocoder(
        args.teacher or teacher_data.default_out(DEFAULT_VOICE), args.steps, settings, out, resume=args.resume,
        validate_every=args.validate_every, checkpoint_every=args.checkpoint_every, threads=args.threads,
        progress=args.progress, init_from=args.init_from)
    last = "none after the start" if result.last_log_mel_l1 is None else f"{result.last_log_mel_l1:.4f}"
    speed = "" if result.seconds_per_step is None else f", {result.seconds_per_step:.3f} s/step"
    print(f"qingyin: pruned vocoder in {result.out} at step {result.step}: {result.parameters:,} parameters "
          f"(teacher {result.teacher_parameters:,}); validation log-mel L1 {result.start_log_mel_l1:.4f} pruned, "
          f"{last} now (teacher vocoder {result.teacher_log_mel_l1:.4f}){speed}", file=sys.stderr)
    return 0


def _student(args: argparse.Namespace) -> int:
    from qingyin.compress import student_training, teacher_data

    pruning = args.compress_command == "prune-decoder"
    shape = {} if pruning else {name: getattr(args, name) for name in SHAPE_FLAGS if getattr(args, name) is not None}
    given = {name: getattr(args, name) for name in STUDENT_FLAGS if getattr(args, name) is not None}
    if args.resume and (shape or given):
        flags = ", ".join("--" + name.replace("_", "-") for name in [*shape, *given])
        raise StudentError(f"--resume keeps the run's recipe (recipe.json): leave out {flags}")
    data = args.teacher or teacher_data.default_out(DEFAULT_VOICE)
    settings, out = None, args.out
    if not args.resume:
        settings = replace(StudentSettings(), shape=replace(StudentShape(), **shape), **given)
    if pruning:
        out = out or student_training.pruned_out(args.ratio)
        if settings is not None:
            settings = student_training.pruned_settings(data, args.ratio, settings)
    result = student_training.train_student(
        data, args.steps, settings, out, resume=args.resume, validate_every=args.validate_every,
        checkpoint_every=args.checkpoint_every, threads=args.threads, progress=args.progress)
    last = "none after the start" if result.last_mel_l1 is None else f"{result.last_mel_l1:.4f}"
    speed = "" if result.seconds_per_step is None else f", {result.seconds_per_step:.3f} s/step"
    what = "pruned decoder" if pruning else "student"
    print(f"qingyin: {what} in {result.out} at step {result.step}: decoder and postnet "
          f"{result.parameters['decoder_and_postnet']:,} parameters (teacher "
          f"{result.teacher_parameters['decoder_and_postnet']:,}); validation mel L1 {result.start_mel_l1:.4f} "
          f"as cut, {last} now (teacher {result.teacher_mel_l1:.4f}){speed}", file=sys.stderr)
    return 0


def _ship_student(args: argparse.Namespace) -> int:
    from qingyin.compress import student_training
    from qingyin.compress.ship import ship_student

    folder = ship_student(args.run or student_training.default_out(DEFAULT_VOICE, StudentSettings()), args.out)
    return _report_shipped(folder, lambda manifest: "student", "mel", lambda manifest: "student")


def _ship_decoder(args: argparse.Namespace) -> int:
    from qingyin.compress import student_training
    from qingyin.compress.ship import ship_decoder
    from qingyin.families.fs2_mbmelgan.export import pruned_decoder_variant

    folder = ship_decoder(args.run or student_training.pruned_out(SHIPPED_DECODER_RATIO), args.out)
    return _report_shipped(folder, lambda manifest: f"{manifest['ratio']:.0%} pruned decoder", "mel",
                           lambda manifest: pruned_decoder_variant(manifest["ratio"], int8=True))


def _ship_vocoder(args: argparse.Namespace) -> int:
    from qingyin.compress import vocoder_recovery
    from qingyin.compress.ship import ship_vocoder

    folder = ship_vocoder(args.run or vocoder_recovery.default_out(SHIPPED_VOCODER_RATIO), args.out)
    return _report_shipped(folder, lambda manifest: "pruned vocoder", "audio",
                           lambda manifest: "student-int8-pruned")


def _report_shipped(folder: Path, what, changed: str, variant) -> int:
    """Say what was shipped into `folder`, from its manifest: `what(manifest)` and `variant(manifest)` name it and
    the variant that exports it; `changed` ("mel" or "audio") is what the fp16 rounding was measured on."""
    from qingyin.families.fs2_mbmelgan.students import MANIFEST_FILE

    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    metric, key = ("mel L1", "validation_mel_l1") if changed == "mel" else ("log-mel L1", "validation_log_mel_l1")
    largest = manifest[f"fp16_max_{changed}_change"]
    print(f"qingyin: {what(manifest)} at step {manifest['step']} shipped into {folder} (validation {metric} "
          f"{manifest[key]}, fp16 rounding changes the {changed} by at most {largest:.2g}); export it with "
          f"`qingyin export {DEFAULT_VOICE} --variant {variant(manifest)}`", file=sys.stderr)
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from qingyin.compress.bundle import make_bundle, summary

    print(f"qingyin: bundling {args.voice} ({args.variant}): converting its graphs to ORT format, then checking "
          "them on one sentence", file=sys.stderr)
    print(summary(make_bundle(args.voice, args.variant, args.out, force=args.force)))
    return 0
