"""The FastSpeech2 acoustic model as a module: shapes, config, controls, masking, limits, positions.

Most tests use a tiny random-init model (deterministic through torch.manual_seed, always in eval mode);
the tests marked "Baker" use the converted voice's real weights through the session `backend` fixture.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from qingyin.families.fs2_mbmelgan.features import frame_states
from qingyin.families.fs2_mbmelgan.features import ramp_weights as numpy_ramp_weights
from qingyin.families.fs2_mbmelgan.model.config import config_from_dict, config_to_dict
from qingyin.families.fs2_mbmelgan.model.fastspeech2 import (
    AcousticOutput,
    FastSpeech2,
    FastSpeech2Config,
    SequenceTooLongError,
    TransformerConfig,
    VariancePredictorConfig,
    ramp_weights,
    sinusoid_table,
)

SMALL = FastSpeech2Config(
    num_symbols=20,
    num_mels=16,
    max_positions=128,
    encoder=TransformerConfig(hidden=32, layers=1, ffn_channels=64),
    decoder=TransformerConfig(hidden=32, layers=1, ffn_channels=64),
    variance=VariancePredictorConfig(channels=32),
    postnet_layers=3,
    postnet_channels=32,
)


def small_model(config: FastSpeech2Config = SMALL, seed: int = 0) -> FastSpeech2:
    """A random-init model whose duration predictor is biased to ~3 frames per symbol (not ~0)."""
    torch.manual_seed(seed)
    model = FastSpeech2(config).eval()
    with torch.no_grad():
        model.duration_predictor.output.bias.fill_(math.log(4.0))
    return model


def random_symbols(batch: int, steps: int, seed: int = 1, high: int = SMALL.num_symbols) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, high, (batch, steps), generator=generator)


def expected_durations(log_durations: torch.Tensor, scale) -> torch.Tensor:
    return torch.round(torch.relu(torch.exp(log_durations) - 1.0) * scale).long()


@pytest.fixture(scope="module")
def model() -> FastSpeech2:
    return small_model()


# --- outputs ---------------------------------------------------------------------------------------------
@torch.no_grad()
def test_output_shapes_and_types(model: FastSpeech2):
    out = model(random_symbols(2, 7))
    assert isinstance(out, AcousticOutput)
    frames = int(out.mel_lengths.max())
    assert frames > 0
    assert out.mel_before.shape == out.mel.shape == (2, frames, SMALL.num_mels)
    assert out.mel.dtype == out.mel_before.dtype == torch.float32
    assert out.mel_lengths.shape == (2,) and out.mel_lengths.dtype == torch.long
    for per_symbol in (out.log_durations, out.durations, out.pitch, out.energy):
        assert per_symbol.shape == (2, 7)
    assert out.durations.dtype == torch.long and bool((out.durations >= 0).all())
    assert out.log_durations.dtype == out.pitch.dtype == out.energy.dtype == torch.float32
    assert torch.equal(out.mel_lengths, out.durations.sum(dim=1))
    assert torch.isfinite(out.mel).all() and torch.isfinite(out.mel_before).all()


@torch.no_grad()
def test_wider_decoder_than_encoder_goes_through_decoder_projection(model: FastSpeech2):
    config = replace(SMALL, decoder=TransformerConfig(hidden=48, layers=1, ffn_channels=64))
    wide = small_model(config)
    assert isinstance(wide.decoder_projection, nn.Linear)
    assert (wide.decoder_projection.in_features, wide.decoder_projection.out_features) == (32, 48)
    assert isinstance(model.decoder_projection, nn.Identity)  # same width: nothing to project
    durations = torch.tensor([[2, 1, 3, 0, 2]])
    out = wide(random_symbols(1, 5), durations=durations)
    assert out.mel.shape == (1, 8, SMALL.num_mels)
    assert torch.isfinite(out.mel).all()


# --- config ----------------------------------------------------------------------------------------------
def test_config_round_trips_through_json_with_nested_dataclasses():
    config = FastSpeech2Config(
        num_symbols=50, num_speakers=3, num_emotions=7, max_positions=256,
        encoder=TransformerConfig(hidden=64, layers=2, heads=4, head_size=8),
        decoder=TransformerConfig(hidden=96, layers=1, ffn_kernel_size=5),
        variance=VariancePredictorConfig(channels=48, kernel_size=5, layers=3),
        postnet_layers=4, layer_norm_eps=1e-6,
    )
    values = json.loads(json.dumps(config_to_dict(config)))
    assert values["decoder"]["hidden"] == 96 and values["variance"]["layers"] == 3
    back = config_from_dict(FastSpeech2Config, values)
    assert back == config
    assert isinstance(back.encoder, TransformerConfig) and isinstance(back.variance, VariancePredictorConfig)
    # A partial dict keeps the defaults for everything it leaves out, nested ones included.
    partial = config_from_dict(FastSpeech2Config, {"encoder": {"layers": 1}})
    assert partial.encoder == TransformerConfig(layers=1) and partial.decoder == TransformerConfig()


@pytest.mark.parametrize(
    ("values", "bad_key"),
    [
        ({"num_symbol": 3}, "num_symbol"),
        ({"encoder": {"hiden": 3}}, "hiden"),
        ({"decoder": {"layers": 1, "head": 2}}, "head"),
        ({"variance": {"chanels": 3}}, "chanels"),
    ],
)
def test_config_rejects_unknown_keys_by_name(values: dict, bad_key: str):
    with pytest.raises(ValueError, match=bad_key):
        config_from_dict(FastSpeech2Config, values)


# --- overrides and scales --------------------------------------------------------------------------------
@torch.no_grad()
def test_forced_durations_give_exactly_that_many_frames(model: FastSpeech2):
    durations = torch.tensor([[3, 0, 1, 5, 2, 1], [1, 1, 1, 1, 0, 0]])
    out = model(random_symbols(2, 6), durations=durations)
    assert torch.equal(out.durations, durations)
    assert out.mel_lengths.tolist() == [12, 4]
    assert out.mel.shape[1] == 12
    scaled = model(random_symbols(2, 6), durations=durations, duration_scale=3.0)  # scales act on predictions only
    assert torch.equal(scaled.durations, durations)


@torch.no_grad()
def test_pitch_and_energy_overrides_replace_the_predictions(model: FastSpeech2):
    symbols, lengths = random_symbols(2, 6), torch.tensor([6, 4])
    durations = torch.full((2, 6), 2)
    pitch = torch.linspace(-1.5, 1.5, 12).view(2, 6)
    energy = torch.linspace(0.8, -0.4, 12).view(2, 6)
    plain = model(symbols, lengths, durations=durations)
    out = model(symbols, lengths, durations=durations, pitch=pitch, energy=energy)
    valid = torch.arange(6)[None, :] < lengths[:, None]
    assert torch.equal(out.pitch[valid], pitch[valid]) and torch.equal(out.energy[valid], energy[valid])
    assert not out.pitch[~valid].any() and not out.energy[~valid].any()  # padding is zeroed, override or not
    assert not torch.allclose(out.mel, plain.mel)  # and the overrides are what the decoder hears
    assert torch.equal(out.log_durations, plain.log_durations)  # the duration prediction is untouched
    scaled = model(symbols, lengths, durations=durations, pitch=pitch, energy=energy, pitch_scale=3.0, energy_scale=0.0)
    assert torch.equal(scaled.pitch, out.pitch) and torch.equal(scaled.energy, out.energy)  # overrides are not scaled


@torch.no_grad()
def test_a_pitch_contour_inside_symbols_blends_the_start_and_end_states(model: FastSpeech2):
    symbols, lengths = random_symbols(2, 6), torch.tensor([6, 4])
    durations = torch.tensor([[3, 1, 4, 2, 5, 2], [2, 6, 1, 3, 0, 0]])
    start, end = torch.linspace(0.5, 1.5, 12).view(2, 6), torch.linspace(1.8, 0.2, 12).view(2, 6)
    same = model(symbols, lengths, durations=durations, pitch_scale=start, pitch_scale_end=start)
    plain = model(symbols, lengths, durations=durations, pitch_scale=start)
    assert torch.allclose(same.mel, plain.mel, atol=1e-5)  # no movement: what one pitch per symbol gives
    moving = model(symbols, lengths, durations=durations, pitch_scale=start, pitch_scale_end=end)
    at_end = model(symbols, lengths, durations=durations, pitch_scale=end)
    assert torch.allclose(moving.pitch, (plain.pitch + at_end.pitch) / 2)  # reported: each symbol's middle
    assert not torch.allclose(moving.mel, plain.mel) and not torch.allclose(moving.mel, at_end.mel)
    assert torch.equal(moving.mel_lengths, plain.mel_lengths)


def test_ramp_weights_run_from_0_to_1_across_each_symbol_in_torch_and_numpy():
    durations = np.array([3, 1, 0, 2, 4])
    expected = [0, 0.5, 1, 0.5, 0, 1, 0, 1 / 3, 2 / 3, 1]
    np.testing.assert_allclose(numpy_ramp_weights(durations), expected, atol=1e-6)
    padded = ramp_weights(torch.tensor(np.stack([durations, [2, 0, 0, 0, 0]])), 12)
    np.testing.assert_allclose(padded[0].numpy(), expected + [0, 0], atol=1e-6)
    np.testing.assert_allclose(padded[1].numpy(), [0, 1] + [0] * 10, atol=1e-6)


def test_frame_states_repeat_each_symbol_or_move_it_to_its_end_state():
    states = np.arange(6, dtype=np.float32).reshape(3, 2)
    frames = np.array([2, 0, 3])
    np.testing.assert_array_equal(frame_states(states, frames), np.repeat(states, frames, axis=0))
    moved = frame_states(states, frames, states + 4)
    np.testing.assert_allclose(moved[:, 0], [0, 4, 4, 6, 8])  # first frame the start, last the end, linear between


@torch.no_grad()
@pytest.mark.parametrize("scale", [0.5, 1.0, 1.7, "per_symbol", "per_item"])
def test_duration_scale_scales_predicted_frames(model: FastSpeech2, scale):
    symbols = random_symbols(2, 9)
    if scale == "per_symbol":
        scale = torch.linspace(0.3, 2.5, 18).view(2, 9)
    elif scale == "per_item":
        scale = torch.tensor([[0.6], [1.9]])
    base = model(symbols)
    out = model(symbols, duration_scale=scale)
    assert torch.equal(out.log_durations, base.log_durations)
    assert torch.equal(out.durations, expected_durations(base.log_durations, scale))
    assert torch.equal(out.mel_lengths, out.durations.sum(dim=1))


@torch.no_grad()
def test_duration_scale_changes_the_frame_count(model: FastSpeech2):
    symbols = random_symbols(1, 9)
    slow, normal, fast = (int(model(symbols, duration_scale=s).mel_lengths) for s in (2.0, 1.0, 0.5))
    assert slow > normal > fast


@torch.no_grad()
@pytest.mark.parametrize("name", ["pitch", "energy"])
def test_pitch_and_energy_scales_multiply_the_predictions(model: FastSpeech2, name: str):
    symbols, durations = random_symbols(2, 7), torch.full((2, 7), 2)
    base = getattr(model(symbols, durations=durations), name)
    assert base.abs().max() > 1e-3  # something to scale
    per_symbol = torch.linspace(-1.0, 3.0, 14).view(2, 7)
    for scale in (0.0, 2.5, per_symbol):
        scaled = getattr(model(symbols, durations=durations, **{f"{name}_scale": scale}), name)
        torch.testing.assert_close(scaled, base * scale, rtol=1e-6, atol=1e-7)
    # a scale only touches its own prediction
    other = "energy" if name == "pitch" else "pitch"
    out = model(symbols, durations=durations, **{f"{name}_scale": 2.5})
    assert torch.equal(getattr(out, other), getattr(model(symbols, durations=durations), other))


# --- masking: a padded batch is the same as its items one by one -----------------------------------------
def pad_batch(items: list[torch.Tensor], fill: int | None) -> torch.Tensor:
    """Right-pad 1-D id tensors; fill=None puts arbitrary (non-pad) ids in the padding."""
    steps = max(len(item) for item in items)
    if fill is None:
        batch = random_symbols(len(items), steps, seed=99, high=SMALL.num_symbols)
    else:
        batch = torch.full((len(items), steps), fill)
    for row, item in zip(batch, items, strict=True):
        row[: len(item)] = item
    return batch


def assert_batch_matches_items(model: FastSpeech2, items: list[torch.Tensor], durations: list[torch.Tensor] | None,
                               fill: int | None, atol: float) -> None:
    lengths = torch.tensor([len(item) for item in items])
    forced = None if durations is None else pad_batch(durations, 7)  # junk durations on padding are ignored
    batch = model(pad_batch(items, fill), lengths, durations=forced)
    frames = batch.mel.shape[1]
    for i, item in enumerate(items):
        n = len(item)
        alone = model(item[None], durations=None if durations is None else durations[i][None])
        m = int(alone.mel_lengths[0])
        assert torch.equal(batch.durations[i, :n], alone.durations[0])
        assert int(batch.mel_lengths[i]) == m
        torch.testing.assert_close(batch.log_durations[i, :n], alone.log_durations[0], rtol=0, atol=atol)
        torch.testing.assert_close(batch.pitch[i, :n], alone.pitch[0], rtol=0, atol=atol)
        torch.testing.assert_close(batch.energy[i, :n], alone.energy[0], rtol=0, atol=atol)
        torch.testing.assert_close(batch.mel_before[i, :m], alone.mel_before[0], rtol=0, atol=atol)
        torch.testing.assert_close(batch.mel[i, :m], alone.mel[0], rtol=0, atol=atol)
        # everything past an item's end is exactly zero
        assert not batch.durations[i, n:].any() and not batch.pitch[i, n:].any() and not batch.energy[i, n:].any()
        assert batch.mel.shape[1] == frames and not batch.mel[i, m:].any() and not batch.mel_before[i, m:].any()


@torch.no_grad()
@pytest.mark.parametrize("fill", [SMALL.pad_id, None], ids=["pad_id", "junk_ids"])
@pytest.mark.parametrize("forced", [True, False], ids=["forced_durations", "predicted_durations"])
def test_padded_batch_equals_items_one_by_one(fill: int | None, forced: bool):
    model = small_model(replace(SMALL, encoder=TransformerConfig(hidden=32, layers=2, ffn_channels=64)))
    items = [random_symbols(1, n, seed=n)[0] for n in (4, 11, 7)]
    durations = [torch.tensor([2, 0, 3, 1]), torch.arange(11) % 4, torch.tensor([5, 1, 1, 0, 2, 4, 1])]
    assert_batch_matches_items(model, items, durations if forced else None, fill, atol=1e-5)


@torch.no_grad()
def test_padded_mel_frames_are_zero(model: FastSpeech2):
    durations = torch.tensor([[4, 4, 4], [1, 1, 0], [2, 0, 0]])
    out = model(random_symbols(3, 3), torch.tensor([3, 3, 1]), durations=durations)
    assert out.mel_lengths.tolist() == [12, 2, 2]
    assert not out.mel[1, 2:].any() and not out.mel[2, 2:].any()
    assert not out.mel_before[1, 2:].any() and not out.mel_before[2, 2:].any()
    assert out.mel[1, :2].abs().min() > 0  # while the valid frames are not


@torch.no_grad()
@pytest.mark.parametrize("forced", [True, False], ids=["forced_durations", "predicted_durations"])
def test_baker_padded_batch_equals_items_one_by_one(backend, forced: bool):
    model = backend.acoustic_model
    assert not model.training
    items = [random_symbols(1, n, seed=n, high=model.config.num_symbols)[0] for n in (6, 17, 11)]
    durations = [torch.tensor([2, 5, 0, 3, 4, 6]), torch.arange(17) % 7,
                 torch.tensor([9, 1, 3, 0, 2, 4, 1, 8, 2, 3, 5])]
    # Baker mels span about [-4, 2] after 3+3 layers of width 256: batching changes float32 summation order by
    # ~2e-5 at most (measured), so the tolerance is 1e-4 here instead of 1e-5.
    assert_batch_matches_items(model, items, durations if forced else None, fill=model.config.pad_id, atol=1e-4)


# --- speakers and emotions -------------------------------------------------------------------------------
@torch.no_grad()
def test_speaker_and_emotion_tables_change_the_output():
    model = small_model(replace(SMALL, num_speakers=3, num_emotions=7))
    assert model.speaker_embedding.weight.shape == (3, 32) and model.emotion_embedding.weight.shape == (7, 32)
    assert not model.speaker_embedding.weight.any()  # starts all-zero (a single-speaker voice's one row)
    with torch.no_grad():
        model.speaker_embedding.weight.normal_(generator=torch.Generator().manual_seed(3))  # as if trained
    symbols = random_symbols(1, 6).expand(3, 6)
    durations = torch.full((3, 6), 2)
    by_speaker = model(symbols, speakers=torch.tensor([0, 1, 2]), durations=durations)
    by_emotion = model(symbols, emotions=torch.tensor([0, 3, 6]), durations=durations)
    for out in (by_speaker, by_emotion):
        for a, b in ((0, 1), (0, 2), (1, 2)):
            assert not torch.allclose(out.mel[a], out.mel[b], atol=1e-4)
            assert not torch.allclose(out.pitch[a], out.pitch[b], atol=1e-4)
    # the same ids are reproducible, and no speaker/emotion is speaker 0 / no emotion table input
    again = model(symbols[:1], speakers=torch.tensor([1]), durations=durations[:1])
    torch.testing.assert_close(again.mel[0], by_speaker.mel[1], rtol=0, atol=1e-5)
    default = model(symbols[:1], durations=durations[:1])
    torch.testing.assert_close(default.mel[0], by_speaker.mel[0], rtol=0, atol=1e-5)


@torch.no_grad()
def test_emotions_without_an_emotion_table_are_refused(model: FastSpeech2):
    assert model.emotion_embedding is None
    with pytest.raises(ValueError, match="emotion"):
        model(random_symbols(1, 4), emotions=torch.tensor([0]))


def test_baker_has_one_zero_speaker_row_and_no_emotion_table(backend):
    model = backend.acoustic_model
    assert model.config.num_speakers == 1 and model.config.num_emotions == 0
    assert model.speaker_embedding.weight.shape == (1, model.config.encoder.hidden)
    assert not model.speaker_embedding.weight.any()
    assert model.emotion_embedding is None


# --- limits ----------------------------------------------------------------------------------------------
@torch.no_grad()
def test_too_many_symbols_is_a_sequence_too_long_error(model: FastSpeech2):
    limit = SMALL.max_positions
    ok = model(random_symbols(1, limit), durations=torch.ones(1, limit, dtype=torch.long))  # exactly at the limit
    assert ok.mel.shape[1] == limit
    with pytest.raises(SequenceTooLongError, match=rf"{limit + 1} symbols exceed the model's limit of {limit}"):
        model(random_symbols(1, limit + 1))
    assert issubclass(SequenceTooLongError, ValueError)


@torch.no_grad()
def test_too_many_frames_is_a_sequence_too_long_error(model: FastSpeech2):
    limit = SMALL.max_positions
    durations = torch.tensor([[limit // 2, limit // 2 + 1, 0]])
    with pytest.raises(SequenceTooLongError, match=rf"{limit + 1} mel frames exceed .*{limit}.*speak faster"):
        model(random_symbols(1, 3), durations=durations)
    with pytest.raises(SequenceTooLongError, match="mel frames"):  # one long item in a batch is enough
        model(random_symbols(2, 3), durations=torch.cat([torch.ones_like(durations), durations]))
    with pytest.raises(SequenceTooLongError, match="mel frames"):  # slowed-down predictions too
        model(random_symbols(1, 20), duration_scale=100.0)


@torch.no_grad()
def test_all_zero_durations_are_a_value_error(model: FastSpeech2):
    with pytest.raises(ValueError, match="zero frames"):
        model(random_symbols(2, 5), durations=torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="zero frames"):
        model(random_symbols(1, 5), duration_scale=0.0)
    with pytest.raises(ValueError, match="zero frames"):  # durations on padding do not count
        model(random_symbols(1, 5), torch.tensor([2]), durations=torch.tensor([[0, 0, 3, 3, 3]]))


# --- positions -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("positions", "dim"), [(10, 8), (128, 32), (50, 7)])
def test_sinusoid_table_matches_the_formula(positions: int, dim: int):
    table = sinusoid_table(positions, dim)
    assert table.shape == (positions + 1, dim) and table.dtype == torch.float32
    assert not table[0].any()
    expected = np.zeros((positions + 1, dim))
    for pos in range(1, positions + 1):
        for i in range(dim):
            angle = pos / 10000 ** (2 * (i // 2) / dim)
            expected[pos, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    np.testing.assert_allclose(table.numpy(), expected, rtol=0, atol=1e-6)


def test_baker_position_table_is_the_int8_formula(backend):
    model = backend.acoustic_model
    table = model.encoder.position_table
    formula = sinusoid_table(model.config.max_positions, model.config.encoder.hidden)
    assert table.shape == formula.shape == (2049, 256)
    error = (table - formula).abs().max().item()
    assert 0 < error <= 0.005  # INT8 with scale 1/127: within half a step, and not the float table
    assert not table[0].any()
    assert torch.equal(model.decoder.position_table, table)
