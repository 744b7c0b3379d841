"""Recovery fine-tuning of a pruned MB-MelGAN vocoder against its teacher: the teacher's mels in, its audio out.

    result = recover_vocoder(teacher_data_dir, steps=5000, settings=RecoverySettings(ratio=0.5))
    result = recover_vocoder(teacher_data_dir, steps=8000, resume=True)     # continues from the checkpoint

A fresh run prunes the teacher data's vocoder (qingyin.compress.prune: the installed vocoder of the model that
rendered the data) at `settings.ratio`, then trains the pruned generator on random segments of the teacher data:
each batch is `batch_size` windows of `segment_samples` samples (plus `context_frames` mel frames on either side,
which the generator reads but no loss looks at, so the segment's edges see real context instead of reflection
padding), drawn uniformly over the utterances' windows. The loss is

    full_band_weight * multi-resolution STFT (audio) + sub_band_weight * multi-resolution STFT (sub-bands)
    + waveform_weight * L1 (audio) + mel_weight * L1 (log-mel spectrograms, the validation's measure)

where the target sub-bands are the PQMF analysis of the teacher's audio (qingyin.compress.vocoder_losses) and the
student's are its output conv's, through tanh. With `hint_weight` > 0 the teacher vocoder also runs on each batch,
and `hint_weight` * (the mean over the input conv, upsampling convs and residual stacks of the L1 between the
student's output and the teacher's on the channels pruning kept, relative to the teacher's mean magnitude) is added:
a target for every layer, not only the last (the kept channels are in recipe.json). The student trains without the
sub-band fake quantization of the Baker graph (round() has no gradient) and is validated and saved with it, as it
runs; with `quantization_aware` it trains through it too, the gradient passing the rounding as if it were not there
(straight-through), so that the losses see the sub-bands and audio the vocoder will emit.

The adversarial phase: with `adversarial_weight` > 0 a multi-scale discriminator
(qingyin.compress.vocoder_discriminator) learns the teacher's audio (real) from the student's (fake) on every
batch, and after `discriminator_warmup_steps` the student's loss also has `adversarial_weight` * its least-squares
adversarial loss, as MB-MelGAN's generator was trained after its first phase of STFT losses alone. Such a phase
usually starts from a recovered vocoder: `init_from` (a run folder, or any folder `save_pruned_vocoder` wrote)
starts a fresh run from that vocoder instead of pruning the teacher anew, with its own recipe, schedule and
checkpoints; recipe.json keeps where it came from.

The teacher data is held in memory as stored (int16 audio, float16 mels): about 220 MB per hour of audio.

Validation, every `validate_every` steps and at the start: the mean log-mel L1 (natural log, frames of one hop:
qingyin.compress.vocoder_losses.LogMel.for_vocoder) between the student's and the teacher's audio of the last
`validation_utterances` utterances of the data, which training never sees. At the start the unpruned teacher
vocoder is measured too, on the mels as stored (float16): the floor of the metric.

In `out` (default $QINGYIN_HOME/train/prune/vocoder-<ratio>/):

    recipe.json                       settings (vocoder_recipe.RecoverySettings), teacher data, metrics at the start
    checkpoint.pt                     model, optimizer, step, random states (qingyin.compress.checkpoint: atomic)
    pruned_vocoder.json / .safetensors  the student as of the checkpoint (qingyin.compress.prune loads it)
    log.jsonl                         one line per validation: step, mean losses since the last, seconds per step,
                                      val_log_mel_l1 and val_log_mel_l1_loud (within LOUD_RANGE_DB of the loudest bin)

Resumable: a checkpoint is written every `checkpoint_every` steps, at the end and on Ctrl-C or SIGTERM;
`resume=True` goes on from it with the same recipe, and draws the same batches an uninterrupted run would have
drawn (except after a Ctrl-C or SIGTERM, which may land between drawing a batch and finishing its step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from qingyin.compress.checkpoint import capture_rng, restore_rng, save_checkpoint
from qingyin.compress.prune import (
    PRUNED_CONFIG,
    hint_layers,
    kept_channels,
    load_pruned_vocoder,
    load_teacher_vocoder,
    prune_vocoder,
    save_pruned_vocoder,
)
from qingyin.compress.runs import (
    CHECKPOINT,
    RECIPE,
    learning_rate_at,
    open_run,
    open_teacher_data,
    prepare_training,
    read_log,
    resumed_recipe,
    start_run,
    train_loop,
    truncate_log,
)
from qingyin.compress.teacher_data import PCM_SCALE, TeacherData
from qingyin.compress.vocoder_discriminator import (
    MultiScaleDiscriminator,
    discriminator_loss,
    generator_adversarial_loss,
)
from qingyin.compress.vocoder_losses import (
    LOUD_RANGE_DB,
    LogMel,
    MultiResolutionSTFTLoss,
    log_mel_l1,
    subband_analysis,
)
from qingyin.compress.vocoder_recipe import RecoveryError, RecoverySettings, Resolution
from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANGenerator
from qingyin.families.fs2_mbmelgan.model.widths import architecture_from, build_vocoder, parameter_count, vocoder_widths
from qingyin.voices import registry

FAMILY = "fs2_mbmelgan"


@dataclass
class RecoveryResult:
    out: Path
    step: int  # the step the run stopped at (the checkpoint's)
    parameters: int  # of the pruned student
    teacher_parameters: int
    teacher_log_mel_l1: float  # the metric's floor: the teacher vocoder on the stored mels
    start_log_mel_l1: float  # the pruned student before recovery
    last_log_mel_l1: float | None  # at the last validation (None if none ran after the start)
    seconds_per_step: float | None  # mean of this call's steps
    history: list[dict] = field(default_factory=list)  # log.jsonl's lines


def default_out(ratio: float) -> Path:
    """$QINGYIN_HOME/train/prune/vocoder-<ratio>."""
    return registry.qingyin_home() / "train" / "prune" / f"vocoder-{ratio:g}"


def recover_vocoder(
    teacher_data: str | Path,
    steps: int,
    settings: RecoverySettings | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    validate_every: int = 500,
    checkpoint_every: int = 200,
    threads: int | None = None,
    progress: bool = True,
    teacher: MBMelGANGenerator | None = None,
    init_from: str | Path | None = None,
) -> RecoveryResult:
    """Prune the teacher's vocoder and train it for `steps` steps in all (see the module's docstring).

    `settings`: default RecoverySettings() for a fresh run, the saved recipe when resuming (given ones must match
    it). `teacher`: the vocoder to prune (default: the installed vocoder of the model that rendered the data).
    `init_from`: a fresh run starts from the pruned vocoder saved in this folder instead (its ratio must be
    `settings.ratio`); a resumed run ignores it.
    """
    prepare_training(steps, validate_every, checkpoint_every, threads, RecoveryError)
    data = open_teacher_data(teacher_data, FAMILY, "vocoder recovery", RecoveryError)
    out = Path(out or default_out((settings or RecoverySettings()).ratio))
    checkpoint = open_run(out, resume, RecoveryError)
    if checkpoint is None:
        settings = settings or RecoverySettings()
        settings.check()
        teacher = teacher if teacher is not None else load_teacher_vocoder(data.info["teacher"]["model"])
        _check_fit(data, teacher, settings)
        if init_from is None:
            student, source = prune_vocoder(teacher, settings.ratio, settings.round_to), None
        else:
            student, source = _initial_vocoder(Path(init_from), data, settings)
        recipe = {"settings": settings.to_dict(), "teacher_data": str(data.path), "teacher": data.info["teacher"],
                  "teacher_parameters": parameter_count(teacher), "parameters": parameter_count(student)}
        if source is not None:
            recipe["initialized_from"] = source
        if settings.hint_weight:
            recipe["kept_channels"] = kept_channels(teacher, student)
    else:
        recipe = resumed_recipe(out, settings and settings.to_dict(), data, RecoveryError)
        settings = RecoverySettings.from_dict(recipe["settings"])
        config, widths = architecture_from(json.loads((out / PRUNED_CONFIG).read_text()))
        student = build_vocoder(config, widths)
        student.load_state_dict(checkpoint["model"])
        if settings.hint_weight and teacher is None:
            teacher = load_teacher_vocoder(data.info["teacher"]["model"])
    hints = (teacher, recipe["kept_channels"]) if settings.hint_weight else None
    trainer = _Trainer(student, data, settings, hints)
    step = 0
    if checkpoint is None:
        floor = trainer.validate(teacher)
        start = trainer.validate(student)
        recipe.update(teacher_log_mel_l1=floor, start_log_mel_l1=start)
        start_run(out, recipe, "val_log_mel_l1", start)
    else:
        trainer.optimizer.load_state_dict(checkpoint["optimizer"])
        if trainer.discriminator is not None:
            trainer.discriminator.load_state_dict(checkpoint["discriminator"])
            trainer.discriminator_optimizer.load_state_dict(checkpoint["discriminator_optimizer"])
        restore_rng(checkpoint["rng"], trainer.rng)
        step = int(checkpoint["step"])
        trainer.steps_done = step
        truncate_log(out, step)  # validations after the checkpoint are run again

    def save(step: int) -> None:
        state = {"step": step, "model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
                 "rng": capture_rng(trainer.rng)}
        if trainer.discriminator is not None:
            state.update(discriminator=trainer.discriminator.state_dict(),
                         discriminator_optimizer=trainer.discriminator_optimizer.state_dict())
        save_checkpoint(out / CHECKPOINT, state)
        save_pruned_vocoder(out, trainer.evaluation_model(), ratio=settings.ratio, step=step,
                            teacher=recipe["teacher"])

    loop = train_loop(trainer.step, lambda: trainer.validate_both(trainer.evaluation_model()), save, out, step, steps,
                      validate_every=validate_every, checkpoint_every=checkpoint_every, metric="val_log_mel_l1",
                      description=f"recover vocoder-{settings.ratio:g}", progress=progress)
    if loop.step == step and checkpoint is None:
        save(step)  # steps=0: the pruned student, before any training
    return RecoveryResult(out, loop.step, recipe["parameters"], recipe["teacher_parameters"],
                          recipe["teacher_log_mel_l1"], recipe["start_log_mel_l1"], loop.last, loop.seconds_per_step,
                          read_log(out))


class _Trainer:
    """The student, its optimizer, the losses, the batch sampler and the held-out utterances."""

    def __init__(self, student: MBMelGANGenerator, data: TeacherData, settings: RecoverySettings,
                 hints: tuple[MBMelGANGenerator, dict[str, list[int]]] | None = None):
        self.settings = s = settings
        self.config = student.config
        # a copy without the sub-band fake quantization, for training (same parameters, same names)
        self.model = build_vocoder(replace(self.config, subband_quant_step=0.0), vocoder_widths(student))
        self.model.load_state_dict(student.state_dict())
        self.model.train()
        self._evaluation = build_vocoder(self.config, vocoder_widths(student)).eval()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=s.learning_rate, betas=s.betas)
        self.full_band = MultiResolutionSTFTLoss(tuple(Resolution(*r) for r in s.full_band), s.log_floor)
        self.sub_band = MultiResolutionSTFTLoss(tuple(Resolution(*r) for r in s.sub_band), s.log_floor)
        self.log_mel = LogMel.for_vocoder(data.sample_rate, self.config.hop_length, self.config.num_mels)
        self.rng = np.random.default_rng(s.seed)
        self.steps_done = 0  # by the optimizer: where the learning rate's schedule stands
        utterances = [(u.mel.astype(np.float16), np.rint(u.audio * PCM_SCALE).astype(np.int16)) for u in data]
        self.validation = utterances[-s.validation_utterances:]
        self.window = s.segment_samples // self.config.hop_length + 2 * s.context_frames  # mel frames per window
        self.training = [u for u in utterances[: -s.validation_utterances] if len(u[0]) >= self.window]
        if not self.training:
            raise RecoveryError(f"no teacher utterance outside the {s.validation_utterances} held out has "
                                f"{self.window} frames (segment_samples {s.segment_samples} plus context)")
        starts = np.array([len(mel) - self.window + 1 for mel, _ in self.training], np.float64)
        self.weights = starts / starts.sum()  # uniform over all windows
        self._subbands: list[torch.Tensor] = []
        if s.quantization_aware and self.config.subband_quant_step > 0:  # before the hook that keeps the sub-bands
            self.model.output_conv.register_forward_hook(_rounded_through(self.config.subband_quant_step))
        self.model.output_conv.register_forward_hook(lambda module, inputs, output: self._subbands.append(output))
        self.discriminator, self.discriminator_optimizer = None, None
        if s.adversarial_weight:
            with torch.random.fork_rng():  # its initial weights depend on the seed only
                torch.manual_seed(s.seed)
                self.discriminator = MultiScaleDiscriminator(max_channels=s.discriminator_max_channels)
            self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(),
                                                            lr=s.discriminator_learning_rate, betas=s.betas)
        self.teacher, kept = (None, {}) if hints is None else hints
        self._kept = {name: torch.tensor(channels) for name, channels in kept.items()}
        self._outputs: dict[tuple[str, str], torch.Tensor] = {}
        if self.teacher is not None:
            self.teacher.eval()
            for side, model in (("student", self.model), ("teacher", self.teacher)):
                for name, layer in hint_layers(model).items():
                    layer.register_forward_hook(self._keeper(side, name))

    def _keeper(self, side: str, name: str):
        def keep(module, inputs, output):
            self._outputs[side, name] = output
        return keep

    def hint_loss(self) -> torch.Tensor:
        """Mean over the hint layers of |student - teacher's kept channels| / mean |teacher's kept channels|."""
        losses = []
        for name, channels in self._kept.items():
            target = self._outputs["teacher", name].index_select(1, channels)
            losses.append((self._outputs["student", name] - target).abs().mean() / target.abs().mean().clamp_min(1e-5))
        self._outputs.clear()
        return torch.stack(losses).mean()

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, window, mels) and the teacher's audio (B, window * hop) of random windows."""
        hop, mels, audios = self.config.hop_length, [], []
        for index in self.rng.choice(len(self.training), size=self.settings.batch_size, p=self.weights):
            mel, audio = self.training[index]
            start = int(self.rng.integers(0, len(mel) - self.window + 1))
            mels.append(mel[start : start + self.window])
            audios.append(audio[start * hop : (start + self.window) * hop])
        return (torch.from_numpy(np.stack(mels).astype(np.float32)),
                torch.from_numpy(np.stack(audios).astype(np.float32) / PCM_SCALE))

    def step(self) -> dict[str, float]:
        s, hop, subbands = self.settings, self.config.hop_length, self.config.subbands
        mel, target = self.batch()
        self._subbands.clear()
        audio = self.model(mel)  # (B, window * hop)
        predicted_bands = torch.tanh(self._subbands.pop())  # (B, subbands, window * hop / subbands)
        target_bands = subband_analysis(target, self.model.pqmf.synthesis_filter)
        edge, length = s.context_frames * hop, s.segment_samples  # the loss sees the segment, not its context
        audio, target = audio[:, edge : edge + length], target[:, edge : edge + length]
        band_edge, band_length = edge // subbands, length // subbands
        predicted_bands = predicted_bands[..., band_edge : band_edge + band_length]
        target_bands = target_bands[..., band_edge : band_edge + band_length]
        losses = {"full_band": self.full_band(audio, target), "sub_band": self.sub_band(predicted_bands, target_bands),
                  "waveform": torch.nn.functional.l1_loss(audio, target)}
        loss = (s.full_band_weight * losses["full_band"] + s.sub_band_weight * losses["sub_band"]
                + s.waveform_weight * losses["waveform"])
        if s.mel_weight:
            losses["log_mel"] = torch.nn.functional.l1_loss(self.log_mel(audio), self.log_mel(target))
            loss = loss + s.mel_weight * losses["log_mel"]
        if self.teacher is not None:
            with torch.no_grad():
                self.teacher(mel)  # its layers' outputs, through the hooks
            losses["hint"] = self.hint_loss()
            loss = loss + s.hint_weight * losses["hint"]
        adversarial = self.discriminator is not None and self.steps_done >= s.discriminator_warmup_steps
        if adversarial:
            self.discriminator.requires_grad_(False)  # the gradient goes to the student's audio only
            losses["adversarial"] = generator_adversarial_loss(self.discriminator(audio))
            self.discriminator.requires_grad_(True)
            loss = loss + s.adversarial_weight * losses["adversarial"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.gradient_clip)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate_at(s.learning_rate, s.learning_rate_half_life, self.steps_done)
        self.optimizer.step()
        if self.discriminator is not None:
            losses["discriminator"] = self.discriminator_step(target, audio.detach())
        self.steps_done += 1
        return {"loss": loss.item(), **{name: value.item() for name, value in losses.items()}}

    def discriminator_step(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """One update of the discriminator on the teacher's audio (real) and the student's (fake); its loss."""
        loss = discriminator_loss(self.discriminator(real), self.discriminator(fake))
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.discriminator.parameters(), self.settings.gradient_clip)
        self.discriminator_optimizer.step()
        return loss.detach()

    def evaluation_model(self) -> MBMelGANGenerator:
        """The student as it runs: the trained parameters, with the config's sub-band quantization."""
        self._evaluation.load_state_dict(self.model.state_dict())
        return self._evaluation

    def validate(self, model: MBMelGANGenerator) -> float:
        """Mean log-mel L1 between `model`'s audio and the teacher's over the held-out utterances."""
        return self.validate_both(model)["val_log_mel_l1"]

    @torch.inference_mode()
    def validate_both(self, model: MBMelGANGenerator) -> dict[str, float]:
        """The validation's log-mel L1, and the same within LOUD_RANGE_DB of each utterance's loudest bin
        (val_log_mel_l1_loud: what the sub-band rounding of quiet bins does not rule)."""
        distances, loud = [], []
        for mel, audio in self.validation:
            mel = torch.from_numpy(mel.astype(np.float32))[None]
            if mel.shape[1] < self.config.min_frames:
                continue
            teacher, student = torch.from_numpy(audio.astype(np.float32) / PCM_SCALE), model(mel)[0]
            distances.append(log_mel_l1(self.log_mel, student, teacher))
            loud.append(log_mel_l1(self.log_mel, student, teacher, LOUD_RANGE_DB))
        if not distances:
            raise RecoveryError(f"no held-out utterance has the vocoder's {self.config.min_frames} frames")
        return {"val_log_mel_l1": float(np.mean(distances)), "val_log_mel_l1_loud": float(np.mean(loud))}


