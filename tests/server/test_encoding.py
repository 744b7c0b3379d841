from __future__ import annotations

import io
import struct
import subprocess
import sys
import wave

import numpy as np
import pytest
import soundfile as sf

from qingyin.server import encoding
from qingyin.server.encoding import (
    FORMATS,
    SAMPLE_RATES,
    STREAM_FORMATS,
    AudioFormatError,
    StreamEncoder,
    check_format,
    content_type,
    encode,
    resample,
)

RATE = 24000
LOSSLESS = ("wav", "flac", "pcm")
# Samples per codec frame, the length tolerance for lossy formats (libsndfile 1.2.2 in fact gives exact lengths:
# the LAME tag and the Ogg granule positions trim the codec delay and padding).
CODEC_FRAME = {"mp3": 1152, "ogg": 2048, "opus": 960}


def sweep(seconds: float = 1.0, rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    f0, f1 = 100.0, 3000.0
    return (amplitude * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * seconds) * t * t))).astype(np.float32)


def tone(frequency: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def pcm16(audio: np.ndarray) -> bytes:
    return np.round(np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def decode(data: bytes, format: str) -> tuple[np.ndarray, int | None]:
    if format == "pcm":
        return np.frombuffer(data, "<i2") / 32767, None
    if format == "wav":
        with wave.open(io.BytesIO(data)) as reader:
            assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
            frames = reader.readframes(reader.getnframes())
            return np.frombuffer(frames, "<i2") / 32767, reader.getframerate()
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert audio.ndim == 1
    return audio, rate


def magnitude_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of STFT magnitudes: lossy codecs keep the spectrum, not always the exact phase."""
    def stft(x: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256] * np.hanning(512)
        return np.abs(np.fft.rfft(frames, axis=1))
    n = min(len(a), len(b))
    return float(np.corrcoef(stft(a[:n]).ravel(), stft(b[:n]).ravel())[0, 1])


def best_lag(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> int:
    m = len(reference) - max_lag
    return int(np.argmax([np.dot(reference[:m], decoded[lag:lag + m]) for lag in range(max_lag)]))


ROUND_TRIPS = [(f, r) for f in FORMATS for r in SAMPLE_RATES if f != "opus" or r in encoding.OPUS_RATES]


@pytest.mark.parametrize(("format", "rate"), ROUND_TRIPS)
def test_every_format_decodes_to_the_right_rate_duration_and_signal(format: str, rate: int) -> None:
    audio = sweep()
    decoded, decoded_rate = decode(encode(audio, RATE, format, rate), format)
    reference = resample(audio, RATE, rate)
    assert len(reference) == rate  # 1 s
    if format != "pcm":
        assert decoded_rate == rate
    if format in LOSSLESS:
        assert len(decoded) == len(reference)
        assert np.max(np.abs(decoded - reference)) <= 1 / 32767
    else:
        assert abs(len(decoded) - len(reference)) <= CODEC_FRAME[format]
        assert magnitude_correlation(reference, decoded) > 0.98


def test_pcm_is_the_int16_of_the_clipped_audio_and_wav_flac_carry_the_same_samples() -> None:
    audio = 1.5 * sweep()  # a third of it beyond [-1, 1]
    pcm = encode(audio, RATE, "pcm")
    assert pcm == pcm16(audio)
    with wave.open(io.BytesIO(encode(audio, RATE, "wav"))) as reader:
        assert reader.getnframes() == len(audio)
        assert reader.readframes(len(audio)) == pcm
    flac, _ = sf.read(io.BytesIO(encode(audio, RATE, "flac")), dtype="int16")
    assert flac.astype("<i2").tobytes() == pcm


def test_non_finite_samples_do_not_wrap_around() -> None:
    pcm = np.frombuffer(encode(np.array([np.nan, np.inf, -np.inf, 0.5], np.float32), RATE, "pcm"), "<i2")
    assert pcm.tolist() == [0, 32767, -32767, round(0.5 * 32767)]


@pytest.mark.parametrize("to_rate", [16000, 48000])
def test_resample_keeps_duration_and_frequency(to_rate: int) -> None:
    out = resample(tone(1000.0), RATE, to_rate)
    assert out.dtype == np.float32
    assert len(out) == to_rate  # 1 s
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert np.argmax(spectrum) * to_rate / len(out) == pytest.approx(1000.0, abs=1.0)  # 1 Hz bins
    assert np.sqrt(np.mean(out[100:-100] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resample_to_the_same_rate_is_identity() -> None:
    audio = sweep().astype(np.float64)
    out = resample(audio, RATE, RATE)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, audio.astype(np.float32))


def chunked(audio: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Uneven chunks, including empty and one-sample ones."""
    sizes = [0, 1, 7] + list(np.random.default_rng(seed).integers(0, 3000, size=40))
    chunks, start = [], 0
    for size in sizes:
        chunks.append(audio[start:start + size])
        start += size
    return chunks + [audio[start:]]


def stream(format: str, audio: np.ndarray, sample_rate: int | None = None) -> tuple[bytes, list[bytes]]:
    encoder = StreamEncoder(format, RATE, sample_rate)
    pieces = [encoder.encode(chunk) for chunk in chunked(audio)]
    return encoder.header() + b"".join(pieces) + encoder.finish(), pieces


def test_streamed_pcm_without_resampling_is_byte_identical() -> None:
    audio = 1.2 * sweep()
    data, _ = stream("pcm", audio)
    assert data == encode(audio, RATE, "pcm")
    assert StreamEncoder("pcm", RATE).header() == b""


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 48000])
def test_streamed_pcm_with_resampling_equals_whole_file_resampling(rate: int) -> None:
    audio = sweep()
    streamed = np.frombuffer(stream("pcm", audio, rate)[0], "<i2").astype(int)
    whole = np.frombuffer(encode(audio, RATE, "pcm", rate), "<i2").astype(int)
    assert len(streamed) == len(whole) == rate
    assert np.max(np.abs(streamed - whole)) <= 1  # float rounding may flip the last bit


