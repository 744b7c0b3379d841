"""The `qingyin` command line: mostly in-process through `qingyin.cli.main`, a few real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import qingyin.cli
from qingyin.evaluate.reference import REPO
from qingyin.runtime.audio import read_wav

SAMPLE_RATE = 24000
HOP = 300
PAUSE = int(round(0.2 * SAMPLE_RATE))  # default silence between sentences
PHONES = "sil n i3 #0 h ao3 sil"
DURATIONS = "10,5,12,2,6,14,10,1"  # sum 60
LONG_TEXT = (
    "春天来了，公园里的花都开了，红的像火，粉的像霞，白的像雪。小朋友们在草地上放风筝，"
    "老人们坐在长椅上聊天，年轻人沿着湖边慢慢地跑步。湖水很清，可以看见小鱼在水草中间游来游去。"
)


@pytest.fixture
def cli(tts, monkeypatch, capsys):
    """Run `qingyin.cli.main(argv)` in-process -> (exit code, stdout, stderr).

    The CLI builds a Synthesizer per call; to keep the suite fast the Baker voice loaded once for the
    session is handed back instead (other voices and --threads still go through the real constructor;
    the subprocess tests below cover the real thing end to end).
    """
    from qingyin.runtime import synthesizer

    real = synthesizer.Synthesizer

    def make(voice: str = "baker", threads: int | None = None, fetch: bool = True, lexicon=None, prosody="marks",
             backend="torch", variant=None):
        if (voice, threads, lexicon, prosody, backend, variant) == ("baker", None, None, "marks", "torch", None):
            return tts
        return real(voice, threads=threads, fetch=fetch, lexicon=lexicon, prosody=prosody, backend=backend,
                    variant=variant)

    monkeypatch.setattr(synthesizer, "Synthesizer", make)
    if hasattr(qingyin.cli, "Synthesizer"):
        monkeypatch.setattr(qingyin.cli, "Synthesizer", make)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = qingyin.cli.main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse, --help, or SystemExit("message") as the interpreter would treat it
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def run_cli(*argv: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m qingyin.cli ...` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "qingyin.cli", *map(str, argv)],
        input=None if stdin is None else stdin.encode("utf-8"),
        capture_output=True, cwd=REPO, env=env, timeout=300,
    )


def decoded(process: subprocess.CompletedProcess) -> tuple[str, str]:
    return process.stdout.decode("utf-8", "replace"), process.stderr.decode("utf-8", "replace")


def assert_wav(path: Path) -> np.ndarray:
    samples, rate = read_wav(path)
    assert rate == SAMPLE_RATE
    assert len(samples) > 0 and np.isfinite(samples).all() and np.abs(samples).max() > 0.01
    return samples


def assert_no_leftovers(folder: Path, allowed: tuple[str, ...] = ()) -> None:
    left = sorted(p.name for p in folder.iterdir() if p.name not in allowed)
    assert left == [], f"left behind: {left}"


# --- say: text -----------------------------------------------------------------------------------------


def test_say_writes_a_wav(cli, tmp_path):
    out = tmp_path / "out.wav"
    code, stdout, stderr = cli("say", "今天天气不错", "-o", out)
    assert code == 0, stderr
    assert stdout.strip() == str(out)
    samples = assert_wav(out)
    assert 0.8 <= len(samples) / SAMPLE_RATE <= 4.0
    assert_no_leftovers(tmp_path, ("out.wav",))


def test_say_passes_speed_pitch_energy(cli, tts, tmp_path):
    out, npz = tmp_path / "out.wav", tmp_path / "f.npz"
    code, _, stderr = cli("say", "今天天气不错", "-o", out, "--speed", "1.2", "--pitch", "1.1", "--energy", "0.9",
                          "--save-features", npz)
    assert code == 0, stderr
    samples = assert_wav(out)
    expected = tts.synthesize("今天天气不错", speed=1.2, pitch=1.1, energy=0.9)
    assert len(samples) == len(expected.audio)
    assert np.abs(samples - expected.audio).max() <= 1.0 / 32767 + 1e-6
    features = np.load(npz)
    np.testing.assert_array_equal(features["durations"], expected.sentences[0].features.durations)
    np.testing.assert_allclose(features["pitch"], expected.sentences[0].features.pitch, rtol=1e-6)


def test_say_verbose_and_features(cli, tts, tmp_path):
    out, npz = tmp_path / "out.wav", tmp_path / "f.npz"
    code, stdout, stderr = cli("say", "你好。再见！", "-o", out, "--verbose", "--save-features", npz)
    assert code == 0, stderr
    assert stdout.strip() == str(out)
    assert "real-time factor" in stderr
    phone_lines = [line.split() for line in stderr.splitlines() if line.startswith("sil ")]
    assert phone_lines == [s.phones for s in tts.frontend("你好。再见！").sentences]
    assert len(phone_lines) == 2

    features = np.load(npz)
    assert set(features.files) == {"mel", "durations", "pitch", "energy"}
    mel, durations = features["mel"], features["durations"]
    assert mel.dtype == np.float32 and mel.ndim == 2 and mel.shape[1] == 80
    assert np.issubdtype(durations.dtype, np.integer) and (durations >= 0).all()
    assert len(durations) == sum(len(p) + 1 for p in phone_lines)  # eos per sentence
    assert int(durations.sum()) == mel.shape[0]
    assert features["pitch"].shape == features["energy"].shape == durations.shape
    samples = assert_wav(out)
    assert len(samples) == mel.shape[0] * HOP + PAUSE * (len(phone_lines) - 1)


# --- say: symbols and timing -----------------------------------------------------------------------------


def test_say_phones_with_durations_is_exact(cli, tmp_path):
    out, npz = tmp_path / "hello.wav", tmp_path / "f.npz"
    code, _, stderr = cli("say", "--phones", PHONES, "--durations", DURATIONS, "-o", out, "--save-features", npz)
    assert code == 0, stderr
    samples = assert_wav(out)
    assert len(samples) == 60 * HOP
    assert np.load(npz)["durations"].tolist() == [int(d) for d in DURATIONS.split(",")]


def test_say_phones_without_durations(cli, tmp_path):
    out = tmp_path / "hello.wav"
    code, _, stderr = cli("say", "--phones", PHONES, "-o", out)
    assert code == 0, stderr
    assert len(assert_wav(out)) % HOP == 0


def test_durations_need_phones(cli, tmp_path):
    out = tmp_path / "out.wav"
    code, stdout, stderr = cli("say", "你好", "--durations", DURATIONS, "-o", out)
    assert code == 2
    assert "qingyin: error:" in stderr and "--phones" in stderr
    assert stdout == ""
    assert_no_leftovers(tmp_path)


@pytest.mark.parametrize("durations", ["10,5,12", "10,5,12,2,6,14,10,1,1"])
def test_durations_wrong_count(cli, tmp_path, durations):
    code, _, stderr = cli("say", "--phones", PHONES, "--durations", durations, "-o", tmp_path / "out.wav")
    assert code == 2
    assert "qingyin: error:" in stderr and str(len(durations.split(","))) in stderr and "8" in stderr
    assert_no_leftovers(tmp_path)


# --- say: emotion and reference prosody -------------------------------------------------------------------


def assert_same_audio(path: Path, expected: np.ndarray) -> None:
    samples = assert_wav(path)
    assert len(samples) == len(expected)
    assert np.abs(samples - expected).max() <= 1.0 / 32767 + 1e-6


@pytest.mark.parametrize(("flags", "options"), [
    (["--emotion", "happy", "--intensity", "1.2"], {"emotion": "happy", "intensity": 1.2}),
    (["--emotion", "sad"], {"emotion": "sad"}),
    (["--emotion", "happy:0.6,surprise:0.3"], {"emotion": {"happy": 0.6, "surprise": 0.3}}),
])
def test_say_passes_emotion_and_intensity(cli, tts, tmp_path, flags, options):
    out = tmp_path / "out.wav"
    code, _, stderr = cli("say", "今天天气不错。", "-o", out, *flags)
    assert code == 0, stderr
    expected = tts.synthesize("今天天气不错。", **options).audio
    assert_same_audio(out, expected)
    assert not np.array_equal(expected, tts.synthesize("今天天气不错。").audio)


def test_say_emotion_on_phones(cli, tts, tmp_path):
    out = tmp_path / "out.wav"
    code, _, stderr = cli("say", "--phones", PHONES, "-o", out, "--emotion", "angry")
    assert code == 0, stderr
    assert_same_audio(out, tts.synthesize_phones(PHONES, emotion="angry").audio)


@pytest.fixture(scope="module")
def reference_wav(tts, tmp_path_factory) -> Path:
    """A recording to take prosody from: the Baker voice, livelier and faster than it speaks by default."""
    path = tmp_path_factory.mktemp("reference") / "ref.wav"
    tts.synthesize("我们明天早上八点在学校门口见面，别迟到了。", pitch=1.6, speed=1.25).save(path)
    return path


def test_say_takes_prosody_from_a_reference(cli, tts, tmp_path, reference_wav):
    out = tmp_path / "out.wav"
    code, stdout, stderr = cli("say", "今天天气不错。", "-o", out, "--reference", reference_wav,
                               "--reference-strength", "0.7", "--emotion", "happy")
    assert code == 0, stderr
    assert stdout.strip() == str(out)
    expected = tts.synthesize("今天天气不错。", reference=str(reference_wav), reference_strength=0.7,
                              emotion="happy").audio
    assert_same_audio(out, expected)
    assert not np.array_equal(expected, tts.synthesize("今天天气不错。", emotion="happy").audio)


@pytest.mark.parametrize(("args", "hint"), [
    (["--emotion", "joy"], "unknown emotion"),
    (["--emotion", "happy:lots"], "happy:0.6,surprise:0.3"),
    (["--emotion", "happy:1.5,sad:1"], "at most 2"),
    (["--intensity", "3"], "intensity must be a number between 0 and 2"),
    (["--intensity", "nan"], "intensity"),
    (["--reference-strength", "2"], "reference_strength"),
    (["--reference", "no/such/recording.wav"], "no reference recording"),
])
def test_say_bad_style_flags_are_clean_errors(cli, tmp_path, args, hint):
    out = tmp_path / "out.wav"
    code, stdout, stderr = cli("say", "你好", "-o", out, *args)
    assert code == 2, stderr
    assert "qingyin: error:" in stderr and hint in stderr and "Traceback" not in stderr
    assert stdout == ""
    assert_no_leftovers(tmp_path)


@pytest.mark.parametrize(("content", "hint"), [
    (b"not audio at all" * 50, "cannot read"),
    (None, "0.30 s long"),
])
def test_say_unusable_reference_is_a_clean_error(cli, tmp_path, content, hint):
    from qingyin.runtime.audio import write_wav

    reference = tmp_path / "ref.wav"
    if content is None:
        write_wav(reference, 0.3 * np.sin(np.arange(int(0.3 * SAMPLE_RATE)) * 0.05).astype(np.float32), SAMPLE_RATE)
    else:
        reference.write_bytes(content)
    code, _, stderr = cli("say", "你好", "-o", tmp_path / "out.wav", "--reference", reference)
    assert code == 2 and "qingyin: error:" in stderr and hint in stderr
    assert_no_leftovers(tmp_path, ("ref.wav",))


def test_say_warns_about_a_clipped_reference(cli, tmp_path, reference_wav):
    samples, rate = read_wav(reference_wav)
    from qingyin.runtime.audio import write_wav

    clipped = tmp_path / "clipped.wav"
    write_wav(clipped, np.clip(samples * 8, -0.5, 0.5).astype(np.float32), rate)
    code, _, stderr = cli("say", "你好。", "-o", tmp_path / "out.wav", "--reference", clipped)
    assert code == 0, stderr
    assert "qingyin: warning:" in stderr and "clipped" in stderr


def test_voices_show_the_seven_emotions(cli):
    code, stdout, _ = cli("voices")
    assert code == 0
    header, *rows = stdout.split("\n\n")[0].splitlines()
    assert "emotions" in header and all("all 7*" in row for row in rows)
    assert "neutral, happy, sad, angry, surprise, fear, disgust" in stdout and "prosody control" in stdout
    assert "trained on neutral speech" in stdout
    code, stdout, _ = cli("voices", "--json")
    import json

    assert all(row["emotions"][1:] == ["happy", "sad", "angry", "surprise", "fear", "disgust"]
               for row in json.loads(stdout))


# --- say: bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["say", ""], "nothing to say"),
        (["say", "   "], "nothing to say"),
        (["say", "。，！"], "nothing to say"),
        (["say", "😀😀"], "nothing to say"),
        (["say", "你好", "--speed", "0"], "speed"),
        (["say", "你好", "--speed", "nan"], "speed"),
        (["say", "你好", "--speed", "-1"], "speed"),
        (["say", "你好", "--speed", "inf"], "speed"),
        (["say", "你好", "--pitch", "nan"], "pitch"),
        (["say", "你好", "--energy", "5"], "energy"),
        (["say", "你好", "--voice", "nope"], "baker"),
        (["say", "--phones", "sil n i3 #0 h ao9 sil"], "'ao9'"),
        (["say", "--phones", "   "], "phones"),
        (["say", "--phones", PHONES, "--durations", "10,5,12,2,6,14,10,-1"], "durations"),
    ],
)
def test_say_bad_input_is_a_clean_error(cli, tmp_path, args, hint):
    out = tmp_path / "out.wav"
    code, stdout, stderr = cli(*args, "-o", out)
    assert code == 2, stderr
    assert "qingyin: error:" in stderr and hint in stderr
    assert "Traceback" not in stderr
    assert stdout == ""
    assert_no_leftovers(tmp_path)  # no out.wav, no out.wav.part


def test_speed_range_is_named(cli, tmp_path):
    _, _, stderr = cli("say", "你好", "--speed", "0", "-o", tmp_path / "out.wav")
    assert "0.25" in stderr and "4" in stderr


def test_output_into_missing_folder(cli, tmp_path):
    out = tmp_path / "missing" / "out.wav"
    code, _, stderr = cli("say", "你好", "-o", out)
    assert code == 2
    assert "qingyin: error:" in stderr and "missing" in stderr
    assert_no_leftovers(tmp_path)


def test_output_onto_a_folder(cli, tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    code, _, stderr = cli("say", "你好", "-o", folder)
    assert code == 2
    assert "qingyin: error:" in stderr
    assert_no_leftovers(tmp_path, ("taken",))
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("args", [["--speed", "abc"], ["--pitch", ""], ["--durations", "1,x", "--phones", PHONES],
                                  ["--threads", "two"], ["--bogus"]])
def test_argparse_rejects_malformed_flags(cli, tmp_path, args):
    code, _, stderr = cli("say", "你好", *args, "-o", tmp_path / "out.wav")
    assert code == 2
    assert "usage:" in stderr and "error:" in stderr
    assert_no_leftovers(tmp_path)


def test_say_without_text(cli, tmp_path):
    code, _, stderr = cli("say", "-o", tmp_path / "out.wav")
    assert code == 2
    assert "--phones" in stderr
    assert_no_leftovers(tmp_path)


def test_all_zero_durations(cli, tmp_path):
    code, _, stderr = cli("say", "--phones", "sil", "--durations", "0,0", "-o", tmp_path / "out.wav")
    assert code == 2 and "durations" in stderr
    assert_no_leftovers(tmp_path)


def test_threads_must_be_positive(cli, tmp_path):
    code, _, stderr = cli("say", "你好", "--threads", "0", "-o", tmp_path / "out.wav")
    assert code == 2 and "threads" in stderr
    assert_no_leftovers(tmp_path)


def test_save_features_into_missing_folder(cli, tmp_path):
    code, _, stderr = cli("say", "你好", "-o", tmp_path / "out.wav", "--save-features", tmp_path / "no" / "f.npz")
    assert code == 2 and "qingyin: error:" in stderr
    assert_no_leftovers(tmp_path)


# --- long input -------------------------------------------------------------------------------------------


def test_twenty_thousand_characters_of_mostly_noise(cli, tts, tmp_path):
    noise = "😀 ♪, ★! …… ©®™ 🚀🚀 ⚡-☂; "  # no letters: those are spelled out, not dropped
    text = "你好。" + (noise * (20000 // len(noise) + 1))[: 20000 - 6] + "再见。"
    assert len(text) == 20000

    start = time.perf_counter()
    frontend = tts.frontend(text)
    assert time.perf_counter() - start < 5.0, "the frontend is too slow on 20,000 characters"
    assert [s.text for s in frontend.sentences][0] == "你好。"
    assert frontend.sentences[-1].normalized == "再见。"
    assert 0 < len(frontend.warnings) <= 60  # capped, with a summary line

    out = tmp_path / "out.wav"
    start = time.perf_counter()
    code, _, stderr = cli("say", text, "-o", out)
    assert code == 0, stderr[-2000:]
    assert time.perf_counter() - start < 30.0
    assert "qingyin: warning:" in stderr and "more warnings" in stderr
    assert len(stderr.splitlines()) <= 70
    assert_wav(out)


def test_twenty_thousand_chinese_characters_are_cut_fast(tts):
    start = time.perf_counter()
    frontend = tts.frontend("中文" * 10000)
    assert time.perf_counter() - start < 10.0
    assert 500 <= len(frontend.sentences) <= 700
    assert all(len(s.pinyin) <= 40 for s in frontend.sentences)
    assert sum(len(s.pinyin) for s in frontend.sentences) == 20000


def test_say_500_characters_streams_to_one_file(cli, tts, tmp_path):
    text = (LONG_TEXT * 10)[:500]
    out, npz = tmp_path / "long.wav", tmp_path / "f.npz"
    code, _, stderr = cli("say", text, "-o", out, "--verbose", "--save-features", npz)
    assert code == 0, stderr[-2000:]
    sentences = sum(line.startswith("sil ") for line in stderr.splitlines())
    assert sentences >= len(tts.frontend(text).sentences) > 10
    frames = np.load(npz)["mel"].shape[0]
    samples = assert_wav(out)
    assert len(samples) == frames * HOP + PAUSE * (sentences - 1)
    assert len(samples) / SAMPLE_RATE > 60
    assert_no_leftovers(tmp_path, ("long.wav", "f.npz"))


# --- models ------------------------------------------------------------------------------------------------


def test_models_list(cli, baker_dir):
    code, stdout, _ = cli("models", "list")
    assert code == 0
    table = stdout.split("\n\n")[0].splitlines()[1:]  # the rows, before the notes
    rows = {line.split()[0]: line for line in table}
    assert list(rows) == ["baker", "xiaobei", "xiaoni", "xiaoxiao", "xiaoyi", "yunjian", "yunxi", "yunxia", "yunyang"]
    assert rows["baker"].split()[1:3] == ["female", "fs2_mbmelgan"] and rows["baker"].endswith("yes")
    assert rows["yunxi"].split()[1:3] == ["male", "kokoro"] and "mix" in rows["yunxi"]
    assert "xiaoni: hard to understand" in stdout  # the measured outlier is named


def test_models_fetch_unknown_voice(cli):
    code, _, stderr = cli("models", "fetch", "nope")
    assert code == 2
    assert "qingyin: error:" in stderr and "nope" in stderr and "baker" in stderr


def test_models_fetch_installed_voice_is_a_no_op(cli, baker_dir):
    code, stdout, _ = cli("models", "fetch", "baker")
    assert code == 0 and stdout.strip() == str(baker_dir)


# --- help ----------------------------------------------------------------------------------------------------


def test_help(cli):
    code, stdout, _ = cli("--help")
    assert code == 0 and "say" in stdout and "models" in stdout
    code, stdout, _ = cli("say", "--help")
    assert code == 0
    for flag in ("--speed", "--pitch", "--energy", "--phones", "--durations", "--save-features", "--voice",
                 "--emotion", "--intensity", "--reference", "--reference-strength"):
        assert flag in stdout
    words = " ".join(stdout.split())  # argparse wraps to the terminal's width
    assert "prosody control" in words and "trained on neutral speech" in words and "happy:0.6,surprise:0.3" in words
    code, stdout, _ = cli("models", "--help")
    assert code == 0 and "fetch" in stdout and "list" in stdout


def test_no_command_is_a_usage_error(cli):
    code, _, stderr = cli()
    assert code == 2 and "usage:" in stderr


# --- real processes ------------------------------------------------------------------------------------------


def test_subprocess_reads_stdin(tmp_path):
    out = tmp_path / "stdin.wav"
    process = run_cli("say", "-", "-o", out, stdin="今天天气不错。\n")
    stdout, stderr = decoded(process)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert stdout.strip() == str(out)
    assert 0.8 <= len(assert_wav(out)) / SAMPLE_RATE <= 4.0


def test_subprocess_bad_input_exits_2_without_traceback(tmp_path):
    out = tmp_path / "out.wav"
    process = run_cli("say", "😀😀", "-o", out)
    _, stderr = decoded(process)
    assert process.returncode == 2
    assert "qingyin: error:" in stderr and "Traceback" not in stderr
    assert_no_leftovers(tmp_path)

    process = run_cli("say", "你好", "--speed", "abc", "-o", out)
    _, stderr = decoded(process)
    assert process.returncode == 2
    assert "usage:" in stderr and "Traceback" not in stderr
    assert_no_leftovers(tmp_path)


def test_subprocess_without_voice_or_index_says_what_to_run(tmp_path):
    home, links = tmp_path / "home", tmp_path / "links"
    home.mkdir()
    links.mkdir()
    env = dict(os.environ, QINGYIN_HOME=str(home), PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1",
               PIP_FIND_LINKS=str(links), PIP_DISABLE_PIP_VERSION_CHECK="1")
    out = tmp_path / "out.wav"
    process = run_cli("say", "你好", "-o", out, env=env)
    _, stderr = decoded(process)
    assert process.returncode == 2, stderr
    assert "qingyin models fetch" in stderr
    assert "Traceback" not in stderr
    assert not out.exists() and not out.with_name("out.wav.part").exists()
    assert not (home / "voices" / "baker").exists()  # nothing half-installed
