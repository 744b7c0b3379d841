"""Reference prosody: measuring a recording (synthetic signals whose answers are known) and turning it into a preset
relative to a voice. Deterministic; no model is loaded."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from dataclasses import astuple

import numpy as np
import pytest

from qingyin.options import InvalidOptionError
from qingyin.style.presets import NEUTRAL_PRESET, Preset
from qingyin.style.reference import (
    MAX_SECONDS,
    RATE_PIVOT,
    RATE_RESPONSE,
    ReferenceError,
    ReferenceProsody,
    analyze_reference,
    calibrated_rate,
    clipped_share,
    load_audio,
)
from qingyin.style.transfer import (
    LIMITS,
    NoVoiceProfileError,
    VoiceProfile,
    profile_for,
    profiles,
    reference_preset,
)

SR = 16000


# --- synthetic speech-like signals --------------------------------------------------------------------------


def speechlike(f0_hz: float = 180.0, syllable_hz: float = 5.0, phrases: int = 3, syllables: int = 4,
               gap_s: float = 0.2, seed: int = 0, peak: float = 0.5, contrast_db: float = 0.0) -> np.ndarray:
    """(N,) a harmonic complex (F0 drifting +-2 st around `f0_hz`) in `phrases` stretches of `syllables`
    syllable-like swells at `syllable_hz` (20 dB dips between them; every other one `contrast_db` louder than the
    others), the stretches separated by `gap_s` of near silence (pauses), with 0.2 s of it before and after."""
    rng = np.random.default_rng(seed)
    pieces = [np.zeros(int(0.2 * SR))]
    for k in range(phrases):
        n = int(round(syllables / syllable_hz * SR))
        t = np.arange(n) / SR
        f0 = f0_hz * 2.0 ** (2.0 * np.sin(2 * np.pi * 1.3 * t + k) / 12.0)  # (n,) Hz
        phase = 2 * np.pi * np.cumsum(f0) / SR
        wav = np.zeros(n)
        for h in range(1, int(0.45 * SR / f0.max()) + 1):
            wav += np.sin(h * phase) / (1.0 + (h * f0 / 600.0) ** 2)
        envelope = 0.1 + 0.9 * np.sin(np.pi * syllable_hz * t) ** 2  # (n,) a peak per syllable
        envelope *= 10.0 ** (contrast_db / 20.0 * (np.floor(syllable_hz * t) % 2))
        fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
        pieces.append(wav * envelope * fade)
        pieces.append(np.zeros(int((gap_s if k < phrases - 1 else 0.2) * SR)))
    out = np.concatenate(pieces)
    out = peak * out / np.abs(out).max()
    return out + rng.normal(0.0, 1e-4, out.size)  # a recording's noise floor (-80 dB)


@pytest.fixture(scope="module")
def world():
    pytest.importorskip("pyworld")
    pytest.importorskip("pysptk")
    pytest.importorskip("scipy.signal")


@pytest.fixture(scope="module")
def base(world) -> ReferenceProsody:
    return analyze_reference(speechlike(), SR)


# --- descriptors --------------------------------------------------------------------------------------------


def nucleus_rate(prosody: ReferenceProsody) -> float:
    """Syllable nuclei per second of articulation, before the calibration."""
    return prosody.syllable_nuclei / (prosody.duration_s * (1.0 - prosody.pause_ratio))


def test_base_descriptors_are_plausible(base: ReferenceProsody) -> None:
    assert base.f0_mean_st == pytest.approx(12 * math.log2(1.8), abs=0.5)  # 180 Hz
    assert 2.0 < base.f0_range_st < 5.0  # +-2 st drift: about 4 st between the 5th and 95th percentile
    assert nucleus_rate(base) == pytest.approx(5.0, rel=0.05)  # five syllables per second
    assert base.articulation_rate == pytest.approx(calibrated_rate(nucleus_rate(base)))
    assert 0.1 < base.pause_ratio < 0.25  # two 0.2 s pauses in about 2.8 s
    assert base.dynamics_db < 1.0  # every syllable as loud as the others
    assert base.duration_s == pytest.approx(2.8, abs=0.1)
    assert base.warnings == ()


def test_loudness_contrast_is_read_between_syllables(world, base: ReferenceProsody) -> None:
    """Every other syllable 6 dB louder: the nuclei's levels spread by about 3 dB (half of 6, their std), however
    deep the dips between them."""
    contrasted = analyze_reference(speechlike(contrast_db=6.0), SR)
    assert contrasted.dynamics_db == pytest.approx(3.0, abs=0.7)
    assert contrasted.syllable_nuclei == base.syllable_nuclei


def test_higher_f0_gives_higher_mean(world, base: ReferenceProsody) -> None:
    higher = analyze_reference(speechlike(f0_hz=240.0), SR)
    assert higher.f0_mean_st - base.f0_mean_st == pytest.approx(12 * math.log2(240 / 180), abs=0.5)


def test_faster_syllables_give_higher_rate(world) -> None:
    slow = analyze_reference(speechlike(syllable_hz=4.0), SR)
    fast = analyze_reference(speechlike(syllable_hz=6.0), SR)
    assert (slow.syllable_nuclei, fast.syllable_nuclei) == (12, 12)  # three phrases of four swells each
    assert nucleus_rate(slow) == pytest.approx(4.0, rel=0.05)
    assert nucleus_rate(fast) == pytest.approx(6.0, rel=0.05)
    # The synthetic swells never split or merge, so the calibration (fitted on voices, whose counts do)
    # spreads them further apart than they are: 1.5 ** (1 / RATE_RESPONSE).
    assert slow.articulation_rate == pytest.approx(calibrated_rate(nucleus_rate(slow)))
    assert fast.articulation_rate / slow.articulation_rate == pytest.approx(
        (nucleus_rate(fast) / nucleus_rate(slow)) ** (1 / RATE_RESPONSE))


def test_calibrated_rate_inverts_the_measured_power_law() -> None:
    assert calibrated_rate(RATE_PIVOT) == pytest.approx(RATE_PIVOT)
    assert calibrated_rate(0.0) == 0.0
    assert 0.5 < RATE_RESPONSE < 1.0  # the nucleus count moves less than the true one
    for true_ratio in (0.7, 1.4):
        counted = RATE_PIVOT * true_ratio ** RATE_RESPONSE  # what the nucleus count reports (rate_calibration)
        assert calibrated_rate(counted) == pytest.approx(RATE_PIVOT * true_ratio)
    rates = [calibrated_rate(r) for r in (2.0, 4.0, 5.0, 6.0, 9.0)]
    assert rates == sorted(rates)


def test_longer_gaps_give_higher_pause_ratio(world, base: ReferenceProsody) -> None:
    longer = analyze_reference(speechlike(gap_s=0.5), SR)
    assert longer.pause_ratio > base.pause_ratio + 0.1


def test_other_rates_and_integer_stereo_agree(world, base: ReferenceProsody) -> None:
    """A 24 kHz int16 stereo copy measures like the 16 kHz float original (all is analysed at 16 kHz)."""
    signal = pytest.importorskip("scipy.signal")
    wav = signal.resample_poly(speechlike(), 3, 2)  # 24 kHz
    pcm = np.round(np.stack([wav, wav], axis=1) * 32767).astype(np.int16)  # (N, 2)
    other = analyze_reference(pcm, 24000)
    assert other.f0_mean_st == pytest.approx(base.f0_mean_st, abs=0.1)
    assert other.articulation_rate == pytest.approx(base.articulation_rate, rel=0.1)
    assert other.pause_ratio == pytest.approx(base.pause_ratio, abs=0.03)


def test_file_bytes_and_path(world, tmp_path, base: ReferenceProsody) -> None:
    soundfile = pytest.importorskip("soundfile")
    buffer = io.BytesIO()
    soundfile.write(buffer, speechlike(), SR, format="FLAC")
    from_bytes = analyze_reference(buffer.getvalue())
    assert from_bytes.f0_mean_st == pytest.approx(base.f0_mean_st, abs=0.05)
    path = tmp_path / "ref.wav"
    soundfile.write(path, speechlike(), SR, subtype="PCM_16")
    assert analyze_reference(path).articulation_rate == pytest.approx(base.articulation_rate, rel=0.1)


# --- bad input ----------------------------------------------------------------------------------------------


def test_too_short_and_too_long() -> None:
    with pytest.raises(ReferenceError, match=r"0\.50 s long; send 1-60 s"):
        analyze_reference(np.zeros(SR // 2), SR)
    with pytest.raises(ReferenceError, match=r"61\.0 s long"):
        analyze_reference(np.zeros(int((MAX_SECONDS + 1) * SR), np.float32), SR)


def test_silent(world) -> None:
    with pytest.raises(ReferenceError, match="silent"):
        analyze_reference(np.zeros(2 * SR), SR)
    with pytest.raises(ReferenceError, match="silent"):
        analyze_reference(np.full(2 * SR, 0.3), SR)  # DC only


def test_white_noise_has_no_voice(world) -> None:
    noise = np.random.default_rng(1).normal(0.0, 0.1, 2 * SR)
    with pytest.raises(ReferenceError, match="no voice found"):
        analyze_reference(noise, SR)


def test_non_finite_and_bad_arrays() -> None:
    wav = speechlike()
    wav[100] = np.nan
    with pytest.raises(ReferenceError, match="NaN"):
        analyze_reference(wav, SR)
    wav[100] = np.inf
    with pytest.raises(ReferenceError, match="NaN or infinite"):
        analyze_reference(wav, SR)
    with pytest.raises(ReferenceError, match="sample_rate"):
        analyze_reference(speechlike())
    with pytest.raises(ReferenceError, match="sample_rate"):
        analyze_reference(speechlike(), 0)
    with pytest.raises(ReferenceError, match="dtype"):
        analyze_reference(np.array(["a"] * SR * 2), SR)
    with pytest.raises(ReferenceError, match="empty"):
        analyze_reference(np.zeros(0), SR)
    with pytest.raises(ReferenceError, match="mono"):
        analyze_reference(np.zeros((2, 2, SR)), SR)


def test_bad_files(tmp_path) -> None:
    pytest.importorskip("soundfile")
    with pytest.raises(ReferenceError, match="empty"):
        analyze_reference(b"")
    with pytest.raises(ReferenceError, match="wav, flac, ogg"):
        analyze_reference(b"this is not audio at all" * 20)
    with pytest.raises(ReferenceError, match="wav, flac, ogg"):
        analyze_reference(b"RIFF\x24\x00\x00\x00WAVEfmt ")  # a truncated header
    with pytest.raises(ReferenceError, match="no reference recording at"):
        analyze_reference(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ReferenceError, match="empty"):
        analyze_reference(tmp_path / "empty.wav")
    with pytest.raises(ReferenceError, match="file path or the file's bytes"):
        load_audio(1234)  # type: ignore[arg-type]


def test_long_file_refused_before_decoding() -> None:
    soundfile = pytest.importorskip("soundfile")
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(int(70 * 8000), np.int16), 8000, format="WAV", subtype="PCM_16")
    with pytest.raises(ReferenceError, match=r"70\.0 s long"):
        load_audio(buffer.getvalue())


def test_load_audio_mixes_channels_and_scales_integers() -> None:
    soundfile = pytest.importorskip("soundfile")
    left = np.full(SR, 16384, np.int16)
    right = np.zeros(SR, np.int16)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([left, right], axis=1), 22050, format="WAV", subtype="PCM_16")
    wav, rate = load_audio(buffer.getvalue())
    assert rate == 22050 and wav.shape == (SR,) and wav.dtype == np.float64
    assert np.allclose(wav, 0.25)


def test_clipping_is_a_warning(world) -> None:
    clipped = np.clip(speechlike() * 6.0, -0.7, 0.7)
    assert clipped_share(clipped) > 0.01
    assert clipped_share(speechlike()) == 0.0
    result = analyze_reference(clipped, SR)
    assert any("clipped" in w for w in result.warnings)


def test_noise_is_a_warning(world) -> None:
    wav = speechlike()
    noise = np.random.default_rng(2).normal(0.0, 1.0, wav.size)
    noisy = wav + noise * np.sqrt(np.mean(wav**2)) * 10 ** (-12 / 20)  # 12 dB SNR
    result = analyze_reference(noisy, SR)
    assert any("noisy" in w for w in result.warnings)


# --- transfer -----------------------------------------------------------------------------------------------

VOICE = VoiceProfile(f0_mean_st=10.0, f0_range_st=8.0, dynamics_db=6.0, articulation_rate=5.0, pause_ratio=0.1)


def reference(**changes: float) -> ReferenceProsody:
    values = dict(f0_mean_st=12.0, f0_range_st=10.0, dynamics_db=7.5, articulation_rate=5.5, pause_ratio=0.15,
                  duration_s=5.0)
    values.update(changes)
    return ReferenceProsody(**values)


def test_strength_zero_is_neutral() -> None:
    preset, warnings = reference_preset(reference(f0_mean_st=40.0), VOICE, 0.0)
    assert preset == NEUTRAL_PRESET and preset.neutral and warnings == []


def test_strength_one_carries_the_ratios() -> None:
    preset, warnings = reference_preset(reference(), VOICE, 1.0)
    assert warnings == []
    assert preset.level_st == pytest.approx(2.0)
    assert preset.range == pytest.approx(10.0 / 8.0)
    assert preset.rate == pytest.approx(1.1)
    assert preset.dynamics == pytest.approx(1.25)
    assert preset.pause == pytest.approx(1.5)
    assert preset == Preset(level_st=preset.level_st, range=preset.range, rate=preset.rate,
                            dynamics=preset.dynamics, pause=preset.pause)  # nothing else is touched


def test_strength_scales_in_the_log_domain() -> None:
    full, _ = reference_preset(reference(), VOICE, 1.0)
    half, _ = reference_preset(reference(), VOICE, 0.5)
    assert half.level_st == pytest.approx(full.level_st / 2)
    assert half.range == pytest.approx(math.sqrt(full.range))
    assert half.rate == pytest.approx(math.sqrt(full.rate))
    assert full.scaled(0.5).rate == pytest.approx(half.rate)


def test_clamps_warn() -> None:
    preset, warnings = reference_preset(
        reference(f0_mean_st=21.0, f0_range_st=32.0, articulation_rate=10.0, dynamics_db=1.0, pause_ratio=0.9),
        VOICE, 1.0)
    assert preset.level_st == LIMITS["level_st"][1]
    assert preset.range == LIMITS["range"][1]
    assert preset.rate == LIMITS["rate"][1]
    assert preset.dynamics == LIMITS["dynamics"][0]
    assert preset.pause == LIMITS["pause"][1]
    assert len(warnings) == 5
    assert "11.0 st higher than this voice; carried over up to 7 st" in warnings[0]
    low, low_warnings = reference_preset(reference(f0_mean_st=0.0), VOICE, 1.0)
    assert low.level_st == -7.0 and "10.0 st lower" in low_warnings[0] and "up to 7 st" in low_warnings[0]


def test_no_pause_or_unmeasured_values_keep_the_voice() -> None:
    preset, warnings = reference_preset(reference(pause_ratio=0.0), VOICE, 1.0)
    assert preset.pause == 1.0 and warnings == []
    preset, warnings = reference_preset(reference(articulation_rate=0.0, f0_range_st=math.nan), VOICE, 1.0)
    assert preset.rate == 1.0 and preset.range == 1.0 and len(warnings) == 2


@pytest.mark.parametrize("strength", [-0.1, 1.5, math.nan, True, "1"])
def test_bad_strength(strength: object) -> None:
    with pytest.raises(InvalidOptionError, match="strength"):
        reference_preset(reference(), VOICE, strength)  # type: ignore[arg-type]


# --- voice profiles -----------------------------------------------------------------------------------------


def test_every_catalogued_voice_has_a_profile() -> None:
    from qingyin.voices.registry import VOICES

    known = profiles()
    for name, spec in VOICES.items():
        profile = known[spec.model.name][spec.speaker]
        assert 0 < profile.f0_range_st < 30 and 2.0 < profile.articulation_rate < 10.0, name
        assert profile_for(spec.model.name, {spec.speaker: 1.0}) == profile


def test_blend_averages() -> None:
    kokoro = profiles()["kokoro"]
    a, b = kokoro["zf_xiaobei"], kokoro["zm_yunxi"]
    blend = profile_for("kokoro", {"zf_xiaobei": 0.6, "zm_yunxi": 0.4})
    assert blend.f0_mean_st == pytest.approx(0.6 * a.f0_mean_st + 0.4 * b.f0_mean_st)
    assert blend.f0_range_st == pytest.approx(0.6 * a.f0_range_st + 0.4 * b.f0_range_st)
    assert blend.articulation_rate == pytest.approx(a.articulation_rate ** 0.6 * b.articulation_rate ** 0.4)
    scaled = profile_for("kokoro", {"zf_xiaobei": 3, "zm_yunxi": 2})  # weights need not sum to 1
    assert astuple(scaled) == pytest.approx(astuple(blend))


def test_unknown_profiles() -> None:
    with pytest.raises(NoVoiceProfileError, match="model 'nope'"):
        profile_for("nope", {"baker": 1.0})
    with pytest.raises(NoVoiceProfileError, match="speaker 'zf_nobody'"):
        profile_for("kokoro", {"zf_nobody": 1.0})
    with pytest.raises(InvalidOptionError, match="sum to 0"):
        profile_for("kokoro", {"zf_xiaobei": 0.0})
    with pytest.raises(InvalidOptionError, match=">= 0"):
        profile_for("kokoro", {"zf_xiaobei": -1.0})


def test_style_modules_import_without_analysis_packages() -> None:
    code = ("import sys\n"
            "for name in ('pyworld', 'pysptk', 'scipy', 'soundfile'): sys.modules[name] = None\n"
            "import qingyin.style.reference, qingyin.style.transfer\n"
            "try:\n"
            "    qingyin.style.reference.load_audio(b'x')\n"
            "except ImportError as error:\n"
            "    assert \"qingyin[server]\" in str(error), error\n"
            "else:\n"
            "    raise AssertionError('no ImportError')\n")
    subprocess.run([sys.executable, "-c", code], check=True)
