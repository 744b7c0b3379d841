"""Training a student acoustic model on its teacher's mels (issue 15, item 3).

    result = train_student(teacher_data_dir, steps=20000, settings=StudentSettings())
    result = train_student(teacher_data_dir, steps=40000, resume=True)      # continues from the checkpoint
    shape = pruned_shape(load_teacher_acoustic("baker").config, 0.3)
    result = train_student(teacher_data_dir, steps=20000, settings=StudentSettings(shape=shape),
                           out=pruned_out(0.3))                     # a decoder pruned by 30 %

A fresh run builds the student from the acoustic model that rendered the teacher data (qingyin.compress.student:
the teacher's front, a smaller decoder and postnet cut from the teacher's), then trains the decoder and postnet
only. Every step decodes `batch_size` whole utterances with the durations, pitch and energy the teacher used for
them, so the student learns the teacher's mel for the teacher's own prosody; the front is frozen and kept in
evaluation mode (no dropout), so durations and pitch, and the tones, stay the teacher's; so are the postnet's batch
norms (their statistics stay the teacher's, and padding would bias batch statistics). The loss is the L1
distance to the teacher's mel before and after the postnet (qingyin.compress.student_recipe.StudentSettings);
with `hint_weight` > 0 the teacher also runs on every batch, and `hint_weight` times the mean over the student's
decoder layers of the L1 between each layer's output and the output of the teacher layer it was cut from (on the
residual channels the student kept), relative to the teacher's mean magnitude there, is added (feature hints).

Validation, every `validate_every` steps and at the start: the mean L1 between the student's mel (after the
postnet) and the teacher's over the last `validation_utterances` utterances of the data, which training never
sees; at the start also the teacher itself on the same inputs, the floor of the metric (the teacher data keeps
mels in float16, and may come from another backend).

In `out` (default $QINGYIN_HOME/train/student/<voice>-<decoder_hidden>x<decoder_layers>/):

    recipe.json                         settings, teacher data, parameter counts, metrics at the start
    checkpoint.pt                       model, optimizer, scheduler, step, random states (atomic)
    acoustic.json / acoustic.safetensors  the student as of the checkpoint, as a Baker voice folder holds them
    log.jsonl                           one line per validation: step, mean losses since the last, seconds per step

Resumable like the vocoder's recovery (qingyin.compress.vocoder_recovery): a checkpoint every `checkpoint_every`
steps, at the end and on Ctrl-C or SIGTERM; `resume=True` continues with the same recipe and draws the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from qingyin.compress.checkpoint import capture_rng, restore_rng, save_checkpoint
from qingyin.compress.runs import (
    CHECKPOINT,
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
from qingyin.compress.student import (
    FRONT,
    build_student,
    kept_residual_channels,
    load_acoustic,
    load_teacher_acoustic,
    parameter_counts,
    pruned_shape,
    save_student,
    source_layers,
    trained_parameters,
)
from qingyin.compress.student_recipe import StudentError, StudentSettings
from qingyin.compress.teacher_data import TeacherData
from qingyin.families.fs2_mbmelgan.model.fastspeech2 import FastSpeech2, sequence_mask
from qingyin.voices import registry

FAMILY = "fs2_mbmelgan"


@dataclass
class StudentResult:
    out: Path
    step: int  # the step the run stopped at (the checkpoint's)
    parameters: dict[str, int]  # the student's: total, front, decoder_and_postnet
    teacher_parameters: dict[str, int]
    teacher_mel_l1: float  # the metric's floor: the teacher on the same inputs against its stored mels
    start_mel_l1: float  # the student before training
    last_mel_l1: float | None  # at the last validation (None if none ran after the start)
    seconds_per_step: float | None  # mean of this call's steps
    history: list[dict] = field(default_factory=list)  # log.jsonl's lines


def default_out(voice: str, settings: StudentSettings) -> Path:
    shape = settings.shape
    return registry.qingyin_home() / "train" / "student" / f"{voice}-{shape.decoder_hidden}x{shape.decoder_layers}"


def pruned_out(ratio: float) -> Path:
    """The default folder of a pruned decoder's run: $QINGYIN_HOME/train/prune/decoder-<ratio>, beside the pruned
    vocoders' (qingyin.compress.vocoder_recovery.default_out)."""
    return registry.qingyin_home() / "train" / "prune" / f"decoder-{ratio:g}"


