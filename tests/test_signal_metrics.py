"""Signal-level metrics on synthetic signals whose answers are known (no network, no model, deterministic)."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pyworld")
pytest.importorskip("pysptk")
signal = pytest.importorskip("scipy.signal")

from qingyin.evaluate.signal_metrics import (  # noqa: E402
    FRAME_PERIOD_S,
    ClipAnalysis,
    analyze,
    compare,
    dtw_path,
    duration_difference,
    log_f0_rmse,
    mel_cepstral_distortion,
    prosody_descriptors,
    smoothed_level_db,
    sonorant_level_db,
    syllable_nuclei,
    vuv_error,
)

SR = 24000


# --- synthetic signals --------------------------------------------------------------------------------------


def _ramp(wav: np.ndarray, ramp_s: float = 0.01) -> np.ndarray:
    """(N,) -> (N,) with raised-cosine fade-in and fade-out, so that edges do not click."""
    n = min(int(ramp_s * SR), wav.size // 2)
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    out = wav.copy()
    out[:n] *= fade
    out[wav.size - n:] *= fade[::-1]
    return out


def harmonic_tone(f0_hz: float | np.ndarray, duration_s: float, peak: float = 0.5) -> np.ndarray:
    """F0 in Hz (scalar, or per-sample contour) -> (N,) harmonic complex with a smooth, F0-independent envelope.

    Harmonic k has amplitude 1 / (1 + (k*F0 / 600 Hz)^2): the same low-pass envelope whatever the F0.
    """
    n = int(round(duration_s * SR))
    f0 = np.broadcast_to(np.asarray(f0_hz, np.float64), (n,))  # (N,) Hz
    phase = 2 * np.pi * np.cumsum(f0) / SR  # (N,) radians
    harmonics = int(0.45 * SR / f0.max())
    wav = np.zeros(n)
    for k in range(1, harmonics + 1):
        wav += np.sin(k * phase) / (1.0 + (k * f0 / 600.0) ** 2)
    wav = _ramp(wav)
    return peak * wav / np.abs(wav).max()


def pad(wav: np.ndarray, before_s: float = 0.2, after_s: float = 0.2) -> np.ndarray:
    return np.concatenate([np.zeros(int(before_s * SR)), wav, np.zeros(int(after_s * SR))])


VOWELS = {  # formant frequencies F1, F2, F3 in Hz
    "a": (800.0, 1250.0, 2600.0),
    "i": (300.0, 2300.0, 3000.0),
    "u": (350.0, 800.0, 2300.0),
    "e": (500.0, 1800.0, 2600.0),
    "o": (550.0, 950.0, 2500.0),
}

# (vowel, vowel duration s, F0 start Hz, F0 end Hz, fricative onset, pause after s): six Mandarin-like syllables
UTTERANCE = [
    ("a", 0.16, 220.0, 220.0, False, 0.0),  # tone 1
    ("i", 0.14, 180.0, 240.0, True, 0.0),  # tone 2
    ("u", 0.17, 200.0, 160.0, False, 0.2),  # tone 4, then a pause
    ("e", 0.15, 210.0, 230.0, True, 0.0),
    ("o", 0.15, 240.0, 180.0, False, 0.0),
    ("a", 0.19, 190.0, 170.0, True, 0.0),
]


def _resonators(source: np.ndarray, formants: tuple[float, ...]) -> np.ndarray:
    """(N,) -> (N,) through a cascade of two-pole resonators (bandwidths 80, 100, 120 Hz)."""
    out = source
    for freq, bandwidth in zip(formants, (80.0, 100.0, 120.0), strict=True):
        radius = math.exp(-math.pi * bandwidth / SR)
        a = [1.0, -2 * radius * math.cos(2 * math.pi * freq / SR), radius * radius]
        out = signal.lfilter([sum(a)], a, out)
    return out


def speechlike(f0_scale: float = 1.0, tempo: float = 1.0, peak: float = 0.5, vowels: str | None = None) -> np.ndarray:
    """A six-syllable "utterance": harmonic source through vowel formants, noise-burst initials, one pause.

    f0_scale multiplies every F0; tempo multiplies every duration (1.25 = 25% slower); vowels replaces the vowel
    sequence. Peak-normalised to `peak`, with 0.15 s silence at both ends, plus white noise 70 dB below the peak
    -> (N,) float64 at 24 kHz.

    The noise floor is what any recording or vocoder output has. Without it the band above the last harmonic
    (10.8 kHz) and the pauses hold no energy at all (-125 dB), and log-spectral distances between such a signal
    and anything else are dominated by those empty regions.
    """
    parts = [np.zeros(int(0.15 * SR))]
    for index, (_, dur, f_start, f_end, fricative, pause) in enumerate(UTTERANCE):
        if fricative:
            noise = np.random.default_rng(index).standard_normal(int(0.07 * tempo * SR))
            sos = signal.butter(4, [3000.0, 6000.0], btype="bandpass", fs=SR, output="sos")
            parts.append(_ramp(0.05 * signal.sosfilt(sos, noise), 0.005))
        n = int(dur * tempo * SR)
        f0 = f0_scale * f_start * (f_end / f_start) ** np.linspace(0.0, 1.0, n)  # (n,) glide linear in semitones
        phase = 2 * np.pi * np.cumsum(f0) / SR
        source = sum(np.sin(k * phase) / k for k in range(1, int(0.45 * SR / f0.max()) + 1))
        voiced = _resonators(source, VOWELS[(vowels or "".join(u[0] for u in UTTERANCE))[index]])
        parts.append(_ramp(voiced / np.sqrt(np.mean(voiced**2)) * 0.2, 0.015))
        if pause:
            parts.append(np.zeros(int(pause * tempo * SR)))
    parts.append(np.zeros(int(0.15 * SR)))
    wav = np.concatenate(parts)
    floor = 10 ** (-70 / 20) * np.random.default_rng(1234).standard_normal(wav.size)
    return peak * (wav / np.abs(wav).max() + floor)


@pytest.fixture(scope="module")
def utterance() -> np.ndarray:
    return speechlike()


@pytest.fixture(scope="module")
def utterance_analysis(utterance) -> ClipAnalysis:
    return analyze(utterance, SR)


# --- known answers ------------------------------------------------------------------------------------------


def test_identical_clips_score_zero(utterance, utterance_analysis):
    metrics = compare(utterance_analysis, utterance_analysis)
    assert metrics.mcd_db == 0.0
    assert metrics.log_f0_rmse_cents == 0.0
    assert metrics.vuv_error == 0.0
    assert metrics.duration_difference_s == 0.0
    assert metrics.aligned_frames == utterance_analysis.frames  # the diagonal
    assert metrics.voiced_pairs > 0.5 * metrics.aligned_frames
    assert mel_cepstral_distortion(utterance_analysis, utterance_analysis) == 0.0
    assert log_f0_rmse(utterance_analysis, utterance_analysis) == 0.0
    assert vuv_error(utterance_analysis, utterance_analysis) == 0.0
    assert duration_difference(utterance_analysis, utterance_analysis) == 0.0
    # from arrays, a float32 copy of the clip (float32 rounding is ~150 dB down, far below the -70 dB floor)
    from_arrays = compare(utterance_analysis, utterance.astype(np.float32), SR)
    assert from_arrays.mcd_db == pytest.approx(0.0, abs=1e-3)
    assert from_arrays.log_f0_rmse_cents == pytest.approx(0.0, abs=0.01)
    assert from_arrays.vuv_error == 0.0 and from_arrays.duration_difference_s == 0.0


def test_octave_apart_is_1200_cents():
    low, high = analyze(pad(harmonic_tone(200.0, 1.0)), SR), analyze(pad(harmonic_tone(400.0, 1.0)), SR)
    metrics = compare(low, high)
    assert metrics.log_f0_rmse_cents == pytest.approx(1200.0, rel=0.02)
    assert metrics.vuv_error < 0.05
    assert abs(metrics.duration_difference_s) <= 0.01
    assert compare(high, low).log_f0_rmse_cents == pytest.approx(1200.0, rel=0.02)


def test_prosody_of_steady_220_hz_tone():
    prosody = prosody_descriptors(pad(harmonic_tone(220.0, 1.0)), SR)
    assert prosody.f0_mean_hz == pytest.approx(220.0, rel=0.005)
    assert prosody.f0_mean_st == pytest.approx(12 * math.log2(2.2), abs=0.1)
    assert prosody.f0_range_st < 0.1
    assert prosody.f0_std_st < 0.1
    assert prosody.voiced_fraction > 0.95
    assert prosody.pause_time_s == 0.0
    assert prosody.speech_duration_s == pytest.approx(1.0, abs=0.01)
    assert prosody.speaking_rate is None


def test_glide_from_150_to_300_hz_spans_12_semitones():
    # 0.3 s at 150 Hz, a 0.6 s glide linear in semitones, 0.3 s at 300 Hz: 5th and 95th percentiles on the plateaus
    contour = np.concatenate([np.full(int(0.3 * SR), 150.0), 150.0 * 2.0 ** np.linspace(0, 1, int(0.6 * SR)),
                              np.full(int(0.3 * SR), 300.0)])
    prosody = prosody_descriptors(pad(harmonic_tone(contour, contour.size / SR)), SR)
    assert prosody.f0_range_st == pytest.approx(12.0, abs=0.3)
    assert prosody.f0_mean_st == pytest.approx(12 * math.log2(1.5) + 6.0, abs=0.3)  # mean of 150 Hz .. 300 Hz in st


def test_two_300_ms_pauses_add_up_to_600_ms():
    tone = harmonic_tone(180.0, 0.4)
    gap = np.zeros(int(0.3 * SR))
    clip = pad(np.concatenate([tone, gap, tone, gap, tone]), 0.3, 0.5)  # edge silences are not pauses
    prosody = prosody_descriptors(clip, SR, syllables=3)
    assert prosody.pause_time_s == pytest.approx(0.6, abs=0.02)
    assert prosody.speech_duration_s == pytest.approx(1.8, abs=0.02)
    assert prosody.articulation_time_s == pytest.approx(1.2, abs=0.02)
    assert prosody.speaking_rate == pytest.approx(3 / 1.2, rel=0.03)
    # a 50 ms gap is a break inside speech, not a pause
    short = pad(np.concatenate([tone, np.zeros(int(0.05 * SR)), tone]))
    assert prosody_descriptors(short, SR).pause_time_s == 0.0


def test_full_scale_sine_is_minus_3_dbfs():
    t = np.arange(SR // 2) / SR
    sine = np.sin(2 * np.pi * 220.0 * t)  # 0.5 s
    prosody = prosody_descriptors(pad(sine), SR)
    # over speech frames only: the padding is excluded, but the two 5 ms frames that straddle the abrupt onset and
    # offset are half silence (-0.04 dB on 0.5 s)
    assert prosody.rms_dbfs == pytest.approx(-3.01, abs=0.1)
    assert prosody_descriptors(pad(0.5 * sine), SR).rms_dbfs == pytest.approx(-3.01 - 6.02, abs=0.1)
    assert prosody_descriptors((32767 * sine).astype(np.int16), SR).rms_dbfs == pytest.approx(-3.01, abs=0.05)


def test_stretched_tone_lasts_half_a_second_longer():
    short = analyze(pad(harmonic_tone(200.0, 1.0)), SR)
    long = analyze(pad(harmonic_tone(200.0, 1.5), 0.1, 0.4), SR)  # different padding: trimmed away
    metrics = compare(short, long)
    assert metrics.duration_difference_s == pytest.approx(0.5, abs=0.01)
    assert metrics.reference_duration_s == pytest.approx(1.0, abs=0.01)
    assert metrics.log_f0_rmse_cents < 10.0  # Harvest wavers by a few cents at onsets and offsets
    assert duration_difference(long, short) == pytest.approx(-0.5, abs=0.01)


def test_mcd_grows_with_noise(utterance, utterance_analysis):
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(utterance.size)
    speech_power = np.mean(utterance[np.abs(utterance) > 0] ** 2)

    def noisy(snr_db: float) -> np.ndarray:
        return utterance + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))

    mcd_40 = compare(utterance_analysis, noisy(40.0)).mcd_db
    mcd_10 = compare(utterance_analysis, noisy(10.0)).mcd_db
    assert 0.0 < mcd_40 < mcd_10
    assert mcd_10 > 1.5 * mcd_40 and mcd_10 - mcd_40 > 5.0


def test_mcd_is_non_negative_and_roughly_symmetric(utterance_analysis):
    other = analyze(speechlike(f0_scale=1.1, tempo=1.1, vowels="oeaiua"), SR)
    forward = compare(utterance_analysis, other)
    backward = compare(other, utterance_analysis)
    assert forward.mcd_db > 1.0 and backward.mcd_db > 1.0
    assert forward.mcd_db == pytest.approx(backward.mcd_db, rel=0.05)
    assert forward.duration_difference_s == pytest.approx(-backward.duration_difference_s, abs=1e-12)


# --- controls on a speech-like utterance ----------------------------------------------------------------------


def test_speechlike_controls_are_measured(utterance, utterance_analysis):
    base = prosody_descriptors(utterance_analysis, syllables=6)
    assert base.pause_time_s == pytest.approx(0.2, abs=0.02)
    assert 0.5 < base.voiced_fraction < 1.0
    assert 150.0 < base.f0_mean_hz < 250.0

    # pitch +2 semitones: log-F0 moves by 2 st everywhere, timing and loudness do not change
    higher = analyze(speechlike(f0_scale=2 ** (2 / 12)), SR)
    assert prosody_descriptors(higher).f0_mean_st - base.f0_mean_st == pytest.approx(2.0, abs=0.1)
    pitch = compare(utterance_analysis, higher)
    assert pitch.log_f0_rmse_cents == pytest.approx(200.0, rel=0.1)
    assert abs(pitch.duration_difference_s) <= 0.01

    # 25% slower: speaking rate x 0.8, every duration (pause included) x 1.25
    slower_analysis = analyze(speechlike(tempo=1.25), SR)
    slower = prosody_descriptors(slower_analysis, syllables=6)
    assert slower.speaking_rate / base.speaking_rate == pytest.approx(0.8, rel=0.03)
    assert slower.pause_time_s == pytest.approx(1.25 * base.pause_time_s, abs=0.02)
    stretch = compare(utterance_analysis, slower_analysis)
    assert stretch.duration_difference_s == pytest.approx(0.25 * base.speech_duration_s, abs=0.03)
    assert stretch.log_f0_rmse_cents < 30.0

    # 6 dB quieter: RMS -6.02 dB; only c0 changes, and c0 is not compared, so MCD stays 0
    quieter = analyze(0.5 * utterance, SR)
    assert prosody_descriptors(quieter).rms_dbfs - base.rms_dbfs == pytest.approx(-6.02, abs=0.01)
    assert compare(utterance_analysis, quieter).mcd_db < 0.01

    # other vowels in the same rhythm are far in MCD; the slowed copy (same vowels) is near
    others = compare(utterance_analysis, speechlike(vowels="iuaoie"), SR)
    assert others.mcd_db > 2 * stretch.mcd_db


def test_system_at_another_rate_is_resampled(utterance, utterance_analysis):
    at_16k = signal.resample_poly(utterance, 2, 3)
    metrics = compare(utterance_analysis, at_16k, SR, system_sample_rate=16000)
    assert metrics.log_f0_rmse_cents < 10.0
    assert abs(metrics.duration_difference_s) <= 0.01
    with pytest.raises(ValueError, match="one rate"):
        compare(utterance_analysis, analyze(at_16k[: 16000 // 2], 16000))


# --- syllable nuclei ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tempo", [0.8, 1.0, 1.25])
def test_six_syllables_counted_at_any_tempo(tempo):
    assert syllable_nuclei(analyze(speechlike(tempo=tempo), SR)) == 6


def test_sonorant_level_keeps_vowels_and_drops_fricatives(utterance_analysis):
    clip = utterance_analysis
    seconds = clip.start_s + np.arange(clip.frames) * FRAME_PERIOD_S  # (T,) into the utterance
    sonorant, whole = sonorant_level_db(clip), smoothed_level_db(clip)  # (T,) dB each
    vowel = (seconds > 0.21) & (seconds < 0.25)  # the middle of the first "a" (F1 800 Hz)
    fricative = (seconds > 0.335) & (seconds < 0.355)  # the middle of the 3-6 kHz noise before "i"
    assert np.all(np.abs(sonorant[vowel] - whole[vowel]) < 3.0)
    contrast = np.mean(sonorant[vowel]) - np.mean(sonorant[fricative])
    assert contrast > np.mean(whole[vowel]) - np.mean(whole[fricative]) + 20.0


# --- DTW ----------------------------------------------------------------------------------------------------


def _dtw_cost_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Plain O(N*M) Python DTW with the same step pattern -> minimal summed distance."""
    n, m = len(x), len(y)
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d = np.linalg.norm(x[i - 1] - y[j - 1])
            acc[i, j] = d + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    return float(acc[n, m])


