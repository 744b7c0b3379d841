"""The ONNX runtime path installs and runs without torch (torch is the convert extra): in a fresh interpreter where
`import torch` fails, the engine speaks with Baker on ONNX (fp32, exported by provisioning) and with a Kokoro voice,
the CLI and the server import, and torch never lands in sys.modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from qingyin.voices import registry

SCRIPT = textwrap.dedent('''
    import importlib.abc, json, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "tflite"):
                raise ImportError(f"No module named {name!r} (blocked: a torch-free install)")
            return None

    sys.meta_path.insert(0, NoTorch())
    import qingyin.cli  # noqa: F401
    from qingyin.runtime.synthesizer import Synthesizer

    report = {}
    baker = Synthesizer("baker", backend="onnx", variant="fp32", fetch=False)
    report["baker"] = len(baker.synthesize("你好，今天天气不错。").audio)
    report["baker_default_backend"] = Synthesizer("baker", fetch=False).voice.backend_name
    if sys.argv[1] == "kokoro":
        report["yunxi"] = len(Synthesizer("yunxi", fetch=False).synthesize("你好。").audio)
    try:
        import qingyin.server.app  # noqa: F401
        report["server"] = True
    except ImportError as error:  # the server extra is not installed
        report["server"] = str(error)
    try:
        Synthesizer("baker", backend="torch", fetch=False)
    except ImportError as error:
        report["torch_error"] = str(error)
    report["torch_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tflite"))
    print(json.dumps(report))
''')


def test_onnx_runtime_runs_without_torch(baker_dir):
    pytest.importorskip("onnxruntime", reason="the onnx extra")
    kokoro = "kokoro" if registry.is_installed("yunxi") else "no-kokoro"
    result = subprocess.run([sys.executable, "-c", SCRIPT, kokoro], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "QINGYIN_BACKGROUND_GATE": "false"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["baker"] > 10000
    assert report["baker_default_backend"] == "onnx"  # the family's default when torch is missing
    assert "pip install 'qingyin[convert]'" in report["torch_error"]
    assert report["torch_loaded"] == []
    assert report["server"] is True or "fastapi" in report["server"]
    if kokoro == "kokoro":
        assert report["yunxi"] > 10000
    else:
        pytest.skip("the Kokoro voices are not installed (make test installs them): Baker checked only")
