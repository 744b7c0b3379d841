"""The server's background gate (qingyin.evaluate.background_gate) and ModelPool.reload, with a fake gate and a
fake model family: no real gating or model loading here."""

from __future__ import annotations

import json
import logging
import threading
from types import SimpleNamespace

import pytest

from qingyin import families
from qingyin.evaluate import background_gate
from qingyin.runtime.pool import ModelPool
from qingyin.voices import registry


class FakeFamily:
    """Loads a voice whose variant is the default variant of the moment (as the ONNX backend does)."""

    CAPABILITIES = frozenset()
    BACKENDS = ("onnx",)

    def __init__(self, state: dict):
        self.state = state
        self.loads = 0

    def verify(self, model) -> None:
        pass

    def load(self, model, directory, backend=None, variant=None, threads=None):
        self.loads += 1
        return SimpleNamespace(model=model, variant=variant or self.state["default"], capabilities=frozenset(),
                               sample_rate=model.sample_rate, number=self.loads)


@pytest.fixture
def state(tmp_path, monkeypatch) -> dict:
    """A fake installed Baker whose gate verdict and default variant are in the returned dict."""
    monkeypatch.setenv("QINGYIN_HOME", str(tmp_path))
    folder = registry.model_dir("baker")
    folder.mkdir(parents=True)
    (folder / registry.MANIFEST).write_text(json.dumps({"voice": "baker", "files": {}}))
    state = {"default": "fp32", "gate": None, "shipped": ["fp32", "int8-static", "student-int8"]}
    family = FakeFamily(state)
    monkeypatch.setattr(families, "family", lambda name: family)
    monkeypatch.setattr(background_gate, "current_gate", lambda directory, variant: state["gate"])
    monkeypatch.setattr(background_gate, "default_variant", lambda directory: state["default"])
    monkeypatch.setattr(background_gate, "available_variants", lambda directory: state["shipped"])
    monkeypatch.setattr(background_gate, "NEEDS", ())
    monkeypatch.setattr(background_gate, "STUDENT_NEEDS", ())
    state["family"] = family
    return state


def passing_gate(state: dict, faster: bool = True):
    """A fake gate command: records the command, writes a verdict; a faster pass changes the default."""
    def run(command: list[str]) -> int:
        state["command"] = command
        state["gate"] = {"passed": True, "rtf": 0.02 if faster else 0.05, "fp32_rtf": 0.04}
        if faster:
            state["default"] = "int8-static"
        return 0
    return run


def test_pool_reload_replaces_the_loaded_voice(state):
    pool = ModelPool(backend="onnx", fetch=False)
    baker = registry.get_model("baker")
    assert pool.reload(baker) is None and pool.loaded() == []  # not loaded: nothing to do
    first = pool.model(baker)
    assert first.variant == "fp32" and pool.model(baker) is first
    state["default"] = "int8-static"
    second = pool.reload(baker)
    assert second is not first and second.variant == "int8-static"
    assert pool.model(baker) is second and pool.select("baker").voice is second


def test_a_passing_gate_switches_the_pool_and_logs_why(state, caplog):
    pool = ModelPool(backend="onnx", fetch=False)
    pool.model(registry.get_model("baker"))
    switched = threading.Event()
    gate = background_gate.BackgroundGate(pool, switched.set, run=passing_gate(state))
    with caplog.at_level(logging.INFO, logger="qingyin.gate"):
        assert gate.start()
        gate.thread.join(10)
    assert switched.is_set() and gate.switched == ("fp32", "int8-static")
    assert pool.model(registry.get_model("baker")).variant == "int8-static"
    command = state["command"]
    assert command[-6:] == ["qingyin.cli", "export", "baker", "--variant", "int8-static", "--gate"]
    assert command[0] == "nice" or "nice" not in command
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("switched")]
    assert lines == ["switched baker from fp32 to int8-static: the quality gate passed "
                     "(rtf 0.0200, 0.50x fp32 ONNX's)"]


@pytest.mark.parametrize("verdict", ["failed", "passed but slower"])
def test_no_switch_when_the_default_stays(state, caplog, verdict):
    pool = ModelPool(backend="onnx", fetch=False)
    first = pool.model(registry.get_model("baker"))
    calls = []

    def run(command):
        state["gate"] = {"passed": verdict != "failed", "rtf": 0.05, "fp32_rtf": 0.04}
        return 1 if verdict == "failed" else 0

    gate = background_gate.BackgroundGate(pool, lambda: calls.append(1), run=run)
    with caplog.at_level(logging.INFO, logger="qingyin.gate"):
        assert gate.start()
        gate.thread.join(10)
    assert calls == [] and gate.switched is None and pool.model(registry.get_model("baker")) is first
    assert any("baker stays on fp32" in r.getMessage() for r in caplog.records)