@pytest.mark.parametrize("seed", range(5))
def test_dtw_path_is_optimal_and_monotone(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((rng.integers(1, 30), 3)), rng.standard_normal((rng.integers(1, 30), 3))
    ix, iy = dtw_path(x, y)
    assert (ix[0], iy[0]) == (0, 0) and (ix[-1], iy[-1]) == (len(x) - 1, len(y) - 1)
    steps = np.stack([np.diff(ix), np.diff(iy)], axis=1)
    assert np.all((steps >= 0) & (steps <= 1)) and np.all(steps.sum(axis=1) >= 1)
    cost = float(np.linalg.norm(x[ix] - y[iy], axis=1).sum())
    assert cost == pytest.approx(_dtw_cost_reference(x, y), rel=1e-9)


def test_dtw_path_on_a_known_warp():
    x = np.array([[0.0], [1.0], [2.0]])
    y = np.array([[0.0], [0.0], [1.0], [1.0], [2.0]])
    ix, iy = dtw_path(x, y)
    assert ix.tolist() == [0, 0, 1, 1, 2] and iy.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        dtw_path(np.zeros((0, 2)), np.zeros((3, 2)))


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(0, np.float32), "empty"),
        (np.array([0.1, np.nan, 0.2] * 1000, np.float32), "non-finite"),
        (np.array([0.1, np.inf, 0.2] * 1000), "non-finite"),
        (np.zeros((2, 4800), np.float32), "mono"),
        (np.zeros((4800, 2), np.float32), "mono"),
        (np.zeros((2, 2, 1200), np.float32), "mono"),
        (np.zeros(4800, np.float32), "silent"),
        (np.full(4800, 1 + 1j), "dtype"),
    ],
)
def test_bad_input_raises_value_error(audio, message):
    with pytest.raises(ValueError, match=message):
        analyze(audio, SR)


