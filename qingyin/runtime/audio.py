"""Audio output: float32 samples -> 16-bit PCM WAV, whole or appended sentence by sentence."""

from __future__ import annotations

import wave
from pathlib import Path
from types import TracebackType

import numpy as np


def to_pcm16(audio: np.ndarray) -> bytes:
    """float32 in [-1, 1] -> little-endian int16 bytes (clipped, so overshoot cannot wrap around)."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


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
