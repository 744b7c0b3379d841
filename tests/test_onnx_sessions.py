"""The CPU sessions every family runs: the arena mode ($QINGYIN_ORT_ARENA) and runs through the wrapper."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper  # noqa: E402

from qingyin.families import onnx_sessions  # noqa: E402


@pytest.fixture
def doubling_model(tmp_path):
    """y = x + x for x of any length: one graph, inputs of new lengths each run (what grows an arena)."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])], "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "double.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("mode", onnx_sessions.ARENA_MODES)
def test_every_mode_runs_and_gives_the_same_result(doubling_model, monkeypatch, mode):
    monkeypatch.setenv(onnx_sessions.ARENA_ENV, mode)
    session = onnx_sessions.cpu_session(doubling_model, onnx_sessions.session_options(1))
    assert session.get_inputs()[0].name == "x"  # the wrapped session's own methods pass through
    for length in (3, 1000, 17):
        x = np.arange(length, dtype=np.float32)
        (y,) = session.run(None, {"x": x})
        np.testing.assert_array_equal(y, 2 * x)
    assert (session.run_options is not None) == (mode == "shrink")


def test_default_mode_is_off(monkeypatch):
    monkeypatch.delenv(onnx_sessions.ARENA_ENV, raising=False)
    assert onnx_sessions.arena_mode() == "off"
    assert not onnx_sessions.session_options(1).enable_cpu_mem_arena


def test_on_keeps_the_arena(monkeypatch):
    monkeypatch.setenv(onnx_sessions.ARENA_ENV, " ON ")
    assert onnx_sessions.session_options(1).enable_cpu_mem_arena


def test_unknown_mode_names_the_choices(monkeypatch):
    monkeypatch.setenv(onnx_sessions.ARENA_ENV, "sometimes")
    with pytest.raises(ValueError, match="QINGYIN_ORT_ARENA='sometimes' is not one of shrink, on, off"):
        onnx_sessions.session_options(1)