def test_bad_arguments_raise_value_error(utterance):
    clip = utterance[: SR // 2]
    for rate in (0, -24000, 22050.5, "24000", None):
        with pytest.raises(ValueError, match="sample_rate"):
            mel_cepstral_distortion(clip, clip, rate)
    with pytest.raises(ValueError, match="non-finite"):
        log_f0_rmse(clip, np.full_like(clip, np.nan), SR)
    with pytest.raises(ValueError, match="syllables"):
        prosody_descriptors(clip, SR, syllables=-1)
    # a mono clip given as (N, 1) is fine
    assert analyze(clip[:, None], SR).frames == analyze(clip, SR).frames


@pytest.mark.parametrize(("end_hz", "sign"), [(300.0, 1), (150.0, -1)])
def test_final_contour_rises_or_falls_with_the_last_200_ms(end_hz, sign):
    n = int(round(0.8 * SR))
    contour = np.full(n, 200.0)
    tail = int(round(0.2 * SR))
    contour[-tail:] = np.geomspace(200.0, end_hz, tail)  # the last 200 ms glide 7 semitones up or 5.8 down
    p = prosody_descriptors(pad(harmonic_tone(contour, 0.8)), SR)
    expected = 12 * np.log2(end_hz / 200.0)
    assert np.sign(p.final_slope_st) == sign and abs(p.final_slope_st - expected / 2) < 1.0  # half-medians: half of it
    assert np.sign(p.final_level_st) == sign

