"""Shipping a student and a pruned vocoder (qingyin.compress.ship) and loading them on the installed teacher
(qingyin.families.fs2_mbmelgan.students), on a tiny random FastSpeech2 and MB-MelGAN installed as "baker" in a
temporary home."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from qingyin.compress.checkpoint import save_checkpoint
from qingyin.compress.prune import save_pruned_vocoder
from qingyin.compress.runs import CHECKPOINT, LOG, RECIPE
from qingyin.compress.ship import _run_record, ship_decoder, ship_student, ship_vocoder
from qingyin.compress.student import pruned_shape, save_student
from qingyin.compress.student_recipe import StudentError, StudentSettings
from qingyin.compress.student_training import _Trainer
from qingyin.compress.teacher_data import TeacherData
from qingyin.families.fs2_mbmelgan.export import (
    PRUNED_VOCODER_SOURCE,
    available_variants,
    source_hashes,
    student_folder,
)
from qingyin.families.fs2_mbmelgan.model.config import config_to_dict
from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANConfig
from qingyin.families.fs2_mbmelgan.model.widths import VocoderWidths, build_vocoder
from qingyin.families.fs2_mbmelgan.students import (
    FRONT,
    MANIFEST_FILE,
    VOCODER_WEIGHTS_FILE,
    WEIGHTS_FILE,
    StudentUnavailableError,
    load_student,
    load_student_vocoder,
    student_hash,
    student_manifest,
    student_vocoder_manifest,
)
from qingyin.voices import registry
from qingyin.voices.wheels import sha256_file
from tests.test_compress_student import (
    SETTINGS,
    SYMBOLS,
    TEACHER,
    _denormals_back,
    _train,
    teacher_dir,
    teacher_model,
)

__all__ = ["_denormals_back", "teacher_dir"]  # fixtures, used by name


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A QINGYIN_HOME with the tiny teacher installed as the "baker" model."""
    monkeypatch.setenv("QINGYIN_HOME", str(tmp_path / "home"))
    voice = registry.model_dir("baker")
    save_student(voice, teacher_model())  # acoustic.json + acoustic.safetensors, as a voice folder holds them
    install(voice)
    return voice


TINY_VOCODER = MBMelGANConfig(num_mels=16, channels=32, upsample_scales=(2, 2),
                             stacks=2, subbands=4, subband_quant_step=1 / 128)


def install(voice):
    """The voice's manifest, and a tiny vocoder (the teacher whose hash shipped models record)."""
    from safetensors.torch import save_file

    teacher_vocoder = build_vocoder(TINY_VOCODER, VocoderWidths.unpruned(TINY_VOCODER))
    (voice / registry.VOCODER_CONFIG).write_text(json.dumps(config_to_dict(TINY_VOCODER)))
    save_file(teacher_vocoder.state_dict(), str(voice / registry.VOCODER_WEIGHTS))
    names = (registry.ACOUSTIC_CONFIG, registry.ACOUSTIC_WEIGHTS, registry.VOCODER_CONFIG, registry.VOCODER_WEIGHTS)
    files = {name: sha256_file(voice / name) for name in names}
    (voice / registry.MANIFEST).write_text(json.dumps({"voice": "baker", "files": files}))


def vocoder_run(folder, step=2):
    """A prune-vocoder run folder as recovery leaves it: recipe, log, checkpoint and the vocoder's architecture."""
    torch.manual_seed(1)
    pruned = build_vocoder(TINY_VOCODER, VocoderWidths(24, (16, 8), ((16, 16), (8, 16), (8, 8), (8, 8)))).eval()
    save_pruned_vocoder(folder, pruned, ratio=0.3, step=step)
    (folder / RECIPE).write_text(json.dumps({"settings": {"ratio": 0.3}, "teacher": {"model": "baker"}}))
    (folder / LOG).write_text(json.dumps({"step": step, "val_log_mel_l1": 0.4}) + "\n")
    save_checkpoint(folder / CHECKPOINT, {"step": step, "model": pruned.state_dict()})
    return pruned


def _ship_on_the_command_line(command, run, out):
    import argparse

    from qingyin.compress.cli import add_compress_parser, compress_command

    parser = argparse.ArgumentParser()
    add_compress_parser(parser.add_subparsers(dest="command"))
    return compress_command(parser.parse_args(["compress", command, str(run), "--out", str(out)]))


@pytest.fixture
def run(teacher_dir, tmp_path):
    return _train(teacher_dir, tmp_path / "run", 3).out


