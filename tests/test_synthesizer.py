"""The Python API: `qingyin.TTS(voice=...).synthesize(...)` and friends, end to end on the Baker voice."""

from __future__ import annotations

import math
import subprocess
import sys
import threading

import numpy as np
import pytest

import qingyin
from qingyin.runtime.audio import read_wav
from qingyin.runtime.synthesizer import InvalidOptionError, NothingToSayError
from qingyin.voices.registry import UnknownVoiceError
from tests.rounding import assert_equal_but_for_rounding_flips

SAMPLE_RATE = 24000
HOP = 300  # samples per mel frame at 24 kHz (12.5 ms)
TEXT = "今天天气不错。"
PHONES = "sil n i3 #0 h ao3 sil"
DURATIONS = [10, 5, 12, 2, 6, 14, 10, 1]  # one per symbol, eos included; sum 60


@pytest.fixture(scope="module")
def plain(tts):
    """TEXT at default options, synthesized once for the module."""
    return tts.synthesize(TEXT)


# --- the basic result ----------------------------------------------------------------------------


def test_synthesize_returns_plausible_audio(plain):
    audio = plain.audio
    assert plain.sample_rate == SAMPLE_RATE
    assert isinstance(audio, np.ndarray) and audio.dtype == np.float32 and audio.ndim == 1
    assert np.isfinite(audio).all()
    assert np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 0.01, "audio is (nearly) silent"
    assert 0.8 <= plain.duration_seconds <= 4.0
    assert plain.duration_seconds == pytest.approx(len(audio) / SAMPLE_RATE)
    assert len(plain.sentences) == 1 and plain.warnings == []


def test_sentence_features_are_consistent(plain):
    sentence = plain.sentences[0]
    features = sentence.features
    assert sentence.phones[0] == "sil" and sentence.phones[-1] == "sil"
    assert len(features.durations) == len(sentence.phones) + 1  # eos included
    assert len(features.pitch) == len(features.energy) == len(features.durations)
    assert features.mel.ndim == 2 and features.mel.shape[1] == 80
    assert features.mel.shape[0] == int(features.durations.sum())
    assert len(sentence.audio) == features.mel.shape[0] * HOP
    assert np.array_equal(plain.audio, sentence.audio)
    assert plain.phones == [sentence.phones]
    assert plain.real_time_factor > 0


def test_save_writes_16_bit_wav_of_the_same_length(plain, tmp_path):
    path = tmp_path / "x.wav"
    plain.save(path)
    samples, rate = read_wav(path)
    assert rate == SAMPLE_RATE
    assert len(samples) == len(plain.audio)
    assert np.abs(samples - plain.audio).max() <= 1.0 / 32767 + 1e-6  # 16-bit quantization only


# --- speed, pitch, energy ------------------------------------------------------------------------


@pytest.mark.parametrize(("speed", "low", "high"), [(2.0, 0.4, 0.62), (0.5, 1.6, 2.4)])
def test_speed_scales_duration(tts, plain, speed, low, high):
    result = tts.synthesize(TEXT, speed=speed)
    ratio = len(result.audio) / len(plain.audio)
    assert low <= ratio <= high, f"speed={speed}: {ratio:.2f} x the length at speed=1"


def test_pitch_and_energy_scale_the_predictions(tts, plain):
    base = plain.sentences[0].features
    scaled = tts.synthesize(TEXT, pitch=2.0, energy=0.5).sentences[0].features
    np.testing.assert_allclose(scaled.pitch, base.pitch * 2.0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scaled.energy, base.energy * 0.5, rtol=1e-5, atol=1e-6)
    assert np.array_equal(scaled.durations, base.durations)  # neither touches the timing


def test_flat_pitch_and_energy_still_speak(tts):
    result = tts.synthesize("你好", pitch=0.0, energy=0.0)
    features = result.sentences[0].features
    assert not features.pitch.any() and not features.energy.any()
    assert np.isfinite(result.audio).all() and np.abs(result.audio).max() > 0.01


# --- symbols in, exact timing ----------------------------------------------------------------------


