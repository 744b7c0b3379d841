"""Training checkpoints that survive a kill: written whole to a temporary file, synced, then renamed over the old one.

    save_checkpoint(path, {"step": 100, "model": ..., "optimizer": ..., "rng": capture_rng(generator)})
    state = load_checkpoint(path)            # None when there is none yet
    restore_rng(state["rng"], generator)

A checkpoint is a torch.save dict of tensors, numbers, strings and lists (loaded with weights_only=True: no pickled
code runs). The random state is torch's (CPU) and a numpy Generator's, so that a resumed run draws what an
uninterrupted one would have drawn.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch


def save_checkpoint(path: str | Path, state: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as file:
        torch.save(state, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def load_checkpoint(path: str | Path) -> dict | None:
    path = Path(path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def capture_rng(generator: np.random.Generator) -> dict:
    """torch's CPU random state and `generator`'s, as plain data."""
    return {"torch": torch.get_rng_state(), "numpy": json.dumps(generator.bit_generator.state)}


def restore_rng(state: dict, generator: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.bit_generator.state = json.loads(state["numpy"])
