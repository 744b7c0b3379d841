"""Reference prosody: measure how a recording speaks (pitch register and range, loudness contrasts, articulation
rate, pauses), so that a voice can be made to speak like it (qingyin.style.transfer turns the measurements into a
`Preset` relative to the voice).

One analysis for every clip, references and the voices' own neutral speech alike (benchmarks/voice_profiles.py
measures the voices with `analyze_reference`, so the ratios compare like with like):

1. **Input.** A file path, the bytes of a file (wav, flac, ogg/vorbis/opus, mp3: whatever libsndfile reads;
   `load_audio`) or a numpy array with its sample rate. Channels are averaged, integer samples scaled to [-1, 1),
   the DC offset removed. 1 to 60 s long; NaN or inf samples are refused.
2. **Checks on the raw samples.** Clipping (flat runs of samples at the clip's peak) and a low signal-to-noise
   ratio (the loud frames against the quiet ones) are warnings: the numbers are still measured, but less
   trustworthy.
3. **WORLD analysis** (`qingyin.evaluate.signal_metrics.analyze`) at 16 kHz, whatever the input rate: Harvest F0
   confirmed by D4C's voicing test, the speech/silence mask (40 dB below the loudest frame), pauses >= 100 ms.
   A clip with no voiced speech (noise, music without a voice, a pure tone) is refused.
4. **Descriptors.** F0 mean and range (95th - 5th percentile) in semitones re 100 Hz over voiced speech frames
   (`prosody_descriptors`); the loudness contrast between syllables, the standard deviation of the smoothed
   level (dB) at the syllable nuclei; syllables per second of articulation time (speech minus pauses), the
   syllables counted without the text as peaks of the level below 1 kHz in voiced speech (`nucleus_frames`); the
   share of the speech time spent in pauses. The contrast is read at the nuclei, not over every speech frame,
   because the frames' spread is mostly each syllable's own rise and decay (consonant against vowel, the fall
   into a pause), which says little about how loud one syllable is against the next: Baker rendering with every
   syllable's level difference doubled spreads its nuclei 2.2 times as wide and its speech frames only 1.1 times.
5. **Rate calibration.** The nucleus count moves less than the true syllable count when the rate changes (slow
   speech splits long vowels into several peaks, fast speech runs syllables together): on our voices the nucleus
   rate follows the true rate as (true ratio) ** RATE_RESPONSE. `calibrated_rate` inverts that power law around
   RATE_PIVOT, so a reference spoken 20 % slower measures about 20 % slower (on average over the voices measured:
   Baker's count follows a rate change more closely than Kokoro's, so its changes come out larger); the raw count
   is kept as `syllable_nuclei`.

The WORLD packages (pyworld, pysptk, scipy) and soundfile are imported on first use, never on import.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ANALYSIS_RATE",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "ReferenceError",
    "ReferenceProsody",
    "analyze_reference",
    "calibrated_rate",
    "load_audio",
]

MIN_SECONDS = 1.0  # shortest reference: a few syllables
MAX_SECONDS = 60.0  # longest reference (the analysis costs about 0.3 s per second of audio)
ANALYSIS_RATE = 16000  # every clip is analysed at this rate, so references at any rate compare with the voices
FORMATS = "wav, flac, ogg (vorbis or opus) or mp3"
INSTALL_READ = "pip install 'qingyin[server]'"  # soundfile
INSTALL_ANALYSIS = "pip install 'qingyin[eval]'"  # pyworld, pysptk, scipy (and soundfile)
MIN_VOICED_S = 0.25  # at least this much voiced speech ...
MIN_VOICED_SHARE = 0.1  # ... and this share of the speech frames voiced, or there is no voice
MIN_SYLLABLES = 3  # fewer nuclei than this: the articulation rate is a guess (a warning)
CLIPPED_SHARE = 1e-3  # samples in flat runs at the peak, above this share of all samples: clipped (a warning)
CLIP_LEVEL = 0.98  # "at the peak": within 2 % of the largest magnitude
LOW_SNR_DB = 30.0  # loud frames less than this far above the quiet ones: noisy (a warning; pauses get lost near 25)
SNR_FRAME_S = 0.025  # frames for the signal-to-noise estimate
NOISE_PERCENTILE, SIGNAL_PERCENTILE = 5.0, 95.0
MAX_FLOAT_PEAK = 1000.0  # float samples beyond this are not audio scaled to full scale 1.0
# The nucleus rate moves as (true rate ratio) ** RATE_RESPONSE and equals the true rate at RATE_PIVOT
# (syllables/s; our voices' normal 5 syllables/s count about 8 % low): fitted on four voices at speeds 0.7-1.4 by
# `.venv/bin/python -m benchmarks.rate_calibration --sentences 12` (BENCHMARKS.md, "Prosody from a reference").
RATE_RESPONSE = 0.68
RATE_PIVOT = 3.8


class ReferenceError(ValueError):
    """A reference recording cannot be used; the message says why and what to send instead."""


@dataclass(frozen=True)
class ReferenceProsody:
    """How a recording speaks. F0 in semitones re 100 Hz (st = 12 * log2(F0 / 100 Hz))."""

    f0_mean_st: float  # mean log-F0 over voiced speech frames, semitones re 100 Hz
    f0_range_st: float  # 95th minus 5th percentile of log-F0, semitones
    dynamics_db: float  # standard deviation of the smoothed level at the syllable nuclei, dB
    articulation_rate: float  # estimated syllables per second of articulation time (speech minus pauses >= 100 ms),
    #                           calibrated (`calibrated_rate`)
    pause_ratio: float  # pause time (internal silences >= 100 ms) / speech duration (first to last speech frame)
    duration_s: float  # speech duration, first to last speech frame, seconds
    syllable_nuclei: int = 0  # syllables counted (intensity peaks), before the rate calibration
    warnings: tuple[str, ...] = ()  # what makes these numbers less trustworthy (clipping, noise, few syllables)


# --- reading ------------------------------------------------------------------------------------------------


def _soundfile() -> Any:
    try:
        import soundfile
    except ImportError as error:  # soundfile itself, or its libsndfile
        raise ImportError(f"reading a reference recording needs soundfile ({error}): {INSTALL_READ}") from error
    return soundfile


def _too_long(seconds: float) -> ReferenceError:
    return ReferenceError(f"the reference recording is {seconds:.1f} s long; send {MIN_SECONDS:g}-{MAX_SECONDS:g} s "
                          "of speech (cut it to one or a few sentences)")


def _too_short(seconds: float) -> ReferenceError:
    return ReferenceError(f"the reference recording is {seconds:.2f} s long; send {MIN_SECONDS:g}-{MAX_SECONDS:g} s "
                          "of speech")


def load_audio(source: str | os.PathLike[str] | bytes | bytearray | memoryview,
               max_seconds: float | None = MAX_SECONDS) -> tuple[np.ndarray, int]:
    """A recording (file path or the file's bytes: wav, flac, ogg, mp3) -> (mono float64 samples, sample rate).

    Any sample rate; channels are averaged; integer formats come back scaled to [-1, 1). A file longer than
    `max_seconds` is refused before it is decoded (None: no limit). Raises ReferenceError for a missing, empty or
    unreadable file, ImportError (saying what to install) when soundfile is missing.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if not data:
            raise ReferenceError(f"the reference recording is empty (0 bytes); send a {FORMATS} file")
        opened: Any = io.BytesIO(data)
        name = "the reference recording"
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ReferenceError(f"no reference recording at {str(path)!r}; give the path of a {FORMATS} file")
        if path.stat().st_size == 0:
            raise ReferenceError(f"the reference recording {str(path)!r} is empty (0 bytes); send a {FORMATS} file")
        opened, name = str(path), f"the reference recording {str(path)!r}"
    else:
        raise ReferenceError(f"a reference recording is a file path or the file's bytes, got {type(source).__name__}")
    soundfile = _soundfile()
    try:
        with soundfile.SoundFile(opened) as handle:
            rate = int(handle.samplerate)
            declared = int(handle.frames)
            if rate <= 0:
                raise ReferenceError(f"{name} declares a sample rate of {rate} Hz; send a {FORMATS} file")
            if max_seconds is not None and declared > 0 and declared / rate > max_seconds + 0.5:
                raise _too_long(declared / rate)
            limit = -1 if max_seconds is None else int((max_seconds + 1.0) * rate)  # mp3 lengths are estimates
            samples = handle.read(frames=limit, dtype="float64", always_2d=True)  # (N, C)
    except ReferenceError:
        raise
    except Exception as error:  # libsndfile's errors (LibsndfileError, RuntimeError), truncated data, bad headers
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        detail = re.sub(r"^Error opening (<[^>]*>|'[^']*'|\S+): ", "", detail).strip() or type(error).__name__
        raise ReferenceError(f"cannot read {name} as audio ({detail}); send a {FORMATS} file") from None
    if samples.size == 0:
        raise ReferenceError(f"{name} holds no audio samples; send {MIN_SECONDS:g}-{MAX_SECONDS:g} s of speech "
                             f"as a {FORMATS} file")
    return np.ascontiguousarray(samples.mean(axis=1)), rate


# --- checks -------------------------------------------------------------------------------------------------


def _as_samples(audio: Any) -> np.ndarray:
    """Array (N,), (N, C) or (C, N) of float or integer PCM -> (N,) float64 mono, full scale 1.0."""
    try:
        wav = np.asarray(audio)
    except Exception as error:  # ragged lists and the like
        raise ReferenceError(f"the reference audio is not an array of samples ({error})") from None
    if wav.ndim not in (1, 2):
        raise ReferenceError(f"the reference audio must be mono or (samples, channels), got shape {wav.shape}")
    if np.issubdtype(wav.dtype, np.signedinteger):
        wav = wav.astype(np.float64) / float(-np.iinfo(wav.dtype).min)
    elif np.issubdtype(wav.dtype, np.unsignedinteger):  # offset binary (8-bit wav): the middle is zero
        half = float(np.iinfo(wav.dtype).max // 2 + 1)
        wav = (wav.astype(np.float64) - half) / half
    elif np.issubdtype(wav.dtype, np.floating):
        wav = wav.astype(np.float64)
    else:
        raise ReferenceError(f"the reference audio must hold float or integer samples, got dtype {wav.dtype}")
    if wav.ndim == 2:  # channels on the shorter axis, averaged
        wav = wav.mean(axis=1 if wav.shape[1] <= wav.shape[0] else 0) if wav.size else wav.reshape(-1)
    if wav.size == 0:
        raise ReferenceError(f"the reference recording is empty; send {MIN_SECONDS:g}-{MAX_SECONDS:g} s of speech")
    if not np.all(np.isfinite(wav)):
        raise ReferenceError("the reference audio contains NaN or infinite samples; send the recording as "
                             "decoded PCM")
    peak = float(np.max(np.abs(wav)))
    if peak > MAX_FLOAT_PEAK:
        raise ReferenceError(f"the reference audio's samples reach {peak:.3g}, far beyond full scale (1.0); send "
                             "float samples in [-1, 1] or integer PCM")
    return np.ascontiguousarray(wav)


def _check_rate(sample_rate: Any) -> int:
    if sample_rate is None:
        raise ReferenceError("a reference given as an array needs its sample_rate (Hz)")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | float | np.integer | np.floating) \
            or not math.isfinite(sample_rate) or int(sample_rate) != sample_rate or not 1000 <= sample_rate <= 384000:
        raise ReferenceError(f"sample_rate must be a whole number of Hz between 1000 and 384000, got {sample_rate!r}")
    return int(sample_rate)


def clipped_share(wav: np.ndarray) -> float:
    """Share (0..1) of the samples that sit in flat runs at the clip's peak: what clipping (or limiting hard
    enough to flatten the waveform) leaves. A natural peak is one sample; a clipped one is a plateau."""
    peak = float(np.max(np.abs(wav)))
    if peak <= 0.0 or wav.size < 2:
        return 0.0
    high = np.abs(wav) >= CLIP_LEVEL * peak  # (N,)
    flat = high[1:] & high[:-1] & (np.abs(np.diff(wav)) <= 1e-6 * peak)  # (N-1,) pairs of equal samples at the top
    return float(flat.sum()) / wav.size


def snr_estimate_db(wav: np.ndarray, sample_rate: int) -> float:
    """Loud frames (95th percentile of 25 ms frame levels) over quiet ones (5th percentile), dB. Speech with
    pauses in a quiet room gives 40 dB and more; speech in steady noise, the speech-to-noise ratio plus a little."""
    hop = max(1, int(SNR_FRAME_S * sample_rate))
    frames = wav[: wav.size // hop * hop].reshape(-1, hop)  # (F, hop)
    if frames.shape[0] < 2:
        return math.inf
    level = 10.0 * np.log10(np.maximum(np.mean(frames * frames, axis=1), 1e-12))  # (F,) floor at -120 dBFS
    quiet, loud = np.percentile(level, [NOISE_PERCENTILE, SIGNAL_PERCENTILE])
    return float(loud - quiet)


# --- analysis -----------------------------------------------------------------------------------------------


def calibrated_rate(nucleus_rate: float) -> float:
    """Syllable nuclei per second of articulation -> the articulation rate they stand for (module docstring, 5):
    RATE_PIVOT * (nucleus_rate / RATE_PIVOT) ** (1 / RATE_RESPONSE); 0 stays 0."""
    if nucleus_rate <= 0:
        return 0.0
    return RATE_PIVOT * (nucleus_rate / RATE_PIVOT) ** (1.0 / RATE_RESPONSE)


def analyze_reference(source: str | os.PathLike[str] | bytes | bytearray | memoryview | np.ndarray,
                      sample_rate: int | None = None) -> ReferenceProsody:
    """A recording -> its prosody (see the module docstring). `source`: a file path, the file's bytes, or an array
    of samples (then `sample_rate` is required; for a file it is read from the file and this is ignored).

    Raises ReferenceError for anything that cannot be measured (too short or long, silent, no voice, unreadable,
    NaN samples), with a message that says what to send; ImportError naming the extra when a package is missing.
    """
    if isinstance(source, bytes | bytearray | memoryview | str | os.PathLike):
        wav, rate = load_audio(source)
    else:
        wav, rate = _as_samples(source), _check_rate(sample_rate)
    seconds = wav.size / rate
    if seconds < MIN_SECONDS:
        raise _too_short(seconds)
    if seconds > MAX_SECONDS:
        raise _too_long(seconds)
    wav = wav - float(np.mean(wav))  # DC offset: it would count as level, and hide silence
    warnings: list[str] = []
    clipped = clipped_share(wav)
    if clipped > CLIPPED_SHARE:
        warnings.append(f"the reference recording is clipped ({100 * clipped:.1f} % of its samples sit flat at full "
                        "level): loudness contrasts are underestimated; record it a little quieter")

    from qingyin.evaluate import signal_metrics as sm

    try:
        from qingyin.evaluate.assets import resample

        wav = resample(wav, rate, ANALYSIS_RATE)
        snr = snr_estimate_db(wav, ANALYSIS_RATE)
        clip = sm.analyze(wav, ANALYSIS_RATE)
    except ImportError as error:
        raise ImportError(f"analysing a reference recording needs pyworld, pysptk and scipy ({error}): "
                          f"{INSTALL_ANALYSIS}") from error
    except ValueError as error:
        if "silent" in str(error):
            raise ReferenceError(f"the reference recording is silent (nothing louder than "
                                 f"{sm.SILENCE_FLOOR_DBFS:g} dBFS); send a recording of someone speaking") from None
        raise ReferenceError(f"cannot analyse the reference recording ({error})") from None
    if snr < LOW_SNR_DB:
        warnings.append(f"the reference recording is noisy (speech only about {snr:.0f} dB above the background): "
                        "pauses and loudness contrasts may be misread; a quieter recording matches better")

    voiced = (clip.f0_hz > 0) & clip.speech  # (T,)
    voiced_s = float(voiced.sum()) * sm.FRAME_PERIOD_S
    speech_frames = int(clip.speech.sum())
    if voiced_s < MIN_VOICED_S or voiced.sum() < MIN_VOICED_SHARE * speech_frames:
        raise ReferenceError(f"no voice found in the reference recording (only {voiced_s:.2f} s of voiced sound in "
                             f"{clip.duration_s:.1f} s): send a recording of someone speaking, not noise, music "
                             "or a tone")

    prosody = sm.prosody_descriptors(clip)
    nuclei = sm.nucleus_frames(clip)  # (N,) frame indices
    syllables = int(nuclei.size)
    nucleus_level = sm.smoothed_level_db(clip)[nuclei]  # (N,) dB
    articulation_s = clip.duration_s - clip.pause_time_s
    rate_sps = calibrated_rate(syllables / articulation_s) if articulation_s > 0 else 0.0
    if syllables < MIN_SYLLABLES:
        warnings.append(f"only {syllables} syllable(s) found in the reference recording: its speaking rate is a "
                        "guess; send a sentence or more of speech")
    return ReferenceProsody(
        f0_mean_st=float(prosody.f0_mean_st),
        f0_range_st=float(prosody.f0_range_st),
        dynamics_db=float(np.std(nucleus_level)) if syllables >= 2 else 0.0,
        articulation_rate=float(rate_sps),
        pause_ratio=float(clip.pause_time_s / clip.duration_s) if clip.duration_s > 0 else 0.0,
        duration_s=float(clip.duration_s),
        syllable_nuclei=syllables,
        warnings=tuple(warnings),
    )
