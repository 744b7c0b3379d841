"""MB-MelGAN generators with narrower layers than their config's: what a pruned vocoder is, without the pruner.

    widths = VocoderWidths.unpruned(config)               # the channel counts MBMelGANGenerator(config) has
    model = build_vocoder(config, widths)                 # the same forward, narrower convolutions
    config, widths = architecture_from(json.loads(text))  # from the JSON `vocoder_architecture` writes

A pruned vocoder (qingyin.compress.prune removes channels; qingyin.compress.vocoder_recovery retrains them) is an
ordinary `MBMelGANGenerator` whose convolutions have fewer channels. Its widths (a few numbers per layer) and its
config are all it takes to rebuild it, so it loads with `build_vocoder` and a state dict: the shipped pruned
vocoders (qingyin.families.fs2_mbmelgan.students) need neither torch-pruning nor the compress package.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from qingyin.families.fs2_mbmelgan.model.config import config_from_dict, config_to_dict
from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANConfig, MBMelGANGenerator, UpsampleConv


class VocoderWidthsError(ValueError):
    """Widths that do not fit the vocoder's config, or an architecture record without them."""


@dataclass(frozen=True)
class VocoderWidths:
    """The channel counts of a (pruned) MB-MelGAN generator, all it takes to rebuild its layers.

    input_channels: outputs of the input conv (the original: config.channels)
    upsample_channels: outputs of each upsampling conv, stage by stage (the original: channels / 2, / 4, ...)
    stack_channels: (hidden, out) of each residual stack, stage by stage and in order within a stage: hidden is
        the dilated conv's outputs (the pointwise conv's inputs), out the pointwise and shortcut convs' outputs
        (what the next layer reads)
    """

    input_channels: int
    upsample_channels: tuple[int, ...]
    stack_channels: tuple[tuple[int, int], ...]

    @classmethod
    def unpruned(cls, config: MBMelGANConfig) -> VocoderWidths:
        upsample = tuple(config.channels // 2 ** (i + 1) for i in range(len(config.upsample_scales)))
        return cls(config.channels, upsample, tuple((c, c) for c in upsample for _ in range(config.stacks)))

    def to_dict(self) -> dict:
        return {"input_channels": self.input_channels, "upsample_channels": list(self.upsample_channels),
                "stack_channels": [list(pair) for pair in self.stack_channels]}

    @classmethod
    def from_dict(cls, values: dict) -> VocoderWidths:
        known = {"input_channels", "upsample_channels", "stack_channels"}
        if not isinstance(values, dict) or set(values) != known:
            raise VocoderWidthsError(f"vocoder widths need exactly the keys {sorted(known)}, got "
                                     f"{sorted(values) if isinstance(values, dict) else values!r}")
        return cls(int(values["input_channels"]), tuple(int(c) for c in values["upsample_channels"]),
                   tuple((int(h), int(o)) for h, o in values["stack_channels"]))

    def check(self, config: MBMelGANConfig) -> None:
        stages = len(config.upsample_scales)
        if len(self.upsample_channels) != stages or len(self.stack_channels) != stages * config.stacks:
            raise VocoderWidthsError(f"widths for {len(self.upsample_channels)} stages and {len(self.stack_channels)} "
                                     f"stacks do not fit a vocoder of {stages} stages x {config.stacks} stacks")
        counts = [self.input_channels, *self.upsample_channels, *(c for pair in self.stack_channels for c in pair)]
        if any(c < 1 for c in counts):
            raise VocoderWidthsError(f"every layer needs at least one channel: {self}")


def vocoder_widths(model: MBMelGANGenerator) -> VocoderWidths:
    """The channel counts of `model`'s layers."""
    stacks = tuple((stack.dilated_conv.out_channels, stack.pointwise_conv.out_channels)
                   for stage in model.residual_stacks for stack in stage)
    return VocoderWidths(model.input_conv.out_channels, tuple(u.out_channels for u in model.upsamples), stacks)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_vocoder(config: MBMelGANConfig, widths: VocoderWidths, device: str | torch.device = "cpu"
                  ) -> MBMelGANGenerator:
    """An `MBMelGANGenerator` of `config` whose layers have `widths` channels (randomly initialized; on the "meta"
    device, for `load_state_dict(..., assign=True)`, nothing is allocated)."""
    widths.check(config)
    with torch.device("meta"):  # the full-width layers are only a template: no memory, no initialization
        model = MBMelGANGenerator(config)
    with torch.device(device):
        model.input_conv = _resized(model.input_conv, config.num_mels, widths.input_channels)
        channels, stacks = widths.input_channels, iter(widths.stack_channels)
        for stage, scale in enumerate(config.upsample_scales):
            model.upsamples[stage] = UpsampleConv(channels, widths.upsample_channels[stage], scale)
            channels = widths.upsample_channels[stage]
            for stack in model.residual_stacks[stage]:
                hidden, out = next(stacks)
                stack.dilated_conv = _resized(stack.dilated_conv, channels, hidden)
                stack.pointwise_conv = _resized(stack.pointwise_conv, hidden, out)
                stack.shortcut = _resized(stack.shortcut, channels, out)
                channels = out
        model.output_conv = _resized(model.output_conv, channels, config.subbands)
        model.pqmf = type(model.pqmf)(config.subbands, config.taps, config.cutoff_ratio, config.beta)
    return model


def _resized(conv: nn.Conv1d, in_channels: int, out_channels: int) -> nn.Conv1d:
    """A conv like `conv` (kernel, dilation, padding, padding mode) with other channel counts."""
    return nn.Conv1d(in_channels, out_channels, conv.kernel_size[0], stride=conv.stride[0], padding=conv.padding[0],
                     dilation=conv.dilation[0], bias=conv.bias is not None, padding_mode=conv.padding_mode)


def vocoder_architecture(model: MBMelGANGenerator, **about: object) -> dict:
    """A vocoder's config and widths as JSON-ready values, with `about` (e.g. the ratio and the teacher), which
    `architecture_from` ignores."""
    return {"vocoder": config_to_dict(model.config), "widths": vocoder_widths(model).to_dict(),
            "parameters": parameter_count(model), **about}


def architecture_from(values: dict) -> tuple[MBMelGANConfig, VocoderWidths]:
    """The config and widths `vocoder_architecture` recorded."""
    if not isinstance(values, dict) or "vocoder" not in values or "widths" not in values:
        raise VocoderWidthsError("a pruned vocoder's architecture needs 'vocoder' (its config) and 'widths'")
    return config_from_dict(MBMelGANConfig, values["vocoder"]), VocoderWidths.from_dict(values["widths"])


def vocoder_from(architecture: dict, tensors: dict[str, torch.Tensor]) -> MBMelGANGenerator:
    """The vocoder `architecture` (as `vocoder_architecture` records it) describes, holding `tensors` (its state,
    float32 or float16) in float32, in eval mode. VocoderWidthsError when they do not fit."""
    config, widths = architecture_from(architecture)
    model = build_vocoder(config, widths, device="meta")
    state = model.state_dict()
    if set(tensors) != set(state) or any(tensors[key].shape != state[key].shape for key in state):
        raise VocoderWidthsError("the vocoder's tensors do not fit the widths its architecture records")
    model.load_state_dict({key: tensor.float() if tensor.is_floating_point() else tensor
                           for key, tensor in tensors.items()}, strict=True, assign=True)
    return model.eval()
