"""qingyin.compress.student: a smaller decoder and postnet cut from the teacher's, on tiny random FastSpeech2s."""

from __future__ import annotations

import argparse
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from qingyin.compress.checkpoint import load_checkpoint
from qingyin.compress.cli import add_compress_parser, compress_command
from qingyin.compress.runs import CHECKPOINT, LOG, RECIPE
from qingyin.compress.student import (
    StudentError,
    StudentShape,
    build_student,
    front_parameters,
    load_acoustic,
    parameter_counts,
    pruned_shape,
    save_student,
    trained_parameters,
)
from qingyin.compress.student_recipe import StudentSettings
from qingyin.compress.student_training import _Trainer, train_student
from qingyin.compress.teacher_data import TeacherData, render_teacher_data
from qingyin.families.fs2_mbmelgan.model.fastspeech2 import (
    FastSpeech2,
    FastSpeech2Config,
    TransformerConfig,
    VariancePredictorConfig,
)

TEACHER = FastSpeech2Config(
    num_symbols=20, num_mels=16, max_positions=128,
    encoder=TransformerConfig(hidden=32, layers=1, ffn_channels=64),
    decoder=TransformerConfig(hidden=32, layers=3, ffn_channels=64),
    variance=VariancePredictorConfig(channels=32),
    postnet_layers=5, postnet_channels=48,
)
SMALL = StudentShape(decoder_hidden=24, decoder_layers=2, ffn_channels=32, postnet_layers=3, postnet_channels=16)
SYMBOLS = torch.tensor([[3, 5, 7, 2, 9, 11, 4]])


def teacher_model(config: FastSpeech2Config = TEACHER) -> FastSpeech2:
    torch.manual_seed(0)
    model = FastSpeech2(config).eval()
    with torch.no_grad():  # about 3 frames per symbol, and batch norms with statistics of their own
        model.duration_predictor.output.bias.fill_(1.4)
        for norm in model.postnet.norms:
            norm.running_mean.uniform_(-0.1, 0.1)
            norm.running_var.uniform_(0.5, 2.0)
    return model


def full_shape(config: FastSpeech2Config) -> StudentShape:
    return StudentShape(config.decoder.hidden, config.decoder.layers, config.decoder.ffn_channels,
                        config.postnet_layers, config.postnet_channels)


@torch.no_grad()
def test_a_student_as_large_as_its_teacher_computes_what_the_teacher_computes():
    """Every cut keeps all channels and layers: the slicing puts each weight where the teacher had it."""
    teacher = teacher_model()
    student = build_student(teacher, full_shape(TEACHER))
    torch.testing.assert_close(student(SYMBOLS).mel, teacher(SYMBOLS).mel)


@torch.no_grad()
def test_the_same_holds_through_a_decoder_projection():
    """A teacher whose decoder is narrower than its encoder: the student starts from its projection."""
    config = dataclasses.replace(TEACHER, decoder=dataclasses.replace(TEACHER.decoder, hidden=24))
    teacher = teacher_model(config)
    student = build_student(teacher, full_shape(config))
    torch.testing.assert_close(student(SYMBOLS).mel, teacher(SYMBOLS).mel)


@torch.no_grad()
def test_a_smaller_student_keeps_the_teachers_front_and_shrinks_the_rest():
    teacher = teacher_model()
    student = build_student(teacher, SMALL)
    assert student.config.decoder.hidden == 24 and len(student.decoder.layers) == 2
    assert len(student.postnet.convs) == 3 and student.postnet.convs[0].out_channels == 16
    ours, theirs = student(SYMBOLS), teacher(SYMBOLS)
    for name in ("durations", "pitch", "energy"):  # the front decides them, and it is the teacher's
        torch.testing.assert_close(getattr(ours, name), getattr(theirs, name))
    assert ours.mel.shape == theirs.mel.shape and torch.isfinite(ours.mel).all()
    for mine, its in zip(front_parameters(student), front_parameters(teacher), strict=True):
        assert torch.equal(mine, its) and mine is not its  # copies: training the student leaves the teacher
    counts, teacher_counts = parameter_counts(student), parameter_counts(teacher)
    assert counts["front"] == teacher_counts["front"]
    assert counts["decoder_and_postnet"] < teacher_counts["decoder_and_postnet"] / 3
    assert sum(p.numel() for p in trained_parameters(student)) == counts["decoder_and_postnet"]


@torch.no_grad()
def test_the_cut_keeps_the_channels_that_reach_the_mel_most():
    teacher = teacher_model()
    with torch.no_grad():  # make residual channels 0..7 the ones the mel projection reads most
        teacher.mel_projection.weight[:, :8] *= 50.0
    student = build_student(teacher, dataclasses.replace(SMALL, decoder_hidden=8))
    torch.testing.assert_close(student.mel_projection.weight, teacher.mel_projection.weight[:, :8])


