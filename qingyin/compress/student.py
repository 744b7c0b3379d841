"""Student acoustic models: the teacher's FastSpeech2 with a smaller decoder and postnet.

    teacher = load_teacher_acoustic("baker")
    student = build_student(teacher, StudentShape())        # 2 x 192 decoder, 3 x 256 postnet
    save_student(folder, student)                           # acoustic.json + acoustic.safetensors, as a voice has
    pruned = build_student(teacher, pruned_shape(teacher.config, 0.3))  # the teacher's layers, 30 % of every
                                                            # width (residual, feed-forward, postnet) and heads cut

What the student keeps: everything in front of the length regulator (symbol and speaker embeddings, encoder,
duration, pitch and energy predictors and embeddings), copied from the teacher and meant to stay frozen, so that
a student speaks with the teacher's durations and pitch and the tones stay the teacher's. What it shrinks: the
decoder (fewer, narrower layers) and the postnet (fewer, narrower convolutions), which do most of the work per
audio second (BENCHMARKS.md, "Where it ends").

A pruned decoder (`qingyin compress prune-decoder`) is the same thing with the teacher's layer counts: structured
pruning of its widths by magnitude, then recovery training on the teacher's mels.

The student's decoder and postnet start from the teacher's own layers, cut down by magnitude, rather than at
random:
- the residual width: the `decoder_hidden` of the teacher's decoder channels that weigh most in what reaches the
  mel (the L2 norm of each channel's column of the mel projection, times its scale in the last layer norm). The
  decoder projection starts as the selection of those channels, and every kept layer, the position table and the
  mel projection keep their rows and columns;
- the layers: the first `decoder_layers - 1` of the teacher's and its last one;
- each feed-forward block: the `ffn_channels` hidden channels with the largest product of their input and output
  weights' L2 norms; attention keeps its heads, or the `decoder_heads` whose value rows and output columns weigh
  most;
- the postnet: the teacher's first `postnet_layers - 1` convolutions and its last, each cut to the
  `postnet_channels` outputs of largest L2 norm (batch norms cut to match).
A cut-down layer does not compute what the teacher's did (layer norms see fewer channels); training on the
teacher's mels (qingyin.compress.student_training) recovers it. The result is an ordinary `FastSpeech2` of a
smaller config: the torch runtime, the ONNX export and the quantizer take it as they take the teacher.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from qingyin.compress.student_recipe import StudentError, StudentShape
from qingyin.families.fs2_mbmelgan.model.config import config_to_dict
from qingyin.families.fs2_mbmelgan.model.fastspeech2 import (
    FastSpeech2,
    FastSpeech2Config,
    SelfAttention,
    TransformerLayer,
)
from qingyin.families.fs2_mbmelgan.students import FRONT  # copied from the teacher, frozen while a student trains
from qingyin.families.fs2_mbmelgan.torch_runtime import load_module
from qingyin.runtime.files import replace_file
from qingyin.voices import registry


def student_config(teacher: FastSpeech2Config, shape: StudentShape) -> FastSpeech2Config:
    shape.check(*teacher_shape(teacher))
    decoder = dataclasses.replace(teacher.decoder, hidden=shape.decoder_hidden, layers=shape.decoder_layers,
                                  ffn_channels=shape.ffn_channels, heads=shape.decoder_heads or teacher.decoder.heads)
    return dataclasses.replace(teacher, decoder=decoder, postnet_layers=shape.postnet_layers,
                               postnet_channels=shape.postnet_channels)


def teacher_shape(teacher: FastSpeech2Config) -> tuple[int, ...]:
    """The teacher's decoder and postnet numbers in the order of StudentShape's fields."""
    return (teacher.decoder.hidden, teacher.decoder.layers, teacher.decoder.ffn_channels, teacher.postnet_layers,
            teacher.postnet_channels, teacher.decoder.heads)


def pruned_shape(teacher: FastSpeech2Config, ratio: float) -> StudentShape:
    """The shape of the teacher's decoder and postnet with `ratio` of their channels and heads pruned (layers
    kept): StudentShape.pruned."""
    return StudentShape.pruned(ratio, *teacher_shape(teacher))


def build_student(teacher: FastSpeech2, shape: StudentShape | None = None) -> FastSpeech2:
    """A student of `teacher` (see the module's docstring); the teacher is left as it was. Deterministic."""
    shape = shape or StudentShape()
    config = student_config(teacher.config, shape)
    if config.decoder.hidden == config.encoder.hidden and teacher.config.decoder.hidden != config.encoder.hidden:
        raise StudentError(f"a student decoder as wide as the encoder ({config.encoder.hidden}) has no projection "
                           "to start from the teacher's narrower one; choose another decoder_hidden")
    student = FastSpeech2(config).eval()
    with torch.no_grad():
        for name in FRONT:
            if getattr(teacher, name) is not None:
                setattr(student, name, copy.deepcopy(getattr(teacher, name)))
        _init_decoder(teacher, student, shape)
        _init_postnet(teacher.postnet, student.postnet, shape.postnet_channels)
    return student


def _largest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """The indices of the `count` largest scores, in their original order."""
    return torch.sort(torch.topk(scores, count).indices).values


def kept_residual_channels(teacher: FastSpeech2, hidden: int) -> torch.Tensor:
    """The `hidden` residual channels of the teacher's decoder a student keeps (see the module's docstring)."""
    weight = teacher.mel_projection.weight.norm(dim=0) * teacher.decoder.layers[-1].ffn_norm.weight.abs()
    return _largest(weight.detach(), hidden)


def source_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Which teacher decoder layer each student layer is cut from: the first ones, and the last for the last."""
    return [*range(student_layers - 1), teacher_layers - 1]


def _init_decoder(teacher: FastSpeech2, student: FastSpeech2, shape: StudentShape) -> None:
    layers = teacher.decoder.layers
    kept = kept_residual_channels(teacher, shape.decoder_hidden)
    if isinstance(student.decoder_projection, nn.Linear):  # else as wide as the encoder, and so is the teacher
        select = torch.eye(teacher.config.decoder.hidden)[kept]  # (student hidden, teacher hidden)
        if isinstance(teacher.decoder_projection, nn.Linear):  # the teacher's own projection, then the selection
            student.decoder_projection.weight.copy_(select @ teacher.decoder_projection.weight)
            student.decoder_projection.bias.copy_(select @ teacher.decoder_projection.bias)
        else:
            student.decoder_projection.weight.copy_(select)
            student.decoder_projection.bias.zero_()
    student.decoder.position_table.copy_(teacher.decoder.position_table[:, kept])
    sources = source_layers(len(layers), shape.decoder_layers)
    for target, source in zip(student.decoder.layers, (layers[i] for i in sources), strict=True):
        _init_layer(source, target, kept, shape.ffn_channels)
    student.mel_projection.weight.copy_(teacher.mel_projection.weight[:, kept])
    student.mel_projection.bias.copy_(teacher.mel_projection.bias)


def _kept_heads(source: SelfAttention, heads: int) -> torch.Tensor:
    """The rows of the query, key and value projections (and the columns of the output one) of the `heads` heads
    with the largest product of their value rows' and output columns' L2 norms."""
    size = source.head_size
    value = source.value.weight.reshape(source.heads, -1).norm(dim=1)
    output = source.output.weight.reshape(-1, source.heads, size).transpose(0, 1).reshape(source.heads, -1).norm(dim=1)
    chosen = _largest(value * output, heads)
    return (chosen[:, None] * size + torch.arange(size)).flatten()


def _init_layer(source: TransformerLayer, target: TransformerLayer, kept: torch.Tensor, ffn_channels: int) -> None:
    width = _kept_heads(source.attention, target.attention.heads)
    for name in ("query", "key", "value"):
        getattr(target.attention, name).weight.copy_(getattr(source.attention, name).weight[width][:, kept])
        getattr(target.attention, name).bias.copy_(getattr(source.attention, name).bias[width])
    target.attention.output.weight.copy_(source.attention.output.weight[kept][:, width])
    target.attention.output.bias.copy_(source.attention.output.bias[kept])
    scores = source.ffn_in.weight.flatten(1).norm(dim=1) * source.ffn_out.weight.transpose(0, 1).flatten(1).norm(dim=1)
    inner = _largest(scores, ffn_channels)
    target.ffn_in.weight.copy_(source.ffn_in.weight[inner][:, kept])
    target.ffn_in.bias.copy_(source.ffn_in.bias[inner])
    target.ffn_out.weight.copy_(source.ffn_out.weight[kept][:, inner])
    target.ffn_out.bias.copy_(source.ffn_out.bias[kept])
    for name in ("attention_norm", "ffn_norm"):
        getattr(target, name).weight.copy_(getattr(source, name).weight[kept])
        getattr(target, name).bias.copy_(getattr(source, name).bias[kept])


def _init_postnet(source: nn.Module, target: nn.Module, channels: int) -> None:
    count = len(target.convs)
    sources = [*range(count - 1), len(source.convs) - 1]
    previous: torch.Tensor | None = None  # which teacher channels the student's previous conv kept
    for position, index in enumerate(sources):
        conv, norm = source.convs[index], source.norms[index]
        if position == count - 1:  # the mel bins out
            outputs = torch.arange(conv.out_channels)
        else:
            outputs = _largest(conv.weight.flatten(1).norm(dim=1), channels)
        weight = conv.weight[outputs]
        if previous is not None:  # (the last conv read another teacher layer of the same width: any kept set fits)
            weight = weight[:, previous]
        target.convs[position].weight.copy_(weight)
        target.convs[position].bias.copy_(conv.bias[outputs])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(target.norms[position], name).copy_(getattr(norm, name)[outputs])
        previous = outputs


def front_parameters(model: FastSpeech2) -> list[nn.Parameter]:
    """The parameters of the front (FRONT), which a student does not train."""
    return [p for name in FRONT if getattr(model, name) is not None for p in getattr(model, name).parameters()]


def trained_parameters(model: FastSpeech2) -> list[nn.Parameter]:
    """The parameters a student trains: the decoder projection, decoder, mel projection and postnet."""
    front = {id(p) for p in front_parameters(model)}
    return [p for p in model.parameters() if id(p) not in front]


def parameter_counts(model: FastSpeech2) -> dict[str, int]:
    """Parameters of the whole model, of its front and of the part a student shrinks."""
    total = sum(p.numel() for p in model.parameters())
    front = sum(p.numel() for p in front_parameters(model))
    return {"total": total, "front": front, "decoder_and_postnet": total - front}


# --- files ----------------------------------------------------------------------------------------------------
def load_teacher_acoustic(model: str = "baker") -> FastSpeech2:
    """The installed acoustic model of catalog model `model` (fp32 torch, as the torch runtime loads it)."""
    folder = registry.model_dir(model)
    return load_acoustic(folder, missing=f"install it with `qingyin models fetch {model}`")


def save_student(folder: str | Path, model: FastSpeech2) -> None:
    """acoustic.json and acoustic.safetensors (fp32) in `folder`, the files a Baker voice folder holds, each
    written to a temporary file and renamed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config_to_dict(model.config), indent=1) + "\n"
    replace_file(folder / registry.ACOUSTIC_CONFIG, lambda path: path.write_text(text))
    weights = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    replace_file(folder / registry.ACOUSTIC_WEIGHTS, lambda path: save_file(weights, str(path)))


def load_acoustic(folder: str | Path, missing: str = "save a student there first") -> FastSpeech2:
    """The acoustic model (teacher or student) in `folder`, in eval mode."""
    folder = Path(folder)
    config_path, weights_path = folder / registry.ACOUSTIC_CONFIG, folder / registry.ACOUSTIC_WEIGHTS
    if not (config_path.is_file() and weights_path.is_file()):
        raise StudentError(f"no acoustic model in {folder} ({registry.ACOUSTIC_CONFIG} and "
                           f"{registry.ACOUSTIC_WEIGHTS}): {missing}")
    return load_module(folder, registry.ACOUSTIC_CONFIG, registry.ACOUSTIC_WEIGHTS, FastSpeech2Config, FastSpeech2)
