"""The quality gate of ONNX variants (qingyin.evaluate.gate) and the default variant it decides.

The selection tests build fake exports (a manifest and placeholder files) and write gate.json files by hand;
the gate itself runs on a few short sentences of the real Baker voice, in a temporary voice folder whose files
are links to the cached voice and exports, so that no gate.json lands in the user's cache.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

from qingyin.evaluate.gate import (  # noqa: E402
    STUDENT_REQUIRED,
    STUDENT_THRESHOLDS,
    THRESHOLDS,
    GateResult,
    check_metrics,
    gate_thresholds,
)
from qingyin.families.fs2_mbmelgan.export import (  # noqa: E402
    FORMAT,
    GATE_FILE,
    GATE_VERSION,
    MANIFEST_FILE,
    MODEL_FILES,
    SOURCE_FILES,
    VARIANTS,
    VOCODER_FILE,
    current_gate,
    default_variant,
    source_hashes,
    variant_dir,
)
from qingyin.voices import registry  # noqa: E402
from qingyin.voices.wheels import sha256_file  # noqa: E402

SHORT_TEXTS = ("今天天气很好。", "银行行长说：重新开始吧！")


# --- choosing the default variant, on fake exports ---------------------------------------------------------------


@pytest.fixture
def fake_voice(tmp_path) -> Path:
    """A voice folder whose manifest names source hashes, with every variant "exported" as placeholder files."""
    voice = tmp_path / "voice"
    voice.mkdir()
    files = {name: f"{index:064x}" for index, name in enumerate(SOURCE_FILES)}
    (voice / registry.MANIFEST).write_text(json.dumps({"voice": "baker", "files": files}))
    for variant in VARIANTS:
        folder = variant_dir(voice, variant)
        folder.mkdir(parents=True)
        for name in MODEL_FILES:
            (folder / name).write_bytes(f"{variant} {name}".encode())
        manifest = {"format": FORMAT, "variant": variant, "source": source_hashes(voice, variant),
                    "files": {name: sha256_file(folder / name) for name in MODEL_FILES}}
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return voice


def write_gate(voice: Path, variant: str, rtf: float, fp32_rtf: float, passed: bool = True) -> Path:
    """A gate.json like run_gate's, for the variant's current export."""
    manifest = json.loads((variant_dir(voice, variant) / MANIFEST_FILE).read_text())
    result = GateResult(variant=variant, passed=passed, metrics={"mcd_db": 1.0 if passed else 9.0},
                        thresholds=dict(THRESHOLDS), failures=[] if passed else ["mcd_db 9 > 4.7 (by 4.3)"],
                        rtf=rtf, torch_rtf=0.05, fp32_rtf=fp32_rtf, texts=20, sentences=21, audio_seconds=87.0,
                        threads=2, export={key: manifest[key] for key in ("format", "source", "files")})
    return result.write(variant_dir(voice, variant))


def edit_gate(voice: Path, variant: str, **changes) -> None:
    path = variant_dir(voice, variant) / GATE_FILE
    gate = json.loads(path.read_text())
    gate.update(changes)
    path.write_text(json.dumps(gate))


def test_without_gates_the_default_is_fp32(fake_voice):
    assert all(current_gate(fake_voice, variant) is None for variant in VARIANTS)
    assert default_variant(fake_voice) == "fp32"


def test_the_fastest_passing_variant_is_the_default(fake_voice):
    write_gate(fake_voice, "fp32", rtf=0.040, fp32_rtf=0.040)
    write_gate(fake_voice, "int8-dynamic", rtf=0.038, fp32_rtf=0.040)
    write_gate(fake_voice, "int8-static", rtf=0.030, fp32_rtf=0.040)
    assert default_variant(fake_voice) == "int8-static"
    write_gate(fake_voice, "int8-static", rtf=0.030, fp32_rtf=0.040, passed=False)
    assert default_variant(fake_voice) == "int8-dynamic"
    write_gate(fake_voice, "int8-dynamic", rtf=0.042, fp32_rtf=0.040)  # passed, but slower than fp32
    assert default_variant(fake_voice) == "fp32"


def test_a_passing_variant_slower_than_fp32_is_not_the_default_even_without_an_fp32_gate(fake_voice):
    write_gate(fake_voice, "int8-static", rtf=0.045, fp32_rtf=0.040)
    assert current_gate(fake_voice, "fp32") is None
    assert default_variant(fake_voice) == "fp32"


def test_speed_is_compared_relative_to_fp32_of_the_same_run(fake_voice):
    write_gate(fake_voice, "int8-dynamic", rtf=0.020, fp32_rtf=0.025)  # gated on a quiet machine: 0.8x
    write_gate(fake_voice, "int8-static", rtf=0.030, fp32_rtf=0.050)  # on a busy one: 0.6x
    assert default_variant(fake_voice) == "int8-static"


@pytest.mark.parametrize("staleness", ["other weights", "other export", "older gate", "broken json", "file gone"])
def test_stale_gates_do_not_count(fake_voice, staleness):
    write_gate(fake_voice, "int8-static", rtf=0.030, fp32_rtf=0.040)
    assert default_variant(fake_voice) == "int8-static"
    gate_path = variant_dir(fake_voice, "int8-static") / GATE_FILE
    export = json.loads(gate_path.read_text())["export"]
    if staleness == "other weights":  # gated before the voice's weights changed
        edit_gate(fake_voice, "int8-static", export={**export, "source": {name: "0" * 64 for name in SOURCE_FILES}})
    elif staleness == "other export":  # exported again (--force) after the gate ran
        edit_gate(fake_voice, "int8-static", export={**export, "files": dict.fromkeys(MODEL_FILES, "0" * 64)})
    elif staleness == "older gate":
        edit_gate(fake_voice, "int8-static", gate_version=GATE_VERSION - 1)
    elif staleness == "broken json":
        gate_path.write_text('{"passed": true, "rtf": ')
    else:
        (variant_dir(fake_voice, "int8-static") / MODEL_FILES[0]).unlink()
    assert current_gate(fake_voice, "int8-static") is None
    assert default_variant(fake_voice) == "fp32"


def test_failures_name_the_metric_and_the_margin():
    good = {"durations_identical": 1.0, "mel_l1": 0.01, "mcd_db": 1.0, "snr_db": -3.0}
    assert check_metrics(good) == []  # snr_db is reported, not gated; cer_delta was not measured
    direction, limit = THRESHOLDS["mcd_db"]
    assert direction == "max"
    failures = check_metrics({**good, "mcd_db": limit + 0.5, "durations_identical": math.nan})
    assert failures == [f"durations_identical nan < {THRESHOLDS['durations_identical'][1]:g} (by nan)",
                        f"mcd_db {limit + 0.5:.4g} > {limit:g} (by 0.5)"]


def test_calibration_and_gate_sentences_are_disjoint():
    from qingyin.evaluate.gate import GATE_TEXTS
    from qingyin.families.fs2_mbmelgan.export.static_quant import CALIBRATION_TEXTS
    from qingyin.text.corpus import read_texts

    texts = read_texts()
    assert GATE_TEXTS + CALIBRATION_TEXTS <= len(texts)
    assert not set(texts[:GATE_TEXTS]) & set(texts[-CALIBRATION_TEXTS:])


# --- the gate on the real voice --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def exported(baker_dir) -> Path:
    """The Baker voice with its fp32 and int8-static exports current (exported once into the cache if not)."""
    from qingyin.families.fs2_mbmelgan.export import is_exported

    if not all(is_exported(baker_dir, variant) for variant in ("fp32", "int8-static")):
        pytest.importorskip("onnx", reason="exporting to ONNX needs onnx and onnxscript")
        pytest.importorskip("onnxscript", reason="exporting to ONNX needs onnx and onnxscript")
        from qingyin.families.fs2_mbmelgan.export.onnx_export import export_voice_dir

        for variant in ("fp32", "int8-static"):
            export_voice_dir(baker_dir, variant)
    return baker_dir


@pytest.fixture
def linked_voice(exported, tmp_path) -> Path:
    """A voice folder of links to the cached voice's files and to its fp32 and int8-static exports."""
    return link_voice(exported, tmp_path / "baker")