def train_student(
    teacher_data: str | Path,
    steps: int,
    settings: StudentSettings | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    validate_every: int = 500,
    checkpoint_every: int = 200,
    threads: int | None = None,
    progress: bool = True,
    teacher: FastSpeech2 | None = None,
) -> StudentResult:
    """Build (or resume) a student and train it for `steps` steps in all (see the module's docstring).

    `settings`: default StudentSettings() for a fresh run, the saved recipe when resuming (given ones must match
    it). `teacher`: the acoustic model to start from (default: the installed one of the model that rendered the
    data); with feature hints it also runs on every batch, resumed runs included.
    """
    prepare_training(steps, validate_every, checkpoint_every, threads, StudentError)
    data = open_teacher_data(teacher_data, FAMILY, "a student acoustic model", StudentError)
    voice = data.info["teacher"]["voice"]
    out = Path(out or default_out(voice, settings or StudentSettings()))
    checkpoint = open_run(out, resume, StudentError)
    if checkpoint is None:
        settings = settings or StudentSettings()
        settings.check()
        teacher = teacher if teacher is not None else load_teacher_acoustic(data.info["teacher"]["model"])
        _check_fit(data, teacher, settings)
        student = build_student(teacher, settings.shape)
        recipe = {"settings": settings.to_dict(), "teacher_data": str(data.path), "teacher": data.info["teacher"],
                  "teacher_parameters": parameter_counts(teacher), "parameters": parameter_counts(student)}
    else:
        recipe = resumed_recipe(out, settings and settings.to_dict(), data, StudentError)
        settings = StudentSettings.from_dict(recipe["settings"])
        student = load_acoustic(out)
        student.load_state_dict(checkpoint["model"])
        if settings.hint_weight and teacher is None:
            teacher = load_teacher_acoustic(data.info["teacher"]["model"])
    trainer = _Trainer(student, data, settings, teacher if settings.hint_weight else None)
    step = 0
    if checkpoint is None:
        recipe.update(teacher_mel_l1=trainer.validate(teacher), start_mel_l1=trainer.validate(student))
        start_run(out, recipe, "val_mel_l1", recipe["start_mel_l1"])
    else:
        trainer.optimizer.load_state_dict(checkpoint["optimizer"])
        trainer.schedule.load_state_dict(checkpoint["schedule"])
        restore_rng(checkpoint["rng"], trainer.rng)
        step = int(checkpoint["step"])
        truncate_log(out, step)

    def save(step: int) -> None:
        save_checkpoint(out / CHECKPOINT, {"step": step, "model": trainer.model.state_dict(),
                                           "optimizer": trainer.optimizer.state_dict(),
                                           "schedule": trainer.schedule.state_dict(),
                                           "rng": capture_rng(trainer.rng)})
        save_student(out, trainer.model)

    shape = settings.shape
    loop = train_loop(trainer.step, lambda: trainer.validate(trainer.model), save, out, step, steps,
                      validate_every=validate_every, checkpoint_every=checkpoint_every, metric="val_mel_l1",
                      description=f"student {shape.decoder_hidden}x{shape.decoder_layers}", progress=progress)
    if loop.step == step and checkpoint is None:
        save(step)  # steps=0: the student as cut from the teacher, before any training
    return StudentResult(out, loop.step, recipe["parameters"], recipe["teacher_parameters"],
                         recipe["teacher_mel_l1"], recipe["start_mel_l1"], loop.last, loop.seconds_per_step,
                         read_log(out))