def test_synthesize_phones_with_durations_is_exact(tts):
    result = tts.synthesize_phones(PHONES, durations=DURATIONS)
    features = result.sentences[0].features
    assert features.durations.tolist() == DURATIONS
    assert features.mel.shape == (sum(DURATIONS), 80)
    assert len(result.audio) == sum(DURATIONS) * HOP
    assert result.sentences[0].phones == PHONES.split()
    assert np.isfinite(result.audio).all() and np.abs(result.audio).max() > 0.01


def test_synthesize_phones_accepts_a_list_and_ignores_speed_when_timed(tts):
    result = tts.synthesize_phones(PHONES.split(), durations=DURATIONS, speed=2.0)
    assert len(result.audio) == sum(DURATIONS) * HOP


def test_synthesize_phones_without_durations_uses_predictions(tts):
    result = tts.synthesize_phones(PHONES)
    features = result.sentences[0].features
    assert len(features.durations) == len(PHONES.split()) + 1
    assert len(result.audio) == int(features.durations.sum()) * HOP > 0


@pytest.mark.parametrize("durations", [DURATIONS[:-1], [*DURATIONS, 1], [3]])
def test_synthesize_phones_wrong_duration_count(tts, durations):
    with pytest.raises(InvalidOptionError) as error:
        tts.synthesize_phones(PHONES, durations=durations)
    message = str(error.value)
    assert str(len(durations)) in message and "8" in message and "durations" in message


def test_synthesize_phones_negative_duration(tts):
    with pytest.raises(InvalidOptionError, match="durations"):
        tts.synthesize_phones(PHONES, durations=[10, 5, 12, 2, 6, 14, 10, -1])


def test_synthesize_phones_too_many_frames(tts):
    with pytest.raises(InvalidOptionError, match="2048"):
        tts.synthesize_phones(PHONES, durations=[1000, 1000, 100, 0, 0, 0, 0, 0])


def test_synthesize_phones_all_zero_durations_is_a_clear_error(tts):
    with pytest.raises(InvalidOptionError, match="durations"):
        tts.synthesize_phones(PHONES, durations=[0] * 8)


def test_synthesize_phones_single_frame(tts):
    result = tts.synthesize_phones(PHONES, durations=[1, 0, 0, 0, 0, 0, 0, 0])
    assert len(result.audio) == HOP


@pytest.mark.parametrize(("phones", "bad"), [("sil n i3 #0 h ao9 sil", "ao9"), ("sil ni3 sil", "ni3"),
                                             (["sil", "HELLO"], "HELLO")])
def test_synthesize_phones_unknown_symbol(tts, phones, bad):
    with pytest.raises(ValueError) as error:
        tts.synthesize_phones(phones)
    assert repr(bad) in str(error.value)


def test_synthesize_phones_empty(tts):
    with pytest.raises(InvalidOptionError, match="no phones"):
        tts.synthesize_phones("   ")


@pytest.mark.parametrize("phones", [None, 123])
def test_synthesize_phones_non_text(tts, phones):
    with pytest.raises(ValueError):
        tts.synthesize_phones(phones)


def test_synthesize_phones_longer_than_the_model_is_a_clear_error(tts):
    from qingyin.families.fs2_mbmelgan.model.fastspeech2 import SequenceTooLongError

    with pytest.raises(SequenceTooLongError) as error:
        tts.synthesize_phones(["sil"] + ["a1"] * 2100 + ["sil"])
    assert isinstance(error.value, ValueError)
    assert "2048" in str(error.value)


# --- several sentences, streaming ------------------------------------------------------------------


MULTI = "你好。再见！谢谢？"


class RecordingBackend:
    """The real backend, counting acoustic calls and signalling when each one starts."""

    def __init__(self, real):
        self.real = real
        self.acoustic_started = [threading.Event() for _ in range(4)]
        self.acoustic_calls = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def predict(self, ids, speaker):
        self.acoustic_started[self.acoustic_calls].set()
        self.acoustic_calls += 1
        return self.real.predict(ids, speaker)


