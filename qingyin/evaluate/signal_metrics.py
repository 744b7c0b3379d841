"""Signal-level metrics: mel-cepstral distortion, log-F0 RMSE, V/UV error, duration and prosody descriptors.

Every clip goes through one analysis (`analyze`), shared by all metrics:

1. **Validation.** Mono audio (1-D, or 2-D with one channel), finite, non-empty. Float samples are taken as they
   are (full scale = 1.0); integer samples are scaled to [-1, 1) (int16 by 32768, and so on).
2. **Speech / silence.** The clip is cut into 5 ms frames centred on the WORLD frame times (frame k covers
   k*5 ms +- 2.5 ms), and each frame's mean square is taken. A frame is speech when its level is within
   `SILENCE_TOP_DB` (40 dB) of the loudest frame and above `SILENCE_FLOOR_DBFS` (-80 dBFS). Why 40 dB: weak
   Mandarin initials (f, h, x) sit 30-40 dB below the vowels, while a synthesizer's pauses and a studio
   recording's noise floor sit 50-70 dB below them. The threshold is relative, so a quieter clip (an energy
   control) gets the same segmentation. Runs of speech shorter than `MIN_SPEECH_RUN_S` (20 ms) are clicks, not
   speech, and are dropped. Leading and trailing silence is trimmed: the clip is everything from the first to
   the last speech frame. Boundaries are resolved to about one frame (5 ms).
3. **WORLD.** Harvest F0 (40-800 Hz, 5 ms frame period), CheapTrick spectral envelope (FFT size for a 71 Hz
   floor: 1024 points at 24 kHz, ESPnet's n_fft) and `pysptk.sp2mc` mel-cepstra of order 34, all-pass constant
   alpha 0.46 at 24 kHz (`pysptk.util.mcepalpha` at other rates). c0 (the overall level) is dropped, so a gain
   change does not count as distortion. WORLD runs on the trimmed region plus 100 ms of context on each side
   (Harvest costs about 0.3 s per second of audio; padding is not worth it) and reports the trimmed frames.
4. **Voicing.** A frame is voiced when Harvest gives it an F0 *and* D4C's voicing test (WORLD's "LoveTrain",
   threshold 0.85, what WORLD uses for synthesis) agrees; F0 is set to 0 elsewhere. Harvest alone errs towards
   voicing: it carries F0 tracks into neighbouring fricatives and low-level noise, which on the synthetic speech
   of the tests biased mean log-F0 by 0.2 semitones and V/UV error by several percent.

A pair of analyses is aligned once, by dynamic time warping (`dtw_path`) on the Euclidean distance between
mel-cepstra, and every pair metric (`compare`) is read off that one alignment.

ESPnet's ``evaluate_mcd.py`` is followed (Harvest, CheapTrick with n_fft 1024, order 34, alpha 0.46, DTW, MCD =
10/ln10 * sqrt(2 * sum of squared c1..c34 differences) averaged over all aligned frames) except: the frame
period is 5 ms; leading and trailing silence is trimmed from each clip before alignment, so that padding (which
differs between systems and says nothing about quality) does not dominate the average, while internal pauses
are kept; and the V/UV decision includes D4C's test (step 4).

Known limits. Harvest does not track a pure sinusoid or a tone with fewer than about four harmonics (voices and
vocoders have dozens): F0 metrics of such signals are NaN or meaningless. Log-spectral distances are dominated
by bands or frames that hold no energy at all (digital silence, band-limited synthesis at -120 dB): compare
clips that have a noise floor, as recordings and vocoder outputs do, and compare at one bandwidth.

Install: ``pip install pyworld pysptk "setuptools<81"`` (pyworld imports pkg_resources); scipy comes with
pysptk. None of them is imported before a metric is first computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from qingyin.arrays import true_runs
from qingyin.evaluate.assets import import_optional, resample

__all__ = [
    "ClipAnalysis",
    "PairMetrics",
    "Prosody",
    "analyze",
    "compare",
    "dtw_path",
    "duration_difference",
    "log_f0_rmse",
    "mel_cepstral_distortion",
    "nucleus_frames",
    "prosody_descriptors",
    "smoothed_level_db",
    "sonorant_level_db",
    "syllable_nuclei",
    "vuv_error",
]

SAMPLE_RATE = 24000  # qingyin's output rate, the default everywhere here
FRAME_PERIOD_S = 0.005  # WORLD frame period and speech/silence frame length
F0_FLOOR_HZ = 40.0  # Harvest search range (ESPnet's f0min / f0max)
F0_CEIL_HZ = 800.0
ENVELOPE_F0_FLOOR_HZ = 71.0  # sets CheapTrick's FFT size: 1024 points at 24 kHz
MCEP_ORDER = 34  # c0..c34; c1..c34 are compared
VOICING_THRESHOLD = 0.85  # D4C's voicing test (pyworld.d4c threshold; WORLD's default)
SILENCE_TOP_DB = 40.0  # speech: within this many dB of the loudest frame
SILENCE_FLOOR_DBFS = -80.0  # ... and louder than this; a clip with no frame above it is silent
MIN_SPEECH_RUN_S = 0.02  # shorter bursts of "speech" inside silence are clicks
MIN_PAUSE_S = 0.1  # internal silences at least this long are pauses
FINAL_CONTOUR_S = 0.2  # the sentence-final contour: this much voiced speech before the last voiced frame
HARVEST_CONTEXT_S = 0.1  # audio kept on each side of the trimmed region for WORLD's analysis windows
F0_REFERENCE_HZ = 100.0  # 0 semitones
NUCLEUS_SMOOTHING_S = 0.025  # Hann window over the frames' mean squares for the smoothed level
NUCLEUS_MIN_DIP_DB = 2.0  # two peaks are two syllables when the level between them dips this far below both
NUCLEUS_RANGE_DB = 25.0  # a nucleus is within this many dB of the clip's loud level (99th percentile)
NUCLEUS_BAND_HZ = 1000.0  # nuclei are peaks of the level below this frequency (vowels), not of the whole band
SONORANT_SMOOTHING_S = 0.06  # ... smoothed over 60 ms: steadier under pitch and timing edits than over 25 ms
_NUCLEUS_FFT = 512  # FFT points for the envelope that splits a frame's power at NUCLEUS_BAND_HZ
_MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)  # dB per unit of Euclidean mel-cepstral distance
_TINY_POWER = 1e-20  # floor before taking dB of a frame's mean square


@dataclass(frozen=True, eq=False)
class ClipAnalysis:
    """One clip, analysed once: its trimmed speech region on the 5 ms WORLD frame grid.

    All arrays have one entry per frame of the trimmed region (T frames, first to last speech frame).
    """

    sample_rate: int  # Hz, the rate the clip was analysed at
    f0_hz: np.ndarray  # (T,) float64, Harvest F0 in Hz, 0 where unvoiced (Harvest or D4C's voicing test)
    mcep: np.ndarray  # (T, 34) float64, mel-cepstrum c1..c34 (c0 dropped)
    speech: np.ndarray  # (T,) bool, frame is speech (not silence) by the energy threshold
    power: np.ndarray  # (T,) float64, frame mean square (full scale = 1.0)
    start_s: float  # where the trimmed region starts in the original clip, seconds
    duration_s: float  # speech duration: first to last speech frame inclusive, seconds (T * 5 ms)
    pause_time_s: float  # total length of internal silences >= MIN_PAUSE_S, seconds

    @property
    def frames(self) -> int:
        return int(self.f0_hz.shape[0])


@dataclass(frozen=True)
class PairMetrics:
    """Everything `compare` measures for a (reference, system) pair, from one DTW alignment."""

    mcd_db: float  # mel-cepstral distortion, dB, mean over aligned frame pairs (>= 0; 0 for identical clips)
    log_f0_rmse_cents: float  # RMS of 1200*log2(F0_sys/F0_ref) over aligned pairs voiced in both; NaN if none
    vuv_error: float  # share (0..1) of aligned pairs whose voiced/unvoiced decisions differ
    duration_difference_s: float  # system minus reference speech duration, seconds
    aligned_frames: int  # length of the DTW path
    voiced_pairs: int  # aligned pairs voiced in both clips (the support of log_f0_rmse_cents)
    reference_duration_s: float
    system_duration_s: float


@dataclass(frozen=True)
class Prosody:
    """Prosodic descriptors of one clip; F0 in semitones re 100 Hz (st = 12 * log2(F0 / 100 Hz)).

    F0 statistics use frames that are both voiced (Harvest and D4C) and speech (energy); they are NaN when there are
    none. Durations exclude leading and trailing silence.
    """

    f0_mean_st: float  # mean log-F0, semitones re 100 Hz
    f0_std_st: float  # standard deviation of log-F0, semitones
    f0_mean_hz: float  # the same mean in Hz: 100 * 2 ** (f0_mean_st / 12), i.e. the geometric-mean F0
    f0_range_st: float  # 95th minus 5th percentile of log-F0, semitones (robust to a few octave errors)
    rms_dbfs: float  # 10*log10(mean square over speech frames); a full-scale sine is -3.01 dBFS
    speaking_rate: float | None  # syllables per second of articulation time; None when syllables is None
    pause_time_s: float  # total internal silences >= 100 ms between first and last speech frame, seconds
    speech_duration_s: float  # first to last speech frame, pauses included, seconds
    articulation_time_s: float  # speech_duration_s - pause_time_s, seconds
    voiced_fraction: float  # share of speech frames that are voiced
    # The sentence-final contour: the last FINAL_CONTOUR_S of voiced speech (NaN when there is too little of it)
    final_level_st: float = math.nan  # its mean log-F0 minus f0_mean_st, semitones
    final_slope_st: float = math.nan  # its second half's median log-F0 minus its first half's, semitones (> 0 rising)


# --- input handling -----------------------------------------------------------------------------------------


def _check_rate(sample_rate: Any) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | float | np.integer | np.floating):
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    if not math.isfinite(sample_rate) or sample_rate <= 0 or int(sample_rate) != sample_rate:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    return int(sample_rate)


def _as_mono(audio: Any, name: str = "audio") -> np.ndarray:
    """Audio array (N,) or (N, 1) / (1, N), float or integer PCM -> (N,) float64, full scale 1.0."""
    wav = np.asarray(audio)
    if wav.ndim == 2 and 1 in wav.shape:
        wav = wav.reshape(-1)
    if wav.ndim != 1:
        raise ValueError(f"{name} must be mono: a 1-D array (or 2-D with one channel), got shape {wav.shape}")
    if wav.size == 0:
        raise ValueError(f"{name} is empty")
    if np.issubdtype(wav.dtype, np.integer) and wav.dtype != np.bool_:
        wav = wav.astype(np.float64) / float(-np.iinfo(wav.dtype).min)
    elif np.issubdtype(wav.dtype, np.floating):
        wav = wav.astype(np.float64)
    else:
        raise ValueError(f"{name} must hold real float or integer samples, got dtype {wav.dtype}")
    if not np.all(np.isfinite(wav)):
        raise ValueError(f"{name} contains non-finite samples (NaN or inf)")
    return np.ascontiguousarray(wav)


def _mcep_alpha(sample_rate: int) -> float:
    """All-pass constant approximating the mel scale: 0.46 at 24 kHz (ESPnet), else pysptk's estimate."""
    if sample_rate == 24000:
        return 0.46
    pysptk = import_optional("pysptk")
    return float(pysptk.util.mcepalpha(sample_rate))


