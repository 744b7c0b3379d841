"""Comparing audio from the Baker vocoder, which rounds its sub-band signals to 1/128 like the original.

A last-bit difference upstream (a chunk edge, a padded batch) can tip a value that sits on a rounding edge
to the other side: one step of 1/128, spread by the 4-band PQMF over at most 63 samples, at most
1/128 * 4 * 0.2526 = 7.9e-3 per flip (see qingyin/runtime/streaming.py).
"""

from __future__ import annotations

import numpy as np

ONE_FLIP = 7.9e-3


def assert_equal_but_for_rounding_flips(a: np.ndarray, b: np.ndarray, overlapping_flips: int = 2) -> None:
    """Same length; at most `overlapping_flips` flips on one sample; fewer than 1 % of samples off by > 1e-4."""
    assert a.shape == b.shape
    off = np.abs(a - b)
    assert off.max() <= overlapping_flips * ONE_FLIP
    assert (off > 1e-4).mean() < 0.01