@torch.no_grad()
def test_a_shipped_student_loads_on_the_installed_teacher_as_it_was_trained(home, run, tmp_path):
    folder = ship_student(run, tmp_path / "ship" / "baker")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["step"] == 3 and manifest["teacher"]["model"] == "baker"
    assert manifest["teacher"]["acoustic_sha256"] == sha256_file(home / registry.ACOUSTIC_WEIGHTS)
    assert "MIT" in manifest["license"] and manifest["recipe"]["settings"] == SETTINGS.to_dict()
    shipped = load_file(str(folder / WEIGHTS_FILE))
    assert not any(key.split(".")[0] in FRONT for key in shipped)  # the front comes from the installed teacher
    assert all(tensor.dtype == torch.float16 for tensor in shipped.values() if tensor.is_floating_point())

    trained = torch.load(run / CHECKPOINT, weights_only=False)["model"]
    student = load_student(home, folder=folder)
    for key, tensor in student.state_dict().items():
        if key.split(".")[0] in FRONT:
            assert torch.equal(tensor, trained[key]), key
        elif tensor.is_floating_point():  # rounded to fp16 and back
            torch.testing.assert_close(tensor, trained[key], atol=2e-3, rtol=1e-3)
    from qingyin.compress.student import load_acoustic

    reference = load_acoustic(run)
    reference.load_state_dict(trained)
    difference = (student(SYMBOLS).mel - reference(SYMBOLS).mel).abs().max()
    assert difference <= max(manifest["fp16_max_mel_change"] * 4, 1e-2)