def link_voice(exported: Path, voice: Path) -> Path:
    voice.mkdir(parents=True)
    for path in exported.iterdir():
        if path.is_file():
            (voice / path.name).symlink_to(path)
    for variant in ("fp32", "int8-static"):
        folder = variant_dir(voice, variant)
        folder.mkdir(parents=True)
        for name in (*MODEL_FILES, MANIFEST_FILE):
            (folder / name).symlink_to(variant_dir(exported, variant) / name)
    return voice


def test_gate_passes_fp32_and_writes_gate_json(linked_voice):
    pytest.importorskip("pyworld", reason="the gate's MCD needs the eval extra")
    from qingyin.evaluate.gate import run_gate

    result = run_gate(linked_voice, "fp32", sentences=SHORT_TEXTS, repeats=1)
    assert result.passed and result.failures == [], result.failures
    metrics = result.metrics
    # fp32 ONNX against torch (measured on these sentences): identical durations, mel |diff| 1e-6, MCD 0.004 dB,
    # audio SNR 57 dB (the vocoder's 1/128 sub-band rounding flips a few samples).
    assert metrics["durations_identical"] == metrics["durations_within_1"] == 1.0
    assert metrics["mel_l1"] < 1e-4
    assert metrics["snr_db"] > 40
    assert 0 <= metrics["mcd_db"] < 0.1
    assert "cer_delta" not in metrics
    assert result.sentences == 2 and result.texts == 2 and result.audio_seconds > 1
    assert result.rtf > 0 and result.torch_rtf > 0 and result.fp32_rtf == result.rtf
    written = json.loads((variant_dir(linked_voice, "fp32") / GATE_FILE).read_text())
    assert written == json.loads(json.dumps(asdict(result)))
    assert current_gate(linked_voice, "fp32") == written
    assert default_variant(linked_voice) == "fp32"


