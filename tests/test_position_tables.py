"""Sinusoid position tables computed in the graph (qingyin.families.fs2_mbmelgan.export.position_tables), on tiny
graphs that look a table up the way the exported FastSpeech2 does."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ort = pytest.importorskip("onnxruntime")

from qingyin.families.fs2_mbmelgan.export.position_tables import compute_position_tables  # noqa: E402
from qingyin.families.fs2_mbmelgan.model.fastspeech2 import sinusoid_table  # noqa: E402

ROWS = 300


def lookup_graph(path, table: np.ndarray, name: str = "model.decoder.position_table") -> None:
    positions = helper.make_tensor_value_info("positions", TensorProto.INT64, ["batch", "steps"])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "steps", table.shape[1]])
    graph = helper.make_graph([helper.make_node("Gather", [name, "positions"], ["out"], axis=0)], "lookup",
                              [positions], [out], [numpy_helper.from_array(table.astype(np.float32), name)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def run(path, positions: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"positions": positions})[0]


POSITIONS = np.array([[0, 1, 2, 150, ROWS - 1], [5, 4, 3, 0, 0]], np.int64)


def test_a_teacher_table_rounded_like_bakers_becomes_the_formula(tmp_path):
    table = np.round(sinusoid_table(ROWS - 1, 16).numpy() * 127) / 127  # as Baker's, from the original INT8 model
    lookup_graph(tmp_path / "stored.onnx", table)
    assert compute_position_tables(tmp_path / "stored.onnx", tmp_path / "computed.onnx") == 1
    computed = onnx.load(str(tmp_path / "computed.onnx"))
    assert not any(t.name.endswith("position_table") for t in computed.graph.initializer)
    assert "Sin" in {node.op_type for node in computed.graph.node}
    got, stored = run(tmp_path / "computed.onnx", POSITIONS), run(tmp_path / "stored.onnx", POSITIONS)
    assert np.abs(got - stored).max() <= 0.5 / 127 + 1e-4  # the rounding of the stored table, no more
    assert not got[POSITIONS == 0].any()  # padding stays zero


def test_a_students_kept_columns_are_matched_to_the_teachers_channels(tmp_path):
    kept = np.array([0, 3, 4, 9, 10, 11, 14, 15])  # 8 of a 16-wide teacher's channels, as a cut student keeps
    table = sinusoid_table(ROWS - 1, 16).numpy()[:, kept].astype(np.float16).astype(np.float32)
    lookup_graph(tmp_path / "stored.onnx", table)
    assert compute_position_tables(tmp_path / "stored.onnx", tmp_path / "alone.onnx") == 0  # not an 8-wide table
    assert compute_position_tables(tmp_path / "stored.onnx", tmp_path / "computed.onnx", widths=(16,)) == 1
    assert np.abs(run(tmp_path / "computed.onnx", POSITIONS) - run(tmp_path / "stored.onnx", POSITIONS)).max() < 2e-3


def test_other_tables_are_left_stored(tmp_path):
    table = np.random.default_rng(0).normal(size=(ROWS, 8))  # learned positions: no formula gives them
    lookup_graph(tmp_path / "stored.onnx", table)
    assert compute_position_tables(tmp_path / "stored.onnx", tmp_path / "same.onnx", widths=(16,)) == 0
    lookup_graph(tmp_path / "embedding.onnx", sinusoid_table(ROWS - 1, 8).numpy(), name="symbol_embedding.weight")
    assert compute_position_tables(tmp_path / "embedding.onnx", tmp_path / "same.onnx") == 0  # not by name
