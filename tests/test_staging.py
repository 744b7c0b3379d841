"""Staging folders (qingyin.voices.staging): builds go beside their target, and what killed builds left there is
cleared after an hour."""

from __future__ import annotations

import os
import time

from qingyin.voices.staging import STALE_STAGING_S, staging_folder


def test_staging_folder_is_hidden_beside_the_target_and_readable(tmp_path):
    target = tmp_path / "voices" / "int8-static"
    staging = staging_folder(target)
    assert staging.parent == target.parent and staging.name.startswith(".int8-static-")
    assert staging.stat().st_mode & 0o755 == 0o755


def test_stale_staging_folders_of_the_same_target_are_removed(tmp_path):
    target = tmp_path / "int8-static"
    stale = tmp_path / ".int8-static-dead"
    (stale / "raw").mkdir(parents=True)
    (stale / "raw" / "graph.onnx").write_bytes(b"x" * 100)
    old = time.time() - STALE_STAGING_S - 60
    os.utime(stale, (old, old))
    running = tmp_path / ".int8-static-busy"  # another build, still at work
    running.mkdir()
    other = tmp_path / ".fp32-dead"  # another target's
    other.mkdir()
    os.utime(other, (old, old))
    fresh = staging_folder(target)
    assert not stale.exists()
    assert running.is_dir() and other.is_dir() and fresh.is_dir()
