"""The Kokoro voices through the engine: our frontend's tokens, edited durations, F0 and energy, mixing, splitting.

Uses the real model installed by `make test` (`qingyin models fetch all`); skips where it is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import qingyin
from qingyin.families.base import Prosody
from qingyin.families.kokoro.tokens import MAX_TOKENS
from qingyin.families.kokoro.voice import _semitones_per_value, scale_energy, scale_pitch
from qingyin.runtime.pool import ModelPool
from qingyin.voices import registry

TEXT = "你好，今天天气不错。"


@pytest.fixture(scope="module")
def models() -> ModelPool:
    if not registry.is_installed("yunxi"):
        pytest.skip("the Kokoro model is not installed; run `qingyin models fetch kokoro`")
    return ModelPool(threads=2, fetch=False)


@pytest.fixture(scope="module")
def yunxi(models):
    return qingyin.TTS(voice="yunxi", models=models)


@pytest.fixture(scope="module")
def plain(yunxi):
    return yunxi.synthesize(TEXT)


def test_audio_length_is_the_realized_durations(plain, yunxi):
    sentence = plain.sentences[0]
    frames = sentence.features.durations
    assert len(sentence.audio) == (int(frames.sum()) - sentence.features.trim_frames) * 600 and frames.min() >= 1
    assert frames[0] - sentence.features.trim_frames == 4  # the opening silence, cut to 100 ms
    assert len(sentence.features.pitch) == len(sentence.features.energy) == 2 * int(frames.sum())
    assert plain.sample_rate == 24000 and 1.0 < plain.duration_seconds < 4.0
    assert np.isfinite(plain.audio).all() and 0.05 < np.abs(plain.audio).max() <= 1.5
    assert "".join(sentence.phones) == "ni↗xau↓, ʨi→ntʰjɛ→ntʰjɛ→nʨʰi↘ pu↗ʦʰwo↘."


def test_speed_edits_the_durations_before_the_decoder(plain, yunxi):
    fast = yunxi.synthesize(TEXT, speed=1.5).sentences[0]
    ratio = plain.sentences[0].features.durations.sum() / fast.features.durations.sum()
    assert 1.35 < ratio < 1.65


def test_pitch_and_energy_edit_the_curves(yunxi, plain):
    base = plain.sentences[0].features
    lively = yunxi.synthesize(TEXT, pitch=1.8, energy=0.3).sentences[0].features
    assert np.array_equal(base.durations, lively.durations)
    voiced = base.pitch > 40
    assert np.std(np.log(lively.pitch[voiced])) > 1.6 * np.std(np.log(base.pitch[voiced]))
    assert np.std(lively.energy) < 0.4 * np.std(base.energy)


def test_scales_keep_the_level_and_unvoiced_frames():
    f0 = np.array([0.0, 100.0, 200.0, 400.0, 10.0], np.float32)
    edited = scale_pitch(f0, np.full(5, 2.0, np.float32))
    assert edited[0] == 0 and edited[4] == 10 and np.isclose(edited[2], 200)
    assert np.isclose(edited[1], 50) and np.isclose(edited[3], 800)
    flat = scale_energy(np.array([1.0, 3.0], np.float32), np.zeros(2, np.float32))
    assert np.allclose(flat, 2.0)


def test_a_final_slope_is_laid_over_the_voiced_values_of_its_tokens():
    frames = np.array([2, 2, 3, 4])  # two values per frame: 22 values
    prosody = Prosody(frames.astype(np.float32), 0.025, pitch_shift=np.array([0, 0, 1, 2], np.float32),
                      pitch_slope=np.array([0, 0, 1, 3], np.float32))
    voiced = np.zeros(22, bool)
    voiced[4:12] = True  # voicing ends early in the sloped run (values 8..21): its silent tail hears nothing
    values = _semitones_per_value(prosody, frames, voiced)
    heard = values[8:12]
    assert heard[0] == pytest.approx(1.0) and heard[-1] == pytest.approx(5.0)  # the whole rise, start to end
    assert np.all(np.diff(heard) > 0)
    assert np.all(values[4:8] == 0)  # before the run: untouched
    plain = _semitones_per_value(Prosody(frames.astype(np.float32), 0.025, pitch_shift=prosody.pitch_shift),
                                 frames, voiced)
    np.testing.assert_array_equal(plain, np.repeat(prosody.pitch_shift, 2 * frames))


def test_voices_are_different_speakers_and_mixes_blend_them(models):
    a = qingyin.TTS(voice="xiaobei", models=models)
    mix = qingyin.TTS(voice="xiaobei:0.5,yunxi:0.5", models=models)
    assert a.voice is mix.voice  # one loaded model for all Kokoro voices
    style = a.voice.style
    blended = style({"zf_xiaobei": 0.5, "zm_yunxi": 0.5}, 20)
    assert np.allclose(blended, 0.5 * style({"zf_xiaobei": 1.0}, 20) + 0.5 * style({"zm_yunxi": 1.0}, 20))
    assert not np.allclose(style({"zf_xiaobei": 1.0}, 20), style({"zm_yunxi": 1.0}, 20))
    assert len(mix.synthesize("你好。").audio) > 0


def test_a_sentence_over_the_token_limit_is_split_at_a_boundary(yunxi):
    text = "，".join(["我们明天早上一起去公园散步"] * 40) + "。"
    tokens = yunxi.voice.tokens(yunxi.frontend(text).sentences[0])
    pieces = list(yunxi._fit(yunxi.selection, tokens, yunxi.check_options()))
    assert len(tokens.ids) - 2 > MAX_TOKENS or len(pieces) == 1
    assert all(len(p.phones) <= MAX_TOKENS for p in pieces)
    assert "".join("".join(p.phones) for p in pieces).replace(" ", "") == "".join(tokens.symbols).replace(" ", "")


def _log_spectrogram(audio: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(audio, 1200)[::300] * np.hanning(1200)
    return np.log10(np.abs(np.fft.rfft(frames)) ** 2 + 1e-3)


def test_streaming_decodes_word_spans_close_to_the_whole_sentence(yunxi):
    text = "今天下午三点，我们在会议室讨论新产品的发布计划。"
    whole = yunxi.synthesize(text).audio
    chunks = list(yunxi.synthesize_stream(text, first_chunk=10, chunk=100))
    streamed = np.concatenate(chunks)
    assert len(chunks) >= 3 and len(streamed) == len(whole)
    assert len(chunks[0]) < len(whole) / 3  # the first audio comes after a fraction of the work
    # Spans are decoded with context and crossfaded: no clicks at the joins (a per-frame spectral difference of
    # ~4 without context), and close on average (measured 0.25; fp32 against int8 is 0.14 on this sentence).
    difference = np.abs(_log_spectrogram(streamed) - _log_spectrogram(whole)).mean(axis=1)
    assert difference.mean() < 0.4 and difference.max() < 1.5
    assert np.array_equal(streamed, np.concatenate(list(yunxi.synthesize_stream(text, first_chunk=10, chunk=100))))


def test_stream_spans_end_at_word_boundaries():
    from qingyin.families.kokoro.voice import stream_spans

    frames = np.array([4, 3, 3, 3, 3, 3, 3, 3, 2])
    assert stream_spans(frames, [(3, 1), (5, 3), (7, 1)], 5, 6) == [(0, 3), (3, 5), (5, 7), (7, 9)]
    assert stream_spans(frames, [(3, 1), (5, 3), (7, 1)], 5, 7) == [(0, 3), (3, 7), (7, 9)]
    assert stream_spans(frames, [], 5, 6) == [(0, 9)]
    assert stream_spans(frames, [(3, 1)], 100, 6) == [(0, 9)]


def test_ssml_prosody_edits_only_its_span(yunxi, plain):
    slow = yunxi.synthesize('<speak>你好，<prosody rate="50%">今天天气不错。</prosody></speak>').sentences[0]
    base = plain.sentences[0].features.durations
    assert slow.features.durations[:4].tolist() == base[:4].tolist()  # 你好 keeps its timing
    assert slow.features.durations.sum() > 1.3 * base.sum()


def test_kokoro_symbols_can_be_spoken_directly(yunxi):
    result = yunxi.synthesize_phones("ni↓xau↓.")
    assert result.sentences[0].phones == list("ni↓xau↓.") and len(result.audio) > 0
    with pytest.raises(ValueError, match="'3'.* not in the Kokoro vocab"):
        yunxi.synthesize_phones("ni3")


def test_ssml_voice_switches_speakers_and_families_in_one_document(models):
    tts = qingyin.TTS(voice="baker", models=models)
    text = ('<speak>旁白说。<voice name="yunxi">你好，我是云希。</voice>'
            '<voice name="xiaobei:0.7,xiaoni:0.3">我是小北。</voice>再见。</speak>')
    result = tts.synthesize(text)
    assert [s.voice for s in result.sentences] == ["baker", "yunxi", "xiaobei:0.7,xiaoni:0.3", "baker"]
    assert result.sentences[1].phones[0] == "n" and result.sentences[0].phones[0] == "sil"  # Kokoro's vs Baker's
    with pytest.raises(ValueError, match="unknown voice 'nobody'"):
        tts.synthesize('<speak><voice name="nobody">你好。</voice></speak>')
