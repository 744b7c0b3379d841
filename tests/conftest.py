from __future__ import annotations

import os

import numpy as np
import pytest

from qingyin.evaluate.reference import REPO, load_reference, reference_available

GOLDEN = REPO / "tests" / "fixtures" / "golden.npz"
# No test server gates Baker's int8-static in the background (qingyin.evaluate.background_gate; tested with fakes).
os.environ["QINGYIN_BACKGROUND_GATE"] = "false"


@pytest.fixture(scope="session")
def baker_dir():
    """The Baker voice in $QINGYIN_HOME, provisioned on first use (fetched, converted, fp32 ONNX exported)."""
    from qingyin import families
    from qingyin.voices import registry

    return families.ensure_model(registry.get_model("baker"), quiet=True)


@pytest.fixture(scope="session")
def backend(baker_dir):
    from qingyin.families.fs2_mbmelgan.torch_runtime import TorchBackend

    return TorchBackend(baker_dir)


@pytest.fixture(scope="session")
def tts(baker_dir):
    import qingyin

    return qingyin.TTS(voice="baker")


@pytest.fixture(scope="session")
def golden() -> dict[str, dict[str, np.ndarray]]:
    data = np.load(GOLDEN)
    return {str(name): {key.split("/", 1)[1]: data[key] for key in data.files if key.startswith(f"{name}/")}
            for name in data["names"]}


@pytest.fixture(scope="session")
def oracle():
    reason = reference_available()
    if reason:
        pytest.skip(reason)
    return load_reference(threads=1)
