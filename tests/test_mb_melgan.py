import json

import numpy as np
import pytest
import torch

from qingyin.evaluate.reference import load_reference, reference_available, reference_dir
from qingyin.families.fs2_mbmelgan.model.config import config_from_dict, config_to_dict
from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANConfig, MBMelGANGenerator, pqmf_synthesis_filters

REFERENCE = reference_dir()
TFLITE = REFERENCE / "mb_melgan.tflite"
BAKER = MBMelGANConfig(subband_quant_step=1 / 128)


def snr_db(ours: np.ndarray, reference: np.ndarray) -> float:
    """Signal-to-noise ratio of `ours` against `reference`, in dB."""
    noise = np.sum((ours.astype(np.float64) - reference) ** 2)
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / max(noise, 1e-30)))


def smooth_mel(frames: int, seed: int) -> np.ndarray:
    """Random mel, smooth in time and frequency, spanning [-4, 2] like the normalized Baker mels."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((1, 1, frames + 8, 88)))
    x = torch.nn.functional.avg_pool2d(x, 9, stride=1)[0, 0].numpy()
    return (-4 + 6 * (x - x.min()) / (x.max() - x.min())).astype(np.float32)


# --- no weights needed ----------------------------------------------------------------------------------
@pytest.mark.parametrize("frames", [10, 17, 40])
def test_output_length_is_frames_times_hop(frames: int):
    model = MBMelGANGenerator(MBMelGANConfig()).eval()
    with torch.no_grad():
        audio = model(torch.randn(2, frames, 80))
    assert MBMelGANConfig().hop_length == 300
    assert audio.shape == (2, frames * 300) and audio.dtype == torch.float32


@pytest.mark.parametrize("frames", [1, 2, 7, 9])
def test_shorter_than_min_frames_is_refused_like_tflite(frames: int):
    assert MBMelGANConfig().min_frames == 10  # 3 * 10 upsampled frames > the 27-sample reflection pad
    with pytest.raises(RuntimeError, match="[Pp]adding"):
        MBMelGANGenerator(MBMelGANConfig())(torch.randn(1, frames, 80))


def test_config_round_trips_through_json():
    config = MBMelGANConfig(upsample_scales=(2, 4), subband_quant_step=1 / 128)
    values = json.loads(json.dumps(config_to_dict(config)))
    assert config_from_dict(MBMelGANConfig, values) == config
    with pytest.raises(ValueError, match="unknown"):
        config_from_dict(MBMelGANConfig, {**values, "hop": 1})


def test_small_config_builds_and_runs():
    config = MBMelGANConfig(num_mels=20, channels=64, upsample_scales=(2, 2), stacks=3, subbands=2, taps=30)
    model = MBMelGANGenerator(config).eval()
    frames = config.min_frames
    with torch.no_grad():
        audio = model(torch.randn(3, frames, 20))
    assert config.hop_length == 8 and audio.shape == (3, frames * 8)
    assert torch.isfinite(audio).all()


def test_batch_items_are_independent():
    model = MBMelGANGenerator(BAKER).eval()
    mels = torch.from_numpy(np.stack([smooth_mel(12, 0), smooth_mel(12, 1)]))
    with torch.no_grad():
        torch.testing.assert_close(model(mels)[1:], model(mels[1:]), rtol=0, atol=1e-6)


def test_pqmf_default_filters_are_the_kaiser_design():
    pqmf = MBMelGANGenerator(MBMelGANConfig()).pqmf
    filters = pqmf.synthesis_filter[0]
    assert filters.shape == (4, 63)
    torch.testing.assert_close(filters, pqmf_synthesis_filters(4, 62, 0.142, 9.0))


@pytest.mark.parametrize("subbands, taps", [(4, 62), (3, 62), (4, 30), (2, 64), (5, 48)])
def test_pqmf_polyphase_form_equals_filtering_the_zero_stuffed_bands(subbands, taps):
    import torch.nn.functional as F

    from qingyin.families.fs2_mbmelgan.model.mb_melgan import PQMF

    pqmf = PQMF(subbands, taps, 0.142, 9.0)
    pqmf.updown_filter[range(subbands), range(subbands), 0] = torch.linspace(1, 4, subbands)  # any gains
    bands = torch.randn(2, subbands, 57, generator=torch.Generator().manual_seed(subbands + taps))
    stuffed = F.conv_transpose1d(bands, pqmf.updown_filter, stride=subbands)
    direct = F.conv1d(F.pad(stuffed, (taps // 2, taps // 2)), pqmf.synthesis_filter)
    assert pqmf.polyphase_filter().shape[:2] == (subbands, subbands)
    torch.testing.assert_close(pqmf(bands), direct, rtol=0, atol=2e-6)


# --- the pretrained Baker vocoder -------------------------------------------------------------------------
def load_imported() -> tuple[MBMelGANConfig, MBMelGANGenerator]:
    from qingyin.families.fs2_mbmelgan.convert.mb_melgan import import_mb_melgan
    from qingyin.voices.tflite_graph import TFLiteGraph

    if not TFLITE.exists():
        pytest.skip(f"{TFLITE} is missing")
    config, state = import_mb_melgan(TFLiteGraph(TFLITE))
    model = MBMelGANGenerator(config).eval()
    model.load_state_dict(state, strict=True)
    return config, model


def load_oracle():
    reason = reference_available()
    if reason:
        pytest.skip(reason)
    return load_reference(threads=1)


def test_import_rejects_other_graphs():
    from qingyin.families.fs2_mbmelgan.convert.mb_melgan import NotMBMelGAN, import_mb_melgan
    from qingyin.voices.tflite_graph import TFLiteGraph

    acoustic = REFERENCE / "fs2_nodrop.tflite"
    if not acoustic.exists():
        pytest.skip(f"{acoustic} is missing")
    with pytest.raises(NotMBMelGAN):
        import_mb_melgan(TFLiteGraph(acoustic))


def test_import_infers_the_baker_config():
    config, model = load_imported()
    assert config == BAKER
    torch.testing.assert_close(model.pqmf.synthesis_filter[0], pqmf_synthesis_filters(4, 62, 0.142, 9.0))
    assert model.pqmf.updown_filter.count_nonzero() == 4 and model.pqmf.updown_filter.max() == 4


# Float error between LiteRT and PyTorch is ~1e-6 before the tanh; the graph's int8 QUANTIZE of the tanh
# sub-bands (step 1/128) turns that into exact agreement (~140 dB) except where a sample sits on a rounding
# boundary and flips by one step: one flip adds 4/128 * a synthesis filter (peak 0.0079) to the audio. On
# this setup the smooth mels had no flip (>= 139 dB) and the FastSpeech2 sentence one flip (56.7 dB).
MIN_SNR_DB = 50.0


@pytest.mark.reference
def test_matches_litert():
    _, model = load_imported()
    reference = load_oracle()
    mels = {f"smooth{t}": smooth_mel(t, seed=t) for t in (10, 11, 50, 300)}
    mels["fastspeech2"] = reference.mel(reference.ids("sil n i3 #0 h ao3 #3 sil"))[0]
    for name, mel in mels.items():
        expected = reference.audio(mel)
        with torch.no_grad():
            audio = model(torch.from_numpy(mel)[None])[0].numpy()
        assert audio.shape == expected.shape == (mel.shape[0] * 300,)
        snr = snr_db(audio, expected)
        print(f"{name}: {snr:.1f} dB, max |diff| {np.abs(audio - expected).max():.2e}")
        assert snr >= MIN_SNR_DB, f"{name}: {snr:.1f} dB"


@pytest.mark.reference
@pytest.mark.parametrize("frames", [1, 2, 7, 9])
def test_litert_also_refuses_short_mels(frames: int):
    reference = load_oracle()
    with pytest.raises(RuntimeError, match="MirrorPad"):
        reference.audio(smooth_mel(frames, seed=0))
