"""Emotion through the engine on real voices (Baker on torch, the Kokoro speaker yunxi on ONNX): intensity 0 is
neutral sample for sample, the measured prosody moves in each preset's direction and grows with intensity, and
streaming, batching and SSML spans render the same edits; a reference recording's measured rate follows a change of
speed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import qingyin
from qingyin.options import InvalidOptionError
from qingyin.runtime.pool import ModelPool
from qingyin.voices import registry

pytest.importorskip("pyworld")
from qingyin.evaluate.signal_metrics import prosody_descriptors  # noqa: E402
from qingyin.style.reference import ReferenceProsody, analyze_reference  # noqa: E402
from qingyin.text.corpus import read_texts  # noqa: E402

TEXT = "今天天气很好，我们一起去公园散步吧。"
SYLLABLES = 17


@pytest.fixture(scope="module")
def kokoro():
    if not registry.is_installed("yunxi"):
        pytest.skip("the Kokoro model is not installed; run `qingyin models fetch kokoro`")
    return qingyin.TTS(voice="yunxi", models=ModelPool(threads=2, fetch=False))


@pytest.fixture(scope="module", params=["baker", "yunxi"])
def voice(request, tts, kokoro):
    return tts if request.param == "baker" else kokoro


def _measure(result):
    return prosody_descriptors(result.audio, result.sample_rate, syllables=SYLLABLES)


def _levels_db(audio: np.ndarray, window: int = 1200) -> np.ndarray:
    """dB level of each 50 ms window at 24 kHz."""
    frames = audio[: len(audio) // window * window].reshape(-1, window).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


@pytest.fixture(scope="module")
def neutral(voice):
    result = voice.synthesize(TEXT)
    return result, _measure(result)


def test_intensity_zero_is_neutral_sample_for_sample(voice, neutral):
    for emotion in ("happy", "angry", {"sad": 0.5, "fear": 0.5}):
        assert np.array_equal(voice.synthesize(TEXT, emotion=emotion, intensity=0).audio, neutral[0].audio)
    assert np.array_equal(voice.synthesize(TEXT, emotion="neutral", intensity=2).audio, neutral[0].audio)


def test_emotions_move_pitch_loudness_and_time_their_way(voice, neutral):
    base = neutral[1]
    happy = _measure(voice.synthesize(TEXT, emotion="happy"))
    sad = _measure(voice.synthesize(TEXT, emotion="sad"))
    angry = _measure(voice.synthesize(TEXT, emotion="angry"))
    assert happy.f0_mean_st > base.f0_mean_st + 0.8 and sad.f0_mean_st < base.f0_mean_st - 0.8
    assert angry.rms_dbfs > base.rms_dbfs + 1.5 and sad.rms_dbfs < base.rms_dbfs - 1.0
    assert sad.speech_duration_s > base.speech_duration_s * 1.08
    assert angry.speech_duration_s < base.speech_duration_s


def test_pitch_and_duration_grow_with_intensity(voice, neutral):
    levels = [neutral[1]] + [_measure(voice.synthesize(TEXT, emotion="sad", intensity=i)) for i in (0.5, 1.0, 2.0)]
    f0 = [p.f0_mean_st for p in levels]
    seconds = [p.speech_duration_s for p in levels]
    assert f0 == sorted(f0, reverse=True) and seconds == sorted(seconds)


def test_stream_batch_and_whole_render_the_same_edits(voice, neutral):
    options = {"emotion": "angry", "intensity": 1.5}
    whole = voice.synthesize(TEXT, **options)
    streamed = np.concatenate(list(voice.synthesize_stream(TEXT, **options)))
    assert streamed.shape == whole.audio.shape
    # The loudness edits follow the chunks: streaming changes the level by what it changes it in neutral speech
    # (Kokoro decodes streamed spans afresh, ~1 dB off per window either way; Baker is exact but for rounding).
    plain = np.concatenate(list(voice.synthesize_stream(TEXT)))
    assert abs(_level_shift(streamed, whole.audio) - _level_shift(plain, neutral[0].audio)) < 0.3
    (batched,) = voice.synthesize_batch([TEXT], **options)
    assert np.allclose(batched.audio, whole.audio, atol=1e-3)


def _level_shift(audio: np.ndarray, reference: np.ndarray) -> float:
    """Mean dB difference of `audio` from `reference` over the reference's loud 50 ms windows."""
    level, base = _levels_db(audio), _levels_db(reference)
    loud = base > base.max() - 30
    return float((level - base)[loud].mean())


