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
(qingyin.families.fs2_mbmelgan.model.widths.VocoderWidths, a few numbers per layer) are all it takes to rebuild
it, so a checkpoint loads with `build_vocoder(config, widths)` and a state dict.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANConfig, MBMelGANGenerator
from qingyin.families.fs2_mbmelgan.model.widths import (
    VocoderWidthsError,
    build_vocoder,
    vocoder_architecture,
    vocoder_from,
    vocoder_widths,
)
from qingyin.families.fs2_mbmelgan.torch_runtime import load_module
from qingyin.runtime.files import replace_file
from qingyin.voices import registry

ROUND_TO = 8  # channel counts stay multiples of 8 (SIMD-friendly)
PRUNED_CONFIG = "pruned_vocoder.json"
PRUNED_WEIGHTS = "pruned_vocoder.safetensors"


class PruningError(VocoderWidthsError):
    """A bad ratio, a missing vocoder, or a saved architecture that does not fit its weights."""


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


def hint_layers(model: MBMelGANGenerator) -> dict[str, torch.nn.Module]:
    """The layers whose outputs a pruned vocoder's recovery can match against its teacher's: the input conv, each
    upsampling conv and each residual stack, by module path."""
    layers: dict[str, torch.nn.Module] = {"input_conv": model.input_conv}
    for stage, (upsample, stacks) in enumerate(zip(model.upsamples, model.residual_stacks, strict=True)):
        layers[f"upsamples.{stage}"] = upsample
        layers.update({f"residual_stacks.{stage}.{index}": stack for index, stack in enumerate(stacks)})
    return layers


def kept_channels(teacher: MBMelGANGenerator, pruned: MBMelGANGenerator) -> dict[str, list[int]]:
    """For each of `hint_layers`, the teacher's output channels that `pruned` (as pruned, before any training)
    kept, in its order. Pruning copies each kept channel's bias, so the biases tell them apart."""
    kept = {}
    for (name, theirs), mine in zip(hint_layers(teacher).items(), hint_layers(pruned).values(), strict=True):
        if name.startswith("residual_stacks"):  # a stack's output: its pointwise conv's channels (+ shortcut's)
            theirs, mine = theirs.pointwise_conv, mine.pointwise_conv
        where = {float(value): index for index, value in enumerate(theirs.bias.detach().tolist())}
        if len(where) != theirs.bias.numel():
            raise PruningError(f"{name}: the teacher's biases repeat, so the kept channels cannot be told apart")
        try:
            kept[name] = [where[float(value)] for value in mine.bias.detach().tolist()]
        except KeyError:
            raise PruningError(f"{name}: the pruned vocoder's channels are not the teacher's (trained already?)"
                               ) from None
    return kept


# --- files ----------------------------------------------------------------------------------------------------
def load_teacher_vocoder(model: str = "baker") -> MBMelGANGenerator:
    """The installed vocoder of catalog model `model` (fp32 torch, as the torch runtime loads it)."""
    folder = registry.model_dir(model)
    config_path, weights_path = folder / registry.VOCODER_CONFIG, folder / registry.VOCODER_WEIGHTS
    if not (config_path.is_file() and weights_path.is_file()):
        raise PruningError(f"no vocoder of {model!r} in {folder}: install it with `qingyin models fetch {model}`")
    return load_module(folder, registry.VOCODER_CONFIG, registry.VOCODER_WEIGHTS, MBMelGANConfig, MBMelGANGenerator)


def save_pruned_vocoder(folder: str | Path, model: MBMelGANGenerator, **about: object) -> None:
    """PRUNED_CONFIG and PRUNED_WEIGHTS (fp32) in `folder`, each written to a temporary file and renamed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(vocoder_architecture(model, **about), indent=1) + "\n"
    replace_file(folder / PRUNED_CONFIG, lambda path: path.write_text(text))
    weights = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    replace_file(folder / PRUNED_WEIGHTS, lambda path: save_file(weights, str(path)))


def load_pruned_vocoder(folder: str | Path) -> MBMelGANGenerator:
    """The vocoder `save_pruned_vocoder` wrote into `folder`, in eval mode."""
    folder = Path(folder)
    if not (folder / PRUNED_CONFIG).is_file() or not (folder / PRUNED_WEIGHTS).is_file():
        raise PruningError(f"no pruned vocoder in {folder} ({PRUNED_CONFIG} and {PRUNED_WEIGHTS})")
    return vocoder_from(json.loads((folder / PRUNED_CONFIG).read_text()), load_file(str(folder / PRUNED_WEIGHTS)))
