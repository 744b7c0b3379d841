"""qingyin.compress.runs: the training loop every compress run shares saves its checkpoint when it is stopped."""

from __future__ import annotations

import os
import signal

import pytest

from qingyin.compress.runs import train_loop


def test_sigterm_stops_the_loop_after_saving_where_it_stood(tmp_path):
    calls, saved = [], []

    def step_once() -> dict[str, float]:
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # `kill` or the end of a session, in the middle of the third step
        return {"loss": 1.0}

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        train_loop(step_once, lambda: 0.0, saved.append, tmp_path, 0, 100, validate_every=50, checkpoint_every=50,
                   metric="m", description="test", progress=False)
    assert saved == [2]  # two whole steps; the interrupted one is not counted
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