def test_shapes_beyond_the_teacher_are_refused():
    teacher = teacher_model()
    with pytest.raises(StudentError, match="decoder_hidden must be a whole number from 1 to the teacher's 32"):
        build_student(teacher, dataclasses.replace(SMALL, decoder_hidden=64))
    with pytest.raises(StudentError, match="postnet_layers must be a whole number from 2"):
        build_student(teacher, dataclasses.replace(SMALL, postnet_layers=1))
    with pytest.raises(StudentError, match="unknown student shape keys"):
        StudentShape.from_dict({"decoder_width": 3})


@torch.no_grad()
def test_a_saved_student_loads_as_an_ordinary_acoustic_model(tmp_path):
    student = build_student(teacher_model(), SMALL)
    save_student(tmp_path, student)
    loaded = load_acoustic(tmp_path)
    assert loaded.config == student.config
    torch.testing.assert_close(loaded(SYMBOLS).mel, student(SYMBOLS).mel)
    assert StudentShape.from_dict(SMALL.to_dict()) == SMALL
    with pytest.raises(StudentError, match="no acoustic model in"):
        load_acoustic(tmp_path / "missing")


# --- training --------------------------------------------------------------------------------------------------
SETTINGS = StudentSettings(shape=SMALL, batch_size=3, max_frames=400, warmup_steps=2, validation_utterances=2,
                           learning_rate=2e-3)
HOP = 16


class TeacherEngine:
    """What the teacher-data writer reads of an engine: each text one utterance of the tiny teacher's mel."""

    def __init__(self, teacher: FastSpeech2):
        self.teacher = teacher
        self.sample_rate = 16000
        self.selection = SimpleNamespace(name="baker")
        self.voice = SimpleNamespace(model=SimpleNamespace(name="baker", family="fs2_mbmelgan"),
                                     backend_name="torch", variant="fp32", sample_rate=16000,
                                     parse_symbols=lambda phones: SimpleNamespace(ids=[3 + (i * 7) % 15
                                                                                       for i in range(len(phones))]))

    def iter_sentences(self, text: str):
        phones = ["a"] * (4 + len(text) % 5)
        ids = torch.tensor([self.voice.parse_symbols(phones).ids])
        with torch.no_grad():
            out = self.teacher(ids)
        features = SimpleNamespace(durations=out.durations[0].numpy(), pitch=out.pitch[0].numpy(),
                                   energy=out.energy[0].numpy(), mel=out.mel[0].numpy())
        audio = np.zeros(int(out.durations.sum()) * HOP, np.float32)
        return [SimpleNamespace(phones=phones, text=text, features=features, audio=audio)]


@pytest.fixture(scope="module", autouse=True)
def _denormals_back():
    """Training flushes denormals to zero and these runs use one thread (process-wide); the other tests run with
    torch's defaults."""
    threads = torch.get_num_threads()
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "baker"
    corpus = [(f"t{i}", "第" * (i + 1) + "句。") for i in range(10)]
    render_teacher_data(corpus, out=out, shard_size=4, progress=False, synthesizer=TeacherEngine(teacher_model()))
    return out


def _train(teacher_dir, out, steps, **options):
    options.setdefault("settings", SETTINGS)
    return train_student(teacher_dir, steps, out=out, validate_every=3, checkpoint_every=3, progress=False,
                         teacher=teacher_model(), threads=1, **options)


def test_a_student_learns_its_teachers_mels_and_leaves_the_front_alone(teacher_dir, tmp_path):
    result = _train(teacher_dir, tmp_path / "run", 30)
    assert result.step == 30 and [line["step"] for line in result.history] == list(range(0, 31, 3))
    assert result.teacher_mel_l1 < 0.01  # the teacher reproduces its stored (float16) mels
    assert result.last_mel_l1 < 0.7 * result.start_mel_l1  # training brings the student closer to the teacher
    for name in (RECIPE, CHECKPOINT, LOG):
        assert (result.out / name).is_file()
    student, teacher = load_acoustic(result.out), teacher_model()
    for mine, its in zip(front_parameters(student), front_parameters(teacher), strict=True):
        assert torch.equal(mine, its)  # frozen
    assert result.parameters["decoder_and_postnet"] < result.teacher_parameters["decoder_and_postnet"]


