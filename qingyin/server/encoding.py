"""Audio bytes for HTTP responses: whole files in several formats, and incremental streams.

wav, pcm and flac carry 16-bit PCM (the same int16 samples in all three); mp3, ogg (Vorbis) and opus (Ogg Opus)
are encoded by libsndfile through soundfile with its default quality. Resampling uses soxr. No torch here.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf
import soxr

FORMATS = ("wav", "mp3", "ogg", "opus", "flac", "pcm")
STREAM_FORMATS = ("wav", "pcm", "mp3")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # what the Opus codec itself accepts

_CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "opus": "audio/ogg; codecs=opus",
                  "flac": "audio/flac"}
_SOUNDFILE = {"mp3": ("MP3", "MPEG_LAYER_III"), "ogg": ("OGG", "VORBIS"), "opus": ("OGG", "OPUS"),
              "flac": ("FLAC", "PCM_16")}
_RESAMPLE_QUALITY = "HQ"
# Streamed MP3 is constant bitrate (see _Mp3Stream); this libsndfile level gives 65 kbit/s at 16-24 kHz,
# 129 kbit/s at 44.1/48 kHz and 25 kbit/s at 8 kHz.
_MP3_STREAM_LEVEL = 0.65
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


def content_type(format: str, sample_rate: int) -> str:
    """The Content-Type header for audio in `format` at `sample_rate`."""
    check_format(format, sample_rate)
    if format == "pcm":
        return f"audio/pcm;rate={int(sample_rate)};encoding=s16le;channels=1"
    return _CONTENT_TYPES[format]


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be a 1-D mono array, got shape {audio.shape}")
    return audio


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """float32 `audio` at `to_rate` (soxr, high quality); the float32 input itself when the rates are equal."""
    audio = _mono(audio)
    if from_rate == to_rate:
        return audio
    return soxr.resample(np.ascontiguousarray(audio), from_rate, to_rate, quality=_RESAMPLE_QUALITY).astype(
        np.float32, copy=False)


def _clipped(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)


def _int16(audio: np.ndarray) -> np.ndarray:
    return np.round(_clipped(audio) * 32767.0).astype("<i2")


def _wav_header(sample_rate: int, data_size: int | None) -> bytes:
    """A 44-byte header for 16-bit mono PCM; `data_size` None gives the streaming placeholder sizes."""
    data = _UNKNOWN_SIZE if data_size is None else min(data_size, _UNKNOWN_SIZE)
    riff = _UNKNOWN_SIZE if data_size is None else min(36 + data_size, _UNKNOWN_SIZE)
    rate = int(sample_rate)
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data))


def _encode_soundfile(audio: np.ndarray, sample_rate: int, format: str) -> bytes:
    container, subtype = _SOUNDFILE[format]
    samples = _int16(audio) if subtype == "PCM_16" else _clipped(audio)
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
        return _int16(audio).tobytes()
    if format == "wav":
        data = _int16(audio).tobytes()
        return _wav_header(rate, len(data)) + data
    return _encode_soundfile(audio, rate, format)


class _Sink(io.BytesIO):
    """An in-memory file for libsndfile that remembers its first write and hands out what was appended since."""

    def __init__(self) -> None:
        super().__init__()
        self.first_write = b""
        self.sent = 0

    def write(self, data) -> int:  # type: ignore[override]
        if not self.first_write:
            self.first_write = bytes(data)
        return super().write(data)

    def take(self) -> bytes:
        with self.getbuffer() as view, view[self.sent:] as new:
            data = bytes(new)
        self.sent += len(data)
        return data


def _is_empty_mp3_frame(data: bytes) -> bool:
    return len(data) > 4 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and not any(data[4:])


class _Mp3Stream:
    """MP3 encoded chunk by chunk by libsndfile (LAME) into a _Sink.

    libsndfile starts the file with an empty frame that it fills with the Xing/LAME tag on close, by seeking
    back. A stream cannot go back, so that frame is left out: it would otherwise reach the client empty, and
    mpg123 (libsndfile's decoder) then stops decoding early. Without the tag a decoder cannot trim the encoder
    delay and padding (the decoded stream is about 1.5k samples longer than the audio) and estimates the length
    from the first frame's bitrate and the byte count, which is right only at a constant bitrate, hence CBR.
    """

    def __init__(self, sample_rate: int) -> None:
        self._sink = _Sink()
        self._file = sf.SoundFile(self._sink, "w", samplerate=int(sample_rate), channels=1, format="MP3",
                                  subtype="MPEG_LAYER_III", bitrate_mode="CONSTANT",
                                  compression_level=_MP3_STREAM_LEVEL)

    def write(self, audio: np.ndarray) -> bytes:
        if audio.size:
            self._file.write(_clipped(audio))
        return self._take()

    def close(self) -> bytes:
        self._file.close()
        return self._take()

    def _take(self) -> bytes:
        if self._sink.sent == 0 and _is_empty_mp3_frame(self._sink.first_write):
            self._sink.sent = len(self._sink.first_write)
        return self._sink.take()


class StreamEncoder:
    """Encodes audio that arrives in chunks: header(), then encode(chunk) for each chunk, then finish().

    Resampling keeps its state across chunks, so the concatenated output equals encoding the whole audio
    (byte for byte for pcm/wav without resampling; up to float rounding with it).
    """

    def __init__(self, format: str, source_rate: int, sample_rate: int | None = None) -> None:
        self.format = format
        self.sample_rate = source_rate if sample_rate is None else sample_rate
        check_format(format, self.sample_rate, stream=True)
        self.content_type = content_type(format, self.sample_rate)
        self._resampler = None if source_rate == self.sample_rate else soxr.ResampleStream(
            source_rate, self.sample_rate, 1, dtype="float32", quality=_RESAMPLE_QUALITY)
        self._mp3 = _Mp3Stream(self.sample_rate) if format == "mp3" else None
        self._finished = False

    def header(self) -> bytes:
        """What goes before the first chunk: a wav header with placeholder sizes; nothing for pcm and mp3."""
        return _wav_header(self.sample_rate, None) if self.format == "wav" else b""

    def encode(self, chunk: np.ndarray) -> bytes:
        """The bytes for `chunk` (float, mono, at the source rate); may be empty while the codec buffers."""
        if self._finished:
            raise RuntimeError("StreamEncoder.encode() called after finish()")
        chunk = _mono(chunk)
        if self._resampler is not None:
            chunk = self._resampler.resample_chunk(np.ascontiguousarray(chunk))
        return self._emit(chunk)

    def finish(self) -> bytes:
        """The last bytes (the resampler's and the codec's buffered tail); empty when called again."""
        if self._finished:
            return b""
        self._finished = True
        tail = np.zeros(0, dtype=np.float32)
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(tail, last=True)
        data = self._emit(tail)
        if self._mp3 is not None:
            data += self._mp3.close()
        return data

    def _emit(self, audio: np.ndarray) -> bytes:
        if self._mp3 is not None:
            return self._mp3.write(audio)
        return _int16(audio).tobytes()
