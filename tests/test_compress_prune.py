"""qingyin.compress: structured pruning of the MB-MelGAN vocoder and its recovery fine-tuning, on a tiny random
vocoder whose teacher data (written by the teacher-data writer, from a fake engine) takes a second to make."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("torch_pruning")

from qingyin.compress.checkpoint import load_checkpoint  # noqa: E402
from qingyin.compress.cli import add_compress_parser, compress_command  # noqa: E402
from qingyin.compress.prune import (  # noqa: E402
    PRUNED_CONFIG,
    hint_layers,
    kept_channels,
    load_pruned_vocoder,
    prune_vocoder,
    save_pruned_vocoder,
)
from qingyin.compress.runs import CHECKPOINT, LOG, RECIPE, learning_rate_at  # noqa: E402
from qingyin.compress.teacher_data import render_teacher_data  # noqa: E402
from qingyin.compress.vocoder_discriminator import (  # noqa: E402
    MultiScaleDiscriminator,
    discriminator_loss,
    generator_adversarial_loss,
)
from qingyin.compress.vocoder_losses import subband_analysis  # noqa: E402
from qingyin.compress.vocoder_recipe import RecoveryError, RecoverySettings  # noqa: E402
from qingyin.compress.vocoder_recovery import recover_vocoder  # noqa: E402
from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANConfig, MBMelGANGenerator  # noqa: E402
from qingyin.families.fs2_mbmelgan.model.widths import (  # noqa: E402
    VocoderWidths,
    build_vocoder,
    parameter_count,
    vocoder_widths,
)

# Baker's layout, narrower and shallower: hop 4 * 2 * 2 = 16 samples; the sub-band quantization of the Baker graph
TINY = MBMelGANConfig(num_mels=8, channels=64, upsample_scales=(2, 2), stacks=2, subbands=4,
                      subband_quant_step=1 / 128)
RATE = 16000
SETTINGS = RecoverySettings(batch_size=2, segment_samples=256, context_frames=2, validation_utterances=2,
                            learning_rate_half_life=3,
                            full_band=((128, 32, 128), (64, 16, 64)), sub_band=((32, 8, 32), (16, 4, 16)))
CORPUS = [(f"t{i}", f"第{i}句。") for i in range(8)]


def tiny_vocoder() -> MBMelGANGenerator:
    torch.manual_seed(0)
    return MBMelGANGenerator(TINY).eval()


class FakeEngine:
    """What the teacher-data writer reads of an engine: each text is one utterance of the tiny vocoder's audio."""

    def __init__(self, vocoder: MBMelGANGenerator):
        self.vocoder = vocoder
        self.sample_rate = RATE
        self.selection = SimpleNamespace(name="baker")
        self.voice = SimpleNamespace(model=SimpleNamespace(name="baker", family="fs2_mbmelgan"),
                                     backend_name="torch", variant="fp32", sample_rate=RATE,
                                     parse_symbols=lambda phones: SimpleNamespace(ids=list(range(len(phones)))))

    def iter_sentences(self, text: str):
        rng = np.random.default_rng(len(text) * 1000 + ord(text[1]))
        durations = rng.integers(8, 14, size=5)
        mel = np.cumsum(rng.normal(0, 0.3, (int(durations.sum()), TINY.num_mels)), axis=0).astype(np.float32)
        with torch.no_grad():
            audio = self.vocoder(torch.from_numpy(mel)[None])[0].numpy()
        features = SimpleNamespace(durations=durations, pitch=np.zeros(5, np.float32), energy=np.zeros(5, np.float32),
                                   mel=mel)
        return [SimpleNamespace(phones=["a"] * 5, text=text, features=features, audio=audio)]


@pytest.fixture(scope="module", autouse=True)
def _denormals_back():
    """Training flushes denormals to zero (torch.set_flush_denormal, process-wide); the other tests' numerics
    are those of torch's default."""
    yield
    torch.set_flush_denormal(False)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "baker"
    render_teacher_data(CORPUS, out=out, shard_size=3, progress=False, synthesizer=FakeEngine(tiny_vocoder()))
    return out


