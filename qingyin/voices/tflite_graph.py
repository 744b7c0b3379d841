"""Read a .tflite flatbuffer as a walkable graph: operators in execution order, tensors, constants.

Only what weight import needs: no kernels are run. Constants come back dequantized to float32
(INT8 weights with per-tensor or per-channel scales), so importers never see quantization.
The TFLite converter merges constants with identical bytes under one name, so importers must
follow tensor *indices* through the graph rather than trust names.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite

_NUMPY_TYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.BOOL: np.bool_,
}
_OPERATOR_NAMES = {code: name for name, code in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}


@dataclass(frozen=True)
class Operator:
    index: int
    kind: str  # builtin name ("CONV_2D", "ADD", ...) or "CUSTOM:<code>"
    inputs: tuple[int, ...]  # tensor indices; -1 marks an absent optional input
    outputs: tuple[int, ...]


class TFLiteGraph:
    """The main subgraph of a .tflite model."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._buffer = self.path.read_bytes()
        self._model = tflite.Model.GetRootAsModel(self._buffer, 0)
        self._graph = self._model.Subgraphs(0)
        self.operators = [self._read_operator(i) for i in range(self._graph.OperatorsLength())]
        self._consumers: dict[int, list[Operator]] = defaultdict(list)
        self._producer: dict[int, Operator] = {}
        for op in self.operators:
            for t in op.inputs:
                if t >= 0:
                    self._consumers[t].append(op)
            for t in op.outputs:
                self._producer[t] = op

    def _read_operator(self, index: int) -> Operator:
        op = self._graph.Operators(index)
        code = self._model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        kind = _OPERATOR_NAMES.get(builtin, str(builtin))
        if kind == "CUSTOM":
            kind = "CUSTOM:" + code.CustomCode().decode()
        inputs = tuple(int(op.Inputs(i)) for i in range(op.InputsLength()))
        outputs = tuple(int(op.Outputs(i)) for i in range(op.OutputsLength()))
        return Operator(index, kind, inputs, outputs)

    # --- tensors -------------------------------------------------------------------------------
    def name(self, tensor: int) -> str:
        return self._graph.Tensors(tensor).Name().decode()

    def shape(self, tensor: int) -> tuple[int, ...]:
        t = self._graph.Tensors(tensor)
        return tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()

    def is_constant(self, tensor: int) -> bool:
        if tensor < 0:
            return False
        buffer = self._model.Buffers(self._graph.Tensors(tensor).Buffer())
        return buffer is not None and buffer.DataLength() > 0

    def constant(self, tensor: int) -> np.ndarray:
        """The tensor's stored value as float32 (INT8 dequantized with its scales) or its integer type."""
        t = self._graph.Tensors(tensor)
        if not self.is_constant(tensor):
            raise ValueError(f"tensor {tensor} ({self.name(tensor)}) holds no constant data")
        dtype = _NUMPY_TYPES[t.Type()]
        raw = self._model.Buffers(t.Buffer()).DataAsNumpy().tobytes()
        values = np.frombuffer(raw, dtype=dtype).reshape(self.shape(tensor))
        quant = t.Quantization()
        if dtype in (np.int8, np.uint8) and quant is not None and quant.ScaleLength():
            scale = quant.ScaleAsNumpy().astype(np.float32)
            zero = quant.ZeroPointAsNumpy().astype(np.float32) if quant.ZeroPointLength() else np.zeros_like(scale)
            if scale.size > 1:  # per-channel: broadcast along the quantized axis
                axis = quant.QuantizedDimension()
                bshape = [1] * values.ndim
                bshape[axis] = scale.size
                scale, zero = scale.reshape(bshape), zero.reshape(bshape)
            return ((values.astype(np.float32) - zero) * scale).astype(np.float32)
        return values.copy()

    def dtype(self, tensor: int) -> type:
        return _NUMPY_TYPES[self._graph.Tensors(tensor).Type()]

    def quantization(self, tensor: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(scales, zero points) of a quantized tensor, None for a float one."""
        quant = self._graph.Tensors(tensor).Quantization()
        if quant is None or not quant.ScaleLength():
            return None
        zero = quant.ZeroPointAsNumpy() if quant.ZeroPointLength() else np.zeros(quant.ScaleLength(), np.int64)
        return quant.ScaleAsNumpy().copy(), np.asarray(zero).copy()

    def options(self, op: Operator, options_class: type):
        """An op's builtin options table, e.g. options(op, tflite.LeakyReluOptions).Alpha()."""
        table = self._graph.Operators(op.index).BuiltinOptions()
        options = options_class()
        options.Init(table.Bytes, table.Pos)
        return options

    # --- graph walking -------------------------------------------------------------------------
    def ops(self, kind: str) -> list[Operator]:
        return [op for op in self.operators if op.kind == kind]

    def consumers(self, tensor: int) -> list[Operator]:
        return self._consumers.get(tensor, [])

    def producer(self, tensor: int) -> Operator | None:
        return self._producer.get(tensor)

    def input_names(self) -> list[str]:
        return [self.name(self._graph.Inputs(i)) for i in range(self._graph.InputsLength())]

    def follow_to(self, tensor: int, kind: str, passthrough: tuple[str, ...]) -> Operator:
        """The first op of `kind` fed by `tensor`, looking through single-consumer shape-only ops."""
        current = tensor
        for _ in range(16):
            consumers = self.consumers(current)
            for op in consumers:
                if op.kind == kind:
                    return op
            shaped = [op for op in consumers if op.kind in passthrough]
            if len(shaped) != 1:
                break
            current = shaped[0].outputs[0]
        raise LookupError(f"no {kind} after tensor {tensor} ({self.name(tensor)}) in {self.path.name}")

    def constant_operand(self, op: Operator) -> np.ndarray:
        """The single constant input of a binary op (the bias of an ADD, the scale of a MUL)."""
        constants = [t for t in op.inputs if self.is_constant(t)]
        if len(constants) != 1:
            raise LookupError(f"op {op.index} {op.kind} has {len(constants)} constant inputs, expected 1")
        return self.constant(constants[0])