def test_the_next_sentence_is_computed_after_the_first_chunk_and_while_the_rest_is_vocoded(tts, monkeypatch):
    recorder = RecordingBackend(tts.voice.backend)
    monkeypatch.setattr(tts.voice, "backend", recorder)
    stream = tts.synthesize_stream("今天下午三点开会。请大家准时到场。", first_chunk=5, chunk=10)
    next(stream)  # the first chunk of sentence 1: sentence 2 is not started yet, so it took no cores from it
    assert recorder.acoustic_calls == 1
    next(stream)  # asking for more starts sentence 2 on the worker, while sentence 1's chunks are still to come
    assert recorder.acoustic_started[1].wait(10)
    rest = list(stream)
    assert recorder.acoustic_calls == 2 and len(rest) > 3


def test_multi_sentence_audio_is_sentences_plus_pauses(tts):
    result = tts.synthesize(MULTI)
    assert len(result.sentences) == 3
    assert [s.text for s in result.sentences] == ["你好。", "再见！", "谢谢？"]
    pause = int(round(0.2 * SAMPLE_RATE))
    assert len(result.audio) == sum(len(s.audio) for s in result.sentences) + 2 * pause
    cursor = 0
    for i, sentence in enumerate(result.sentences):
        if i:
            assert not result.audio[cursor : cursor + pause].any()
            cursor += pause
        assert np.array_equal(result.audio[cursor : cursor + len(sentence.audio)], sentence.audio)
        cursor += len(sentence.audio)

    streamed = list(tts.iter_sentences(MULTI))
    assert len(streamed) == len(result.sentences)
    for a, b in zip(streamed, result.sentences, strict=True):
        assert a.phones == b.phones
        assert np.array_equal(a.audio, b.audio), "synthesis is not deterministic"
        assert np.array_equal(a.features.mel, b.features.mel)


def test_sentence_pause_option(tts):
    result = tts.synthesize("啊。啊。", sentence_pause=0.5)
    assert len(result.audio) == sum(len(s.audio) for s in result.sentences) + 12000
    assert tts.pause(sentence_pause=0.5).shape == (12000,)


def test_iter_sentences_is_lazy(tts):
    sentences = tts.iter_sentences("你好。" * 200)
    first = next(sentences)
    assert first.phones[0] == "sil" and len(first.audio) > 0
    sentences.close()


# --- bad input: always a ValueError subclass with a helpful message ----------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "。，！", "😀😀", "...!!!"])
def test_nothing_to_say(tts, text):
    with pytest.raises(NothingToSayError, match="nothing to say"):
        tts.synthesize(text)


def test_nothing_to_say_names_what_was_skipped(tts):
    with pytest.raises(NothingToSayError, match="😀"):
        tts.synthesize("😀😀")


@pytest.mark.parametrize("speed", [0, -1, math.nan, math.inf, -math.inf, 1e9, 0.2, 4.5])
def test_speed_out_of_range(tts, speed):
    with pytest.raises(InvalidOptionError) as error:
        tts.synthesize(TEXT, speed=speed)
    message = str(error.value)
    assert "speed" in message and "0.25" in message and "4" in message


@pytest.mark.parametrize("speed", ["fast", None, True, [1.0]])
def test_speed_not_a_number(tts, speed):
    with pytest.raises(InvalidOptionError, match="speed"):
        tts.synthesize(TEXT, speed=speed)


@pytest.mark.parametrize("speed", [np.float32(1.5), np.int64(2)])
def test_speed_accepts_numpy_scalars(tts, speed):
    assert len(tts.synthesize("啊", speed=speed).audio) > 0


@pytest.mark.parametrize(("option", "value"), [("pitch", math.nan), ("pitch", -0.1), ("pitch", 3.5),
                                               ("energy", math.nan), ("energy", math.inf),
                                               ("sentence_pause", -1.0)])
def test_pitch_energy_pause_out_of_range(tts, option, value):
    with pytest.raises(InvalidOptionError, match=option):
        tts.synthesize(TEXT, **{option: value})


def test_boundary_options_are_accepted(tts):
    assert len(tts.synthesize("啊", speed=4.0, pitch=3.0, energy=3.0).audio) > 0
    assert len(tts.synthesize("啊", speed=0.25, pitch=0.0, energy=0.0).audio) > 0


