"""The style layer: emotion presets, intensity and mixing (qingyin.style.presets), where syllables, words and pauses
are among a voice's tokens (layout), and how a preset edits a predicted Prosody (shape). No model is loaded here;
tests/test_style_engine.py drives real voices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qingyin.families.base import DURATION, ENERGY, PITCH, TILT, Prosody, Tokens
from qingyin.options import EMOTIONS, InvalidOptionError
from qingyin.style import Style
from qingyin.style.layout import Layout
from qingyin.style.presets import FACTORS, NEUTRAL_PRESET, PRESETS, Preset, blend, emotion_weights, strength
from qingyin.style.shape import apply_style
from qingyin.text.symbols import phone_syllables

# 今天 | 很好 #3 我们 | 走吧 (Baker notation), eos appended as the Baker voice does
PHONES = ["sil", "j", "in1", "#0", "t", "ian1", "#1", "h", "en2", "#0", "h", "ao3", "#3",
          "^", "uo3", "#0", "m", "en5", "#1", "z", "ou3", "#0", "b", "a5", "sil"]
BREAKS = [(i, int(p[1])) for i, p in enumerate(PHONES) if p.startswith("#")]
ALL = frozenset({DURATION, PITCH, ENERGY, TILT})


def tokens() -> Tokens:
    syllables = [*phone_syllables(PHONES), -1]
    return Tokens("今天很好，我们走吧", PHONES, list(range(len(PHONES) + 1)), None, BREAKS, syllables)


def prosody() -> Prosody:
    count = len(PHONES) + 1
    durations = np.linspace(3, 9, count).astype(np.float32)
    rng = np.random.default_rng(0)
    return Prosody(durations, 0.0125, rng.normal(size=count).astype(np.float32),
                   rng.normal(size=count).astype(np.float32))


# --- presets, intensity, mixing ----------------------------------------------------------------------------


def test_every_emotion_has_a_preset_and_only_neutral_is_neutral():
    assert tuple(PRESETS) == EMOTIONS
    assert PRESETS["neutral"].neutral
    assert all(not PRESETS[name].neutral for name in EMOTIONS[1:])


def test_presets_shape_more_than_three_multipliers():
    for name in EMOTIONS[1:]:
        changed = [f for f, v in vars(PRESETS[name]).items() if v != getattr(NEUTRAL_PRESET, f)]
        assert len(changed) > 3, (name, changed)


def test_presets_follow_the_reported_directions():
    p = PRESETS
    assert p["sad"].level_st < 0 < p["happy"].level_st and p["surprise"].level_st > 0
    assert p["sad"].range < 1 < p["happy"].range and p["surprise"].range > 1 and p["angry"].range > 1
    assert p["sad"].rate < 1 < p["angry"].rate and p["fear"].rate > 1 and p["disgust"].rate < 1
    assert p["angry"].level_db > p["happy"].level_db > 0 > p["sad"].level_db
    assert p["angry"].final_slope_st < 0 < p["surprise"].final_slope_st  # high-falling vs rising end
    assert p["sad"].final_range < 1 and p["sad"].final_st < 0  # low and flat
    assert p["sad"].pause > 1 and p["angry"].tilt_db > 0 > p["sad"].tilt_db


def test_presets_stay_below_caricature_at_intensity_two():
    for name in EMOTIONS[1:]:
        strong = blend(name, 2.0)
        assert abs(strong.level_st) <= 5 and abs(strong.level_db) <= 6
        assert 0.5 <= strong.range <= 1.8 and 0.75 <= strong.rate <= 1.25


def test_strength_is_zero_one_and_concave():
    assert strength(0.0) == 0.0 and strength(1.0) == pytest.approx(1.0)
    values = [strength(i / 10) for i in range(21)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False))
    assert strength(2.0) - strength(1.0) < strength(1.0) - strength(0.0)
    assert 1.3 < strength(2.0) < 1.5


@pytest.mark.parametrize("emotion", EMOTIONS[1:])
def test_intensity_zero_is_neutral_and_edits_grow_with_intensity(emotion):
    assert blend(emotion, 0.0) is NEUTRAL_PRESET
    levels = [blend(emotion, i) for i in (0.25, 0.5, 1.0, 1.5, 2.0)]
    for field in vars(NEUTRAL_PRESET):
        distance = [abs(math.log(getattr(p, field))) if field in FACTORS else abs(getattr(p, field)) for p in levels]
        assert distance == sorted(distance), field
    assert blend(emotion, 1.0) == PRESETS[emotion]


def test_a_mix_is_the_weighted_average_at_the_summed_strength():
    mixed = blend({"happy": 0.6, "surprise": 0.3})
    expected = PRESETS["happy"].scaled(2 / 3).plus(PRESETS["surprise"].scaled(1 / 3)).scaled(strength(0.9))
    assert vars(mixed) == pytest.approx(vars(expected))
    assert blend("happy:0.6,surprise:0.3") == mixed
    assert blend({"happy": 1.0}) == PRESETS["happy"]
    diluted = blend({"happy": 0.5, "neutral": 0.5})
    assert 0 < diluted.level_st < PRESETS["happy"].level_st


@pytest.mark.parametrize(("emotion", "words"), [
    ("joy", ["joy", "happy"]),
    ({"happy": -0.1}, ["happy", ">= 0"]),
    ({"happy": float("nan")}, ["happy"]),
    ({"happy": 1.5, "sad": 1.0}, ["2.5", "at most 2"]),
    ("happy:lots", ["lots", "happy:0.6"]),
    (3, ["emotion", "int"]),
    ({1: 0.5}, ["emotion names"]),
])
def test_bad_emotions_name_the_problem(emotion, words):
    with pytest.raises(InvalidOptionError) as error:
        emotion_weights(emotion)
    assert all(w in str(error.value) for w in words)


@pytest.mark.parametrize("intensity", [-0.1, 2.01, float("nan"), float("inf"), "1", True, None])
def test_bad_intensities_are_refused(intensity):
    with pytest.raises(InvalidOptionError, match="intensity must be a number between 0 and 2"):
        blend("happy", intensity)


# --- layout -------------------------------------------------------------------------------------------------


def test_layout_finds_syllables_words_phrase_ends_and_pauses():
    t = tokens()
    layout = Layout.of(t, np.ones(len(t.ids), np.float32))
    owner = layout.syllable
    assert owner.max() == 7 and owner[0] == -1 and owner[-1] == -1  # 8 syllables; sil and eos are nobody's
    assert PHONES[int(np.flatnonzero(layout.pause)[0])] == "#3" and layout.pause.sum() == 1
    assert {int(s) for s in owner[layout.phrase_final]} == {3, 7}  # 好 before #3, 吧 at the end
    assert {int(s) for s in owner[layout.focus]} == {2, 3, 6, 7}  # 很好, 走吧: each phrase's last word
    assert {int(s) for s in owner[layout.last_syllable]} == {7}
    assert layout.position[1] == 0.0 and layout.position[-3] == pytest.approx(1.0)


def test_layout_needs_syllables():
    t = tokens()
    t.syllables = None
    assert Layout.of(t, np.ones(len(t.ids))) is None
    t.syllables = [-1] * len(t.ids)
    assert Layout.of(t, np.ones(len(t.ids))) is None


def test_phone_syllables_joins_initials_finals_erhua_and_word_marks():
    phones = ["sil", "^", "uan2", "er5", "#1", "h", "ao3", "#3", "sil"]
    assert phone_syllables(phones) == [-1, 0, 0, 0, 0, 1, 1, -1, -1]


# --- shape --------------------------------------------------------------------------------------------------


def test_neutral_leaves_the_prosody_untouched():
    p = prosody()
    apply_style(p, tokens(), NEUTRAL_PRESET, ALL)
    assert all(getattr(p, name) is None for name in ("duration_scale", "pitch_scale", "energy_scale", "pitch_shift",
                                                     "pitch_slope", "gain_db", "contrast", "tilt_db"))


@pytest.mark.parametrize("emotion", EMOTIONS[1:])
def test_each_emotion_edits_in_its_direction(emotion):
    preset = PRESETS[emotion]
    p = prosody()
    t = tokens()
    apply_style(p, t, preset, ALL)
    spoken = np.asarray(t.syllables) >= 0
    assert np.sign(np.mean(p.pitch_shift[spoken])) == np.sign(preset.level_st)
    assert np.sign(np.mean(p.gain_db)) == np.sign(preset.level_db)
    assert np.median(p.duration_scale) == pytest.approx(1 / preset.rate)
    assert np.median(p.pitch_scale) == pytest.approx(preset.range)
    assert np.all(p.contrast == np.float32(preset.dynamics)) and p.energy_scale is None
    assert np.all(p.tilt_db == np.float32(preset.tilt_db))


def test_final_contour_pauses_and_focus_land_on_their_tokens():
    t = tokens()
    layout = Layout.of(t, prosody().durations)
    p = prosody()
    apply_style(p, t, Preset(final_st=2.0, pause=2.0, final_lengthening=1.5, focus_db=4.0), ALL)
    final = layout.last_syllable | layout.tail
    assert np.all(p.pitch_shift[final] == 2.0) and np.all(p.pitch_shift[~final] == 0)
    assert np.array_equal(np.flatnonzero(layout.tail), [len(t.ids) - 2, len(t.ids) - 1])  # sil and eos
    assert np.all(p.duration_scale[layout.pause] == 2.0)
    assert np.all(p.duration_scale[layout.phrase_final] == 1.5)
    assert np.all(p.gain_db[layout.focus] == 4.0) and np.all(p.gain_db[~layout.focus] == 0)


def test_the_final_slope_runs_over_the_last_syllable_and_the_tail_without_a_step():
    t = tokens()
    base = prosody()
    layout = Layout.of(t, base.durations)
    p = prosody()
    apply_style(p, t, Preset(final_slope_st=3.0), ALL)
    span = np.flatnonzero(layout.last_syllable | layout.tail)
    assert span[-1] == len(t.ids) - 1 and np.all(np.diff(span) == 1)
    assert p.pitch_slope.sum() == pytest.approx(3.0) and not p.pitch_slope[:span[0]].any()
    np.testing.assert_allclose(p.pitch_slope[span] / 3.0, base.durations[span] / base.durations[span].sum(), rtol=1e-5)
    starts, ends = p.pitch_shift[span], p.pitch_shift[span] + p.pitch_slope[span]
    np.testing.assert_allclose(starts[1:], ends[:-1], atol=1e-6)  # each token starts where the one before ended
    assert starts[0] == 0 and ends[-1] == pytest.approx(3.0)


def test_declination_tilts_the_register_around_the_middle():
    t = tokens()
    p = prosody()
    apply_style(p, t, Preset(declination_st=-2.0), ALL)
    spoken = np.flatnonzero(np.asarray(t.syllables) >= 0)
    assert p.pitch_shift[spoken[0]] == pytest.approx(1.0) and p.pitch_shift[spoken[-1]] == pytest.approx(-1.0)


def test_tilt_only_where_the_family_allows_it():
    p = prosody()
    apply_style(p, tokens(), PRESETS["angry"], frozenset({DURATION, PITCH, ENERGY}))
    assert p.tilt_db is None and p.gain_db is not None


def test_edits_compose_with_the_request_scales():
    p = prosody()
    count = len(p.durations)
    p.duration_scale = np.full(count, 0.5, np.float32)
    p.pitch_scale = np.full(count, 2.0, np.float32)
    apply_style(p, tokens(), Preset(rate=2.0, range=1.5), ALL)
    assert np.allclose(p.duration_scale, 0.25) and np.allclose(p.pitch_scale, 3.0)


def test_ssml_spans_give_each_token_its_own_preset():
    from qingyin.text.markup import Controls

    t = tokens()
    half = len(t.ids) // 2
    t.controls = [Controls(emotion="sad", intensity=2.0)] * half + [Controls()] * (len(t.ids) - half)
    p = prosody()
    Style("happy", 1.0).apply(p, t, ALL)
    assert p.gain_db[1] == pytest.approx(blend("sad", 2.0).level_db)
    assert p.gain_db[-3] == pytest.approx(PRESETS["happy"].level_db + PRESETS["happy"].focus_db)  # 吧: focus
    assert p.gain_db[-2] == pytest.approx(PRESETS["happy"].level_db)  # the closing sil


def test_apply_refuses_a_preset_list_of_the_wrong_length():
    with pytest.raises(ValueError, match="presets for"):
        apply_style(prosody(), tokens(), [NEUTRAL_PRESET], ALL)


def test_loudness_edits_bend_peaks_instead_of_clipping():
    from qingyin.style.gain import KNEE, soft_limit

    audio = np.linspace(-2.0, 2.0, 4001, dtype=np.float32)
    limited = soft_limit(audio)
    assert np.all(np.abs(limited) <= 1.0) and np.all(np.diff(limited) >= 0)  # inside full scale, still monotonic
    assert limited[np.searchsorted(audio, 0.9)] < 0.9  # bent above the knee
    quiet = np.abs(audio) <= KNEE
    assert np.array_equal(limited[quiet], audio[quiet])


def test_contrast_scales_level_differences_around_the_mean_of_the_spoken_tokens():
    from qingyin.style.gain import MAX_CONTRAST_BOOST_DB, MAX_CONTRAST_DB, contrast_gain_db

    level = np.array([-60.0, 2.5, -2.0, 1.0, -3.0, -80.0])
    frames = np.array([5, 2, 2, 4, 2, 5])
    spoken = np.array([False, True, True, True, True, False])
    gain = contrast_gain_db(level, frames, np.full(6, 2.0), spoken)
    assert gain[0] == 0 and gain[-1] == 0  # pauses keep their level
    mean = np.average(level[spoken], weights=frames[spoken])
    assert np.allclose(gain[spoken], level[spoken] - mean)  # x2: each distance from the mean doubled
    assert np.average(gain[spoken], weights=frames[spoken]) == pytest.approx(0, abs=1e-5)  # the mean level stays
    assert np.allclose(contrast_gain_db(level, frames, np.full(6, 0.5), spoken)[spoken], -(level[spoken] - mean) / 2)
    assert not contrast_gain_db(level, frames, np.ones(6), spoken).any()
    huge = contrast_gain_db(np.array([0.0, 20.0, -20.0]), np.ones(3), np.full(3, 4.0))
    assert huge.min() == -MAX_CONTRAST_DB and huge.max() == MAX_CONTRAST_BOOST_DB  # raising is capped lower


def test_contrast_leaves_tokens_it_cannot_judge():
    from qingyin.style.gain import SPEECH_RANGE_DB, contrast_gain_db

    level = np.array([0.0, np.nan, 2.0, -SPEECH_RANGE_DB - 5, -2.0])
    frames = np.array([3, 3, 0, 3, 3])  # the third token has no frames
    gain = contrast_gain_db(level, frames, np.full(5, 2.0))
    assert gain[1] == 0 and gain[2] == 0 and gain[3] == 0  # no level, no frames, far below the rest
    assert gain[0] == pytest.approx(1.0) and gain[4] == pytest.approx(-1.0)
    assert not contrast_gain_db(np.full(3, np.nan), np.ones(3), np.full(3, 2.0)).any()


def test_loudness_edits_add_the_contrast_to_the_gain():
    from qingyin.families.base import Acoustics
    from qingyin.style.gain import loudness_edits_db

    t = tokens()
    count = len(t.ids)
    p = prosody()
    acoustics = Acoustics(np.full(count, 4), np.zeros(count), np.zeros(count), 0.0125,
                          level_db=np.linspace(-6, 6, count).astype(np.float32))
    assert loudness_edits_db(p, acoustics, t) is None
    p.gain_db = np.full(count, -3.0, np.float32)
    assert loudness_edits_db(p, acoustics, t) is p.gain_db  # no contrast asked for
    p.contrast = np.full(count, 1.5, np.float32)
    edits = loudness_edits_db(p, acoustics, t)
    spoken = np.asarray(t.syllables) >= 0
    assert np.all(np.diff(edits[spoken]) > 0) and np.all(edits[~spoken] == -3.0)
    acoustics.level_db = None  # a family that estimates no levels: the contrast is not rendered
    assert loudness_edits_db(p, acoustics, t) is p.gain_db


def test_kokoro_token_levels_average_each_tokens_energy_values():
    from qingyin.families.kokoro.voice import LEVEL_DB_PER_ENERGY, token_levels_db

    energy = np.array([1, 1, 2, 4, 3, 3, 3, 3], np.float32)  # two values per frame
    levels = token_levels_db(energy, np.array([1, 1, 0, 2]))
    assert np.allclose(levels[[0, 1, 3]], LEVEL_DB_PER_ENERGY * np.array([1.0, 3.0, 3.0]))
    assert np.isnan(levels[2])


def test_baker_pitch_ceiling_compresses_only_above_the_knee_and_stays_monotonic():
    from qingyin.families.fs2_mbmelgan.voice import Z_KNEE, Z_ROOM, pitch_ceiling

    z = np.linspace(-4.0, 12.0, 400, dtype=np.float32)
    limited = pitch_ceiling(z)
    below = z <= Z_KNEE
    np.testing.assert_array_equal(limited[below], z[below])
    assert np.all(np.diff(limited) > 0) and limited.max() < Z_KNEE + Z_ROOM
    assert pitch_ceiling(np.float32([Z_KNEE + 0.01]))[0] == pytest.approx(Z_KNEE + 0.01, abs=1e-4)  # no kink
