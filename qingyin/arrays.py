"""Small numpy helpers shared across layers (imports nothing from qingyin)."""

from __future__ import annotations

import numpy as np


def true_runs(mask: np.ndarray) -> np.ndarray:
    """(T,) bool -> (R, 2) int [start, stop) of each run of True."""
    edges = np.diff(np.concatenate(([0], np.asarray(mask).astype(np.int8), [0])))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)
