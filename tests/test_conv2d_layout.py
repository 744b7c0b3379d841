"""The vocoder's 2-D layout for export gives the 1-D model's audio, and the exported graph is 2-D."""

import pytest
import torch
from torch import nn

from qingyin.families.fs2_mbmelgan.export.conv2d_layout import TimeConv2d, to_conv2d_layout
from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANConfig, MBMelGANGenerator

SMALL = MBMelGANConfig(channels=32, upsample_scales=(2, 3), stacks=2, subband_quant_step=1 / 128)


def small_vocoder() -> MBMelGANGenerator:
    torch.manual_seed(0)
    model = MBMelGANGenerator(SMALL).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("frames", [SMALL.min_frames, 23, 64])
def test_the_2d_layout_computes_the_same_audio(frames):
    vocoder = small_vocoder()
    lifted = to_conv2d_layout(vocoder)
    mel = torch.randn(2, frames, SMALL.num_mels, generator=torch.Generator().manual_seed(frames))
    with torch.no_grad():
        expected, audio = vocoder(mel), lifted(mel)
    assert audio.shape == expected.shape == (2, frames * SMALL.hop_length)
    # Same weights, same sums: the 1/128 sub-band rounding turns any last-bit difference into a 1/128 step;
    # measured: identical.
    torch.testing.assert_close(audio, expected, rtol=0, atol=1e-6)


def test_every_convolution_is_swapped_and_the_original_is_untouched():
    vocoder = small_vocoder()
    lifted = to_conv2d_layout(vocoder)
    one_d = (nn.Conv1d, nn.ConvTranspose1d)
    assert not any(isinstance(module, one_d) for module in lifted.modules())
    convs = sum(isinstance(module, one_d) for module in vocoder.modules())
    assert sum(isinstance(module, TimeConv2d) for module in lifted.modules()) == convs
    assert lifted.input_conv.lift and lifted.output_conv.lower


@pytest.mark.parametrize("conv", [
    nn.Conv1d(6, 4, 5, padding=2),  # zero padding
    nn.Conv1d(6, 6, 3, padding=3, dilation=3, groups=2, padding_mode="reflect"),
    nn.ConvTranspose1d(6, 4, 4, stride=2, padding=1, bias=False),
])
def test_a_single_conv_as_2d(conv):
    x = torch.randn(1, 6, 17, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = conv(x)
        got = TimeConv2d(conv, lift=True, lower=True)(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_circular_padding_is_refused():
    with pytest.raises(ValueError, match="circular"):
        TimeConv2d(nn.Conv1d(2, 2, 3, padding=1, padding_mode="circular"))


def test_the_exported_vocoder_has_only_2d_convolutions(baker_dir):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript", reason="exporting to ONNX needs onnx and onnxscript")
    from qingyin.families.fs2_mbmelgan.export import VOCODER_FILE, variant_dir
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend

    OnnxBackend(baker_dir, "fp32", threads=1)  # exports fp32 when it is missing or stale
    graph = onnx.load(str(variant_dir(baker_dir, "fp32") / VOCODER_FILE)).graph
    weights = {initializer.name: initializer.dims for initializer in graph.initializer}
    convs = [node for node in graph.node if node.op_type in ("Conv", "FusedConv", "ConvTranspose")]
    one_d = [weights[node.input[1]] for node in convs if len(weights[node.input[1]]) != 4]
    assert len(convs) >= 39
    assert one_d == [[4, 4, 16]]  # only the PQMF's polyphase filter (bands -> phases), too small to matter