def pruned_settings(teacher_data: str | Path, ratio: float, settings: StudentSettings | None = None
                    ) -> StudentSettings:
    """`settings` (default StudentSettings()) with the shape of the teacher's decoder and postnet pruned by `ratio`
    (qingyin.compress.student.pruned_shape); the teacher is the model that rendered `teacher_data`."""
    data = open_teacher_data(teacher_data, FAMILY, "a pruned decoder", StudentError)
    teacher = load_teacher_acoustic(data.info["teacher"]["model"])
    return replace(settings or StudentSettings(), shape=pruned_shape(teacher.config, ratio))


@dataclass(frozen=True)
class _Utterance:
    ids: np.ndarray  # (tokens,) int64
    durations: np.ndarray  # (tokens,) int64
    pitch: np.ndarray  # (tokens,) float32
    energy: np.ndarray  # (tokens,) float32
    mel: np.ndarray  # (frames, mels) float16


class _Trainer:
    """The student, its optimizer and schedule, the batch sampler and the held-out utterances."""

    def __init__(self, student: FastSpeech2, data: TeacherData, settings: StudentSettings,
                 teacher: FastSpeech2 | None = None):
        self.settings = s = settings
        self.model = student
        self.teacher = teacher.eval() if teacher is not None else None
        self._outputs: dict[tuple[str, int], torch.Tensor] = {}
        if self.teacher is not None:  # feature hints: keep the decoder layers' outputs of both
            self._kept = kept_residual_channels(self.teacher, student.config.decoder.hidden)
            self._sources = source_layers(len(self.teacher.decoder.layers), len(student.decoder.layers))
            for index, layer in enumerate(student.decoder.layers):
                layer.register_forward_hook(self._keeper("student", index))
            for index in self._sources:
                self.teacher.decoder.layers[index].register_forward_hook(self._keeper("teacher", index))
        for parameter in student.parameters():
            parameter.requires_grad_(False)
        trained = trained_parameters(student)
        for parameter in trained:
            parameter.requires_grad_(True)
        self.optimizer = torch.optim.Adam(trained, lr=s.learning_rate, betas=s.betas)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._learning_rate_factor)
        self.rng = np.random.default_rng(s.seed)
        utterances = [_Utterance(u.token_ids.astype(np.int64), u.durations.astype(np.int64),
                                 u.pitch.astype(np.float32), u.energy.astype(np.float32), u.mel.astype(np.float16))
                      for u in data]
        self.validation = utterances[-s.validation_utterances:]
        self.training = [u for u in utterances[: -s.validation_utterances] if len(u.mel) <= s.max_frames]
        if not self.training:
            raise StudentError(f"no teacher utterance outside the {s.validation_utterances} held out has at most "
                               f"{s.max_frames} frames")
        self.by_length = np.argsort([len(u.mel) for u in self.training], kind="stable")

    def _learning_rate_factor(self, step: int) -> float:
        """A linear warm-up, then halving every `learning_rate_half_life` steps (if set)."""
        s = self.settings
        if step < s.warmup_steps:
            return (step + 1) / s.warmup_steps
        return learning_rate_at(1.0, s.learning_rate_half_life, step - s.warmup_steps)

    def _keeper(self, side: str, index: int):
        def keep(module, inputs, output):
            self._outputs[side, index] = output
        return keep

    def hint_loss(self) -> torch.Tensor:
        """Mean over the student's decoder layers of sum |student - teacher's kept channels| / sum |teacher's kept
        channels| (padded frames are zero in both, so the padding does not count)."""
        losses = []
        for index, source in enumerate(self._sources):
            target = self._outputs["teacher", source].index_select(2, self._kept)
            losses.append((self._outputs["student", index] - target).abs().sum() / target.abs().sum().clamp_min(1e-5))
        self._outputs.clear()
        return torch.stack(losses).mean()

    def train_mode(self) -> None:
        self.model.train()
        for name in FRONT:  # frozen, and without dropout: the teacher's prosody as it was rendered
            if getattr(self.model, name) is not None:
                getattr(self.model, name).eval()
        for norm in self.model.postnet.norms:
            # the statistics cut from the teacher's stay: batch statistics would count the padding frames of a
            # batch of unequal utterances (BatchNorm knows no mask); the scales and shifts still train
            norm.eval()

    def batch(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The model's inputs for `batch_size` utterances (neighbours in length, or drawn independently), padded, and
        their mels (B, frames, mels)."""
        size, count = self.settings.batch_size, len(self.training)
        if self.settings.batch_by_length:
            centre = int(self.rng.integers(count))
            start = min(max(centre - size // 2, 0), max(count - size, 0))
            chosen = [self.training[i] for i in self.by_length[start:start + size]]
        else:
            chosen = [self.training[i] for i in self.rng.choice(count, size=size)]
        tokens = max(len(u.ids) for u in chosen)
        frames = max(len(u.mel) for u in chosen)

        def padded(name: str, width: int) -> torch.Tensor:
            rows = [np.pad(getattr(u, name), [(0, width - len(getattr(u, name)))] + [(0, 0)] *
                           (getattr(u, name).ndim - 1)) for u in chosen]
            return torch.from_numpy(np.stack(rows))

        inputs = {"symbols": padded("ids", tokens), "lengths": torch.tensor([len(u.ids) for u in chosen]),
                  "durations": padded("durations", tokens), "pitch": padded("pitch", tokens),
                  "energy": padded("energy", tokens)}
        return inputs, padded("mel", frames).float()

    def step(self) -> dict[str, float]:
        self.train_mode()
        inputs, target = self.batch()
        out = self.model(**inputs)
        mask = sequence_mask(out.mel_lengths, target.shape[1])[..., None].float()  # (B, frames, 1)
        count = mask.sum() * target.shape[2]
        losses = {"mel_before": (F.l1_loss(out.mel_before, target, reduction="none") * mask).sum() / count,
                  "mel_after": (F.l1_loss(out.mel, target, reduction="none") * mask).sum() / count}
        loss = losses["mel_before"] + losses["mel_after"]
        if self.teacher is not None:
            with torch.no_grad():
                self.teacher(**inputs)  # its decoder layers' outputs, through the hooks
            losses["hint"] = self.hint_loss()
            loss = loss + self.settings.hint_weight * losses["hint"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained_parameters(self.model), self.settings.gradient_clip)
        self.optimizer.step()
        self.schedule.step()
        return {"loss": loss.item(), **{name: value.item() for name, value in losses.items()}}

    @torch.inference_mode()
    def validate(self, model: FastSpeech2) -> float:
        """Mean L1 between `model`'s mel and the teacher's stored one over the held-out utterances."""
        was_training = model.training
        model.eval()
        distances = []
        for u in self.validation:
            out = model(torch.from_numpy(u.ids)[None], durations=torch.from_numpy(u.durations)[None],
                        pitch=torch.from_numpy(u.pitch)[None], energy=torch.from_numpy(u.energy)[None])
            distances.append(float((out.mel[0] - torch.from_numpy(u.mel.astype(np.float32))).abs().mean()))
        model.train(was_training)
        self._outputs.clear()  # what the hooks kept of these
        return float(np.mean(distances))


def _check_fit(data: TeacherData, teacher: FastSpeech2, settings: StudentSettings) -> None:
    if len(data) <= settings.validation_utterances:
        raise StudentError(f"{data.path} holds {len(data)} utterances: too few to hold out "
                           f"{settings.validation_utterances} for validation and train on the rest")
    first = data[0]
    config = teacher.config
    if first.mel is None or first.mel.shape != (first.frames, config.num_mels) or \
            first.pitch.shape != first.token_ids.shape or int(first.token_ids.max()) >= config.num_symbols:
        raise StudentError(f"{data.path} does not fit the teacher's acoustic model ({config.num_mels} mels, "
                           f"{config.num_symbols} symbols, pitch per token)")