def test_streamed_wav_header_has_placeholder_sizes_and_is_readable() -> None:
    audio = sweep()
    data, _ = stream("wav", audio)
    header = StreamEncoder("wav", RATE).header()
    assert len(header) == 44 and data.startswith(header)
    assert struct.unpack("<I", header[4:8])[0] == struct.unpack("<I", header[40:44])[0] == 0xFFFFFFFF
    assert data[44:] == encode(audio, RATE, "pcm")
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getframerate() == RATE
        assert reader.getnframes() == 2**31 - 1  # wave believes the placeholder...
        assert reader.readframes(2**31 - 1) == data[44:]  # ...but stops reading at the end of the data
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.frames) == (RATE, len(audio))  # libsndfile takes the data to run to the end
    samples, _ = sf.read(io.BytesIO(data), dtype="int16")
    assert samples.astype("<i2").tobytes() == data[44:]


@pytest.mark.parametrize("rate", [None, 16000, 48000])
def test_streamed_mp3_arrives_incrementally_and_decodes(rate: int | None) -> None:
    audio = sweep()
    out_rate = rate or RATE
    encoder = StreamEncoder("mp3", RATE, rate)
    pieces = [encoder.encode(audio[i:i + 2400]) for i in range(0, len(audio), 2400)]  # 100 ms chunks
    assert encoder.header() == b""
    assert all(pieces[3:]), "every chunk after the first few should produce MP3 frames"
    data = b"".join(pieces) + encoder.finish()
    assert len(b"".join(pieces)) > 0.8 * len(data)
    decoded, decoded_rate = decode(data, "mp3")
    reference = resample(audio, RATE, out_rate)
    assert decoded_rate == out_rate
    # No LAME tag in a stream, so the encoder delay and padding stay: up to 3 frames more.
    frame = 1152 if out_rate > 24000 else 576
    assert len(reference) <= len(decoded) <= len(reference) + 3 * frame
    lag = best_lag(reference, decoded, 3 * frame)
    aligned = decoded[lag:lag + len(reference)]
    assert np.corrcoef(reference[:len(aligned)], aligned)[0, 1] > 0.99


def test_stream_encoder_finishes_once() -> None:
    encoder = StreamEncoder("pcm", RATE, 16000)
    encoder.encode(sweep(0.1))
    assert encoder.finish() != b""  # the resampler's tail
    assert encoder.finish() == b""
    with pytest.raises(RuntimeError, match="after finish"):
        encoder.encode(sweep(0.1))


@pytest.mark.parametrize(("format", "rate", "stream", "expected"), [
    ("aac", 24000, False, "choose one of: wav, mp3, ogg, opus, flac, pcm"),
    ("WAV", 24000, False, "choose one of: wav, mp3, ogg, opus, flac, pcm"),
    ("wav", 11025, False, "choose one of (Hz): 8000, 16000, 22050, 24000, 44100, 48000"),
    ("wav", "24000", False, "choose one of (Hz)"),
    ("opus", 22050, False, "choose a sample rate of 8000, 16000, 24000, 48000 Hz, or another format"),
    ("opus", 44100, True, "choose a sample rate of 8000, 16000, 24000, 48000 Hz"),
    ("ogg", 24000, True, "stream one of: wav, pcm, mp3, or ask for the whole ogg file without streaming"),
    ("opus", 24000, True, "stream one of: wav, pcm, mp3"),
    ("flac", 24000, True, "stream one of: wav, pcm, mp3"),
])
def test_errors_say_what_to_do(format: str, rate: int, stream: bool, expected: str) -> None:
    with pytest.raises(AudioFormatError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        check_format(format, rate, stream)
    with pytest.raises(AudioFormatError, match="choose|stream one of"):
        if stream:
            StreamEncoder(format, RATE, rate)
        else:
            encode(sweep(0.1), RATE, format, rate)


def test_audio_format_error_is_a_value_error_and_the_default_rate_is_checked() -> None:
    assert issubclass(AudioFormatError, ValueError)
    with pytest.raises(AudioFormatError, match="opus cannot be encoded at 44100 Hz"):
        encode(sweep(0.1, rate=44100), 44100, "opus")  # no sample_rate: the source rate is the output rate


def test_every_stream_format_is_accepted_for_streaming() -> None:
    for format in STREAM_FORMATS:
        check_format(format, 24000, stream=True)
        assert StreamEncoder(format, RATE).content_type == content_type(format, RATE)


@pytest.mark.parametrize(("format", "expected"), [
    ("wav", "audio/wav"), ("mp3", "audio/mpeg"), ("ogg", "audio/ogg"), ("opus", "audio/ogg; codecs=opus"),
    ("flac", "audio/flac"), ("pcm", "audio/pcm;rate=16000;encoding=s16le;channels=1"),
])
def test_content_type(format: str, expected: str) -> None:
    assert content_type(format, 16000) == expected


def test_content_type_rejects_unknown_formats() -> None:
    with pytest.raises(AudioFormatError, match="choose one of"):
        content_type("m4a", 24000)


def test_bad_audio_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="1-D mono"):
        encode(np.zeros((100, 2), np.float32), RATE, "wav")
    with pytest.raises(ValueError, match="empty"):
        encode(np.zeros(0, np.float32), RATE, "mp3")


def test_the_module_does_not_import_torch() -> None:
    code = "import sys, qingyin.server.encoding; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
