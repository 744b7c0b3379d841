"""Audio output: float32 samples -> 16-bit PCM WAV (whole or appended sentence by sentence), and whole files in
every supported format (wav, pcm, flac, mp3, ogg, opus), resampled on request.

wav, pcm and flac carry 16-bit PCM (the same int16 samples in all three); mp3, ogg (Vorbis) and opus (Ogg Opus)
are encoded by libsndfile through soundfile with its default quality. Resampling uses soxr. soundfile and soxr
(the server extra) are imported only when a format or a sample rate needs them. The server streams on top of this
(qingyin.server.encoding); batch jobs write files with it (qingyin.batch).
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path
from types import TracebackType

import numpy as np

FORMATS = ("wav", "mp3", "ogg", "opus", "flac", "pcm")
STREAM_FORMATS = ("wav", "pcm", "mp3")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # what the Opus codec itself accepts

SOUNDFILE_FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "ogg": ("OGG", "VORBIS"), "opus": ("OGG", "OPUS"),
                     "flac": ("FLAC", "PCM_16")}
RESAMPLE_QUALITY = "HQ"
# Size fields of a streamed wav header, whose length is not known yet. soundfile (libsndfile) then takes the
# data to run to the end of the file; Python's wave reports 2**31 - 1 frames but readframes() stops at the end.
_UNKNOWN_SIZE = 0xFFFFFFFF


class AudioFormatError(ValueError):
    """A format / sample rate / streaming combination that cannot be produced."""


def _choices(values: tuple[object, ...]) -> str:
    return ", ".join(str(value) for value in values)


def check_format(format: str, sample_rate: int, stream: bool = False) -> None:
    """Raise AudioFormatError, saying what would work, unless `format` at `sample_rate` can be produced."""
    if format not in FORMATS:
        raise AudioFormatError(f"unknown audio format {format!r}; choose one of: {_choices(FORMATS)}")
    if sample_rate not in SAMPLE_RATES:
        raise AudioFormatError(f"unsupported sample rate {sample_rate!r}; choose one of (Hz): {_choices(SAMPLE_RATES)}")
    if format == "opus" and sample_rate not in OPUS_RATES:
        rates = tuple(rate for rate in SAMPLE_RATES if rate in OPUS_RATES)
        raise AudioFormatError(f"opus cannot be encoded at {sample_rate} Hz; choose a sample rate of {_choices(rates)} "
                               f"Hz, or another format ({_choices(tuple(f for f in FORMATS if f != 'opus'))})")
    if stream and format not in STREAM_FORMATS:
        raise AudioFormatError(f"{format} cannot be streamed; stream one of: {_choices(STREAM_FORMATS)}, "
                               f"or ask for the whole {format} file without streaming")


def mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be a 1-D mono array, got shape {audio.shape}")
    return audio


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """float32 `audio` at `to_rate` (soxr, high quality); the float32 input itself when the rates are equal."""
    audio = mono(audio)
    if from_rate == to_rate:
        return audio
    import soxr

    return soxr.resample(np.ascontiguousarray(audio), from_rate, to_rate, quality=RESAMPLE_QUALITY).astype(
        np.float32, copy=False)


def clipped(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)


def int16(audio: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16 samples (clipped, so overshoot cannot wrap around; NaN -> 0)."""
    return np.round(clipped(audio) * 32767.0).astype("<i2")


def to_pcm16(audio: np.ndarray) -> bytes:
    """float32 in [-1, 1] -> little-endian int16 bytes."""
    return int16(audio).tobytes()


def wav_header(sample_rate: int, data_size: int | None) -> bytes:
    """A 44-byte header for 16-bit mono PCM; `data_size` None gives the streaming placeholder sizes."""
    data = _UNKNOWN_SIZE if data_size is None else min(data_size, _UNKNOWN_SIZE)
    riff = _UNKNOWN_SIZE if data_size is None else min(36 + data_size, _UNKNOWN_SIZE)
    rate = int(sample_rate)
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data))


def _encode_soundfile(audio: np.ndarray, sample_rate: int, format: str) -> bytes:
    import soundfile as sf

    container, subtype = SOUNDFILE_FORMATS[format]
    samples = int16(audio) if subtype == "PCM_16" else clipped(audio)
    buffer = io.BytesIO()
    sf.write(buffer, samples, int(sample_rate), format=container, subtype=subtype)
    return buffer.getvalue()


def encode(audio: np.ndarray, source_rate: int, format: str, sample_rate: int | None = None) -> bytes:
    """The whole `audio` (float, mono, at `source_rate`) as a `format` file, resampled to `sample_rate` if given."""
    rate = source_rate if sample_rate is None else sample_rate
    check_format(format, rate)
    audio = resample(audio, source_rate, rate)
    if audio.size == 0:
        raise ValueError("nothing to encode: the audio is empty")
    if format == "pcm":
        return int16(audio).tobytes()
    if format == "wav":
        data = int16(audio).tobytes()
        return wav_header(rate, len(data)) + data
    return _encode_soundfile(audio, rate, format)


class WavWriter:
    """Append audio to a mono 16-bit WAV file; the header is fixed up on close."""

    def __init__(self, path: str | Path, sample_rate: int):
        self._file = wave.open(str(path), "wb")
        self._file.setnchannels(1)
        self._file.setsampwidth(2)
        self._file.setframerate(sample_rate)

    def write(self, audio: np.ndarray) -> None:
        self._file.writeframes(to_pcm16(audio))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    with WavWriter(path, sample_rate) as writer:
        writer.write(audio)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """16-bit mono WAV -> (float32 samples, sample rate)."""
    with wave.open(str(path), "rb") as f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono 16-bit PCM WAV")
        data = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
        return data.astype(np.float32) / 32767.0, f.getframerate()
