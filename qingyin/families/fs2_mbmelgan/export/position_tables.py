"""Sinusoidal position tables computed in the graph instead of stored in it: a smaller file for the same numbers.

FastSpeech2 adds a fixed sinusoidal table (interleaved sin/cos, row 0 all zero for padding) to its encoder's and
decoder's inputs, looked up by position (a Gather). With max_positions 2048 the two tables of the student are
2049 x (256 + 192) floats: 3.7 MB in float, 0.9 MB even as INT8, 8 % of the smallest variant's bundle. Here each
lookup becomes the formula itself, evaluated for the positions of the call:

    table[p, j] = sin(p * rate_c + phase_c) * (p > 0),  rate_c = 10000 ** (-2 * (c // 2) / width),
                                                        phase_c = pi / 2 for odd c (cos), 0 for even c (sin)

where c is the channel of a `width`-wide table that column j holds: j itself for the teacher; for a student,
whose narrower decoder kept some of the teacher's channels (qingyin.compress.student), the one it kept. The columns
are matched against the formula at export, and a table that does not match is left stored.

It costs one Sin per position and channel (0.1-0.5 M a sentence). The numbers are not bit for bit those stored:
Baker's table came from the original INT8 model, rounded to 1/127 (at most 0.004 from the formula), and the
float32 angle is off by up to ~3e-4 at position 2048. Used by the variants made for size (those with INT8 weight
storage, qingyin.families.fs2_mbmelgan.export.WEIGHT_STORAGE_VARIANTS), which the quality gate judges by how they
sound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TABLE_SUFFIX = "position_table"  # the buffers' names in the exported graphs (TransformerStack.position_table)
# A column further than this from every channel of the formula is not a sinusoid: its table is left as it is. Baker's
# table is the formula rounded to 1/127 (0.004), then to fp16 in a shipped student; a wrong channel is ~1 off.
TOLERANCE = 0.006


def _wavelengths(dim: int) -> np.ndarray:
    """10000 ** (2 * (i // 2) / dim) in float32, as fastspeech2.sinusoid_table computes them."""
    exponents = (2.0 * (np.arange(dim) // 2) / dim).astype(np.float32)
    return np.power(np.float32(10000.0), exponents, dtype=np.float32)


def sinusoid_rates(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(rate, phase) per channel, float32, as the formula in the module's docstring uses them."""
    phases = np.where(np.arange(dim) % 2 == 1, np.pi / 2, 0.0)
    return (1.0 / _wavelengths(dim).astype(np.float64)).astype(np.float32), phases.astype(np.float32)


def match_channels(table: np.ndarray, widths: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """(rate, phase) per column of `table` (rows: positions 0..N), from the first of `widths` whose formula holds
    every column within TOLERANCE; None when none does."""
    for width in dict.fromkeys(widths):
        reference = reference_table(table.shape[0], width)
        distance = np.abs(table[:, :, None] - reference[:, None, :]).max(axis=0)  # (columns, channels)
        channels = distance.argmin(axis=1)
        if distance[np.arange(table.shape[1]), channels].max() <= TOLERANCE:
            rates, phases = sinusoid_rates(width)
            return rates[channels], phases[channels]
    return None


def reference_table(rows: int, dim: int) -> np.ndarray:
    """The table fastspeech2.sinusoid_table(rows - 1, dim) holds, in float64."""
    angles = np.arange(rows, dtype=np.float64)[:, None] / _wavelengths(dim).astype(np.float64)
    table = np.where(np.arange(dim) % 2 == 1, np.cos(angles), np.sin(angles))
    table[0] = 0.0
    return table


def compute_position_tables(source: Path, target: Path, widths: tuple[int, ...] = ()) -> int:
    """Write `source` to `target` with every sinusoid position table that only Gather nodes read replaced by the
    formula (its columns matched against tables of its own width, then of `widths`); returns how many tables."""
    model = onnx.load(str(source))
    graph = model.graph
    replaced = 0
    for initializer in list(graph.initializer):
        if not initializer.name.endswith(TABLE_SUFFIX):
            continue
        readers = [node for node in graph.node if initializer.name in node.input]
        if not readers or any(not _is_lookup(node, initializer.name) for node in readers):
            continue
        table = numpy_helper.to_array(initializer)
        matched = match_channels(table, (table.shape[1], *widths)) if table.ndim == 2 else None
        if matched is None:
            continue
        rates, phases = matched
        prefix = initializer.name.replace(".", "_")
        graph.initializer.remove(initializer)
        graph.initializer.extend([numpy_helper.from_array(rates, f"{prefix}_rates"),
                                  numpy_helper.from_array(phases, f"{prefix}_phases"),
                                  numpy_helper.from_array(np.array([-1], np.int64), f"{prefix}_last_axis"),
                                  numpy_helper.from_array(np.array(0.0, np.float32), f"{prefix}_zero")])
        nodes = list(graph.node)
        for number, reader in enumerate(readers):
            index = nodes.index(reader)
            nodes[index : index + 1] = _formula(reader.input[1], reader.output[0], f"{prefix}_{number}", prefix)
        del graph.node[:]
        graph.node.extend(nodes)
        replaced += 1
    onnx.save(model, str(target))
    return replaced


def _is_lookup(node: onnx.NodeProto, table: str) -> bool:
    axis = next((attribute.i for attribute in node.attribute if attribute.name == "axis"), 0)
    return node.op_type == "Gather" and node.input[0] == table and table not in node.input[1:] and axis == 0


def _formula(positions: str, output: str, name: str, constants: str) -> list[onnx.NodeProto]:
    """The nodes that compute table[positions] into `output` (see the module's docstring)."""
    def step(op: str, inputs: list[str], out: str, **attributes) -> onnx.NodeProto:
        return helper.make_node(op, inputs, [out], name=f"{name}_{op.lower()}_{out.rsplit('_', 1)[-1]}",
                                **attributes)

    return [
        step("Cast", [positions], f"{name}_float", to=TensorProto.FLOAT),
        step("Unsqueeze", [f"{name}_float", f"{constants}_last_axis"], f"{name}_column"),
        step("Mul", [f"{name}_column", f"{constants}_rates"], f"{name}_scaled"),
        step("Add", [f"{name}_scaled", f"{constants}_phases"], f"{name}_angles"),
        step("Sin", [f"{name}_angles"], f"{name}_waves"),
        step("Greater", [f"{name}_column", f"{constants}_zero"], f"{name}_isposition"),
        step("Cast", [f"{name}_isposition"], f"{name}_notpadding", to=TensorProto.FLOAT),
        step("Mul", [f"{name}_waves", f"{name}_notpadding"], output),
    ]
