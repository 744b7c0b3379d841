"""Kokoro stage graphs: cutting and dequantization on tiny synthetic graphs (offline, fast); the heavy test cuts
the real int8 model and compares the three stages with the stock graph."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from qingyin.families.kokoro.graphs import build_graphs, cut_graph, dequantize, quantized_ops, save_atomic
from qingyin.families.kokoro.runtime import KokoroGraphs, frames_from_durations

OPSET = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _float_model(rng: np.random.Generator) -> onnx.ModelProto:
    """ids [1, T] → embedding → MatMul → Conv (bias) → LSTM (bidirectional) → MatMul: the layer kinds Kokoro has."""
    vocab, dim, hidden = 20, 16, 8
    weights = {
        "table": rng.normal(0, 1, (vocab, dim)),
        "w_mm": rng.normal(0, 0.3, (dim, 24)),
        "w_conv": rng.normal(0, 0.2, (12, 24, 3)),
        "b_conv": rng.normal(0, 0.5, (12,)),
        "w_lstm": rng.normal(0, 0.3, (2, 4 * hidden, 12)),
        "r_lstm": rng.normal(0, 0.3, (2, 4 * hidden, hidden)),
        "b_lstm": rng.normal(0, 0.1, (2, 8 * hidden)),
        "w_out": rng.normal(0, 0.3, (2 * hidden, 5)),
        "shape": np.array([0, 0, -1]),
    }
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"]),  # [1, T, 16]
        helper.make_node("Tanh", ["emb"], ["emb_t"]),  # a float op after the lookup, as in Kokoro (Add)
        helper.make_node("MatMul", ["emb_t", "w_mm"], ["mm"]),  # [1, T, 24]
        helper.make_node("Transpose", ["mm"], ["mm_t"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["mm_t", "w_conv", "b_conv"], ["conv"], pads=[1, 1], kernel_shape=[3]),
        helper.make_node("Transpose", ["conv"], ["seq"], perm=[2, 0, 1]),  # [T, 1, 12]
        helper.make_node("LSTM", ["seq", "w_lstm", "r_lstm", "b_lstm"], ["lstm"], hidden_size=hidden,
                         direction="bidirectional"),  # [T, 2, 1, 8]
        helper.make_node("Transpose", ["lstm"], ["lstm_t"], perm=[2, 0, 1, 3]),
        helper.make_node("Reshape", ["lstm_t", "shape"], ["features"]),  # [1, T, 16]
        helper.make_node("MatMul", ["features", "w_out"], ["out"]),
    ]
    initializers = [numpy_helper.from_array(v.astype(np.int64 if k == "shape" else np.float32), k)
                    for k, v in weights.items()]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "T"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, "T", 5])], initializers)
    return helper.make_model(graph, opset_imports=OPSET[:1])


@pytest.mark.parametrize("per_channel", [False, True])
def test_dequantize_replaces_every_quantized_pattern(tmp_path: Path, per_channel: bool):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    float_model = _float_model(rng)
    quantized_path = tmp_path / "int8.onnx"
    # Kokoro's file: int8 MatMul weights, uint8 Conv weights (ConvInteger), DynamicQuantizeLSTM, int8 embedding.
    quantize_dynamic(float_model, quantized_path, per_channel=per_channel, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul", "Gather", "LSTM"])
    quantize_dynamic(quantized_path, quantized_path, per_channel=per_channel, weight_type=QuantType.QUInt8,
                     op_types_to_quantize=["Conv"])
    quantized = onnx.load(quantized_path)
    found = quantized_ops(quantized)
    assert {"MatMulInteger", "ConvInteger", "DynamicQuantizeLSTM", "DynamicQuantizeLinear"} <= found.keys(), found

    restored = dequantize(quantized)
    assert quantized_ops(restored) == {}
    ops = {node.op_type for node in restored.graph.node}
    assert {"MatMul", "Conv", "LSTM", "Gather"} <= ops and "Floor" not in ops
    onnx.checker.check_model(restored)

    ids = rng.integers(0, 20, (1, 30)).astype(np.int64)
    (want,) = _run(float_model, {"ids": ids})
    (got,) = _run(restored, {"ids": ids})
    (int8,) = _run(quantized, {"ids": ids})
    # Only the weights' rounding is left: closer to the float model than the dynamically quantized one.
    error, int8_error = np.abs(got - want).max(), np.abs(int8 - want).max()
    assert error < 0.05 * np.abs(want).max()
    assert error < int8_error


def test_dequantized_weights_are_exact():
    """(q - zero point) * scale per output column, for a MatMulInteger weight quantized per column."""
    q = np.array([[-3, 5], [7, -128]], dtype=np.int8)
    zp = np.array([1, -2], dtype=np.int8)
    scale = np.array([0.5, 0.25], dtype=np.float32)
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xzp"]),
        helper.make_node("MatMulInteger", ["xq", "wq", "xzp", "wzp"], ["acc"]),
        helper.make_node("Mul", ["xs", "ws"], ["scales"]),
        helper.make_node("Cast", ["acc"], ["acc_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["acc_f", "scales"], ["y"]),
    ]
    inits = [numpy_helper.from_array(q, "wq"), numpy_helper.from_array(zp, "wzp"), numpy_helper.from_array(scale, "ws")]
    graph = helper.make_graph(nodes, "mm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])], inits)
    restored = dequantize(helper.make_model(graph, opset_imports=OPSET[:1]))
    (matmul,) = restored.graph.node
    assert matmul.op_type == "MatMul" and list(matmul.input)[0] == "x" and list(matmul.output) == ["y"]
    weight = numpy_helper.to_array(next(t for t in restored.graph.initializer if t.name == matmul.input[1]))
    np.testing.assert_array_equal(weight, (q.astype(np.float32) - zp) * scale)


def test_conv_with_run_time_quantized_bias():
    """Kokoro's ConvInteger pattern: the bias quantized at run time as Floor(bias / scales), added before the Cast."""
    rng = np.random.default_rng(2)
    wq = rng.integers(0, 256, (6, 4, 3)).astype(np.uint8)
    wzp, ws = np.uint8(131), np.float32(0.01)
    bias = rng.normal(0, 1, 6).astype(np.float32)
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xzp"]),
        helper.make_node("Mul", ["xs", "ws"], ["scales"]),
        helper.make_node("Div", ["bias", "scales"], ["b_div"]),
        helper.make_node("Floor", ["b_div"], ["b_floor"]),
        helper.make_node("Cast", ["b_floor"], ["b_int"], to=TensorProto.INT32),
        helper.make_node("Reshape", ["b_int", "b_shape"], ["b_q"]),
        helper.make_node("ConvInteger", ["xq", "wq", "xzp", "wzp"], ["acc"], pads=[1, 1], kernel_shape=[3]),
        helper.make_node("Add", ["acc", "b_q"], ["acc_b"]),
        helper.make_node("Cast", ["acc_b"], ["acc_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["acc_f", "scales"], ["y"]),
    ]
    inits = [numpy_helper.from_array(v, k) for k, v in
             {"wq": wq, "wzp": np.array(wzp), "ws": np.array(ws), "bias": bias, "b_shape": np.array([6, 1])}.items()]
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 9])], inits)
    quantized = helper.make_model(graph, opset_imports=OPSET[:1])
    restored = dequantize(quantized)
    (conv,) = restored.graph.node
    assert conv.op_type == "Conv" and list(conv.input)[::2] == ["x", "bias"]
    assert {a.name: helper.get_attribute_value(a) for a in conv.attribute} == {"pads": [1, 1], "kernel_shape": [3]}
    x = rng.normal(0, 1, (1, 4, 9)).astype(np.float32)
    w = (wq.astype(np.float32) - np.float32(wzp)) * ws
    padded = np.pad(x[0], ((0, 0), (1, 1)))
    want = np.einsum("oik,ikt->ot", w, np.lib.stride_tricks.sliding_window_view(padded, 3, axis=1).transpose(0, 2, 1))
    want += bias[:, None]
    (got,) = _run(restored, {"x": x})
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)
    (int8,) = _run(quantized, {"x": x})
    assert np.abs(int8 - got).max() < 0.05 * np.abs(want).max()