# --- speech / silence ---------------------------------------------------------------------------------------


def _frame_power(wav: np.ndarray, sample_rate: int, frames: int) -> np.ndarray:
    """(N,) -> (frames,) mean square of 5 ms frames centred on k * 5 ms (edge frames truncated to the clip)."""
    hop = FRAME_PERIOD_S * sample_rate  # samples, may be fractional (22.05 kHz)
    bounds = np.clip(np.round((np.arange(frames + 1) - 0.5) * hop), 0, wav.size).astype(np.int64)  # (frames+1,)
    energy = np.concatenate(([0.0], np.cumsum(wav * wav)))  # (N+1,)
    counts = np.diff(bounds)
    sums = energy[bounds[1:]] - energy[bounds[:-1]]
    return np.where(counts > 0, np.maximum(sums, 0.0) / np.maximum(counts, 1), 0.0)


def _speech_mask(power: np.ndarray, top_db: float) -> np.ndarray:
    """(T,) frame mean squares -> (T,) bool speech decisions (see the module docstring)."""
    level = 10.0 * np.log10(np.maximum(power, _TINY_POWER))  # dBFS
    peak = float(level.max())
    if peak <= SILENCE_FLOOR_DBFS:
        raise ValueError(f"audio is silent: no 5 ms frame is louder than {SILENCE_FLOOR_DBFS:g} dBFS")
    speech = level > max(peak - top_db, SILENCE_FLOOR_DBFS)
    min_run = max(1, round(MIN_SPEECH_RUN_S / FRAME_PERIOD_S))
    cleaned = speech.copy()
    for start, stop in true_runs(speech):
        if stop - start < min_run:
            cleaned[start:stop] = False
    return cleaned if cleaned.any() else speech  # a clip that is one short burst keeps it