def _recover(teacher_dir, out, steps, **options):
    options.setdefault("settings", SETTINGS)
    return recover_vocoder(teacher_dir, steps, out=out, validate_every=2, checkpoint_every=2, progress=False,
                           teacher=tiny_vocoder(), **options)


# --- pruning ---------------------------------------------------------------------------------------------------
def test_pruning_halves_every_channel_group_and_keeps_what_goes_in_and_out():
    teacher = tiny_vocoder()
    pruned = prune_vocoder(teacher, 0.5)
    assert vocoder_widths(teacher) == VocoderWidths.unpruned(TINY)
    assert vocoder_widths(pruned) == VocoderWidths(32, (16, 8), ((16, 16), (16, 16), (8, 8), (8, 8)))
    assert pruned.input_conv.in_channels == TINY.num_mels and pruned.output_conv.out_channels == TINY.subbands
    assert 0.2 < parameter_count(pruned) / parameter_count(teacher) < 0.35  # about (1 - 0.5)^2
    assert vocoder_widths(teacher) == VocoderWidths.unpruned(TINY)  # the teacher is left as it was
    mel = torch.randn(2, 20, TINY.num_mels)
    with torch.no_grad():
        assert pruned(mel).shape == teacher(mel).shape == (2, 20 * TINY.hop_length)
    assert type(pruned) is MBMelGANGenerator and not pruned._forward_hooks


def test_a_pruned_vocoder_loads_from_its_widths_without_the_pruner(tmp_path):
    pruned = prune_vocoder(tiny_vocoder(), 0.5)
    save_pruned_vocoder(tmp_path, pruned, ratio=0.5)
    saved = json.loads((tmp_path / PRUNED_CONFIG).read_text())
    assert saved["widths"]["upsample_channels"] == [16, 8] and saved["ratio"] == 0.5
    loaded = load_pruned_vocoder(tmp_path)
    mel = torch.randn(1, 20, TINY.num_mels)
    with torch.no_grad():
        assert torch.equal(loaded(mel), pruned(mel))
    with pytest.raises(ValueError, match="stacks do not fit"):
        build_vocoder(TINY, VocoderWidths(32, (16, 8), ((16, 16),)))
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        prune_vocoder(tiny_vocoder(), 1.0)


def test_subband_analysis_inverts_the_generators_synthesis():
    audio = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (1, 4096)).astype(np.float32))
    pqmf = tiny_vocoder().pqmf
    again = pqmf(subband_analysis(audio, pqmf.synthesis_filter))[:, 0]
    error = (again - audio)[:, 100:-100]
    assert float(error.pow(2).mean() / audio.pow(2).mean()) < 1e-4  # the PQMF is near perfect reconstruction


# --- recovery --------------------------------------------------------------------------------------------------
def test_recovery_trains_checkpoints_and_resumes_where_it_stopped(teacher_dir, tmp_path):
    whole = _recover(teacher_dir, tmp_path / "whole", 4)
    assert (whole.step, whole.parameters) == (4, parameter_count(prune_vocoder(tiny_vocoder(), 0.5)))
    assert [line["step"] for line in whole.history] == [0, 2, 4]
    assert all(np.isfinite(line["loss"]) for line in whole.history[1:])
    assert all(0 <= line["val_log_mel_l1_loud"] <= line["val_log_mel_l1"] for line in whole.history[1:])
    assert whole.last_log_mel_l1 is not None and whole.teacher_log_mel_l1 < 0.05  # float16 mels: near the teacher
    for name in (RECIPE, CHECKPOINT, LOG, PRUNED_CONFIG):
        assert (whole.out / name).is_file()

    halves = tmp_path / "halves"
    assert _recover(teacher_dir, halves, 2).step == 2
    with pytest.raises(RecoveryError, match="holds a run at step 2"):
        _recover(teacher_dir, halves, 4)
    with pytest.raises(RecoveryError, match="other settings"):
        _recover(teacher_dir, halves, 4, resume=True, settings=RecoverySettings(**{**vars(SETTINGS), "seed": 1}))
    resumed = _recover(teacher_dir, halves, 4, resume=True, settings=None)
    assert resumed.step == 4 and [line["step"] for line in resumed.history] == [0, 2, 4]
    first, second = load_checkpoint(whole.out / CHECKPOINT), load_checkpoint(halves / CHECKPOINT)
    assert first["step"] == second["step"] == 4
    for name, tensor in first["model"].items():  # the same batches, the same steps: the same weights
        assert torch.equal(tensor, second["model"][name]), name
    # the saved student is the checkpoint's weights in a vocoder that runs as the teacher does (quantized sub-bands)
    student = load_pruned_vocoder(halves)
    assert student.config.subband_quant_step == TINY.subband_quant_step
    assert all(torch.equal(t, first["model"][n]) for n, t in student.state_dict().items())