def _chain_model() -> onnx.ModelProto:
    """a → (+1) → b → (Shape-driven reshape of b, *2) → c; d = b + a (needs both)."""
    nodes = [
        helper.make_node("Add", ["a", "one"], ["b"]),
        helper.make_node("Shape", ["b"], ["b_shape"]),
        helper.make_node("Mul", ["b", "two"], ["b2"]),
        helper.make_node("Reshape", ["b2", "b_shape"], ["c"]),
        helper.make_node("Add", ["b", "a"], ["d"]),
    ]
    inits = [numpy_helper.from_array(np.float32(1), "one"), numpy_helper.from_array(np.float32(2), "two")]
    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n"])  # noqa: E731
    graph = helper.make_graph(nodes, "chain", [value("a")], [value("c"), value("d")], inits)
    return helper.make_model(graph, opset_imports=OPSET[:1])


def test_cut_graph_stages_compose_to_the_whole():
    model = _chain_model()
    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n"])  # noqa: E731
    first = cut_graph(model, {"a": value("input")}, {"b": value("middle")})
    second = cut_graph(model, {"b": value("middle")}, {"c": value("output")})
    onnx.checker.check_model(first)
    onnx.checker.check_model(second)
    assert [n.op_type for n in first.graph.node] == ["Add"]
    assert [n.op_type for n in second.graph.node] == ["Shape", "Mul", "Reshape"]  # only what c needs
    assert {t.name for t in second.graph.initializer} == {"two"}

    a = np.arange(4, dtype=np.float32)
    (c_whole, _) = _run(model, {"a": a})
    (middle,) = _run(first, {"input": a})
    (c_cut,) = _run(second, {"middle": middle})
    np.testing.assert_array_equal(c_cut, c_whole)