# --- analysis -----------------------------------------------------------------------------------------------


def analyze(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, *, top_db: float = SILENCE_TOP_DB) -> ClipAnalysis:
    """Mono audio (N,) at `sample_rate` Hz -> ClipAnalysis (trimmed WORLD F0, mel-cepstra, speech frames).

    `top_db`: a frame is speech when it is within this many dB of the loudest frame (default 40 dB).
    Raises ValueError for empty, non-finite, non-mono or silent audio.
    """
    sample_rate = _check_rate(sample_rate)
    wav = _as_mono(audio)
    if not top_db > 0:
        raise ValueError(f"top_db must be positive (dB), got {top_db!r}")
    pw = import_optional("pyworld")
    pysptk = import_optional("pysptk")

    period_ms = FRAME_PERIOD_S * 1000.0
    total = int(1000.0 * wav.size / sample_rate / period_ms) + 1  # WORLD's frame count for the clip: k * 5 ms
    power = _frame_power(wav, sample_rate, total)  # (K,)
    speech = _speech_mask(power, top_db)  # (K,); raises for a silent clip
    first, last = (int(i) for i in np.flatnonzero(speech)[[0, -1]])

    # WORLD sees the trimmed region plus 100 ms of context on each side, on the same 5 ms grid
    hop = FRAME_PERIOD_S * sample_rate  # samples per frame, may be fractional
    context = round(HARVEST_CONTEXT_S / FRAME_PERIOD_S)
    k0, k1 = max(0, first - context), min(total - 1, last + context)
    segment = np.ascontiguousarray(wav[round(k0 * hop) : min(wav.size, round(k1 * hop) + 1)])
    f0, _ = pw.harvest(segment, sample_rate, f0_floor=F0_FLOOR_HZ, f0_ceil=F0_CEIL_HZ, frame_period=period_ms)
    f0 = np.pad(f0, (0, max(0, last + 1 - k0 - f0.shape[0])))[first - k0 : last + 1 - k0]  # (T,) Hz
    times = np.arange(first - k0, last + 1 - k0) * FRAME_PERIOD_S  # (T,) seconds into the segment
    power, speech = power[first : last + 1], speech[first : last + 1]  # (T,) each

    f0 = np.ascontiguousarray(f0, np.float64)
    fft_size = pw.get_cheaptrick_fft_size(sample_rate, ENVELOPE_F0_FLOOR_HZ)
    envelope = pw.cheaptrick(segment, f0, times, sample_rate,
                             f0_floor=ENVELOPE_F0_FLOOR_HZ, fft_size=fft_size)  # (T, fft_size // 2 + 1)
    mcep = pysptk.sp2mc(envelope, order=MCEP_ORDER, alpha=_mcep_alpha(sample_rate))[:, 1:]  # (T, 34)
    # D4C marks the frames its voicing test rejects by an aperiodicity of (almost exactly) 1 in every band
    aperiodicity = pw.d4c(segment, f0, times, sample_rate, threshold=VOICING_THRESHOLD, fft_size=fft_size)
    f0 = np.where(np.all(aperiodicity > 1.0 - 1e-6, axis=1), 0.0, f0)  # (T,); aperiodicity is (T, F)

    min_pause = round(MIN_PAUSE_S / FRAME_PERIOD_S)
    silences = true_runs(~speech)  # (R, 2); the trimmed region starts and ends with speech, so all are internal
    pause_frames = int(sum(stop - start for start, stop in silences if stop - start >= min_pause))
    return ClipAnalysis(
        sample_rate=sample_rate,
        f0_hz=np.asarray(f0, np.float64),
        mcep=np.ascontiguousarray(mcep, np.float64),
        speech=speech,
        power=power,
        start_s=round(first * FRAME_PERIOD_S, 9),
        duration_s=round(speech.shape[0] * FRAME_PERIOD_S, 9),
        pause_time_s=round(pause_frames * FRAME_PERIOD_S, 9),
    )