def test_gate_measures_int8_static_and_the_default_follows(linked_voice):
    pytest.importorskip("pyworld", reason="the gate's MCD needs the eval extra")
    from qingyin.evaluate.gate import run_gate

    result = run_gate(linked_voice, "int8-static", sentences=SHORT_TEXTS, repeats=1)
    metrics = result.metrics
    # Only the decoder is quantized: the durations are fp32's. Measured on these sentences: mel |diff| 0.0277,
    # MCD 4.14 dB (a pass); the metrics are deterministic, the speed is not.
    assert metrics["durations_identical"] == 1.0
    assert 0.005 < metrics["mel_l1"] < THRESHOLDS["mel_l1"][1]
    assert 1.0 < metrics["mcd_db"] < THRESHOLDS["mcd_db"][1]
    assert result.passed and result.failures == [], result.failures
    assert result.rtf > 0 and result.fp32_rtf > 0
    expected = "int8-static" if result.rtf < result.fp32_rtf else "fp32"
    assert default_variant(linked_voice) == expected


def test_the_onnx_backend_loads_the_default_variant(linked_voice):
    from qingyin.families.fs2_mbmelgan.backends import load_backend
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend

    assert OnnxBackend(linked_voice, threads=1).variant == "fp32"
    write_gate(linked_voice, "int8-static", rtf=0.02, fp32_rtf=0.04)
    assert OnnxBackend(linked_voice, threads=1).variant == "int8-static"
    assert load_backend("onnx", linked_voice, threads=1).variant == "int8-static"
    assert OnnxBackend(linked_voice, "fp32", threads=1).variant == "fp32"  # asked for: no gate needed


def test_export_and_gate_without_the_gate(exported):
    from qingyin.evaluate.gate import export_and_gate

    assert export_and_gate("baker", ["fp32", "int8-static"]) == [None, None]


def test_cli_export_gate_prints_the_verdict_and_the_default(exported, tmp_path, monkeypatch, capsys):
    pytest.importorskip("pyworld", reason="the gate's MCD needs the eval extra")
    from qingyin.cli import main

    voice = link_voice(exported, tmp_path / "voices" / "baker")
    monkeypatch.setenv("QINGYIN_HOME", str(tmp_path))
    assert main(["export", "baker", "--variant", "fp32", "--gate", "--texts", "1"]) == 0
    out = capsys.readouterr().out
    assert "fp32: PASSED on 1 sentences" in out and "mcd_db" in out
    assert out.strip().endswith("default ONNX variant now: fp32")
    assert current_gate(voice, "fp32")["passed"] is True