def test_cut_graph_refuses_a_missing_input():
    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n"])  # noqa: E731
    with pytest.raises(ValueError, match="'a'"):
        cut_graph(_chain_model(), {"b": value("middle")}, {"d": value("output")})


def test_cut_graph_passes_an_input_through():
    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n"])  # noqa: E731
    model = cut_graph(_chain_model(), {"b": value("middle")}, {"b": value("same"), "c": value("output")})
    same, _ = _run(model, {"middle": np.ones(3, np.float32)})
    np.testing.assert_array_equal(same, np.ones(3))


def test_frames_round_half_to_even_like_onnx_round():
    x = np.array([0.2, 0.5, 1.5, 2.5, 3.49, 3.5, np.nextafter(np.float32(2.5), 3), 7.0], dtype=np.float32)
    graph = helper.make_graph([helper.make_node("Round", ["x"], ["y"])], "round",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])])
    (rounded,) = _run(helper.make_model(graph, opset_imports=OPSET[:1]), {"x": x})
    np.testing.assert_array_equal(frames_from_durations(x), np.maximum(rounded, 1).astype(np.int64))
    np.testing.assert_array_equal(frames_from_durations(x), [1, 1, 2, 2, 3, 4, 3, 7])
    np.testing.assert_array_equal(frames_from_durations(x * 2, speed=2.0), frames_from_durations(x))


def test_save_atomic_leaves_no_temporary_file(tmp_path: Path):
    path = tmp_path / "sub" / "chain.onnx"
    save_atomic(_chain_model(), path)
    assert onnx.load(path).graph.name == "chain"
    assert [p.name for p in path.parent.iterdir()] == ["chain.onnx"]


# --- the real model ----------------------------------------------------------------------------------------
def _stock_model() -> Path | None:
    if os.environ.get("KOKORO_ONNX"):
        return Path(os.environ["KOKORO_ONNX"])
    try:
        from qingyin.families.kokoro import provision

        path = provision.kokoro_dir() / provision.MODEL_FILE
    except Exception:  # the provisioning module is optional here
        return None
    return path if path.is_file() else None


@pytest.mark.heavy
@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_stages_match_the_stock_graph(tmp_path: Path, precision: str):
    stock = _stock_model()
    if stock is None or not stock.is_file():
        pytest.skip("the Kokoro int8 ONNX model is not installed (set KOKORO_ONNX or fetch the kokoro model)")
    paths = build_graphs(stock, tmp_path, precision)
    assert set(paths) == {"predict", "prosody", "decode"}
    graphs = KokoroGraphs(tmp_path, threads=2)
    rng = np.random.default_rng(1)
    ids = np.array([0, *rng.integers(16, 178, 40), 0], dtype=np.int64)
    style = rng.normal(0, 0.2, (1, 256)).astype(np.float32)
    session = ort.InferenceSession(str(stock), providers=["CPUExecutionProvider"])
    (want,) = session.run(None, {"tokens": ids[None], "style": style, "speed": np.ones(1, np.float32)})

    predicted = graphs.predict(ids, style)
    frames = frames_from_durations(predicted.durations)
    f0, energy = graphs.prosody(predicted, frames, style)
    assert f0.shape == energy.shape == (2 * frames.sum(),)
    audio = graphs.decode(predicted, frames, f0, energy, style)
    assert audio.shape == (600 * frames.sum(),)
    if precision == "int8":
        np.testing.assert_array_equal(audio, want)
    else:
        assert np.isfinite(audio).all() and abs(audio.size - want.size) <= 600 * 10
