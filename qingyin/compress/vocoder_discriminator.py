"""The discriminator of a vocoder's adversarial phase, and its least-squares GAN losses.

    discriminator = MultiScaleDiscriminator(max_channels=256)
    scores = discriminator(audio)                       # one score map per scale, audio (B, T)
    generator_adversarial_loss(discriminator(fake))     # the generator wants every score at 1
    discriminator_loss(discriminator(real), discriminator(fake.detach()))   # real at 1, fake at 0

MelGAN's multi-scale discriminator (Kumar et al. 2019), as MB-MelGAN trained with it (Yang et al. 2020): `scales`
copies of one convolutional stack, each reading the audio average-pooled by 2 once more than the last. A stack is a
wide first conv, then strided grouped convs that trade time for channels (up to `max_channels`), then two narrow
convs to one score per position. The losses are least-squares (Mao et al. 2017), as MB-MelGAN's. The teacher's own
discriminator was not distributed with its generator, so this one starts untrained and learns from the teacher's
audio (real) and the student's (fake): `RecoverySettings.discriminator_warmup_steps` lets it learn before the
generator listens to it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SLOPE = 0.2  # LeakyReLU's, as MelGAN's


class ScaleDiscriminator(nn.Module):
    """One scale: audio (B, 1, T) -> scores (B, 1, T / prod(downsample))."""

    def __init__(self, channels: int = 16, max_channels: int = 256, downsample: tuple[int, ...] = (4, 4, 4, 4)):
        super().__init__()
        layers = [nn.Sequential(nn.ReflectionPad1d(7), nn.Conv1d(1, channels, 15))]
        width = channels
        for factor in downsample:
            wider = min(width * factor, max_channels)
            layers.append(nn.Conv1d(width, wider, factor * 10 + 1, stride=factor, padding=factor * 5,
                                    groups=width // 4))
            width = wider
        layers.append(nn.Conv1d(width, width, 5, padding=2))
        self.layers = nn.ModuleList(layers)
        self.score = nn.Conv1d(width, 1, 3, padding=1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio
        for layer in self.layers:
            x = F.leaky_relu(layer(x), SLOPE)
        return self.score(x)


class MultiScaleDiscriminator(nn.Module):
    """`scales` ScaleDiscriminators on the audio, the audio halved in rate (average pooling) before each next one."""

    def __init__(self, scales: int = 3, channels: int = 16, max_channels: int = 256):
        super().__init__()
        if scales < 1 or channels < 4 or channels % 4 or max_channels < channels:
            raise ValueError(f"a discriminator needs >= 1 scale and channels a multiple of 4 up to max_channels; got "
                             f"scales={scales}, channels={channels}, max_channels={max_channels}")
        self.discriminators = nn.ModuleList(ScaleDiscriminator(channels, max_channels) for _ in range(scales))

    def forward(self, audio: torch.Tensor) -> list[torch.Tensor]:
        """Score maps, one per scale, of audio (B, T)."""
        x, scores = audio[:, None, :], []
        for index, discriminator in enumerate(self.discriminators):
            if index:
                x = F.avg_pool1d(x, 4, stride=2, padding=1, count_include_pad=False)
            scores.append(discriminator(x))
        return scores


def generator_adversarial_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Mean over scales of mean (score - 1)^2 on the generator's audio."""
    return torch.stack([((score - 1.0) ** 2).mean() for score in fake_scores]).mean()


def discriminator_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Mean over scales of mean (real - 1)^2 + mean fake^2."""
    return torch.stack([((real - 1.0) ** 2).mean() + (fake**2).mean()
                        for real, fake in zip(real_scores, fake_scores, strict=True)]).mean()
