"""TensorFlowTTS FastSpeech2 .tflite -> our `FastSpeech2` config + state_dict.

Each weight-bearing op (FULLY_CONNECTED, CONV_2D, the LayerNorm/BatchNorm affine MUL/SUB/ADD) is
identified by the TensorFlow scope in its *output* tensor name, which is unique per op; its weights
are read from its *input* tensors by index. (Constant names are not trustworthy: the converter
merges byte-identical constants under one name.) Biases are not inputs of the matmul/conv ops: they
are the constant of the ADD that follows through RESHAPE/SQUEEZE. INT8 weights are dequantized
by the graph reader.

TFLite layouts: FULLY_CONNECTED weights are (out, in) like nn.Linear; CONV_2D weights of a 1-D conv
are (out, 1, kernel, in) and become nn.Conv1d's (out, in, kernel).
"""

from __future__ import annotations

import re

import numpy as np
import torch

from qingyin.families.fs2_mbmelgan.model.fastspeech2 import (
    FastSpeech2,
    FastSpeech2Config,
    TransformerConfig,
    VariancePredictorConfig,
)
from qingyin.voices.tflite_graph import Operator, TFLiteGraph

_PREDICTORS = {"duration_predictor": "duration_predictor", "f0_predictor": "pitch_predictor",
               "energy_predictor": "energy_predictor"}

# TensorFlow scope -> our module path. Applied in order; the first match wins.
_SCOPE_RULES: list[tuple[str, str]] = [
    (r"(encoder|decoder)/layer_\._(\d+)/attention/self/(query|key|value)", r"\1.layers.\2.attention.\3"),
    (r"(encoder|decoder)/layer_\._(\d+)/attention/output/dense", r"\1.layers.\2.attention.output"),
    (r"(encoder|decoder)/layer_\._(\d+)/attention/output/LayerNorm", r"\1.layers.\2.attention_norm"),
    (r"(encoder|decoder)/layer_\._(\d+)/intermediate/conv1d_1", r"\1.layers.\2.ffn_in"),
    (r"(encoder|decoder)/layer_\._(\d+)/intermediate/conv1d_2", r"\1.layers.\2.ffn_out"),
    (r"(encoder|decoder)/layer_\._(\d+)/output/LayerNorm", r"\1.layers.\2.ffn_norm"),
    (r"(\w+_predictor)/sequential_\d+/conv_\._(\d+)", r"\1.convs.\2"),
    (r"(\w+_predictor)/sequential_\d+/LayerNorm_\._(\d+)", r"\1.norms.\2"),
    (r"(\w+_predictor)/dense_\d+", r"\1.output"),
    (r"f0_embeddings", "pitch_embedding.conv"),
    (r"energy_embeddings", "energy_embedding.conv"),
    (r"mel_before", "mel_projection"),
    (r"postnet/conv_\._(\d+)", r"postnet.convs.\1"),
    (r"postnet/batch_norm_\._(\d+)", r"postnet.norms.\1"),
]


def _module_path(scope: str) -> str:
    for pattern, replacement in _SCOPE_RULES:
        if re.fullmatch(pattern, scope):
            path = re.sub(pattern, replacement, scope)
            for tf_name, ours in _PREDICTORS.items():
                path = path.replace(tf_name, ours)
            return path
    raise LookupError(f"unexpected weight scope {scope!r} in the FastSpeech2 graph")


def _scope(graph: TFLiteGraph, op: Operator, marker: str) -> str:
    """TF scope of an op from its unique output name, e.g. '.../key/Tensordot/MatMul1' -> '.../key'."""
    name = graph.name(op.outputs[0]).split(";")[0]
    if marker not in name:
        raise LookupError(f"op {op.index} {op.kind} output {name!r} lacks {marker!r}")
    return name[: name.rindex(marker)]


def _bias_after(graph: TFLiteGraph, op: Operator) -> np.ndarray:
    add = graph.follow_to(op.outputs[0], "ADD", passthrough=("RESHAPE", "SQUEEZE"))
    bias = graph.constant_operand(add)
    if len(op.inputs) > 2 and graph.is_constant(op.inputs[2]):
        bias = bias + graph.constant(op.inputs[2])  # the conv's own (usually zero) bias input
    return bias