def test_unknown_option(tts):
    with pytest.raises(InvalidOptionError) as error:
        tts.synthesize(TEXT, foo=1)
    assert "foo" in str(error.value) and "speed" in str(error.value)


def test_unknown_option_on_every_entry_point(tts):
    with pytest.raises(InvalidOptionError, match="foo"):
        tts.synthesize_phones(PHONES, foo=1)
    with pytest.raises(InvalidOptionError, match="foo"):
        next(tts.iter_sentences(TEXT, foo=1))
    with pytest.raises(InvalidOptionError, match="speed"):
        tts.synthesize_phones(PHONES, durations=DURATIONS, speed=0)


def test_unknown_voice():
    with pytest.raises(UnknownVoiceError) as error:
        qingyin.TTS(voice="nope")
    assert isinstance(error.value, ValueError)
    assert "nope" in str(error.value) and "baker" in str(error.value)


def test_voice_mixes_need_one_model_and_a_family_that_mixes():
    with pytest.raises(ValueError, match="needs voices of one model"):
        qingyin.TTS(voice="baker:0.5,yunxi:0.5")
    with pytest.raises(ValueError, match="weight >= 0"):
        qingyin.TTS(voice="baker:-1")
    with pytest.raises(UnknownVoiceError, match="yunxi"):
        qingyin.TTS(voice="xiaobei:0.5,nobody:0.5")


def test_the_speaker_option_is_gone_voices_are_the_speakers(tts):
    with pytest.raises(InvalidOptionError, match="unknown option"):
        tts.synthesize("你好", speaker="baker")


@pytest.mark.parametrize("text", [None, 123, b"\xe4\xbd\xa0", ["你好"]])
def test_text_must_be_a_string(tts, text):
    with pytest.raises(InvalidOptionError, match="string"):
        tts.synthesize(text)


# --- messy input -------------------------------------------------------------------------------------


def test_emoji_is_skipped_with_a_warning(tts):
    result = tts.synthesize("😀今天天气不错。")
    assert len(result.audio) > 0 and np.isfinite(result.audio).all()
    assert result.warnings == ['dropped "😀" at 0: no Mandarin reading']
    assert result.sentences[0].phones == tts.frontend("今天天气不错。").sentences[0].phones


def test_digits_are_read(tts):
    result = tts.synthesize("2024年")
    assert len(result.sentences) == 1 and result.warnings == []
    assert len(result.sentences[0].phones) > 8


# --- SSML, inline pinyin and lexicons through the synthesizer ----------------------------------------


def test_ssml_break_is_exact_silence_in_place_of_the_pause(tts):
    result = tts.synthesize('<speak>你好。<break time="700ms"/>再见。</speak>')
    first, second = result.sentences
    gap = int(round(0.7 * SAMPLE_RATE))
    assert len(result.audio) == len(first.audio) + gap + len(second.audio)
    assert not result.audio[len(first.audio) : len(first.audio) + gap].any()


def test_ssml_leading_and_trailing_breaks_are_kept(tts):
    result = tts.synthesize('<speak><break time="200ms"/>你好<break time="300ms"/></speak>')
    spoken = [s for s in result.sentences if s.phones]
    assert len(result.audio) == int(0.2 * SAMPLE_RATE) + len(spoken[0].audio) + int(0.3 * SAMPLE_RATE)


def test_ssml_prosody_rate_slows_only_its_span(tts):
    plain = tts.synthesize("你好世界").sentences[0].features.durations
    slow = tts.synthesize('<speak>你好<prosody rate="50%">世界</prosody></speak>').sentences[0].features.durations
    assert plain.shape == slow.shape
    assert slow[:4].sum() == plain[:4].sum()  # sil n i2 #0: untouched
    assert slow[-6:-2].sum() > 1.6 * plain[-6:-2].sum()  # sh iii4 #0 j ie4 ...: about twice as long


def test_inline_pinyin_and_request_lexicon_change_the_phones(tts):
    default = tts.synthesize("银行").sentences[0].phones
    assert default[1:3] == ["^", "in2"] and "h" in default
    assert "x" in tts.synthesize("银[yin2]行[xing2]").sentences[0].phones
    assert "x" in tts.synthesize("银行", lexicon={"银行": "yin2 xing2"}).sentences[0].phones
    assert tts.synthesize("银行").sentences[0].phones == default