@pytest.mark.parametrize("arguments, message", [(["--cer"], "add --gate"), (["--gate", "--texts", "0"], "--texts")])
def test_cli_export_rejects_gate_options_that_make_no_sense(arguments, message, capsys):
    from qingyin.cli import main

    assert main(["export", "baker", "--variant", "fp32", *arguments]) == 2
    assert message in capsys.readouterr().err


# --- student variants ---------------------------------------------------------------------------------------------


def test_students_are_gated_by_how_they_sound_and_need_the_cer():
    assert gate_thresholds("student-int8") is STUDENT_THRESHOLDS and gate_thresholds("int8") is THRESHOLDS
    heard = {"durations_identical": 1.0, "mel_l1": 0.2, "mcd_db": 6.0, "speaker_similarity": 0.95,
             "dnsmos_delta": -0.05}
    assert check_metrics(heard, STUDENT_THRESHOLDS, STUDENT_REQUIRED) == [
        "cer_delta not measured (gate with the CER: --cer)"]  # mel_l1 and mcd_db are not a student's bounds
    assert check_metrics({**heard, "cer_delta": 0.004}, STUDENT_THRESHOLDS, STUDENT_REQUIRED) == []
    failures = check_metrics({**heard, "cer_delta": 0.03, "speaker_similarity": 0.8}, STUDENT_THRESHOLDS,
                             STUDENT_REQUIRED)
    assert failures == ["cer_delta 0.03 > 0.01 (by 0.02)", "speaker_similarity 0.8 < 0.9 (by 0.1)"]


