"""qingyin.compress.bundle: a variant of a tiny Baker-shaped voice (one small random-weight ONNX graph per stage,
with the real graphs' inputs and outputs) bundled in ORT format, then checked against its .onnx graphs."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'qingyin[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import qingyin  # noqa: E402
import qingyin.cli  # noqa: E402
from qingyin.compress import bundle as bundles  # noqa: E402
from qingyin.compress.bundle import Bundle, BundleError, Verification, make_bundle, summary  # noqa: E402
from qingyin.families.fs2_mbmelgan.export import FORMAT, MODEL_FILES, UnknownVariantError, source_hashes  # noqa: E402
from qingyin.families.fs2_mbmelgan.features import AcousticControls  # noqa: E402
from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend  # noqa: E402
from qingyin.text.symbols import FINALS, INITIALS, ZERO_INITIAL  # noqa: E402
from qingyin.voices import registry  # noqa: E402
from qingyin.voices.registry import UnknownVoiceError  # noqa: E402
from qingyin.voices.wheels import VoiceNotAvailableError  # noqa: E402

HIDDEN, MELS, HOP = 8, 4, 300
GEOMETRY = {"hop_length": HOP, "max_positions": 2048, "min_vocoder_frames": 1}
# Baker's vocoder config with the tiny mel size: the runtime reads it for the streaming context only.
VOCODER_CONFIG = {"num_mels": MELS, "channels": 384, "kernel_size": 7, "upsample_scales": [3, 5, 5], "stacks": 4,
                  "stack_kernel_size": 3, "subbands": 4, "taps": 62, "cutoff_ratio": 0.142, "beta": 9.0,
                  "leaky_relu_slope": 0.2, "subband_quant_step": 0.0078125}
GRAPHS = [Path(name).with_suffix(".ort").name for name in MODEL_FILES]


def _symbols() -> dict[str, int]:
    """Baker's inventory (pad, sil, boundaries, initials, finals with tones, eos) with ids in order."""
    names = ["pad", "sil", "#0", "#1", "#2", "#3", ZERO_INITIAL, *INITIALS,
             *(f"{final}{tone}" for final in sorted(FINALS) for tone in range(1, 6)), "eos"]
    return {name: i for i, name in enumerate(names)}


def _tensor(name: str, kind: int, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, kind, shape)