def _collect_weights(graph: TFLiteGraph, eps: float) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}

    def put(name: str, value: np.ndarray) -> None:
        if name in weights:
            raise LookupError(f"two graph ops map onto {name}")
        weights[name] = np.ascontiguousarray(value, dtype=np.float32)

    for op in graph.ops("FULLY_CONNECTED"):
        path = _module_path(_scope(graph, op, "/Tensordot"))
        put(f"{path}.weight", graph.constant(op.inputs[1]))
        put(f"{path}.bias", _bias_after(graph, op))
    for op in graph.ops("CONV_2D"):
        path = _module_path(_scope(graph, op, "/conv1d"))
        kernel = graph.constant(op.inputs[1])  # (out, 1, k, in)
        put(f"{path}.weight", kernel[:, 0].transpose(0, 2, 1))
        put(f"{path}.bias", _bias_after(graph, op))

    for op in graph.operators:
        if op.kind not in ("MUL", "SUB", "ADD") or not any(graph.is_constant(t) for t in op.inputs):
            continue
        name = graph.name(op.outputs[0])
        if name.endswith("LayerNorm/batchnorm/mul") or re.search(r"LayerNorm_\._\d+/batchnorm/mul$", name):
            put(f"{_module_path(name.rsplit('/batchnorm', 1)[0])}.weight", graph.constant_operand(op))
        elif op.kind == "SUB" and "LayerNorm" in name and name.endswith("batchnorm/sub"):
            put(f"{_module_path(name.rsplit('/batchnorm', 1)[0])}.bias", graph.constant_operand(op))
        elif "postnet/batch_norm" in name and name.endswith(("batchnorm/mul_1", "batchnorm/add_1")):
            # Inference BatchNorm folded to x * scale + shift. Stored as weight/bias with unit running
            # variance: BatchNorm1d computes x / sqrt(1 + eps) * weight + bias.
            path = _module_path(name.rsplit("/batchnorm", 1)[0])
            value = graph.constant_operand(op)
            if op.kind == "MUL":
                put(f"{path}.weight", value * np.sqrt(1.0 + eps, dtype=np.float32))
                put(f"{path}.running_mean", np.zeros_like(value))
                put(f"{path}.running_var", np.ones_like(value))
            else:
                put(f"{path}.bias", value)

    for op in graph.ops("GATHER"):
        table = op.inputs[0]
        if graph.is_constant(table) and graph.name(table).startswith("embeddings/Gather"):
            put("symbol_embedding.weight", graph.constant(table))
    for op in graph.ops("DEQUANTIZE"):
        if "position_embeddings" in graph.name(op.inputs[0]) and graph.is_constant(op.inputs[0]):
            table = graph.constant(op.inputs[0])
            put("encoder.position_table", table)
            put("decoder.position_table", table.copy())  # the converter shares one sin/cos table for both
    return weights


def _layer_norm_eps(graph: TFLiteGraph) -> float:
    for op in graph.ops("ADD"):
        if graph.name(op.outputs[0]).endswith("LayerNorm/batchnorm/add"):
            return float(graph.constant_operand(op).reshape(-1)[0])
    raise LookupError("no LayerNorm epsilon found in the FastSpeech2 graph")


def _attention_heads(graph: TFLiteGraph) -> tuple[int, int]:
    for op in graph.ops("TRANSPOSE"):
        if re.search(r"encoder/layer_\._0/attention/self/transpose$", graph.name(op.outputs[0])):
            _, _, heads, head_size = graph.shape(op.inputs[0])  # (B, T, heads, head_size)
            return heads, head_size
    raise LookupError("no attention head split found in the FastSpeech2 graph")


def _infer_config(weights: dict[str, np.ndarray], heads: int, head_size: int, eps: float) -> FastSpeech2Config:
    def stack(prefix: str) -> TransformerConfig:
        layers = len({k.split(".")[2] for k in weights if k.startswith(f"{prefix}.layers.")})
        ffn = weights[f"{prefix}.layers.0.ffn_in.weight"]
        return TransformerConfig(
            hidden=ffn.shape[1], layers=layers, heads=heads, head_size=head_size,
            ffn_channels=ffn.shape[0], ffn_kernel_size=ffn.shape[2],
        )

    predictor = weights["duration_predictor.convs.0.weight"]
    postnet_first = weights["postnet.convs.0.weight"]
    symbols, _ = weights["symbol_embedding.weight"].shape
    return FastSpeech2Config(
        num_symbols=symbols,
        num_speakers=1,
        num_emotions=0,
        num_mels=weights["mel_projection.weight"].shape[0],
        max_positions=weights["encoder.position_table"].shape[0] - 1,
        encoder=stack("encoder"),
        decoder=stack("decoder"),
        variance=VariancePredictorConfig(
            channels=predictor.shape[0], kernel_size=predictor.shape[2],
            layers=len({k for k in weights if k.startswith("duration_predictor.convs.") and k.endswith("weight")}),
        ),
        variance_embedding_kernel_size=weights["pitch_embedding.conv.weight"].shape[2],
        postnet_layers=len({k for k in weights if k.startswith("postnet.convs.") and k.endswith("weight")}),
        postnet_channels=postnet_first.shape[0],
        postnet_kernel_size=postnet_first.shape[2],
        layer_norm_eps=eps,
    )


def import_fastspeech2(graph: TFLiteGraph) -> tuple[FastSpeech2Config, dict[str, torch.Tensor]]:
    """Read a TensorFlowTTS FastSpeech2 graph into a config and a strict-loadable state_dict."""
    if graph.input_names()[:2] != ["input_ids", "speaker_ids"]:
        raise ValueError(f"{graph.path.name} does not look like a TensorFlowTTS FastSpeech2 graph")
    eps = _layer_norm_eps(graph)
    weights = _collect_weights(graph, eps)
    heads, head_size = _attention_heads(graph)
    config = _infer_config(weights, heads, head_size, eps)
    hidden = config.encoder.hidden
    weights["speaker_embedding.weight"] = np.zeros((1, hidden), np.float32)  # single-speaker voice
    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    model = FastSpeech2(config)
    for name, buffer in model.state_dict().items():  # BatchNorm bookkeeping the graph does not carry
        if name.endswith("num_batches_tracked"):
            state[name] = buffer
    model.load_state_dict(state, strict=True)  # fails loudly on any missing or extra weight
    return config, state
