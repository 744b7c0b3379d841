"""Audio bytes for HTTP responses: whole files in several formats (qingyin.runtime.audio, shared with batch jobs),
and incremental streams.

The formats, sample rates, checks and whole-file encoding live in qingyin.runtime.audio (one implementation for the
server and batch jobs) and are re-exported here; this module adds the Content-Type and the streaming encoders.
No torch here.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import soxr

from qingyin.runtime.audio import (  # noqa: F401  (re-exported: the server's formats are the runtime's)
    FORMATS,
    OPUS_RATES,
    RESAMPLE_QUALITY,
    SAMPLE_RATES,
    STREAM_FORMATS,
    AudioFormatError,
    check_format,
    clipped,
    encode,
    int16,
    mono,
    resample,
    wav_header,
)

_CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "opus": "audio/ogg; codecs=opus",
                  "flac": "audio/flac"}
# Streamed MP3 is constant bitrate (see _Mp3Stream); this libsndfile level gives 65 kbit/s at 16-24 kHz,
# 129 kbit/s at 44.1/48 kHz and 25 kbit/s at 8 kHz.
_MP3_STREAM_LEVEL = 0.65


def content_type(format: str, sample_rate: int) -> str:
    """The Content-Type header for audio in `format` at `sample_rate`."""
    check_format(format, sample_rate)
    if format == "pcm":
        return f"audio/pcm;rate={int(sample_rate)};encoding=s16le;channels=1"
    return _CONTENT_TYPES[format]


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
            self._file.write(clipped(audio))
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
            source_rate, self.sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        self._mp3 = _Mp3Stream(self.sample_rate) if format == "mp3" else None
        self._finished = False

    def header(self) -> bytes:
        """What goes before the first chunk: a wav header with placeholder sizes; nothing for pcm and mp3."""
        return wav_header(self.sample_rate, None) if self.format == "wav" else b""

    def encode(self, chunk: np.ndarray) -> bytes:
        """The bytes for `chunk` (float, mono, at the source rate); may be empty while the codec buffers."""
        if self._finished:
            raise RuntimeError("StreamEncoder.encode() called after finish()")
        chunk = mono(chunk)
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
        return int16(audio).tobytes()