def test_broken_ssml_is_a_value_error_naming_the_line(tts):
    with pytest.raises(ValueError, match="line 1, column"):
        tts.synthesize("<speak>你好<break time='1s'></speak>")


def test_iter_sentences_raises_nothing_to_say_when_the_stream_ends_empty(tts):
    with pytest.raises(NothingToSayError):
        list(tts.iter_sentences("😀。！"))


# --- sentences longer than the model's positional table ---------------------------------------------


def test_too_long_sentence_is_split_not_failed(tts):
    result = tts.synthesize("中" * 40 + "。", speed=0.25)  # ~2400 frames: beyond the 2048-frame table
    assert result.duration_seconds > 20
    assert len(result.sentences) > 1
    assert all(s.features.mel.shape[0] <= 2048 for s in result.sentences)
    assert np.isfinite(result.audio).all()


# --- package surface ------------------------------------------------------------------------------------


def test_list_voices():
    voices = qingyin.list_voices()
    assert "baker" in voices and voices == sorted(voices)


def test_public_names():
    from qingyin.runtime.synthesizer import SynthesisOptions, SynthesisResult, Synthesizer

    assert qingyin.TTS is Synthesizer
    assert qingyin.SynthesisOptions is SynthesisOptions
    assert qingyin.SynthesisResult is SynthesisResult
    with pytest.raises(AttributeError):
        _ = qingyin.nothing_here


def test_text_frontend_does_not_import_torch():
    subprocess.run(
        [sys.executable, "-c", "import qingyin.text, qingyin, sys; qingyin.list_voices(); "
                               "assert 'torch' not in sys.modules, 'torch was imported'"],
        check=True, capture_output=True, timeout=60,
    )


# --- batches ----------------------------------------------------------------------------------------------


@pytest.fixture
def one_thread_tts():
    """A torch synthesizer on one thread: torch 2.13's multi-threaded CPU convolutions sometimes give another
    result for the same input (two identical `synthesize` calls on 2 threads: up to 2 sub-band rounding flips,
    3 % of samples > 1e-4; on 1 thread identical in 20 of 20), which would fail a batch comparison for no
    fault of batching (see also tests/test_streaming.py)."""
    import torch

    threads = torch.get_num_threads()
    yield qingyin.TTS(voice="baker", threads=1)
    torch.set_num_threads(threads)


def test_batch_gives_what_one_by_one_gives(one_thread_tts):
    assert_batch_gives_what_one_by_one_gives(one_thread_tts)


def assert_batch_gives_what_one_by_one_gives(tts) -> None:
    """`synthesize_batch` against `synthesize` per text (also run on the onnx backend by test_onnx.py)."""
    texts = ["你好。", "今天天气很好，我们一起去公园散步吧！再见。",
             '<speak>请稍等<break time="300ms"/>好了。</speak>', "银行", "一二三四五六七八九十。"]
    batch = tts.synthesize_batch(texts, batch_size=3, lexicon={"银行": "yin2 xing2"}, speed=1.1)
    alone = [tts.synthesize(t, lexicon={"银行": "yin2 xing2"}, speed=1.1) for t in texts]
    for b, a in zip(batch, alone, strict=True):
        assert [s.phones for s in b.sentences] == [s.phones for s in a.sentences]
        for sb, sa in zip(b.sentences, a.sentences, strict=True):
            assert np.array_equal(sb.features.durations, sa.features.durations)
            if len(sa.features.mel):
                np.testing.assert_allclose(sb.features.mel, sa.features.mel, rtol=0, atol=1e-4)
        assert_equal_but_for_rounding_flips(b.audio, a.audio, overlapping_flips=4)


def test_batch_errors_name_the_text(tts):
    with pytest.raises(NothingToSayError, match="text 1"):
        tts.synthesize_batch(["你好", "😀"])
    with pytest.raises(InvalidOptionError, match="batch_size"):
        tts.synthesize_batch(["你好"], batch_size=0)
    with pytest.raises(InvalidOptionError, match="list of strings"):
        tts.synthesize_batch("你好")