def test_the_student_refuses_another_teacher_and_damaged_files(home, run, tmp_path):
    folder = ship_student(run, tmp_path / "ship" / "baker")
    other = teacher_model()
    with torch.no_grad():
        other.encoder.layers[0].ffn_in.weight.mul_(1.5)
    save_student(home, other)
    install(home)  # the teacher's hash is read from the voice's manifest, as the exports read theirs
    with pytest.raises(StudentUnavailableError, match="trained on other acoustic.safetensors"):
        load_student(home, folder=folder)
    with pytest.raises(StudentError, match="differs from the installed baker teacher's"):
        ship_student(run, tmp_path / "again" / "baker")  # the run's front is not this teacher's
    save_student(home, teacher_model())
    install(home)
    load_student(home, folder=folder)
    (folder / WEIGHTS_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(StudentUnavailableError, match="differs from its manifest"):
        load_student(home, folder=folder)
    (folder / MANIFEST_FILE).write_text('{"files": {}}')
    with pytest.raises(StudentUnavailableError, match="lacks the files' or the teacher's hashes"):
        load_student(home, folder=folder)


def test_a_voice_without_a_shipped_student_says_so(home, tmp_path, monkeypatch):
    import qingyin.families.fs2_mbmelgan.students as students

    monkeypatch.setattr(students, "STUDENTS_DIR", tmp_path / "none")
    with pytest.raises(StudentUnavailableError, match="no student acoustic model is shipped for 'baker'"):
        student_manifest(home)
    with pytest.raises(StudentUnavailableError, match="no student acoustic model is shipped"):
        student_hash(home)
    with pytest.raises(StudentUnavailableError, match="not an installed voice"):
        load_student(tmp_path / "nowhere")


def test_a_shipped_pruned_decoder_is_its_ratios_variants_student(home, run, teacher_dir, tmp_path, monkeypatch,
                                                                 capsys):
    import dataclasses

    import qingyin.families.fs2_mbmelgan.students as students

    monkeypatch.setattr(students, "STUDENTS_DIR", tmp_path / "package")
    assert "pruned70-int8" not in available_variants(home)
    with pytest.raises(StudentUnavailableError, match="no pruned decoder is shipped.*prune-decoder"):
        load_student(home, folder=student_folder(home, "pruned50"))
    pruned = _train(teacher_dir, tmp_path / "decoder", 3,
                    settings=dataclasses.replace(SETTINGS, shape=pruned_shape(TEACHER, 0.7))).out
    folder = ship_decoder(pruned)
    assert folder == tmp_path / "package" / "baker" / "decoder-70"
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert (manifest["ratio"], manifest["step"]) == (0.7, 3)
    assert "prune-decoder --ratio 0.7 --steps 3 with the recipe's settings" in manifest["reproduce"]
    assert manifest["reproduce"].endswith("qingyin compress ship-decoder")
    variants = available_variants(home)
    assert "pruned70" in variants and "pruned70-int8" in variants and "pruned50-int8" not in variants
    assert "student" not in variants  # no student shipped: each variant needs its own student
    assert student_folder(home, "pruned70-int8") == folder
    assert source_hashes(home, "pruned70-int8")["decoder-70/" + WEIGHTS_FILE] == manifest["files"][WEIGHTS_FILE]
    decoder = load_student(home, folder=student_folder(home, "pruned70"))
    assert decoder.config.decoder.hidden == pruned_shape(TEACHER, 0.7).decoder_hidden
    assert len(decoder.decoder.layers) == TEACHER.decoder.layers
    assert _ship_on_the_command_line("ship-decoder", pruned, tmp_path / "again") == 0
    assert "70% pruned decoder at step 3 shipped" in capsys.readouterr().err
    with pytest.raises(StudentError, match="not the teacher's pruned by 0.3, 0.5, 0.7"):
        ship_decoder(run)  # a 2-layer student is no pruned decoder
    with pytest.raises(StudentError, match="not a training run.*qingyin compress prune-decoder"):
        ship_decoder(tmp_path / "nothing")


def test_shipping_needs_a_checkpoint(home, tmp_path):
    with pytest.raises(StudentError, match="not a training run.*qingyin compress student"):
        ship_student(tmp_path / "nothing")
    with pytest.raises(StudentError, match="not a training run.*qingyin compress prune-vocoder"):
        ship_vocoder(tmp_path / "nothing")


def test_batches_hold_utterances_of_neighbouring_lengths(teacher_dir):
    settings = StudentSettings.from_dict({**SETTINGS.to_dict(), "batch_size": 3})
    assert settings.batch_by_length
    trainer = _Trainer(teacher_model(), TeacherData(teacher_dir), settings)
    frames = sorted(len(u.mel) for u in trainer.training)
    windows = {tuple(frames[start:start + 3]) for start in range(len(frames) - 2)}
    for _ in range(10):
        inputs, _ = trainer.batch()
        assert tuple(sorted(inputs["durations"].sum(dim=1).tolist())) in windows  # a window of the length order
    old = {key: value for key, value in SETTINGS.to_dict().items() if key != "batch_by_length"}
    assert StudentSettings.from_dict(old).batch_by_length is False  # recipes saved before it: uniform batches


@torch.no_grad()
def test_a_shipped_pruned_vocoder_loads_as_it_was_trained_and_refuses_damage(home, tmp_path, monkeypatch, capsys):
    import qingyin.families.fs2_mbmelgan.students as students

    pruned = vocoder_run(tmp_path / "run")
    monkeypatch.setattr(students, "STUDENTS_DIR", tmp_path / "package")  # what export's source hashes look at
    assert source_hashes(home, "student-int8-pruned")[PRUNED_VOCODER_SOURCE] is None
    assert "student-int8-pruned" not in available_variants(home)  # `qingyin export` skips what is not shipped
    with pytest.raises(StudentUnavailableError, match="no pruned vocoder is shipped for 'baker'"):
        student_vocoder_manifest(home)

    folder = ship_vocoder(tmp_path / "run")  # into the (patched) package's folder for baker
    assert folder == tmp_path / "package" / "baker" / "vocoder"
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert (manifest["step"], manifest["ratio"], manifest["validation_log_mel_l1"]) == (2, 0.3, 0.4)
    assert manifest["teacher"]["vocoder_sha256"] == sha256_file(home / registry.VOCODER_WEIGHTS)
    assert manifest["teacher"]["acoustic_sha256"] == sha256_file(home / registry.ACOUSTIC_WEIGHTS)
    assert "MIT" in manifest["license"] and "ship-vocoder" in manifest["reproduce"]
    assert all(t.dtype == torch.float16 for t in load_file(str(folder / VOCODER_WEIGHTS_FILE)).values()
               if t.is_floating_point())
    assert source_hashes(home, "student-int8-pruned")[PRUNED_VOCODER_SOURCE] == \
        manifest["files"][VOCODER_WEIGHTS_FILE]

    assert _ship_on_the_command_line("ship-vocoder", tmp_path / "run", tmp_path / "again") == 0
    assert "pruned vocoder at step 2 shipped" in capsys.readouterr().err
    loaded = load_student_vocoder(home)
    assert loaded.config == pruned.config and loaded.input_conv.out_channels == 24
    mel = torch.randn(1, 30, TINY_VOCODER.num_mels)
    assert (loaded(mel) - pruned(mel)).abs().max() <= max(4 * manifest["fp16_max_audio_change"], 4 / 128)

    other = teacher_model()
    with torch.no_grad():
        other.encoder.layers[0].ffn_in.weight.mul_(1.5)
    save_student(home, other)
    install(home)  # its mels came from other acoustic weights
    with pytest.raises(StudentUnavailableError, match="trained on other acoustic.safetensors"):
        load_student_vocoder(home)
    save_student(home, teacher_model())
    install(home)
    (folder / VOCODER_WEIGHTS_FILE).write_bytes(b"damaged")
    with pytest.raises(StudentUnavailableError, match="differs from its manifest"):
        load_student_vocoder(home)


def test_a_second_phase_says_how_to_reproduce_it_from_the_start(tmp_path):
    (tmp_path / "log.jsonl").write_text('{"step": 0, "val_log_mel_l1": 0.5}\n{"step": 10, "val_log_mel_l1": 0.4}\n')
    record = _run_record(tmp_path, {"initialized_from": {"step": 500}}, 10, "val_log_mel_l1", "prune-vocoder")
    assert record["validation_log_mel_l1"] == 0.4
    assert "prune-vocoder --steps 500 with the settings of the recipe's initialized_from, then qingyin compress " \
           "prune-vocoder --steps 10 with the recipe's settings and --init-from that run" in record["reproduce"]
    plain = _run_record(tmp_path, {}, 10, "val_log_mel_l1", "prune-vocoder")["reproduce"]
    assert "init" not in plain and "prune-vocoder --steps 10 with the recipe's settings, then" in plain