def test_nothing_runs_when_current_disabled_pinned_or_not_onnx(state, monkeypatch):
    def never(command):
        raise AssertionError("gated although it should not")

    state["gate"] = {"passed": False}
    assert not background_gate.BackgroundGate(ModelPool(backend="onnx", fetch=False), run=never).start()
    state["gate"] = None
    assert not background_gate.BackgroundGate(ModelPool(backend="onnx", variant="fp32", fetch=False),
                                              run=never).start()
    assert not background_gate.BackgroundGate(ModelPool(backend="torch", fetch=False), run=never).start()
    monkeypatch.setenv(background_gate.ENV, "false")
    assert background_gate.start_background_gate(ModelPool(backend="onnx", fetch=False)) is None
    monkeypatch.setattr(background_gate, "NEEDS", ("no_such_module_qingyin",))
    reason = background_gate.BackgroundGate(ModelPool(backend="onnx", fetch=False), run=never).reason_not_to_run()
    assert "no_such_module_qingyin" in reason and "pip install" in reason


def test_the_switch_applies_to_a_model_loaded_later(state):
    """Gated before the model was loaded: nothing to reload, and the first load gets the new default."""
    pool = ModelPool(backend="onnx", fetch=False)
    gate = background_gate.BackgroundGate(pool, run=passing_gate(state))
    assert gate.start()
    gate.thread.join(10)
    assert gate.switched is None and pool.loaded() == []
    assert pool.model(registry.get_model("baker")).variant == "int8-static"


def test_the_student_is_gated_after_int8_with_the_cer_and_switched_to_when_it_passes(state, monkeypatch, caplog):
    gates: dict[str, dict] = {}
    monkeypatch.setattr(background_gate, "current_gate", lambda directory, variant: gates.get(variant))
    commands = []

    def run(command):
        commands.append(command)
        variant = command[command.index("--variant") + 1]
        gates[variant] = {"passed": True, "rtf": {"int8-static": 0.03, "student-int8": 0.02}[variant],
                          "fp32_rtf": 0.04}
        state["default"] = variant  # each is faster than the one before
        return 0

    pool = ModelPool(backend="onnx", fetch=False)
    pool.model(registry.get_model("baker"))
    switches = []
    gate = background_gate.BackgroundGate(pool, lambda: switches.append(pool.loaded()), run=run)
    assert gate.pending() == ["int8-static", "student-int8"]  # no pruned vocoder shipped: not gated
    with caplog.at_level(logging.INFO, logger="qingyin.gate"):
        assert gate.start()
        gate.thread.join(10)
    assert [c[c.index("--variant") + 1:] for c in commands] == [
        ["int8-static", "--gate"], ["student-int8", "--gate", "--cer", "--texts", "79"]]
    assert len(switches) == 2 and gate.switched == ("int8-static", "student-int8")
    assert pool.model(registry.get_model("baker")).variant == "student-int8"
    reason = gate.reason_not_to_run()
    assert gate.pending() == [] and "gate is current" in reason and "no student-int8-pruned is shipped" in reason


def test_a_student_gate_without_its_packages_is_skipped(state, monkeypatch):
    monkeypatch.setattr(background_gate, "STUDENT_NEEDS", ("no_such_whisper_qingyin",))
    gates: dict[str, dict] = {}
    monkeypatch.setattr(background_gate, "current_gate", lambda directory, variant: gates.get(variant))
    gate = background_gate.BackgroundGate(ModelPool(backend="onnx", fetch=False), run=passing_gate(state))
    assert gate.pending() == ["int8-static"]
    gates["int8-static"] = {"passed": True}  # int8-static gated: only the student is left, and it cannot run
    reason = gate.reason_not_to_run()
    assert "the student-int8 gate needs no_such_whisper_qingyin" in reason and not gate.start()


def test_the_pruned_student_is_gated_last_once_its_vocoder_is_shipped(state, monkeypatch):
    state["shipped"] = [*state["shipped"], "student-int8-pruned"]
    gates: dict[str, dict] = {"int8-static": {"passed": True}, "student-int8": {"passed": True}}
    monkeypatch.setattr(background_gate, "current_gate", lambda directory, variant: gates.get(variant))
    commands = []

    def run(command):
        commands.append(command[command.index("--variant") + 1:])
        gates["student-int8-pruned"] = {"passed": False}
        return 1  # the gate ran and failed: a verdict, nothing switches
    gate = background_gate.BackgroundGate(ModelPool(backend="onnx", fetch=False), run=run)
    assert gate.pending() == ["student-int8-pruned"]
    assert gate.start()
    gate.thread.join(10)
    assert commands == [["student-int8-pruned", "--gate", "--cer", "--texts", "79"]] and gate.switched is None
    state["shipped"] = state["shipped"][:-1]
    gates.pop("student-int8-pruned")
    assert "no student-int8-pruned is shipped" in gate.reason_not_to_run()