def test_a_stopped_run_resumes_where_it_stopped(teacher_dir, tmp_path):
    whole = _train(teacher_dir, tmp_path / "whole", 6)
    halves = tmp_path / "halves"
    assert _train(teacher_dir, halves, 3).step == 3
    with pytest.raises(StudentError, match="holds a run at step 3"):
        _train(teacher_dir, halves, 6)
    with pytest.raises(StudentError, match="other settings"):
        _train(teacher_dir, halves, 6, resume=True, settings=dataclasses.replace(SETTINGS, seed=1))
    resumed = _train(teacher_dir, halves, 6, resume=True, settings=None)
    assert resumed.step == 6 and [line["step"] for line in resumed.history] == [0, 3, 6]
    first, second = load_checkpoint(whole.out / CHECKPOINT), load_checkpoint(halves / CHECKPOINT)
    for name, tensor in first["model"].items():  # the same batches, the same steps: the same weights
        assert torch.equal(tensor, second["model"][name]), name


def test_the_learning_rate_warms_up_then_halves_every_half_life(teacher_dir, tmp_path):
    settings = dataclasses.replace(SETTINGS, learning_rate_half_life=4)  # warm-up: 2 steps
    run = _train(teacher_dir, tmp_path / "run", 10, settings=settings).out
    learning_rate = load_checkpoint(run / CHECKPOINT)["optimizer"]["param_groups"][0]["lr"]
    assert learning_rate == pytest.approx(settings.learning_rate * 0.5 ** ((10 - 2) / 4))
    assert json.loads((run / RECIPE).read_text())["settings"]["learning_rate_half_life"] == 4
    with pytest.raises(StudentError, match="learning_rate_half_life must be"):
        _train(teacher_dir, tmp_path / "bad", 2, settings=dataclasses.replace(SETTINGS, learning_rate_half_life=-1))


def test_training_says_what_is_missing(teacher_dir, tmp_path):
    with pytest.raises(StudentError, match="qingyin compress teacher-data"):
        _train(tmp_path / "nothing", tmp_path / "run", 2)
    with pytest.raises(StudentError, match="nothing to resume"):
        _train(teacher_dir, tmp_path / "run", 2, resume=True)
    with pytest.raises(StudentError, match="too few to hold out"):
        _train(teacher_dir, tmp_path / "run", 2, settings=dataclasses.replace(SETTINGS, validation_utterances=10))
    with pytest.raises(StudentError, match="batch_size must be"):
        _train(teacher_dir, tmp_path / "run", 2, settings=dataclasses.replace(SETTINGS, batch_size=0))


def test_the_command_line_trains_and_refuses_a_changed_recipe_on_resume(teacher_dir, tmp_path, monkeypatch):
    import qingyin.compress.student_training as training

    monkeypatch.setattr(training, "load_teacher_acoustic", lambda model: teacher_model())
    parser = argparse.ArgumentParser()
    add_compress_parser(parser.add_subparsers(dest="command"))
    shape = ["--decoder-hidden", "24", "--decoder-layers", "2", "--ffn-channels", "32", "--postnet-layers", "3",
             "--postnet-channels", "16"]
    args = parser.parse_args(["compress", "student", "--steps", "2", "--teacher", str(teacher_dir), "--out",
                              str(tmp_path / "run"), "--batch-size", "2", "--validation-utterances", "2",
                              "--threads", "1", "--no-progress", *shape])
    assert compress_command(args) == 0
    saved = json.loads((tmp_path / "run" / RECIPE).read_text())
    assert saved["settings"]["shape"] == SMALL.to_dict() and saved["settings"]["batch_size"] == 2
    args = parser.parse_args(["compress", "student", "--steps", "4", "--resume", "--out", str(tmp_path / "run"),
                              "--decoder-hidden", "32"])
    with pytest.raises(StudentError, match="leave out --decoder-hidden"):
        compress_command(args)


# --- pruned decoders ---------------------------------------------------------------------------------------------
def test_a_pruned_shape_cuts_every_width_and_the_heads_and_keeps_the_layers():
    baker = (256, 3, 1024, 5, 512, 2)  # hidden, layers, feed-forward, postnet layers, postnet channels, heads
    assert StudentShape.pruned(0.3, *baker) == StudentShape(176, 3, 720, 5, 360, decoder_heads=2)
    assert StudentShape.pruned(0.5, *baker) == StudentShape(128, 3, 512, 5, 256, decoder_heads=1)
    assert StudentShape.pruned(0.7, *baker) == StudentShape(80, 3, 304, 5, 152, decoder_heads=1)
    assert StudentShape.pruned(0.99, *baker).decoder_hidden == 8  # a multiple of 8, never none
    for ratio in (0, 1, -0.2, float("nan"), "half"):
        with pytest.raises(StudentError, match="pruning ratio must be between 0 and 1"):
            StudentShape.pruned(ratio, *baker)