def _as_analysis(clip: np.ndarray | ClipAnalysis, sample_rate: int, target_rate: int | None = None) -> ClipAnalysis:
    """Array at `sample_rate` (resampled to `target_rate` if given) or an existing analysis -> ClipAnalysis."""
    if isinstance(clip, ClipAnalysis):
        if target_rate is not None and clip.sample_rate != target_rate:
            raise ValueError(f"cannot compare analyses made at {clip.sample_rate} Hz and {target_rate} Hz; "
                             "analyse both clips at one rate")
        return clip
    sample_rate = _check_rate(sample_rate)
    if target_rate is None or target_rate == sample_rate:
        return analyze(clip, sample_rate)
    return analyze(resample(_as_mono(clip), sample_rate, target_rate), target_rate)


# --- alignment ----------------------------------------------------------------------------------------------


def dtw_path(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Feature sequences (N, D), (M, D) -> DTW path as index arrays (L,), (L,) minimising summed Euclidean distance.

    Steps (1, 1), (1, 0), (0, 1), all weighted 1; the path runs from (0, 0) to (N-1, M-1). Each row of the
    accumulated cost is computed with numpy in O(M): with a_j the best of the diagonal and vertical predecessors
    and C the cumulative cost along the row, D[i, j] = C[j] + min over k <= j of (a_k - C[k-1]), a running
    minimum. Memory: one int8 step code per cell (N*M bytes).
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or x.shape[0] == 0 or y.shape[0] == 0:
        raise ValueError(f"dtw_path needs two non-empty (frames, dims) arrays of equal dims, got {x.shape}, {y.shape}")
    n, m = x.shape[0], y.shape[0]
    step = np.empty((n, m), np.int8)  # 0: from (i-1, j-1), 1: from (i-1, j), 2: from (i, j-1)
    cost = np.linalg.norm(y - x[0], axis=1)  # (M,)
    acc = np.cumsum(cost)  # (M,) accumulated cost of row 0
    step[0] = 2
    for i in range(1, n):
        cost = np.linalg.norm(y - x[i], axis=1)  # (M,)
        diagonal = np.concatenate(([False], acc[:-1] <= acc[1:]))  # (M,) diagonal at least as good as vertical
        best = np.where(diagonal, np.concatenate(([np.inf], acc[:-1])), acc)  # (M,) a_j
        row_sum = np.cumsum(cost)  # (M,) C[j]
        candidate = best - (row_sum - cost)  # (M,) a_k - C[k-1]
        running = np.minimum.accumulate(candidate)  # (M,)
        horizontal = candidate > running  # some k < j is strictly better: arrive from the left
        acc = np.where(horizontal, row_sum + running, cost + best)
        step[i] = np.where(horizontal, 2, np.where(diagonal, 0, 1))
    i, j = n - 1, m - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        code = step[i, j] if i > 0 and j > 0 else (1 if j == 0 else 2)
        if code == 0:
            i, j = i - 1, j - 1
        elif code == 1:
            i -= 1
        else:
            j -= 1
        path.append((i, j))
    pairs = np.asarray(path[::-1], np.int64)  # (L, 2)
    return pairs[:, 0], pairs[:, 1]


# --- pair metrics -------------------------------------------------------------------------------------------


def compare(
    reference: np.ndarray | ClipAnalysis,
    system: np.ndarray | ClipAnalysis,
    sample_rate: int = SAMPLE_RATE,
    *,
    system_sample_rate: int | None = None,
) -> PairMetrics:
    """Reference and system audio (N,), (M,) at `sample_rate` Hz -> PairMetrics (MCD dB, log-F0 RMSE cents, ...).

    One analysis per clip and one DTW alignment (on mel-cepstra) per pair. Either clip may be a ClipAnalysis
    from `analyze` (then `sample_rate` is not used for it), so a reference analysed once can be compared with many
    systems. `system_sample_rate`: the system's rate when it differs from `sample_rate`; the system is then
    resampled to the reference's rate.
    """
    ref = _as_analysis(reference, sample_rate)
    sys_rate = sample_rate if system_sample_rate is None else system_sample_rate
    hyp = _as_analysis(system, sys_rate, target_rate=ref.sample_rate)
    ri, si = dtw_path(ref.mcep, hyp.mcep)  # (L,), (L,)

    mcd = _MCD_SCALE * np.linalg.norm(ref.mcep[ri] - hyp.mcep[si], axis=1)  # (L,) dB per aligned pair
    f0_ref, f0_sys = ref.f0_hz[ri], hyp.f0_hz[si]  # (L,)
    voiced_ref, voiced_sys = f0_ref > 0, f0_sys > 0
    both = voiced_ref & voiced_sys
    if both.any():
        cents = 1200.0 * np.log2(f0_sys[both] / f0_ref[both])
        f0_rmse = float(np.sqrt(np.mean(cents * cents)))
    else:
        f0_rmse = math.nan
    return PairMetrics(
        mcd_db=float(np.mean(mcd)),
        log_f0_rmse_cents=f0_rmse,
        vuv_error=float(np.mean(voiced_ref != voiced_sys)),
        duration_difference_s=round(hyp.duration_s - ref.duration_s, 9),
        aligned_frames=int(ri.shape[0]),
        voiced_pairs=int(both.sum()),
        reference_duration_s=ref.duration_s,
        system_duration_s=hyp.duration_s,
    )


def mel_cepstral_distortion(
    reference: np.ndarray | ClipAnalysis, system: np.ndarray | ClipAnalysis, sample_rate: int = SAMPLE_RATE
) -> float:
    """Reference and system audio at `sample_rate` Hz -> MCD in dB (c1..c34, DTW-aligned, silence trimmed)."""
    return compare(reference, system, sample_rate).mcd_db


def log_f0_rmse(
    reference: np.ndarray | ClipAnalysis, system: np.ndarray | ClipAnalysis, sample_rate: int = SAMPLE_RATE
) -> float:
    """Reference and system audio at `sample_rate` Hz -> RMS log-F0 error in cents over frames voiced in both.

    NaN when no aligned frame pair is voiced in both clips.
    """
    return compare(reference, system, sample_rate).log_f0_rmse_cents


def vuv_error(
    reference: np.ndarray | ClipAnalysis, system: np.ndarray | ClipAnalysis, sample_rate: int = SAMPLE_RATE
) -> float:
    """Reference and system audio at `sample_rate` Hz -> share (0..1) of aligned frames with differing V/UV."""
    return compare(reference, system, sample_rate).vuv_error


def duration_difference(
    reference: np.ndarray | ClipAnalysis, system: np.ndarray | ClipAnalysis, sample_rate: int = SAMPLE_RATE
) -> float:
    """Reference and system audio at `sample_rate` Hz -> system minus reference speech duration in seconds.

    Speech duration runs from the first to the last speech frame (leading and trailing silence trimmed).
    """
    return compare(reference, system, sample_rate).duration_difference_s


# --- prosody ------------------------------------------------------------------------------------------------


def prosody_descriptors(
    audio: np.ndarray | ClipAnalysis, sample_rate: int = SAMPLE_RATE, syllables: int | None = None
) -> Prosody:
    """Mono audio (N,) at `sample_rate` Hz (or a ClipAnalysis) -> Prosody: F0 in semitones re 100 Hz, level in
    dBFS, pauses and durations in seconds, speaking rate in syllables per second.

    `syllables`: how many syllables the clip says (for Mandarin, its number of hanzi); the speaking rate divides
    it by the articulation time (speech duration minus pauses >= 100 ms), so pauses do not lower the rate.
    """
    if syllables is not None and (isinstance(syllables, bool) or not isinstance(syllables, int | np.integer)
                                  or syllables < 0):
        raise ValueError(f"syllables must be a non-negative integer or None, got {syllables!r}")
    clip = _as_analysis(audio, sample_rate)
    voiced = (clip.f0_hz > 0) & clip.speech  # (T,)
    if voiced.any():
        semitones = 12.0 * np.log2(clip.f0_hz[voiced] / F0_REFERENCE_HZ)  # (V,)
        mean_st, std_st = float(np.mean(semitones)), float(np.std(semitones))
        low, high = np.percentile(semitones, [5.0, 95.0])
        range_st = float(high - low)
    else:
        mean_st = std_st = range_st = math.nan
    articulation = round(clip.duration_s - clip.pause_time_s, 9)
    rate = None
    if syllables is not None:
        rate = float(syllables) / articulation if articulation > 0 else math.nan
    speech_frames = int(clip.speech.sum())
    final_level, final_slope = final_contour(clip, voiced, mean_st)
    return Prosody(
        f0_mean_st=mean_st,
        f0_std_st=std_st,
        f0_mean_hz=F0_REFERENCE_HZ * 2.0 ** (mean_st / 12.0),
        f0_range_st=range_st,
        rms_dbfs=float(10.0 * np.log10(max(float(np.mean(clip.power[clip.speech])), _TINY_POWER))),
        speaking_rate=rate,
        pause_time_s=clip.pause_time_s,
        speech_duration_s=clip.duration_s,
        articulation_time_s=articulation,
        voiced_fraction=float(voiced.sum()) / speech_frames,
        final_level_st=final_level,
        final_slope_st=final_slope,
    )


def final_contour(clip: ClipAnalysis, voiced: np.ndarray, mean_st: float,
                  seconds: float = FINAL_CONTOUR_S) -> tuple[float, float]:
    """(level against `mean_st`, rise from its first half to its second) of log-F0 over the voiced frames of the
    last `seconds` before the last voiced frame, semitones; medians, so that a few octave errors or a creaky last
    frame do not decide it. NaN when fewer than 6 frames are voiced there."""
    frames = np.flatnonzero(voiced)
    if not frames.size:
        return math.nan, math.nan
    span = int(round(seconds / FRAME_PERIOD_S))
    last = frames[frames > frames[-1] - span]
    if last.size < 6:
        return math.nan, math.nan
    semitones = 12.0 * np.log2(clip.f0_hz[last] / F0_REFERENCE_HZ)
    half = last.size // 2
    return (float(np.median(semitones) - mean_st),
            float(np.median(semitones[half:]) - np.median(semitones[:half])))


# --- syllable nuclei ----------------------------------------------------------------------------------------


def smoothed_level_db(clip: ClipAnalysis) -> np.ndarray:
    """(T,) frame level in dBFS, smoothed: the frames' mean squares averaged under a 25 ms Hann window.

    The 5 ms frames of `ClipAnalysis.power` ripple with the pitch periods; 25 ms (five frames) removes the ripple
    and keeps the syllable-rate modulation (4-8 Hz) whole.
    """
    return _smoothed_db(clip.power, NUCLEUS_SMOOTHING_S)


def sonorant_level_db(clip: ClipAnalysis) -> np.ndarray:
    """(T,) level below `NUCLEUS_BAND_HZ` (1 kHz) in dBFS, smoothed under a 60 ms Hann window
    (`SONORANT_SMOOTHING_S`): each frame's power times the share of its spectral envelope (the mel-cepstrum, c0
    aside) that lies below 1 kHz.

    Vowels carry most of their energy there, fricatives and bursts little, so a fricative that Harvest happens to
    call voiced (synthetic voices lowered in pitch do this) does not look like a syllable of its own. The longer
    window still passes the syllable-rate modulation (its first zero is at 33 Hz) but fewer of the small bumps
    inside a vowel that come and go when the same text is rendered with another pitch or pause length (Baker
    reading benchmarks/emotion.py's target text, 85 syllables, with a reference's -7 st, wider range and longer
    pauses but its own rate: 14 % more nuclei than its neutral reading over 25 ms, 2 % over 60 ms).
    """
    pysptk = import_optional("pysptk")
    cepstrum = np.concatenate([np.zeros((clip.frames, 1)), clip.mcep], axis=1)  # (T, 35) with c0 = 0
    envelope = pysptk.mc2sp(np.ascontiguousarray(cepstrum), alpha=_mcep_alpha(clip.sample_rate),
                            fftlen=_NUCLEUS_FFT)  # (T, 257) power spectrum, shape only
    low = np.arange(envelope.shape[1]) * clip.sample_rate / _NUCLEUS_FFT <= NUCLEUS_BAND_HZ  # (257,)
    share = envelope[:, low].sum(axis=1) / np.maximum(envelope.sum(axis=1), _TINY_POWER)  # (T,)
    return _smoothed_db(clip.power * share, SONORANT_SMOOTHING_S)


def _smoothed_db(power: np.ndarray, seconds: float) -> np.ndarray:
    """(T,) frame mean squares -> (T,) dB after a Hann window `seconds` long."""
    width = max(1, round(seconds / FRAME_PERIOD_S))
    if width > 1 and power.size > 1:
        window = np.hanning(width + 2)[1:-1]  # (width,) without the zero end points
        padded = np.pad(power, width // 2, mode="edge")
        power = np.convolve(padded, window / window.sum(), mode="valid")[: power.size]
    return 10.0 * np.log10(np.maximum(power, _TINY_POWER))


def nucleus_frames(clip: ClipAnalysis) -> np.ndarray:
    """(S,) int frame indices of the syllable nuclei of `clip`: peaks of the smoothed level in voiced speech.

    Without the text, in the spirit of de Jong & Wempe 2009 ("Praat script to detect syllable nuclei and measure
    speech rate automatically", Behavior Research Methods 41(2)): a nucleus is a local maximum of the smoothed
    level below 1 kHz (`sonorant_level_db`) that is voiced (Harvest and D4C) and speech, and within
    `NUCLEUS_RANGE_DB` (25 dB) of the clip's 99th-percentile level. Two successive peaks count as two syllables
    only when the level between them dips at least `NUCLEUS_MIN_DIP_DB` (2 dB) below both; otherwise they are one
    syllable, kept at the higher peak. On qingyin's nine voices (12 sentences each, one syllable per hanzi;
    benchmarks/voice_profiles.py) the count is 1 % (yunxia) to 14 % (yunxi) below the true syllable count, 2,055
    for 2,214 overall. A change of speaking rate moves it less than it moves the true count (slow speech
    splits vowels, fast speech merges syllables): benchmarks/rate_calibration.py measures by how much, and
    qingyin.style.reference corrects the rate for it.

    Known limits: syllables whose vowels run into each other without an intensity dip (a vowel followed by a
    vowel-initial syllable, sung or very fast speech) count as one; a noisy recording fills the dips.
    """
    level = sonorant_level_db(clip)  # (T,)
    if level.size < 3:
        return np.zeros(0, np.int64)
    voiced = (clip.f0_hz > 0) & clip.speech  # (T,)
    if not voiced.any():
        return np.zeros(0, np.int64)
    threshold = float(np.percentile(level[clip.speech], 99.0)) - NUCLEUS_RANGE_DB
    rising = level[1:-1] > level[:-2]
    not_falling = level[1:-1] >= level[2:]
    peaks = np.flatnonzero(rising & not_falling) + 1  # (P,) local maxima (the first frame of a plateau)
    peaks = peaks[voiced[peaks] & (level[peaks] > threshold)]
    kept: list[int] = []
    for peak in peaks.tolist():
        if kept:
            previous = kept[-1]
            dip = float(level[previous : peak + 1].min())
            if min(level[previous], level[peak]) - dip < NUCLEUS_MIN_DIP_DB:
                if level[peak] > level[previous]:
                    kept[-1] = peak  # one syllable: keep its higher peak
                continue
        kept.append(peak)
    return np.asarray(kept, np.int64)


def syllable_nuclei(clip: ClipAnalysis) -> int:
    """How many syllables `clip` says, estimated from its intensity and voicing (see `nucleus_frames`)."""
    return int(nucleus_frames(clip).size)
