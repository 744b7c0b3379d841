"""Losses of vocoder training against a teacher's audio, and the log-mel distance used to validate it.

    MultiResolutionSTFTLoss(FULL_BAND, floor) spectral convergence + log-magnitude L1, averaged over resolutions
    MultiResolutionSTFTLoss(SUB_BAND, floor)  the same on the sub-band signals (Yang et al. 2020, MB-MelGAN)
    subband_analysis(audio, synthesis)       PQMF analysis: audio -> the sub-band signals a generator would emit
    LogMel.for_vocoder(rate, hop, mels)      log-mel spectrogram, for `log_mel_l1` between two signals

FULL_BAND and SUB_BAND (the resolutions) are in qingyin.compress.vocoder_recipe, with the rest of the recipe.

Shapes: audio (B, T); sub-bands (B, subbands, T / subbands). Losses are scalars.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qingyin.compress.vocoder_recipe import Resolution

# Floors of the logs, in |STFT| units (unnormalized: a sine's peak is amplitude * window / 4; Baker's median speech
# frame peaks near e^4 ~ 55 with a 1200-sample window). The Baker teacher's audio is exactly zero wherever its int8
# sub-band quantization rounds to 0: below a floor near 1e-2 the log terms are ruled by such digital silence
# against quantization-step noise (teacher vs itself on float16 mels: log-mel L1 0.18 at a 1e-5 floor, 0.022 at 1e-2).
LOG_MEL_FLOOR = 1e-2  # also the default floor of the STFT losses (RecoverySettings.log_floor)
# `log_mel_l1(range_db=LOUD_RANGE_DB)`: the distance within 30 dB of the loudest bin, what the quiet bins' sub-band
# rounding does not rule (the recovery's val_log_mel_l1_loud, benchmarks.prune_vocoder's second distance)
LOUD_RANGE_DB = 30.0


def stft_magnitude(x: torch.Tensor, resolution: Resolution, floor: float) -> torch.Tensor:
    """|STFT| (N, frames, bins) of signals (N, T), Hann window, centered (reflect padding), at least `floor`."""
    window = torch.hann_window(resolution.window, device=x.device, dtype=x.dtype)
    spectrum = torch.stft(x, resolution.fft, resolution.hop, resolution.window, window, return_complex=True)
    return spectrum.abs().clamp_min(floor).transpose(1, 2)


class MultiResolutionSTFTLoss(nn.Module):
    """Mean over `resolutions` of spectral convergence ||S - S'||_F / ||S||_F plus mean |log S - log S'|, the
    magnitudes S at least `floor`. Signals (B, T) or (B, channels, T), each channel on its own."""

    def __init__(self, resolutions: tuple[Resolution, ...], floor: float):
        super().__init__()
        self.resolutions, self.floor = resolutions, floor

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        predicted, target = predicted.reshape(-1, predicted.shape[-1]), target.reshape(-1, target.shape[-1])
        total = predicted.new_zeros(())
        for resolution in self.resolutions:
            p, t = stft_magnitude(predicted, resolution, self.floor), stft_magnitude(target, resolution, self.floor)
            convergence = torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp_min(self.floor)
            total = total + convergence + F.l1_loss(torch.log(p), torch.log(t))
        return total / len(self.resolutions)


def subband_analysis(audio: torch.Tensor, synthesis_filter: torch.Tensor) -> torch.Tensor:
    """PQMF analysis of audio (B, T) into (B, subbands, T / subbands), with the analysis filters that match the
    synthesis filters (1, subbands, taps + 1) of the generator's PQMF (cosine modulation with the opposite phase:
    the synthesis filters reversed in time, as the prototype is symmetric). Band k: filter, then keep every
    subbands-th sample; the generator's synthesis of these gives the audio back up to the PQMF's small error."""
    subbands, length = synthesis_filter.shape[1], synthesis_filter.shape[-1]
    analysis = synthesis_filter[0].flip(-1)[:, None, :]  # (subbands, 1, taps + 1)
    half = (length - 1) // 2
    filtered = F.conv1d(F.pad(audio[:, None, :], (half, length - 1 - half)), analysis)  # (B, subbands, T)
    return filtered[..., ::subbands]


class LogMel(nn.Module):
    """Natural-log mel spectrogram (B, frames, mels) of audio (B, T): Hann-windowed STFT magnitude, HTK mel
    filters between `fmin` and `fmax` (default: Nyquist), floored at LOG_MEL_FLOOR. For comparing two signals,
    not for feeding the vocoder (that mel is the acoustic model's, normalized)."""

    def __init__(self, sample_rate: int, fft: int = 2048, hop: int = 300, window: int = 1200, mels: int = 80,
                 fmin: float = 80.0, fmax: float | None = None):
        super().__init__()
        self.resolution = Resolution(fft, hop, window)
        self.register_buffer("filters", mel_filters(sample_rate, fft, mels, fmin, fmax or sample_rate / 2),
                             persistent=False)

    @classmethod
    def for_vocoder(cls, sample_rate: int, hop_length: int, mels: int) -> LogMel:
        """Frames of one hop, windows of four, the FFT the next power of two (Baker: 2048, 300, 1200)."""
        return cls(sample_rate, fft=2 ** math.ceil(math.log2(4 * hop_length)), hop=hop_length,
                   window=4 * hop_length, mels=mels)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        magnitude = stft_magnitude(audio, self.resolution, 0.0)  # (B, frames, bins)
        return torch.log((magnitude @ self.filters.T).clamp_min(LOG_MEL_FLOOR))


def log_mel_l1(log_mel: LogMel, predicted: torch.Tensor, target: torch.Tensor, range_db: float | None = None) -> float:
    """Mean |log-mel(predicted) - log-mel(target)| of two signals (T,) or (B, T); the longer is cut to the other.

    `range_db`: both spectrograms floored at `range_db` dB (amplitude) below the target's loudest bin first, so that
    only what is within that range of the loudest counts. The Baker vocoder's sub-band rounding makes its quiet bins
    differ between any two generators: without the rounding, the teacher is 0.54 from itself with it, while the
    30 % pruned student is 0.34 from it; within 30 dB, 0.004 and 0.031 (BENCHMARKS.md, issue 15's fourth session)."""
    length = min(predicted.shape[-1], target.shape[-1])
    p, t = log_mel(predicted[..., :length].reshape(-1, length)), log_mel(target[..., :length].reshape(-1, length))
    if range_db is not None:
        floor = t.max() - range_db / 20 * math.log(10)
        p, t = p.clamp_min(floor), t.clamp_min(floor)
    return float(F.l1_loss(p, t))


def mel_filters(sample_rate: int, fft: int, mels: int, fmin: float, fmax: float) -> torch.Tensor:
    """Triangular HTK mel filters (mels, fft // 2 + 1), each with unit peak."""
    def to_mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    edges_mel = torch.linspace(to_mel(fmin), to_mel(fmax), mels + 2, dtype=torch.float64)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)  # (mels + 2,) Hz
    bins = torch.linspace(0, sample_rate / 2, fft // 2 + 1, dtype=torch.float64)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising, falling = (bins - lower) / (center - lower), (upper - bins) / (upper - center)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()
