"""FastSpeech2 acoustic model: symbol ids -> per-symbol durations, pitch, energy -> normalized mel frames.

The layer structure follows TensorFlowTTS's FastSpeech2 (the family of the pretrained Baker voice):
a transformer encoder whose feed-forward blocks are convolutions with Mish, a variance adaptor that
predicts log-duration, pitch and energy per symbol (pitch and energy are fed back as 1-D
convolution embeddings), a length regulator, a transformer decoder, a linear mel projection and a
5-layer convolutional postnet. Every size comes from `FastSpeech2Config`, so smaller students reuse
these classes. Padded batches are masked before every convolution, so a padded item gives the same
result as the item alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qingyin.families.errors import SequenceTooLongError
from qingyin.families.fs2_mbmelgan.features import ramp_weights as frame_ramp


@dataclass(frozen=True)
class TransformerConfig:
    hidden: int = 256
    layers: int = 3
    heads: int = 2
    head_size: int = 16  # attention width is heads * head_size, independent of `hidden`
    ffn_channels: int = 1024
    ffn_kernel_size: int = 3
    dropout: float = 0.2
    attention_dropout: float = 0.1


@dataclass(frozen=True)
class VariancePredictorConfig:
    channels: int = 256
    kernel_size: int = 3
    layers: int = 2
    dropout: float = 0.5


@dataclass(frozen=True)
class FastSpeech2Config:
    """Architecture only: no paths, no training settings, no dataset statistics."""

    num_symbols: int = 219
    num_speakers: int = 1  # rows of the speaker table; a single-speaker voice has one all-zero row
    num_emotions: int = 0  # rows of the emotion table; 0 = no emotion input
    num_mels: int = 80
    max_positions: int = 2048  # longest symbol sequence and longest mel, in frames
    encoder: TransformerConfig = field(default_factory=TransformerConfig)
    decoder: TransformerConfig = field(default_factory=TransformerConfig)
    variance: VariancePredictorConfig = field(default_factory=VariancePredictorConfig)
    variance_embedding_kernel_size: int = 9  # pitch/energy value -> hidden vector convolution
    variance_embedding_dropout: float = 0.5
    postnet_layers: int = 5
    postnet_channels: int = 512
    postnet_kernel_size: int = 5
    postnet_dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    pad_id: int = 0


class AcousticOutput(NamedTuple):
    mel_before: Tensor  # (B, T_mel, num_mels), before the postnet
    mel: Tensor  # (B, T_mel, num_mels), after the postnet; padded frames are zero
    mel_lengths: Tensor  # (B,)
    log_durations: Tensor  # (B, T_text), raw duration predictor output (log(1 + frames))
    durations: Tensor  # (B, T_text), integer frames actually used
    pitch: Tensor  # (B, T_text), normalized pitch actually used
    energy: Tensor  # (B, T_text), normalized energy actually used


def sinusoid_table(positions: int, dim: int) -> Tensor:
    """(positions + 1, dim) interleaved sin/cos table; row 0 is the all-zero padding position."""
    pos = torch.arange(positions + 1, dtype=torch.float64)[:, None]
    rates = torch.pow(10000.0, 2.0 * (torch.arange(dim) // 2) / dim)[None, :]
    table = pos / rates
    table[:, 0::2] = torch.sin(table[:, 0::2])
    table[:, 1::2] = torch.cos(table[:, 1::2])
    table[0] = 0.0
    return table.float()


def sequence_mask(lengths: Tensor, max_length: int) -> Tensor:
    """(B,) lengths -> (B, T) bool, True on valid steps."""
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]


def masked_conv(conv: nn.Conv1d, x: Tensor, mask: Tensor) -> Tensor:
    """Channels-last conv over valid steps only: (B, T, C) -> (B, T, C'), padding zeroed first."""
    x = x * mask[..., None]
    return conv(x.transpose(1, 2)).transpose(1, 2)


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, head_size: int, dropout: float):
        super().__init__()
        self.heads, self.head_size = heads, head_size
        width = heads * head_size
        self.query = nn.Linear(hidden, width)
        self.key = nn.Linear(hidden, width)
        self.value = nn.Linear(hidden, width)
        self.output = nn.Linear(width, hidden)
        self.dropout = dropout

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        batch, steps, _ = x.shape

        def split(t: Tensor) -> Tensor:  # (B, T, H*D) -> (B, H, T, D)
            return t.view(batch, steps, self.heads, self.head_size).transpose(1, 2)

        key_mask = mask[:, None, None, :]  # (B, 1, 1, T): padded keys get no attention
        context = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)),
            attn_mask=key_mask, dropout_p=self.dropout if self.training else 0.0,
        )
        context = context.transpose(1, 2).reshape(batch, steps, self.heads * self.head_size)
        return self.output(context)