@pytest.fixture(scope="module")
def student_voice(exported, tmp_path_factory):
    """A home with the Baker voice linked in and a student cut from it (untrained) shipped in a temporary folder."""
    pytest.importorskip("onnxscript", reason="exporting to ONNX needs onnx and onnxscript")
    import torch

    from qingyin.compress.ship import write_student
    from qingyin.compress.student import build_student, load_teacher_acoustic
    from qingyin.compress.student_recipe import StudentShape

    home = tmp_path_factory.mktemp("student-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("QINGYIN_HOME", str(home))
    voice = link_voice(exported, home / "voices" / "baker")
    import qingyin.families.fs2_mbmelgan.students as students

    patch.setattr(students, "STUDENTS_DIR", home / "students")
    torch.manual_seed(0)
    student = build_student(load_teacher_acoustic("baker"), StudentShape(decoder_hidden=64, ffn_channels=128,
                                                                         postnet_channels=64))
    write_student(student, students.student_dir("baker"), "baker", {"step": 0})
    yield voice, student
    patch.undo()


def test_a_student_variant_exports_the_students_decoder(student_voice):
    import torch

    from qingyin.families.fs2_mbmelgan.export import is_exported
    from qingyin.families.fs2_mbmelgan.export.onnx_export import export_voice_dir
    from qingyin.families.fs2_mbmelgan.features import AcousticControls
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend
    from qingyin.families.fs2_mbmelgan.students import load_student
    from qingyin.families.fs2_mbmelgan.voice import sentence_ids

    voice, _ = student_voice
    assert not is_exported(voice, "student")
    export_voice_dir(voice, "student")
    assert is_exported(voice, "student")
    manifest = json.loads((variant_dir(voice, "student") / MANIFEST_FILE).read_text())
    assert manifest["source"]["student.safetensors"] == source_hashes(voice, "student")["student.safetensors"]
    ids = sentence_ids(voice, [SHORT_TEXTS[0]])[0]
    features = OnnxBackend(voice, "student", threads=1).acoustic(ids, AcousticControls())
    with torch.no_grad():
        expected = load_student(voice)(torch.tensor([ids]))  # the shipped student: its fp16 tensors in fp32
    assert np.array_equal(features.durations, expected.durations[0].numpy())  # the teacher's front
    assert np.abs(features.mel - expected.mel[0].numpy()).max() < 1e-3
    fp32 = OnnxBackend(voice, "fp32", threads=1).acoustic(ids, AcousticControls())
    assert np.abs(fp32.mel - features.mel).mean() > 0.05  # not the teacher's (an untrained cut)

    export_voice_dir(voice, "student-int8")  # static INT8 decoder, every other large weight stored in INT8
    small = OnnxBackend(voice, "student-int8", threads=1).acoustic(ids, AcousticControls())
    assert np.mean(small.durations == features.durations) > 0.9 and np.isfinite(small.mel).all()
    for name in MODEL_FILES:
        assert (variant_dir(voice, "student-int8") / name).stat().st_size < 0.6 * (
            variant_dir(voice, "student") / name).stat().st_size, name


def test_a_size_variants_bundle_computes_what_its_onnx_graphs_compute(student_voice, tmp_path):
    pytest.importorskip("flatbuffers", reason="ORT-format conversion needs onnxruntime's tools")
    from qingyin.compress.bundle import make_bundle
    from qingyin.families.fs2_mbmelgan.export.onnx_export import export_voice_dir

    voice, _ = student_voice
    export_voice_dir(voice, "student-int8")
    bundle = make_bundle("baker", "student-int8", tmp_path / "bundle", voice_dir=voice)
    # INT8-stored weights in MatMulNBits at float accuracy, as the ONNX backend runs them: same durations and mel
    assert bundle.verification.passed and bundle.verification.mel_difference == 0.0


def test_the_pruned_variant_runs_the_shipped_pruned_vocoder(student_voice):
    import torch

    from qingyin.compress.prune import load_teacher_vocoder
    from qingyin.compress.ship import write_vocoder
    from qingyin.families.fs2_mbmelgan.export import PRUNED_VOCODER_SOURCE, available_variants
    from qingyin.families.fs2_mbmelgan.export.onnx_export import export_voice_dir
    from qingyin.families.fs2_mbmelgan.model.widths import VocoderWidths, build_vocoder
    from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend
    from qingyin.families.fs2_mbmelgan.students import load_student_vocoder, student_vocoder_dir

    voice, _ = student_voice
    config = load_teacher_vocoder("baker").config
    torch.manual_seed(0)  # an untrained vocoder of the 30 % run's widths, at a small scale so it does not saturate
    pruned = build_vocoder(config, VocoderWidths(264, (128, 64, 32), ((128, 128),) * 4 + ((64, 64),) * 4
                                                 + ((32, 32),) * 4)).eval()
    with torch.no_grad():
        for parameter in pruned.parameters():
            parameter.mul_(0.3)
    write_vocoder(pruned, student_vocoder_dir("baker"), "baker", {"step": 0, "ratio": 0.3})
    assert "student-int8-pruned" in available_variants(voice)
    export_voice_dir(voice, "student-int8-pruned")
    manifest = json.loads((variant_dir(voice, "student-int8-pruned") / MANIFEST_FILE).read_text())
    assert manifest["source"][PRUNED_VOCODER_SOURCE] == source_hashes(voice, "student-int8-pruned")[
        PRUNED_VOCODER_SOURCE]
    mel = np.random.default_rng(0).normal(-1, 1, (40, config.num_mels)).astype(np.float32)
    heard = OnnxBackend(voice, "student-int8-pruned", threads=1).vocode(mel)
    with torch.no_grad():
        expected = load_student_vocoder(voice)(torch.from_numpy(mel)[None])[0].numpy()
    assert heard.shape == expected.shape and np.abs(heard - expected).mean() < 2e-3  # INT8-stored weights
    assert np.abs(expected).max() > 0.01  # it makes sound at all: the comparison is not of silence
    assert (variant_dir(voice, "student-int8-pruned") / VOCODER_FILE).stat().st_size < 0.6 * (
        variant_dir(voice, "student-int8") / VOCODER_FILE).stat().st_size


def test_a_student_is_gated_on_speaker_and_dnsmos_and_fails_without_the_cer(student_voice):
    pytest.importorskip("pyworld", reason="the gate's MCD needs the eval extra")
    pytest.importorskip("resemblyzer", reason="a student's gate needs the eval extra")
    from qingyin.evaluate.gate import run_gate
    from qingyin.families.fs2_mbmelgan.export.onnx_export import export_voice_dir

    voice, _ = student_voice
    export_voice_dir(voice, "student")
    result = run_gate(voice, "student", sentences=SHORT_TEXTS[:1], repeats=1)
    assert not result.passed and "cer_delta not measured (gate with the CER: --cer)" in result.failures
    assert result.thresholds == STUDENT_THRESHOLDS
    assert result.metrics["durations_identical"] == 1.0
    assert 0 < result.metrics["speaker_similarity"] <= 1 and math.isfinite(result.metrics["dnsmos_delta"])
