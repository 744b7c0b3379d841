"""INT8 weight storage: a graph's large float weights kept as int8 with a float scale per output channel, each
turned back into float by a DequantizeLinear node in front of the operator that reads it.

The arithmetic stays float (the activations are not quantized); only the file shrinks, about 4x for the weights
stored. Used by the "student-int8" variant on all three graphs, for what static INT8 leaves float: the encoder and
the vocoder, whose activations did not take static INT8 well (qingyin.families.fs2_mbmelgan.export.static_quant),
and the decoder's float weights. Measured on Baker's fp32 graphs (BENCHMARKS.md, "Student acoustic model"):
encoder 26.4 -> 8.5 MB with 98 % of durations unchanged. For float speed the session must fold the
DequantizeLinear nodes at load, which ONNX Runtime does only with its QDQ handling off (the ONNX backend opens
the encoder and the vocoder so); otherwise the weights are dequantized on every call.

Symmetric rounding (zero point 0) to -127..127 per channel: the output channels of Conv, ConvTranspose, Gemm and
MatMul weights, the columns of Gather tables (embeddings, position tables).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

MIN_ELEMENTS = 4096  # smaller weights (biases, norms, small convolutions) stay float: they weigh little
_CONV_AXIS = {"Conv": 0, "FusedConv": 0, "ConvTranspose": 1}  # output channels (FusedConv: ONNX Runtime's
# Conv + activation, which its offline optimization leaves in the graphs)


def store_weights_int8(source: Path, target: Path, min_elements: int = MIN_ELEMENTS) -> int:
    """Write `source` to `target` with its float weights of at least `min_elements` elements, read only as the
    weight of Conv, FusedConv, ConvTranspose, Gemm or MatMul (their second input) or as a table by Gather, stored
    as int8; returns how many."""
    model = onnx.load(str(source))
    graph = model.graph
    readers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for position, name in enumerate(node.input):
            readers.setdefault(name, []).append((node, position))
    dequantize, stored = [], 0
    for initializer in list(graph.initializer):
        weight = numpy_helper.to_array(initializer)
        axis = _channel_axis(weight, readers.get(initializer.name, []), min_elements)
        if axis is None:
            continue
        reduced = tuple(i for i in range(weight.ndim) if i != axis)
        scale = np.abs(weight).max(axis=reduced) / 127.0
        scale[scale == 0] = 1.0  # an all-zero channel: any scale gives zeros
        shape = [1] * weight.ndim
        shape[axis] = -1
        quantized = np.clip(np.round(weight / scale.reshape(shape)), -127, 127).astype(np.int8)
        name = initializer.name
        graph.initializer.remove(initializer)
        graph.initializer.extend([numpy_helper.from_array(quantized, f"{name}_int8"),
                                  numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
                                  numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}_zero")])
        dequantize.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"],
                                           [name], axis=axis, name=f"{name}_dequantize"))
        stored += 1
    nodes = dequantize + list(graph.node)  # the dequantized weights exist before any node reads them
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(target))
    return stored


def _channel_axis(weight: np.ndarray, readers: list[tuple[onnx.NodeProto, int]], min_elements: int) -> int | None:
    """The per-channel axis to quantize `weight` along, or None to leave it float."""
    if weight.dtype != np.float32 or weight.size < min_elements or weight.ndim < 2 or not readers:
        return None
    axes = set()
    for node, position in readers:
        if node.op_type in _CONV_AXIS and position == 1:
            axes.add(_CONV_AXIS[node.op_type])
        elif node.op_type == "MatMul" and position == 1:
            axes.add(weight.ndim - 1)
        elif node.op_type == "Gemm" and position == 1:
            transposed = any(attribute.name == "transB" and attribute.i for attribute in node.attribute)
            axes.add(0 if transposed else weight.ndim - 1)
        elif node.op_type == "Gather" and position == 0 and weight.ndim == 2:
            axes.add(1)  # a table (embeddings, positions): a scale per column
        else:
            return None  # read as data (a Gather table, an Add) or by an operator not listed: stays float
    return axes.pop() if len(axes) == 1 else None