class TransformerLayer(nn.Module):
    """Self-attention and a convolutional feed-forward block, each with residual + post-LayerNorm."""

    def __init__(self, cfg: TransformerConfig, eps: float):
        super().__init__()
        self.attention = SelfAttention(cfg.hidden, cfg.heads, cfg.head_size, cfg.attention_dropout)
        self.attention_norm = nn.LayerNorm(cfg.hidden, eps=eps)
        pad = cfg.ffn_kernel_size // 2
        self.ffn_in = nn.Conv1d(cfg.hidden, cfg.ffn_channels, cfg.ffn_kernel_size, padding=pad)
        self.ffn_out = nn.Conv1d(cfg.ffn_channels, cfg.hidden, cfg.ffn_kernel_size, padding=pad)
        self.ffn_norm = nn.LayerNorm(cfg.hidden, eps=eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        valid = mask[..., None]
        x = self.attention_norm(x + self.dropout(self.attention(x, mask))) * valid
        hidden = F.mish(masked_conv(self.ffn_in, x, mask))
        hidden = masked_conv(self.ffn_out, hidden, mask) * valid
        return self.ffn_norm(x + self.dropout(hidden)) * valid


class TransformerStack(nn.Module):
    """Adds sinusoidal positions (1-based; 0 = padding), then runs the layers."""

    def __init__(self, cfg: TransformerConfig, max_positions: int, eps: float):
        super().__init__()
        # A buffer, not a formula: imported voices carry the exact (possibly quantized) table they were
        # trained with.
        self.register_buffer("position_table", sinusoid_table(max_positions, cfg.hidden))
        self.layers = nn.ModuleList(TransformerLayer(cfg, eps) for _ in range(cfg.layers))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        positions = torch.cumsum(mask.long(), dim=1) * mask  # (B, T): 1..len, 0 on padding
        x = x + F.embedding(positions, self.position_table)
        for layer in self.layers:
            x = layer(x, mask)
        return x


class VariancePredictor(nn.Module):
    """(Conv -> ReLU -> LayerNorm -> Dropout) x layers -> Linear: one scalar per symbol."""

    def __init__(self, hidden: int, cfg: VariancePredictorConfig, eps: float):
        super().__init__()
        channels = [hidden] + [cfg.channels] * cfg.layers
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, cfg.kernel_size, padding=cfg.kernel_size // 2)
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.channels, eps=eps) for _ in range(cfg.layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(cfg.channels, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = self.dropout(norm(F.relu(masked_conv(conv, x, mask))))
        return self.output(x).squeeze(-1) * mask  # (B, T)


class VarianceEmbedding(nn.Module):
    """A per-symbol scalar (pitch or energy) -> (B, T, hidden) by a 1-D convolution over symbols."""

    def __init__(self, hidden: int, kernel_size: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(1, hidden, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, values: Tensor, mask: Tensor) -> Tensor:
        return self.dropout(masked_conv(self.conv, values[..., None], mask))


class PostNet(nn.Module):
    """Residual mel refinement: (Conv -> BatchNorm -> tanh) x (layers - 1) -> Conv -> BatchNorm."""

    def __init__(self, num_mels: int, channels: int, kernel_size: int, layers: int, dropout: float):
        super().__init__()
        sizes = [num_mels] + [channels] * (layers - 1) + [num_mels]
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2)
            for c_in, c_out in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(c) for c in sizes[1:])
        self.dropout = nn.Dropout(dropout)

    def forward(self, mel: Tensor, mask: Tensor) -> Tensor:
        x = mel
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = norm(masked_conv(conv, x, mask).transpose(1, 2)).transpose(1, 2)
            if i < len(self.convs) - 1:
                x = torch.tanh(x)
            x = self.dropout(x)
        return x * mask[..., None]


def length_regulate(x: Tensor, durations: Tensor) -> tuple[Tensor, Tensor]:
    """Repeat each symbol's vector `durations` times: (B, T_text, H) -> (B, T_mel, H), mel lengths."""
    mel_lengths = durations.sum(dim=1)
    if x.shape[0] == 1:  # the common case, without a padding copy
        return torch.repeat_interleave(x[0], durations[0], dim=0)[None], mel_lengths
    expanded = [torch.repeat_interleave(item, d, dim=0) for item, d in zip(x, durations, strict=True)]
    return nn.utils.rnn.pad_sequence(expanded, batch_first=True), mel_lengths


def ramp_weights(durations: Tensor, frames: int) -> Tensor:
    """(B, frames) each frame's place in its symbol (features.ramp_weights per item); 0 after the item's last
    frame."""
    rows = [torch.from_numpy(frame_ramp(item.cpu().numpy())) for item in durations]
    return torch.stack([nn.functional.pad(row, (0, frames - len(row))) for row in rows]).to(durations.device)


class FastSpeech2(nn.Module):
    """Encoder -> variance adaptor -> length regulator -> decoder -> mel + postnet. Knows no text or files."""

    def __init__(self, cfg: FastSpeech2Config):
        super().__init__()
        self.config = cfg
        hidden = cfg.encoder.hidden
        eps = cfg.layer_norm_eps
        self.symbol_embedding = nn.Embedding(cfg.num_symbols, hidden, padding_idx=cfg.pad_id)
        self.speaker_embedding = nn.Embedding(cfg.num_speakers, hidden)
        nn.init.zeros_(self.speaker_embedding.weight)
        self.emotion_embedding = nn.Embedding(cfg.num_emotions, hidden) if cfg.num_emotions else None
        self.encoder = TransformerStack(cfg.encoder, cfg.max_positions, eps)
        self.duration_predictor = VariancePredictor(hidden, cfg.variance, eps)
        self.pitch_predictor = VariancePredictor(hidden, cfg.variance, eps)
        self.energy_predictor = VariancePredictor(hidden, cfg.variance, eps)
        kernel, drop = cfg.variance_embedding_kernel_size, cfg.variance_embedding_dropout
        self.pitch_embedding = VarianceEmbedding(hidden, kernel, drop)
        self.energy_embedding = VarianceEmbedding(hidden, kernel, drop)
        self.decoder_projection = (
            nn.Linear(hidden, cfg.decoder.hidden) if cfg.decoder.hidden != hidden else nn.Identity()
        )
        self.decoder = TransformerStack(cfg.decoder, cfg.max_positions, eps)
        self.mel_projection = nn.Linear(cfg.decoder.hidden, cfg.num_mels)
        self.postnet = PostNet(
            cfg.num_mels, cfg.postnet_channels, cfg.postnet_kernel_size, cfg.postnet_layers, cfg.postnet_dropout
        )

    def encode(self, symbols: Tensor, lengths: Tensor | None = None, speakers: Tensor | None = None,
               emotions: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Encoder states with the speaker (and emotion) added, (B, T_text, H), and the (B, T_text) mask."""
        batch, steps = symbols.shape
        if steps > self.config.max_positions:
            raise SequenceTooLongError(f"{steps} symbols exceed the model's limit of {self.config.max_positions}")
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long, device=symbols.device)
        mask = sequence_mask(lengths, steps)  # (B, T_text)
        valid = mask[..., None].float()

        x = self.symbol_embedding(symbols)  # (B, T_text, H)
        x = self.encoder(x, mask)
        speakers = torch.zeros_like(lengths) if speakers is None else speakers
        x = x + self.speaker_embedding(speakers)[:, None, :] * valid
        if emotions is not None:
            if self.emotion_embedding is None:
                raise ValueError("this model has no emotion table (num_emotions=0)")
            x = x + self.emotion_embedding(emotions)[:, None, :] * valid
        return x, mask

    def predict(self, symbols: Tensor, speakers: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Unrounded frames, pitch and energy per symbol as predicted at neutral settings, each (B, T_text)."""
        x, mask = self.encode(symbols, None, speakers)
        frames = torch.relu(torch.exp(self.duration_predictor(x, mask)) - 1.0)
        return frames, self.pitch_predictor(x, mask), self.energy_predictor(x, mask)

    def forward(
        self,
        symbols: Tensor,
        lengths: Tensor | None = None,
        speakers: Tensor | None = None,
        emotions: Tensor | None = None,
        duration_scale: Tensor | float = 1.0,
        pitch_scale: Tensor | float = 1.0,
        energy_scale: Tensor | float = 1.0,
        durations: Tensor | None = None,
        pitch: Tensor | None = None,
        energy: Tensor | None = None,
        pitch_scale_end: Tensor | float | None = None,
    ) -> AcousticOutput:
        """Synthesize mels for a (padded) batch of symbol ids.

        symbols: (B, T_text) ids; lengths: (B,) valid lengths (default: all of T_text).
        speakers, emotions: (B,) ids into the speaker/emotion tables (default: row 0 / none).
        *_scale: multiply the *predicted* durations, pitch and energy; a float, (B, 1) or per symbol (B, T_text).
            duration_scale > 1 is slower speech. Pitch and energy are normalized (z-score) values, so
            their scales widen or narrow the excursions around the voice's mean.
        durations, pitch, energy: (B, T_text) per-symbol overrides that replace the predictions
            (durations in frames) — the hook for timing and style control.
        pitch_scale_end: where given (and `pitch` is not), each symbol's pitch moves across its frames from the
            predicted pitch times `pitch_scale` to the predicted pitch times this: a contour inside a syllable.
            The returned pitch is then each symbol's middle.
        """
        x, mask = self.encode(symbols, lengths, speakers, emotions)
        log_durations = self.duration_predictor(x, mask)
        if durations is None:
            frames = torch.relu(torch.exp(log_durations) - 1.0) * duration_scale
            durations = torch.round(frames).long()  # round half to even, like TensorFlow
        durations = durations.long() * mask
        pitch_end = None
        if pitch is None:
            predicted = self.pitch_predictor(x, mask)
            pitch = predicted * pitch_scale
            if pitch_scale_end is not None:
                pitch_end = predicted * pitch_scale_end * mask
        if energy is None:
            energy = self.energy_predictor(x, mask) * energy_scale
        pitch, energy = pitch * mask, energy * mask
        x = x + self.pitch_embedding(pitch, mask) + self.energy_embedding(energy, mask)

        if pitch_end is None:
            x, mel_lengths = length_regulate(x, durations)  # (B, T_mel, H)
        else:
            # The states are affine in the pitch, so blending the regulated states at the start and end pitch
            # frame by frame gives the states of a pitch that moves across each symbol.
            change = self.pitch_embedding(pitch_end, mask) - self.pitch_embedding(pitch, mask)
            x, mel_lengths = length_regulate(x, durations)
            change, _ = length_regulate(change, durations)
            x = x + ramp_weights(durations, x.shape[1])[..., None] * change
            pitch = (pitch + pitch_end) / 2
        if x.shape[1] == 0:
            raise ValueError("every symbol got zero frames: nothing to synthesize (speak slower or force durations)")
        if x.shape[1] > self.config.max_positions:
            raise SequenceTooLongError(
                f"{x.shape[1]} mel frames exceed the model's limit of {self.config.max_positions}; "
                "synthesize shorter sentences or speak faster"
            )
        mel_mask = sequence_mask(mel_lengths, x.shape[1])
        x = self.decoder(self.decoder_projection(x), mel_mask)
        mel_before = self.mel_projection(x) * mel_mask[..., None]
        mel = mel_before + self.postnet(mel_before, mel_mask)
        return AcousticOutput(mel_before, mel, mel_lengths, log_durations, durations, pitch, energy)
