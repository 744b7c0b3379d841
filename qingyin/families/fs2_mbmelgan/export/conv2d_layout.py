"""The vocoder with its 1-D convolutions run as 2-D ones over (batch, channels, 1, time), for export.

ONNX Runtime's CPU provider has its fast blocked-layout ("NCHWc") convolution kernels for 2-D convolutions
only; 1-D ones go through im2col and a GEMM. The same weights as (out, in, 1, kernel) kernels give the same
sums (the vocoder's output within its 1/128 sub-band rounding), and the exported vocoder ran 0.87x (best) to
0.81x (median) the time of the 1-D graph, with the polyphase PQMF (BENCHMARKS.md, "The vocoder's layout").

Only modules are swapped; the generator's forward is unchanged: the input conv takes (B, C, T) and returns
(B, C, 1, T), every conv in between stays 4-D (leaky ReLU, the residual adds and the crops are shape-agnostic),
and the output conv returns (B, C, T) again for the PQMF.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANGenerator, UpsampleConv


class TimeConv2d(nn.Module):
    """A Conv1d or ConvTranspose1d (reflect or zero padding; UpsampleConv's crop) as a 2-D conv of height 1."""

    def __init__(self, conv: nn.Conv1d | nn.ConvTranspose1d, lift: bool = False, lower: bool = False):
        super().__init__()
        self.lift, self.lower = lift, lower  # takes 3-D input / returns 3-D output
        self.transposed = isinstance(conv, nn.ConvTranspose1d)
        self.crop = isinstance(conv, UpsampleConv)
        self.stride = conv.stride[0]
        self.reflect_pad = conv.padding[0] if not self.transposed and conv.padding_mode == "reflect" else 0
        if not self.transposed and conv.padding_mode not in ("reflect", "zeros"):
            raise ValueError(f"padding mode {conv.padding_mode!r} is not supported")
        layer = nn.ConvTranspose2d if self.transposed else nn.Conv2d
        self.conv = layer(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]), stride=(1, self.stride),
                          padding=(0, 0 if self.reflect_pad else conv.padding[0]), dilation=(1, conv.dilation[0]),
                          groups=conv.groups, bias=conv.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight[:, :, None, :])
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reflect_pad:  # the time axis only
            pads = (self.reflect_pad, self.reflect_pad) + ((0, 0) if x.dim() == 4 else ())
            x = F.pad(x, pads, mode="reflect")
        length = x.shape[-1]
        y = self.conv(x[:, :, None, :] if self.lift else x)
        if self.crop:  # UpsampleConv: length * scale, as TensorFlow's "same" padding
            y = y[..., : length * self.stride]
        return y[:, :, 0, :] if self.lower else y


def to_conv2d_layout(vocoder: MBMelGANGenerator) -> MBMelGANGenerator:
    """A copy of `vocoder` whose convolutions are TimeConv2d modules (same weights, same forward)."""
    model = copy.deepcopy(vocoder).eval()
    model.input_conv = TimeConv2d(model.input_conv, lift=True)
    model.output_conv = TimeConv2d(model.output_conv, lower=True)
    for parent in list(model.modules()):  # the upsamples and the residual stacks' convs
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv1d | nn.ConvTranspose1d):
                setattr(parent, name, TimeConv2d(child))
    return model
