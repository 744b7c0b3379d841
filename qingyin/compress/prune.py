"""Structured channel pruning of the MB-MelGAN vocoder, and pruned vocoders saved and loaded without the pruner.

    teacher = load_teacher_vocoder("baker")               # fp32 torch, from $QINGYIN_HOME/voices/<model>/
    pruned = prune_vocoder(teacher, ratio=0.5)            # a new MBMelGANGenerator; the teacher is untouched
    save_pruned_vocoder(folder, pruned)                   # pruned_vocoder.json (architecture) + .safetensors
    pruned = load_pruned_vocoder(folder)                  # no torch-pruning needed to load

torch-pruning (the `compress` extra) traces the generator and removes the same fraction `ratio` of the output
channels of every dependency group, the channels with the smallest L2 norm over the group
(GroupMagnitudeImportance), each group's count rounded to a multiple of 8. The groups of MB-MelGAN are: the
input conv's outputs; each upsampling conv's outputs (read by the first residual stack of its stage); each
residual stack's hidden channels (dilated conv out, pointwise conv in); and each residual stack's outputs,
which its pointwise conv and shortcut conv add up and the next layer reads. What the model takes and gives stays:
the mel bins into the input conv, the sub-band channels out of the output conv (it is not pruned, so the PQMF
sees `subbands` signals), and the audio.

The result is an ordinary `MBMelGANGenerator` with narrower convolutions and the same forward. Its widths
(`VocoderWidths`, a few numbers per layer) are all it takes to rebuild it, so a checkpoint loads with
`build_vocoder(config, widths)` and a state dict.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from qingyin.families.fs2_mbmelgan.model.config import config_from_dict, config_to_dict
from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANConfig, MBMelGANGenerator, UpsampleConv
from qingyin.families.fs2_mbmelgan.torch_runtime import load_module
from qingyin.runtime.files import replace_file
from qingyin.voices import registry

ROUND_TO = 8  # channel counts stay multiples of 8 (SIMD-friendly)
PRUNED_CONFIG = "pruned_vocoder.json"
PRUNED_WEIGHTS = "pruned_vocoder.safetensors"


class PruningError(ValueError):
    """A bad ratio, a missing vocoder, or a saved architecture that does not fit its weights."""


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
        if set(values) != known:
            raise PruningError(f"vocoder widths need exactly the keys {sorted(known)}, got {sorted(values)}")
        return cls(int(values["input_channels"]), tuple(int(c) for c in values["upsample_channels"]),
                   tuple((int(h), int(o)) for h, o in values["stack_channels"]))

    def check(self, config: MBMelGANConfig) -> None:
        stages = len(config.upsample_scales)
        if len(self.upsample_channels) != stages or len(self.stack_channels) != stages * config.stacks:
            raise PruningError(f"widths for {len(self.upsample_channels)} stages and {len(self.stack_channels)} "
                               f"stacks do not fit a vocoder of {stages} stages x {config.stacks} stacks")
        counts = [self.input_channels, *self.upsample_channels, *(c for pair in self.stack_channels for c in pair)]
        if any(c < 1 for c in counts):
            raise PruningError(f"every layer needs at least one channel: {self}")


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


def prune_vocoder(model: MBMelGANGenerator, ratio: float, round_to: int = ROUND_TO) -> MBMelGANGenerator:
    """A copy of `model` with `ratio` of the channels of every group removed (see the module's docstring), rebuilt
    by `build_vocoder` from its widths so that it carries nothing of the pruner. Deterministic."""
    try:  # the `compress` extra; only pruning needs it, loading a pruned vocoder does not
        import torch_pruning as tp
    except ImportError:
        raise PruningError("pruning needs torch-pruning: pip install 'qingyin[compress]'") from None

    if not (isinstance(ratio, int | float) and 0 < ratio < 1):
        raise PruningError(f"the pruning ratio is the fraction of channels removed, in (0, 1); got {ratio!r}")
    config = model.config
    work = copy.deepcopy(model).float().eval()
    example = torch.zeros(1, 2 * config.min_frames, config.num_mels)  # only traced: its values do not matter
    pruner = tp.pruner.BasePruner(work, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=ratio, ignored_layers=[work.output_conv], round_to=round_to)
    with torch.no_grad():
        pruner.step()
    pruned = build_vocoder(config, vocoder_widths(work), device="meta")
    pruned.load_state_dict(work.state_dict(), strict=True, assign=True)
    return pruned.eval()


# --- files ----------------------------------------------------------------------------------------------------
def load_teacher_vocoder(model: str = "baker") -> MBMelGANGenerator:
    """The installed vocoder of catalog model `model` (fp32 torch, as the torch runtime loads it)."""
    folder = registry.model_dir(model)
    config_path, weights_path = folder / registry.VOCODER_CONFIG, folder / registry.VOCODER_WEIGHTS
    if not (config_path.is_file() and weights_path.is_file()):
        raise PruningError(f"no vocoder of {model!r} in {folder}: install it with `qingyin models fetch {model}`")
    return load_module(folder, registry.VOCODER_CONFIG, registry.VOCODER_WEIGHTS, MBMelGANConfig, MBMelGANGenerator)


def pruned_architecture(model: MBMelGANGenerator, **about: object) -> dict:
    """What `save_pruned_vocoder` writes to PRUNED_CONFIG: the vocoder's config, its widths, and `about` (e.g. the
    ratio and the teacher), which loading ignores."""
    return {"vocoder": config_to_dict(model.config), "widths": vocoder_widths(model).to_dict(),
            "parameters": parameter_count(model), **about}


def architecture_from(values: dict) -> tuple[MBMelGANConfig, VocoderWidths]:
    if "vocoder" not in values or "widths" not in values:
        raise PruningError("a pruned vocoder's architecture needs 'vocoder' (its config) and 'widths'")
    return config_from_dict(MBMelGANConfig, values["vocoder"]), VocoderWidths.from_dict(values["widths"])


def save_pruned_vocoder(folder: str | Path, model: MBMelGANGenerator, **about: object) -> None:
    """PRUNED_CONFIG and PRUNED_WEIGHTS (fp32) in `folder`, each written to a temporary file and renamed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(pruned_architecture(model, **about), indent=1) + "\n"
    replace_file(folder / PRUNED_CONFIG, lambda path: path.write_text(text))
    weights = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    replace_file(folder / PRUNED_WEIGHTS, lambda path: save_file(weights, str(path)))


def load_pruned_vocoder(folder: str | Path) -> MBMelGANGenerator:
    """The vocoder `save_pruned_vocoder` wrote into `folder`, in eval mode."""
    folder = Path(folder)
    if not (folder / PRUNED_CONFIG).is_file() or not (folder / PRUNED_WEIGHTS).is_file():
        raise PruningError(f"no pruned vocoder in {folder} ({PRUNED_CONFIG} and {PRUNED_WEIGHTS})")
    config, widths = architecture_from(json.loads((folder / PRUNED_CONFIG).read_text()))
    model = build_vocoder(config, widths, device="meta")
    model.load_state_dict(load_file(str(folder / PRUNED_WEIGHTS)), strict=True, assign=True)
    return model.eval()
