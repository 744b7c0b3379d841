"""INT8 weight storage (qingyin.families.fs2_mbmelgan.export.weight_storage) on a small hand-made ONNX graph."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from qingyin.families.fs2_mbmelgan.export.weight_storage import store_weights_int8  # noqa: E402


def small_graph(path) -> None:
    """ids -> Gather(table) -> MatMul(weight) -> Conv(kernel) -> Add(offset), with a small bias left float."""
    rng = np.random.default_rng(0)
    initializers = {
        "table": rng.normal(size=(80, 64)).astype(np.float32),
        "weight": rng.normal(size=(64, 96)).astype(np.float32) / 8,
        "kernel": rng.normal(size=(32, 96, 3)).astype(np.float32) / 16,
        "bias": rng.normal(size=(32,)).astype(np.float32),
        "offset": rng.normal(size=(32, 1)).astype(np.float32) * np.ones((1, 4096 // 32 + 1), np.float32),
        "perm": np.array([0, 2, 1], np.int64),
    }
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["embedded"]),  # (1, T, 64)
        helper.make_node("MatMul", ["embedded", "weight"], ["projected"]),  # (1, T, 96)
        helper.make_node("Transpose", ["projected"], ["channels"], perm=[0, 2, 1]),  # (1, 96, T)
        helper.make_node("Conv", ["channels", "kernel", "bias"], ["convolved"], pads=[1, 1]),  # (1, 32, T)
        helper.make_node("Slice", ["offset", "zero", "steps", "two"], ["offset_part"]),
        helper.make_node("Add", ["convolved", "offset_part"], ["out"]),
    ]
    extra = {"zero": np.array([0], np.int64), "steps": np.array([16], np.int64), "two": np.array([1], np.int64)}
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 16])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 32, 16])],
        [numpy_helper.from_array(value, name) for name, value in {**initializers, **extra}.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def run(path, ids: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"ids": ids})[0]


def test_weights_are_stored_in_int8_and_compute_almost_the_same(tmp_path):
    small_graph(tmp_path / "float.onnx")
    stored = store_weights_int8(tmp_path / "float.onnx", tmp_path / "int8.onnx")
    assert stored == 3  # the table, the MatMul weight and the Conv kernel; not the bias, nor the Add's data
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    kinds = {init.name: numpy_helper.to_array(init).dtype for init in graph.initializer}
    assert kinds["table_int8"] == kinds["weight_int8"] == kinds["kernel_int8"] == np.int8
    assert kinds["bias"] == kinds["offset"] == np.float32  # too small, and read as data
    assert {node.name for node in graph.node if node.op_type == "DequantizeLinear"} == {
        "table_dequantize", "weight_dequantize", "kernel_dequantize"}
    assert (tmp_path / "int8.onnx").stat().st_size < 0.5 * (tmp_path / "float.onnx").stat().st_size
    ids = np.arange(16, dtype=np.int64)[None] * 3
    expected, heard = run(tmp_path / "float.onnx", ids), run(tmp_path / "int8.onnx", ids)
    assert np.abs(heard - expected).max() < 0.02 * np.abs(expected).max()  # one 254th of each channel's range
    assert not np.array_equal(heard, expected)


def test_a_channel_of_zeros_stays_zeros(tmp_path):
    small_graph(tmp_path / "float.onnx")
    model = onnx.load(str(tmp_path / "float.onnx"))
    for init in model.graph.initializer:
        if init.name == "kernel":
            kernel = numpy_helper.to_array(init).copy()
            kernel[5] = 0.0
            init.CopyFrom(numpy_helper.from_array(kernel, "kernel"))
    onnx.save(model, str(tmp_path / "float.onnx"))
    store_weights_int8(tmp_path / "float.onnx", tmp_path / "int8.onnx")
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    stored = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    assert not stored["kernel_int8"][5].any() and np.isfinite(stored["kernel_scale"]).all()