def test_the_learning_rate_halves_every_half_life_and_stays_put_without_one():
    assert learning_rate_at(1e-3, 0, 50_000) == 1e-3
    assert learning_rate_at(1e-3, 1000, 0) == 1e-3
    assert learning_rate_at(1e-3, 1000, 2000) == pytest.approx(2.5e-4)
    assert learning_rate_at(1e-3, 1000, 500) == pytest.approx(1e-3 / 2**0.5)
    with pytest.raises(RecoveryError, match="learning_rate_half_life"):
        RecoverySettings(learning_rate_half_life=-1).check()
    assert RecoverySettings.from_dict({"ratio": 0.3}).learning_rate_half_life == 0  # recipes saved before it


def test_the_kept_channels_are_found_and_hints_train_and_resume(teacher_dir, tmp_path):
    teacher = tiny_vocoder()
    pruned = prune_vocoder(teacher, 0.5)
    kept = kept_channels(teacher, pruned)
    assert list(kept) == list(hint_layers(teacher)) and len(kept["input_conv"]) == pruned.input_conv.out_channels
    mel = torch.randn(1, 20, TINY.num_mels)
    with torch.no_grad():  # the first layer is untouched by the pruning of later ones: its kept outputs are equal
        torch.testing.assert_close(pruned.input_conv(mel.transpose(1, 2)),
                                   teacher.input_conv(mel.transpose(1, 2))[:, kept["input_conv"]])
    hinted = RecoverySettings(**{**vars(SETTINGS), "hint_weight": 1.0})
    whole = _recover(teacher_dir, tmp_path / "whole", 4, settings=hinted)
    assert all(line["hint"] > 0 for line in whole.history[1:])
    assert json.loads((whole.out / RECIPE).read_text())["kept_channels"] == kept
    _recover(teacher_dir, tmp_path / "halves", 2, settings=hinted)
    _recover(teacher_dir, tmp_path / "halves", 4, resume=True, settings=None)
    first, second = load_checkpoint(whole.out / CHECKPOINT), load_checkpoint(tmp_path / "halves" / CHECKPOINT)
    for name, tensor in first["model"].items():
        assert torch.equal(tensor, second["model"][name]), name
    with pytest.raises(RecoveryError, match="hint_weight"):
        RecoverySettings(hint_weight=-1.0).check()


def test_a_log_mel_loss_joins_the_others_when_weighted(teacher_dir, tmp_path):
    result = _recover(teacher_dir, tmp_path / "mel", 2, settings=RecoverySettings(**{**vars(SETTINGS),
                                                                                      "mel_weight": 1.0}))
    line = result.history[1]
    assert line["log_mel"] > 0
    assert line["loss"] == pytest.approx(0.5 * line["full_band"] + 0.5 * line["sub_band"] + 10 * line["waveform"]
                                         + line["log_mel"], rel=1e-4)
    assert "log_mel" not in _recover(teacher_dir, tmp_path / "plain", 2).history[1]
    with pytest.raises(RecoveryError, match="mel_weight"):
        RecoverySettings(mel_weight=-1.0).check()
    for name in ("waveform_weight", "mel_weight", "adversarial_weight", "log_floor", "learning_rate",
                 "discriminator_learning_rate"):  # what the command line takes as a number: NaN is refused
        with pytest.raises(RecoveryError, match=name):
            RecoverySettings(**{name: float("nan")}).check()