def _rounded_through(step: float):
    """A forward hook for the output conv (whose output goes through tanh) that makes tanh of it the sub-bands
    rounded to `step` as MBMelGANGenerator rounds them (clamped to int8), while the gradient passes as if nothing were
    rounded (straight-through)."""
    def hook(module, inputs, output: torch.Tensor) -> torch.Tensor:
        rounded = torch.clamp(torch.round(torch.tanh(output) / step), -128, 127) * step
        return output + (torch.atanh(rounded.clamp(-1 + 1e-6, 1 - 1e-6)) - output).detach()
    return hook


def saved_ratio(folder: str | Path) -> float:
    """The pruning ratio of the vocoder `save_pruned_vocoder` wrote into `folder`."""
    path = Path(folder) / PRUNED_CONFIG
    if not path.is_file():
        raise RecoveryError(f"no pruned vocoder in {folder} ({PRUNED_CONFIG}): give a prune-vocoder run's folder")
    ratio = json.loads(path.read_text()).get("ratio")
    if not isinstance(ratio, int | float):
        raise RecoveryError(f"{path} does not say the ratio it was pruned at")
    return float(ratio)


def _initial_vocoder(folder: Path, data: TeacherData, settings: RecoverySettings) -> tuple[MBMelGANGenerator, dict]:
    """The pruned vocoder saved in `folder` and what recipe.json keeps of it: its folder, step and ratio, the
    recipe and last validation of its run (when `folder` is one)."""
    if settings.hint_weight:
        raise RecoveryError("layer hints need the channels pruning kept, which a trained vocoder no longer shows: "
                            "leave out --hint-weight with --init-from")
    student = load_pruned_vocoder(folder)
    about = json.loads((folder / PRUNED_CONFIG).read_text())
    if about.get("ratio") != settings.ratio:
        raise RecoveryError(f"{folder} holds a vocoder pruned at {about.get('ratio')}, not {settings.ratio}")
    if about.get("teacher") not in (None, data.info["teacher"]):
        raise RecoveryError(f"{folder}'s vocoder was pruned from {about['teacher']}, the teacher data is of "
                            f"{data.info['teacher']}")
    source = {"folder": str(folder), "step": about.get("step"), "ratio": about.get("ratio")}
    if (folder / RECIPE).is_file():
        log = read_log(folder)
        source.update(recipe=json.loads((folder / RECIPE).read_text()),
                      val_log_mel_l1=next((line["val_log_mel_l1"] for line in reversed(log)
                                           if line["step"] <= (about.get("step") or 0)), None))
    return student, source


def _check_fit(data: TeacherData, teacher: MBMelGANGenerator, settings: RecoverySettings) -> None:
    config = teacher.config
    if settings.segment_samples % config.hop_length:
        raise RecoveryError(f"segment_samples ({settings.segment_samples}) must be a multiple of the vocoder's hop "
                            f"({config.hop_length})")
    if settings.segment_samples // config.hop_length + 2 * settings.context_frames < config.min_frames:
        raise RecoveryError(f"a window needs at least the vocoder's {config.min_frames} frames")
    if len(data) <= settings.validation_utterances:
        raise RecoveryError(f"{data.path} holds {len(data)} utterances: too few to hold out "
                            f"{settings.validation_utterances} for validation and train on the rest")
    first = data[0]
    if first.mel is None or first.mel.shape[1] != config.num_mels or len(first.audio) != first.frames * \
            config.hop_length:
        raise RecoveryError(f"{data.path}'s mels and audio do not fit the vocoder ({config.num_mels} mels, hop "
                            f"{config.hop_length})")