@torch.no_grad()
def test_a_pruned_decoder_is_the_teacher_with_its_layers_and_narrower_widths():
    teacher = teacher_model()
    shape = pruned_shape(TEACHER, 0.5)
    pruned = build_student(teacher, shape)
    assert len(pruned.decoder.layers) == 3 and len(pruned.postnet.convs) == 5
    assert pruned.config.decoder.hidden == 16 and pruned.config.decoder.ffn_channels == 32
    assert pruned.config.decoder.heads == 1 and pruned.config.encoder.heads == TEACHER.encoder.heads
    assert pruned.postnet.convs[0].out_channels == 24
    out = pruned(SYMBOLS)
    assert out.mel.shape == teacher(SYMBOLS).mel.shape and torch.isfinite(out.mel).all()
    reloaded = StudentShape.from_dict(json.loads(json.dumps(shape.to_dict())))
    assert reloaded == shape


@torch.no_grad()
def test_the_cut_keeps_the_heads_that_weigh_most():
    """A teacher whose first head reads nothing: without it the decoder computes what the teacher's does."""
    teacher = teacher_model()
    size = TEACHER.decoder.head_size
    for layer in teacher.decoder.layers:
        layer.attention.value.weight[:size] = 0.0
        layer.attention.value.bias[:size] = 0.0
    student = build_student(teacher, dataclasses.replace(full_shape(TEACHER), decoder_heads=1))
    assert student.decoder.layers[0].attention.query.out_features == size
    torch.testing.assert_close(student(SYMBOLS).mel, teacher(SYMBOLS).mel)
    with pytest.raises(StudentError, match="decoder_heads must be a whole number from 1 to the teacher's 2"):
        build_student(teacher, dataclasses.replace(full_shape(TEACHER), decoder_heads=3))


def test_feature_hints_are_zero_for_a_student_that_is_its_teacher_and_train_otherwise(teacher_dir, tmp_path):
    quiet = dataclasses.replace(TEACHER, decoder=dataclasses.replace(TEACHER.decoder, dropout=0.0,
                                                                     attention_dropout=0.0))
    teacher = teacher_model(quiet)
    data = TeacherData(teacher_dir)
    settings = dataclasses.replace(SETTINGS, shape=full_shape(quiet), hint_weight=1.0)
    trainer = _Trainer(build_student(teacher, settings.shape), data, settings, teacher_model(quiet))
    assert trainer.step()["hint"] == pytest.approx(0.0, abs=1e-6)  # losses before the first update
    hinted = dataclasses.replace(SETTINGS, hint_weight=0.5)
    result = _train(teacher_dir, tmp_path / "hinted", 6, settings=hinted)
    assert all("hint" in line for line in result.history[1:]) and result.history[-1]["hint"] > 0
    resumed = _train(teacher_dir, tmp_path / "hinted", 9, settings=None, resume=True)
    assert resumed.step == 9 and "hint" in resumed.history[-1]
    with pytest.raises(StudentError, match="hint_weight must be a number >= 0"):
        _train(teacher_dir, tmp_path / "bad", 2, settings=dataclasses.replace(SETTINGS, hint_weight=float("nan")))


def test_prune_decoder_on_the_command_line(teacher_dir, tmp_path, monkeypatch):
    import qingyin.compress.student_training as training

    monkeypatch.setattr(training, "load_teacher_acoustic", lambda model: teacher_model())
    parser = argparse.ArgumentParser()
    add_compress_parser(parser.add_subparsers(dest="command"))
    run = tmp_path / "decoder"
    common = ["--teacher", str(teacher_dir), "--out", str(run), "--threads", "1", "--no-progress"]
    args = parser.parse_args(["compress", "prune-decoder", "--ratio", "0.5", "--steps", "2", "--batch-size", "2",
                              "--validation-utterances", "2", "--hint-weight", "0.1", *common])
    assert compress_command(args) == 0
    saved = json.loads((run / RECIPE).read_text())
    assert saved["settings"]["shape"] == pruned_shape(TEACHER, 0.5).to_dict()
    assert saved["settings"]["hint_weight"] == 0.1
    args = parser.parse_args(["compress", "prune-decoder", "--steps", "3", "--resume", *common])
    assert compress_command(args) == 0 and load_checkpoint(run / CHECKPOINT)["step"] == 3
    args = parser.parse_args(["compress", "prune-decoder", "--ratio", "1.5", "--steps", "2", *common])
    with pytest.raises(StudentError, match="pruning ratio must be between 0 and 1"):
        compress_command(args)