def test_dynamics_widen_the_measured_loudness_contrasts(voice, neutral, monkeypatch):
    from qingyin.style import Style
    from qingyin.style.presets import Preset

    def spread(dynamics: float) -> float:
        monkeypatch.setattr("qingyin.runtime.synthesizer.style_for",
                            lambda *args, **kwargs: Style(reference=Preset(dynamics=dynamics)))
        result = voice.synthesize(TEXT)
        return analyze_reference(result.audio, result.sample_rate).dynamics_db

    base = analyze_reference(neutral[0].audio, neutral[0].sample_rate).dynamics_db
    low, high = spread(0.5), spread(2.0)
    assert low < base * 0.9 and high > base * 1.1


def test_an_ssml_emotion_span_edits_only_its_words(voice):
    plain = voice.synthesize("<speak>今天天气很好。<s>我们走吧。</s></speak>")
    spanned = voice.synthesize('<speak>今天天气很好。<emotion category="sad" intensity="2"><s>我们走吧。</s>'
                               "</emotion></speak>")
    first, second = plain.sentences, spanned.sentences
    assert np.array_equal(first[0].audio, second[0].audio)
    assert len(second[-1].audio) > len(first[-1].audio)


def test_mixes_and_bad_options(voice, neutral):
    mixed = voice.synthesize(TEXT, emotion={"happy": 0.6, "surprise": 0.3})
    assert not np.array_equal(mixed.audio, neutral[0].audio)
    with pytest.raises(InvalidOptionError, match="unknown emotion"):
        voice.synthesize(TEXT, emotion="joy")
    with pytest.raises(InvalidOptionError, match="intensity"):
        voice.synthesize(TEXT, emotion="happy", intensity=3)


def test_a_reference_file_recorded_again_is_measured_again(tts, tmp_path):
    path = tmp_path / "ref.wav"
    text = "今天天气很好，我们一起去公园散步吧。请您留言。"
    tts.synthesize(text, speed=0.8).save(path)
    slow = tts.check_options(reference=str(path)).reference
    assert tts.check_options(reference=path).reference is slow  # kept: measured once
    tts.synthesize(text, speed=1.3).save(path)
    fast = tts.check_options(reference=str(path)).reference
    assert fast.articulation_rate > slow.articulation_rate


def _articulation_s(prosody: ReferenceProsody) -> float:
    return prosody.duration_s * (1.0 - prosody.pause_ratio)


def test_reference_rate_follows_a_change_of_speed(voice):
    """Counted syllable nuclei move less than the true rate (slow speech splits vowels, fast speech merges
    syllables); the calibrated articulation rate follows it more closely, within 15 % on both voices, though one
    power law for all voices overshoots Baker's (benchmarks/rate_calibration.py)."""
    text = "".join(t if t[-1] in "。！？" else t + "。" for t in read_texts()[12:15])  # not the calibration's 12
    slow, fast = (analyze_reference(r.audio, r.sample_rate)
                  for r in (voice.synthesize(text, speed=0.8), voice.synthesize(text, speed=1.25)))
    true = _articulation_s(slow) / _articulation_s(fast)  # the same syllables in less time
    counted = (fast.syllable_nuclei / _articulation_s(fast)) / (slow.syllable_nuclei / _articulation_s(slow))
    calibrated = fast.articulation_rate / slow.articulation_rate
    assert true == pytest.approx(1.25 / 0.8, rel=0.15)
    assert counted < true
    assert calibrated > counted
    assert abs(math.log(calibrated / true)) < 0.15