def test_quantization_aware_training_sees_the_rounded_sub_bands_and_still_has_a_gradient(teacher_dir, tmp_path):
    from qingyin.compress.teacher_data import TeacherData
    from qingyin.compress.vocoder_recovery import _Trainer

    settings = RecoverySettings(**{**vars(SETTINGS), "quantization_aware": True})
    trainer = _Trainer(prune_vocoder(tiny_vocoder(), 0.5), TeacherData(teacher_dir), settings)
    mel = torch.randn(1, 20, TINY.num_mels)
    audio = trainer.model(mel)
    with torch.no_grad():  # the forward is the vocoder's as it runs, rounding included
        torch.testing.assert_close(audio, trainer.evaluation_model()(mel), atol=1e-5, rtol=0)
    audio.pow(2).sum().backward()
    assert trainer.model.input_conv.weight.grad.abs().sum() > 0  # round() alone would pass none
    result = _recover(teacher_dir, tmp_path / "qat", 2, settings=settings)
    assert np.isfinite(result.history[1]["loss"])


def test_the_discriminator_scores_every_scale_and_its_losses_are_least_squares():
    torch.manual_seed(0)
    discriminator = MultiScaleDiscriminator(scales=3, max_channels=64)
    scores = discriminator(torch.randn(2, 4096))
    assert [tuple(score.shape) for score in scores] == [(2, 1, 16), (2, 1, 8), (2, 1, 4)]  # 4^4 fewer, halved
    ones, zeros = [torch.ones(2, 1, 4)] * 3, [torch.zeros(2, 1, 4)] * 3
    assert float(discriminator_loss(ones, zeros)) == 0.0 and float(discriminator_loss(zeros, ones)) == 2.0
    assert float(generator_adversarial_loss(ones)) == 0.0 and float(generator_adversarial_loss(zeros)) == 1.0
    with pytest.raises(ValueError, match="multiple of 4"):
        MultiScaleDiscriminator(channels=6)


def test_an_adversarial_phase_starts_from_a_recovered_vocoder_and_resumes(teacher_dir, tmp_path):
    first = _recover(teacher_dir, tmp_path / "first", 2)
    adversarial = RecoverySettings(**{**vars(SETTINGS), "adversarial_weight": 2.5, "discriminator_warmup_steps": 2,
                                      "discriminator_max_channels": 32})
    whole = _recover(teacher_dir, tmp_path / "whole", 4, settings=adversarial, init_from=first.out)
    assert [line["step"] for line in whole.history] == [0, 2, 4]
    # the start is the first run's vocoder as it was saved, not a new pruning of the teacher
    assert whole.start_log_mel_l1 == pytest.approx(first.last_log_mel_l1, abs=1e-6)
    assert "adversarial" not in whole.history[1] and whole.history[2]["adversarial"] > 0  # after the warm-up only
    assert all(line["discriminator"] > 0 for line in whole.history[1:])
    recipe = json.loads((whole.out / RECIPE).read_text())
    assert recipe["initialized_from"]["step"] == 2 and recipe["initialized_from"]["folder"] == str(first.out)
    assert recipe["initialized_from"]["recipe"]["settings"] == SETTINGS.to_dict()
    _recover(teacher_dir, tmp_path / "halves", 2, settings=adversarial, init_from=first.out)
    _recover(teacher_dir, tmp_path / "halves", 4, resume=True, settings=None)
    one, other = load_checkpoint(whole.out / CHECKPOINT), load_checkpoint(tmp_path / "halves" / CHECKPOINT)
    for part in ("model", "discriminator"):  # the discriminator is checkpointed and resumed with the student
        for name, tensor in one[part].items():
            assert torch.equal(tensor, other[part][name]), (part, name)
    with pytest.raises(RecoveryError, match="pruned at 0.5, not 0.3"):
        _recover(teacher_dir, tmp_path / "other", 2, settings=RecoverySettings(**{**vars(SETTINGS), "ratio": 0.3}),
                 init_from=first.out)
    with pytest.raises(RecoveryError, match="leave out --hint-weight"):
        _recover(teacher_dir, tmp_path / "other", 2, settings=RecoverySettings(**{**vars(SETTINGS), "hint_weight": 1}),
                 init_from=first.out)
    with pytest.raises(RecoveryError, match="adversarial_weight"):
        RecoverySettings(adversarial_weight=-1.0).check()