def _save(path: Path, nodes: list, inputs: list, outputs: list, weights: dict[str, np.ndarray]) -> None:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs,
                              [numpy_helper.from_array(value, name) for name, value in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _write_graphs(folder: Path, symbols: int, rng: np.random.Generator) -> None:
    """Encoder: embeddings and per-symbol tables; decoder and vocoder: one MatMul each (the real graphs' I/O)."""
    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    per_symbol = ["batch", "symbols"]
    _save(folder / MODEL_FILES[0], [
        helper.make_node("Gather", ["embedding", "symbols"], ["states"]),
        helper.make_node("Gather", ["log_duration_table", "symbols"], ["log_durations"]),
        helper.make_node("Exp", ["log_durations"], ["durations"]),
        helper.make_node("Sub", ["durations", "one"], ["unscaled_frames"]),
        helper.make_node("Mul", ["unscaled_frames", "duration_scale"], ["frames"]),
        helper.make_node("Gather", ["pitch_table", "symbols"], ["unscaled_pitch"]),
        helper.make_node("Mul", ["unscaled_pitch", "pitch_scale"], ["pitch"]),
        helper.make_node("Gather", ["energy_table", "symbols"], ["unscaled_energy"]),
        helper.make_node("Mul", ["unscaled_energy", "energy_scale"], ["energy"]),
    ], [_tensor("symbols", i64, per_symbol), _tensor("lengths", i64, ["batch"]), _tensor("speakers", i64, ["batch"]),
        *(_tensor(name, f32, per_symbol) for name in ("duration_scale", "pitch_scale", "energy_scale"))],
        [_tensor("states", f32, [*per_symbol, HIDDEN]),
         *(_tensor(name, f32, per_symbol) for name in ("log_durations", "frames", "pitch", "energy"))],
        {"embedding": rng.normal(0, 1, (symbols, HIDDEN)).astype(np.float32),
         "log_duration_table": np.log1p(rng.integers(1, 5, symbols)).astype(np.float32),  # 1-4 frames a symbol
         "pitch_table": rng.normal(0, 1, symbols).astype(np.float32),
         "energy_table": rng.normal(0, 1, symbols).astype(np.float32), "one": np.float32(1.0)})
    _save(folder / MODEL_FILES[1], [
        helper.make_node("MatMul", ["states", "projection"], ["projected"]),
        helper.make_node("Tanh", ["projected"], ["mel"]),
    ], [_tensor("states", f32, ["batch", "frames", HIDDEN]), _tensor("mel_lengths", i64, ["batch"])],
        [_tensor("mel", f32, ["batch", "frames", MELS])],
        {"projection": rng.normal(0, 0.5, (HIDDEN, MELS)).astype(np.float32)})
    _save(folder / MODEL_FILES[2], [
        helper.make_node("MatMul", ["mel", "synthesis"], ["frame_audio"]),
        helper.make_node("Tanh", ["frame_audio"], ["bounded"]),
        helper.make_node("Reshape", ["bounded", "flat"], ["audio"]),
    ], [_tensor("mel", f32, ["batch", "frames", MELS])], [_tensor("audio", f32, ["batch", "samples"])],
        {"synthesis": rng.normal(0, 0.3, (MELS, HOP)).astype(np.float32), "flat": np.array([0, -1], np.int64)})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A $QINGYIN_HOME holding a tiny "baker": its configs, symbols and an fp32 export, but no weights."""
    home = tmp_path_factory.mktemp("home")
    voice = home / "voices" / "baker"
    export = voice / "onnx" / "fp32"
    export.mkdir(parents=True)
    symbols = _symbols()
    (voice / registry.SYMBOLS).write_text(json.dumps({"symbol_to_id": symbols}))
    (voice / registry.ACOUSTIC_CONFIG).write_text(json.dumps({"num_symbols": len(symbols), "pad_id": 0}))
    (voice / registry.VOCODER_CONFIG).write_text(json.dumps(VOCODER_CONFIG))
    recorded = {name: _sha256(voice / name) for name in (registry.ACOUSTIC_CONFIG, registry.VOCODER_CONFIG)}
    recorded |= {registry.ACOUSTIC_WEIGHTS: "0" * 64, registry.VOCODER_WEIGHTS: "1" * 64}  # not needed here
    (voice / registry.MANIFEST).write_text(json.dumps({"voice": "baker", "files": recorded}))
    _write_graphs(export, len(symbols), np.random.default_rng(0))
    (export / "manifest.json").write_text(json.dumps({
        "format": FORMAT, "variant": "fp32", "files": {name: _sha256(export / name) for name in MODEL_FILES},
        "source": source_hashes(voice), "geometry": GEOMETRY}))
    return home


@pytest.fixture
def voice(home, monkeypatch) -> Path:
    monkeypatch.setenv("QINGYIN_HOME", str(home))
    return home / "voices" / "baker"


@pytest.fixture(scope="module")
def made(home, tmp_path_factory) -> Bundle:
    """The tiny voice's fp32 bundled once, for the tests that only read it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QINGYIN_HOME", str(home))
        return make_bundle("baker", "fp32", tmp_path_factory.mktemp("bundles") / "baker-fp32")


def _feeds(session: ort.InferenceSession, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs for a graph of the tiny voice: ids and lengths for integer inputs, random values for float ones."""
    feeds = {}
    for given in session.get_inputs():
        if given.type == "tensor(int64)":
            feeds[given.name] = (rng.integers(1, 50, (1, 7)) if given.name == "symbols"
                                 else np.array([7 if given.name == "lengths" else 0], np.int64))
        else:
            shape = (1, 7) if given.name.endswith("_scale") else (1, 7, given.shape[-1])
            feeds[given.name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return feeds


def test_the_ort_graphs_load_and_give_what_the_onnx_graphs_give(made, voice):
    rng = np.random.default_rng(1)
    for onnx_name, ort_name in zip(MODEL_FILES, GRAPHS, strict=True):
        expected_session = ort.InferenceSession(str(voice / "onnx" / "fp32" / onnx_name),
                                                providers=["CPUExecutionProvider"])
        actual_session = ort.InferenceSession(str(made.folder / ort_name), providers=["CPUExecutionProvider"])
        assert [i.name for i in actual_session.get_inputs()] == [i.name for i in expected_session.get_inputs()]
        feeds = _feeds(expected_session, rng)
        for expected, actual in zip(expected_session.run(None, feeds), actual_session.run(None, feeds), strict=True):
            np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def test_the_backend_over_the_bundle_speaks_like_the_onnx_variant(made, voice):
    ids = [7, 30, 2, 12, 55, 1, len(_symbols()) - 1]
    expected, actual = OnnxBackend(voice, "fp32"), OnnxBackend(made.folder, "fp32", graphs=made.folder)
    assert actual.encoder.get_inputs()  # loaded from the .ort files: the bundle holds no .onnx
    assert not list(made.folder.glob("*.onnx"))
    want, got = expected.acoustic(ids, AcousticControls()), actual.acoustic(ids, AcousticControls())
    np.testing.assert_array_equal(got.durations, want.durations)
    assert want.durations.sum() > 0
    np.testing.assert_allclose(actual.vocode(got.mel), expected.vocode(want.mel), atol=1e-6)
    assert (actual.hop_length, actual.max_positions, actual.vocoder_context_frames) == (
        expected.hop_length, expected.max_positions, expected.vocoder_context_frames)


def test_make_bundle_reports_a_passed_verification(made):
    check = made.verification
    assert check.passed and check.same_io and check.same_durations
    assert check.symbols > 10 and check.samples > 0 and check.samples % HOP == 0
    assert check.mel_difference < 1e-6 and check.audio_difference < 1e-6 and check.snr_db > 100


def test_the_manifest_lists_every_file_with_its_size_and_hash(made, voice):
    manifest = json.loads((made.folder / "manifest.json").read_text())
    on_disk = {path.name for path in made.folder.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk == {*GRAPHS, "required_operators.config", "symbols.json",
                                                 "acoustic.json", "vocoder.json", "NOTICE.txt"}
    for name, entry in manifest["files"].items():
        assert entry == {"bytes": (made.folder / name).stat().st_size, "sha256": _sha256(made.folder / name)}
    assert manifest["total_bytes"] == sum(entry["bytes"] for entry in manifest["files"].values()) == made.total_bytes
    assert (manifest["voice"], manifest["variant"], manifest["qingyin"]) == ("baker", "fp32", qingyin.__version__)
    assert manifest["onnxruntime"] == ort.__version__
    assert manifest["ort_format"] == {"optimization_style": "Fixed", "optimization_level": "all",
                                      "target_platform": "arm"}
    assert manifest["license"] == registry.get_voice("baker").license
    assert manifest["geometry"] == GEOMETRY
    assert manifest["export"]["files"] == {name: _sha256(voice / "onnx" / "fp32" / name) for name in MODEL_FILES}
    assert manifest["verification"]["same_durations"] is True
    for name in ("symbols.json", "acoustic.json", "vocoder.json"):
        assert _sha256(made.folder / name) == _sha256(voice / name)
    assert registry.get_voice("baker").license in (made.folder / "NOTICE.txt").read_text()


def test_the_operator_list_names_the_ops_the_graphs_use(made, voice):
    used = {node.op_type for name in MODEL_FILES for node in onnx.load(str(voice / "onnx" / "fp32" / name)).graph.node}
    listed = set()
    for line in (made.folder / "required_operators.config").read_text().splitlines():
        if line.startswith("# - "):
            assert "/" not in line  # the models by name, not by the path they were converted in
        elif line and not line.startswith("#"):
            domain, _, ops = line.split(";")
            assert domain == "ai.onnx"
            listed |= set(ops.split(","))
    assert listed == used == {"Gather", "Exp", "Sub", "Mul", "MatMul", "Tanh", "Reshape"}


def test_the_summary_says_plainly_whether_the_bundle_fits_the_mobile_target():
    check = Verification("你好。", 5, 3000, True, True, 0.0, 7.9e-3, 63.8)
    big = summary(Bundle(Path("/b"), "baker", "fp32", {"vocoder.ort": 7_526_056, "acoustic_decoder.ort": 65_465_000},
                         check))
    assert "fp32 is 73.0 MB: over the 10 MB mobile target; a smaller (student) variant is needed" in big
    assert "vocoder.ort" in big and "7,526,056 bytes" in big and "SNR 63.8 dB" in big
    small = summary(Bundle(Path("/b"), "baker", "int8-static", {"vocoder.ort": 4_000_000}, check))
    assert "int8-static is 4.0 MB: under the 10 MB mobile target" in small


def test_a_folder_that_is_not_empty_is_refused_and_force_replaces_only_a_bundle(voice, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not empty; pass --force"):
        make_bundle("baker", out=out)
    with pytest.raises(BundleError, match="holds no qingyin bundle"):
        make_bundle("baker", out=out, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    bundle = tmp_path / "bundle"
    make_bundle("baker", out=bundle)
    (bundle / "stale.txt").write_text("from before")
    with pytest.raises(BundleError, match="--force"):
        make_bundle("baker", out=bundle)
    make_bundle("baker", out=bundle, force=True)
    assert not (bundle / "stale.txt").exists() and (bundle / "vocoder.ort").is_file()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no staging left behind


def test_voices_and_variants_that_cannot_be_bundled_say_what_to_do(voice, tmp_path):
    with pytest.raises(UnknownVoiceError, match="available"):
        make_bundle("nobody", out=tmp_path / "a")
    with pytest.raises(BundleError, match="kokoro voice; bundles are made for fs2_mbmelgan voices"):
        make_bundle("xiaobei", out=tmp_path / "a")
    with pytest.raises(UnknownVariantError, match="int8-static"):
        make_bundle("baker", "int4", out=tmp_path / "a")
    with pytest.raises(VoiceNotAvailableError, match="qingyin export baker --variant int8-static"):
        make_bundle("baker", "int8-static", out=tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_a_damaged_export_is_refused(home, tmp_path, monkeypatch):
    copy = tmp_path / "baker"
    for path in (home / "voices" / "baker").rglob("*"):
        if path.is_file():
            (copy / path.relative_to(home / "voices" / "baker")).parent.mkdir(parents=True, exist_ok=True)
            (copy / path.relative_to(home / "voices" / "baker")).write_bytes(path.read_bytes())
    with open(copy / "onnx" / "fp32" / "vocoder.onnx", "ab") as graph:
        graph.write(b"\0")
    with pytest.raises(BundleError, match="vocoder.onnx .* differ from the export's manifest; export again"):
        make_bundle("baker", voice_dir=copy, out=tmp_path / "out")


def test_missing_onnxruntime_tools_are_named(voice, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime.tools.ort_format_model", None)
    with pytest.raises(BundleError, match="onnxruntime's tools .* pip install"):
        make_bundle("baker", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_bundle_that_fails_its_check_is_not_written(voice, tmp_path, monkeypatch):
    monkeypatch.setattr(bundles, "MIN_SNR_DB", 1e6)  # no bundle can pass
    with pytest.raises(BundleError, match="does not synthesize like the fp32 ONNX graphs.*nothing was written"):
        make_bundle("baker", out=tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_the_cli_bundles_into_qingyin_home_and_reports_errors(voice, home, capsys):
    assert qingyin.cli.main(["compress", "bundle", "baker"]) == 0
    out = capsys.readouterr().out
    assert (home / "bundles" / "baker-fp32" / "manifest.json").is_file()
    assert "total" in out and "under the 10 MB mobile target" in out and "same durations" in out
    assert qingyin.cli.main(["compress", "bundle", "baker"]) == 2
    assert "not empty; pass --force" in capsys.readouterr().err
    assert qingyin.cli.main(["compress", "bundle", "baker", "--force"]) == 0
