"""The recipe of a pruned vocoder's recovery fine-tuning: plain data, no torch (the command line reads it).

`RecoverySettings` is what a run folder's recipe.json keeps; qingyin.compress.vocoder_recovery trains by it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import NamedTuple

RATIOS = (0.3, 0.5, 0.7)  # the pruning ratios of issue 15; any ratio in (0, 1) works


class RecoveryError(ValueError):
    """Bad settings, teacher data a vocoder cannot learn from, or a run folder that does not fit the request."""


class Resolution(NamedTuple):
    """One STFT of a multi-resolution loss, in samples of the signal it is applied to."""

    fft: int
    hop: int
    window: int


# Yang et al. 2020 (MB-MelGAN), for 24 kHz audio and its 4 sub-bands at 6 kHz
FULL_BAND = (Resolution(1024, 120, 600), Resolution(2048, 240, 1200), Resolution(512, 50, 240))
SUB_BAND = (Resolution(384, 30, 150), Resolution(683, 60, 300), Resolution(171, 10, 60))


@dataclass(frozen=True)
class RecoverySettings:
    """The recipe of a recovery run (saved in recipe.json; a resumed run must give the same)."""

    ratio: float = 0.5  # fraction of each layer's channels pruned (qingyin.compress.prune)
    round_to: int = 8  # channel counts stay multiples of this
    batch_size: int = 8
    segment_samples: int = 9600  # per window, a multiple of the hop (Baker: 32 frames)
    context_frames: int = 4  # mel frames read on either side of a window, outside the loss
    learning_rate: float = 1e-3  # Adam's at step 0 (ParallelWaveGAN's MB-MelGAN starts at 1e-3)
    # the learning rate halves every this many steps, smoothly (0: constant). A constant 1e-3 left the 30 % run's
    # validation flat from step 2,000 (0.44-0.46), the noise of the steps outweighing their progress.
    learning_rate_half_life: int = 0
    betas: tuple[float, float] = (0.8, 0.99)
    gradient_clip: float = 10.0  # max gradient norm
    full_band_weight: float = 0.5  # multi-resolution STFT on the audio
    sub_band_weight: float = 0.5  # ... on the sub-band signals
    waveform_weight: float = 10.0  # L1 on the audio, in [-1, 1]
    # L1 between log-mel spectrograms (the validation's measure, vocoder_losses.LogMel.for_vocoder), as HiFi-GAN
    # trains with. 0: off. The STFT losses weigh linear-frequency bins alike, so half of them lie above 6 kHz, and
    # their floor leaves a student quieter than it in those bins without a gradient: the 30 % run's top mel bands
    # ended 2.4 dB too quiet.
    mel_weight: float = 0.0
    # Train through the sub-band rounding of the Baker graph (the config's subband_quant_step) with a straight-through
    # gradient, instead of on the unrounded sub-bands: the loss then sees what the vocoder will emit. Trained without
    # it, the 30 % student rounded 27 % of the sub-band samples the teacher keeps to 0 (3-6 kHz: 76 % zeros, the
    # teacher's 69 %).
    quantization_aware: bool = False
    # Layer hints: each hint layer's output (input conv, upsampling convs, residual stacks) against the teacher's
    # on the channels pruning kept, L1 relative to the teacher's mean magnitude there, averaged over the layers.
    # 0: off. Pruning leaves every layer after the first about as far from the teacher's as its own size.
    hint_weight: float = 0.0
    # The adversarial phase (qingyin.compress.vocoder_discriminator): a multi-scale discriminator learns the teacher's
    # audio from the student's, and the student is also trained to fool it, with this weight on its least-squares loss
    # (MB-MelGAN's lambda_adv: 2.5). 0: no discriminator. It starts untrained: for the first
    # `discriminator_warmup_steps` of the run only it learns, so that the student does not follow a random critic.
    adversarial_weight: float = 0.0
    discriminator_learning_rate: float = 2e-4  # Adam's, constant (the generator's schedule is its own)
    discriminator_max_channels: int = 256  # MelGAN's 1024 costs ~4x the steps; paired teacher audio needs less
    discriminator_warmup_steps: int = 1000
    log_floor: float = 1e-2  # the STFT losses' magnitudes are at least this (why: vocoder_losses.LOG_MEL_FLOOR)
    full_band: tuple[Resolution, ...] = FULL_BAND  # (fft, hop, window) of the full-band STFT losses
    sub_band: tuple[Resolution, ...] = SUB_BAND
    validation_utterances: int = 8  # the last ones of the teacher data, never trained on
    seed: int = 0

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples as lists, as in recipe.json

    @classmethod
    def from_dict(cls, values: dict) -> RecoverySettings:
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise RecoveryError(f"unknown recovery settings {unknown}")
        values = dict(values)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        for name in ("full_band", "sub_band"):
            if name in values:
                values[name] = tuple(Resolution(*r) for r in values[name])
        return cls(**values)

    def check(self) -> None:
        if not 0 < self.ratio < 1:
            raise RecoveryError(f"the pruning ratio is the fraction of channels removed, in (0, 1); got {self.ratio}")
        for name in ("round_to", "batch_size", "segment_samples", "validation_utterances"):
            if getattr(self, name) < 1:
                raise RecoveryError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.context_frames < 0:
            raise RecoveryError(f"context_frames must be >= 0, got {self.context_frames}")
        for name in ("log_floor", "learning_rate", "discriminator_learning_rate"):  # `not > 0`: NaN fails too
            if not getattr(self, name) > 0:
                raise RecoveryError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("full_band_weight", "sub_band_weight", "waveform_weight", "mel_weight", "hint_weight",
                     "adversarial_weight"):
            if not getattr(self, name) >= 0:
                raise RecoveryError(f"{name} must be >= 0 (0: off), got {getattr(self, name)}")
        if self.discriminator_warmup_steps < 0:
            raise RecoveryError(f"discriminator_warmup_steps must be >= 0, got {self.discriminator_warmup_steps}")
        if self.discriminator_max_channels < 16 or self.discriminator_max_channels % 4:
            raise RecoveryError(f"discriminator_max_channels must be a multiple of 4, >= 16; got "
                                f"{self.discriminator_max_channels}")
        if self.learning_rate_half_life < 0:
            raise RecoveryError(f"learning_rate_half_life must be >= 0 (0: constant), got "
                                f"{self.learning_rate_half_life}")
        if not (self.full_band and self.sub_band):
            raise RecoveryError("full_band and sub_band need at least one STFT resolution each")
