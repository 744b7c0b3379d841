from __future__ import annotations

import numpy as np
import pytest

from qingyin.evaluate.reference import REPO, load_reference, reference_available

GOLDEN = REPO / "tests" / "fixtures" / "golden.npz"


@pytest.fixture(scope="session")
def baker_dir():
    """The converted Baker voice in $QINGYIN_HOME (fetched and converted on first use)."""
    from qingyin.voices.fetch import ensure_voice

    return ensure_voice("baker", quiet=True)


@pytest.fixture(scope="session")
def backend(baker_dir):
    from qingyin.runtime.torch_backend import TorchBackend

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