def test_recovery_says_what_is_missing(tmp_path, teacher_dir):
    with pytest.raises(RecoveryError, match="qingyin compress teacher-data"):
        _recover(tmp_path / "nothing", tmp_path / "run", 2)
    with pytest.raises(RecoveryError, match="nothing to resume"):
        _recover(teacher_dir, tmp_path / "run", 2, resume=True)
    with pytest.raises(RecoveryError, match="multiple of the vocoder's hop"):
        _recover(teacher_dir, tmp_path / "run", 2, settings=RecoverySettings(segment_samples=250))


def test_the_command_line_names_the_missing_teacher_data(tmp_path):
    parser = argparse.ArgumentParser()
    add_compress_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compress", "prune-vocoder", "--steps", "2", "--teacher", str(tmp_path / "none"),
                              "--out", str(tmp_path / "run")])
    with pytest.raises(RecoveryError, match="qingyin compress teacher-data"):
        compress_command(args)  # `qingyin` prints it as an error, exit status 2
    args = parser.parse_args(["compress", "prune-vocoder", "--steps", "2", "--resume", "--batch-size", "4"])
    with pytest.raises(RecoveryError, match="leave out --batch-size"):
        compress_command(args)
    args = parser.parse_args(["compress", "prune-vocoder", "--steps", "2", "--init-from", str(tmp_path / "none")])
    with pytest.raises(RecoveryError, match="no pruned vocoder in"):
        compress_command(args)


def test_an_adversarial_phase_goes_beside_the_run_it_starts_from(teacher_dir, tmp_path, monkeypatch):
    from qingyin.compress import vocoder_recovery

    first = _recover(teacher_dir, tmp_path / "vocoder-0.5", 2)
    calls = []
    monkeypatch.setattr(vocoder_recovery, "recover_vocoder", lambda *args, **options: calls.append((args, options))
                        or SimpleNamespace(last_log_mel_l1=None, seconds_per_step=None, out=args[3], step=0,
                                           parameters=1, teacher_parameters=2, start_log_mel_l1=0.5,
                                           teacher_log_mel_l1=0.1))
    parser = argparse.ArgumentParser()
    add_compress_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compress", "prune-vocoder", "--steps", "9", "--teacher", str(teacher_dir),
                              "--init-from", str(first.out), "--adversarial-weight", "2.5", "--ratio", "0.7"])
    assert compress_command(args) == 0
    (_, steps, settings, out), options = calls[0]
    assert out == tmp_path / "vocoder-0.5-adversarial" and options["init_from"] == first.out
    assert (steps, settings.ratio, settings.adversarial_weight) == (9, 0.5, 2.5)  # the ratio is the run's


def test_the_log_mel_distance_can_leave_out_what_is_far_below_the_loudest():
    from qingyin.compress.vocoder_losses import LogMel, log_mel_l1

    rng = np.random.default_rng(0)
    time = np.arange(24000) / 24000
    tone = 0.5 * np.sin(2 * np.pi * 440 * time)
    one, other = (torch.from_numpy((tone + rng.normal(0, 1e-4, time.size)).astype(np.float32)) for _ in range(2))
    log_mel = LogMel.for_vocoder(24000, 300, 80)
    everything, loud = log_mel_l1(log_mel, one, other), log_mel_l1(log_mel, one, other, range_db=30.0)
    assert everything > 0.1 and loud < 0.01 * everything  # the two differ only in noise 70 dB below the tone


def test_validation_builds_no_graph(teacher_dir):
    from qingyin.compress.teacher_data import TeacherData
    from qingyin.compress.vocoder_recovery import _Trainer

    trainer = _Trainer(prune_vocoder(tiny_vocoder(), 0.5), TeacherData(teacher_dir), SETTINGS)
    outputs = []
    trainer.model.output_conv.register_forward_hook(lambda module, inputs, output: outputs.append(output))
    measured = trainer.validate_both(trainer.model)
    assert set(measured) == {"val_log_mel_l1", "val_log_mel_l1_loud"}
    assert outputs and not any(output.requires_grad for output in outputs)  # as in inference, not training
