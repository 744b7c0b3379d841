"""Folders built beside their place (a voice's exported variant, a mobile bundle) and renamed into it when complete,
so that a reader never sees half of one."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

# A build killed before it finished (kill -9, a session's end) leaves its staging folder behind. One older than this
# is no longer written to by anyone: a build takes minutes.
STALE_STAGING_S = 3600.0


def staging_folder(target: Path) -> Path:
    """A new hidden folder beside `target` (".<name>-XXXX", readable like its neighbours) in which to build it, to be
    renamed into place when complete. Staging folders of the same target older than STALE_STAGING_S are removed
    first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}-"
    for old in target.parent.glob(f"{prefix}*"):
        try:
            if old.is_dir() and time.time() - old.stat().st_mtime > STALE_STAGING_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # gone meanwhile, or not ours to read: not worth failing the build over
            continue
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private
    return staging
