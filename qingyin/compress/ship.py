"""Shipping a trained student with qingyin: its own tensors in fp16, with a manifest, into the package.

    ship_student(run)   # $QINGYIN_HOME/train/student/baker-192x2 -> qingyin/families/fs2_mbmelgan/students/baker
    ship_vocoder(run)   # $QINGYIN_HOME/train/prune/vocoder-0.3 -> .../students/baker/vocoder
    ship_decoder(run)   # $QINGYIN_HOME/train/prune/decoder-0.5 -> .../students/baker/decoder-50

Only what the student trained is shipped (qingyin.families.fs2_mbmelgan.students.student_tensors: every tensor
outside the teacher's front, about 5 MB for the 2 x 192 student); the front comes from the teacher installed on
the user's machine, and `load_student` checks that it is the same one. Before writing, the run's front is checked
against the installed teacher's, tensor for tensor, so the manifest's teacher hash is the one it was trained on.

The manifest records the files' sha256, the teacher (model, licence, the sha256 of its acoustic weights), the
run's recipe and log (what reproduces the weights: `qingyin compress student` with those settings on that
teacher data, for that many steps), and the largest difference the fp16 rounding makes to the mel.

A pruned vocoder (a `qingyin compress prune-vocoder` run) is shipped whole: its architecture (config and channel
widths) and every tensor in fp16, with a manifest of the same kind (the teacher's vocoder's sha256 too, and the
largest difference fp16 makes to the audio). Its teacher data came from the installed teacher, whose acoustic
weights' sha256 the manifest records as those the vocoder's mels came from.
"""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from qingyin.compress.checkpoint import load_checkpoint
from qingyin.compress.prune import PRUNED_CONFIG
from qingyin.compress.runs import CHECKPOINT, RECIPE, read_log
from qingyin.compress.student import load_acoustic, load_teacher_acoustic, pruned_shape, teacher_shape
from qingyin.compress.student_recipe import StudentError, StudentShape
from qingyin.families.fs2_mbmelgan.export import PRUNED_DECODER_RATIOS
from qingyin.families.fs2_mbmelgan.model.config import config_to_dict
from qingyin.families.fs2_mbmelgan.model.fastspeech2 import FastSpeech2, FastSpeech2Config
from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANGenerator
from qingyin.families.fs2_mbmelgan.model.widths import VocoderWidthsError, vocoder_architecture, vocoder_from
from qingyin.families.fs2_mbmelgan.students import (
    CONFIG_FILE,
    FRONT,
    MANIFEST_FILE,
    VOCODER_CONFIG_FILE,
    VOCODER_WEIGHTS_FILE,
    WEIGHTS_FILE,
    load_student,
    load_student_vocoder,
    pruned_decoder_dir,
    put_tensors,
    recorded_hashes,
    student_dir,
    student_tensors,
    student_vocoder_dir,
)
from qingyin.runtime.files import replace_file, write_json
from qingyin.voices import registry
from qingyin.voices.wheels import sha256_file

MAX_SHIPPED_BYTES = 10 * 1024 * 1024  # the house rule for weights committed to the repository


def ship_student(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the student of training run `run`, as of its checkpoint, into `out` (default: the package's folder
    for its teacher model) with `write_student`; returns the folder."""
    run = Path(run)
    recipe, checkpoint = _run_state(run, "student")
    student = load_acoustic(run)
    student.load_state_dict(checkpoint["model"])
    model = recipe["teacher"]["model"]
    record = _run_record(run, recipe, int(checkpoint["step"]), "val_mel_l1", "student")
    return write_student(student, Path(out) if out is not None else student_dir(model), model, record)


def ship_decoder(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the pruned decoder of prune-decoder run `run`, as of its checkpoint, into `out` (default: the
    package's folder for its teacher model and ratio, students.pruned_decoder_dir) with `write_student`; returns
    the folder. Its shape must be the teacher's pruned by one of export.PRUNED_DECODER_RATIOS."""
    run = Path(run)
    recipe, checkpoint = _run_state(run, "prune-decoder")
    student = load_acoustic(run)
    student.load_state_dict(checkpoint["model"])
    model = recipe["teacher"]["model"]
    ratio = pruning_ratio(load_teacher_acoustic(model).config, student.config)
    record = _run_record(run, recipe, int(checkpoint["step"]), "val_mel_l1", "prune-decoder",
                         flags=f"--ratio {ratio:g} ")
    record["ratio"] = ratio
    return write_student(student, Path(out) if out is not None else pruned_decoder_dir(model, ratio), model, record)


def pruning_ratio(teacher: FastSpeech2Config, pruned: FastSpeech2Config) -> float:
    """The ratio of export.PRUNED_DECODER_RATIOS by which `pruned`'s decoder and postnet are the teacher's pruned
    (qingyin.compress.student.pruned_shape), or StudentError."""
    shape = StudentShape(*teacher_shape(pruned))
    for ratio in PRUNED_DECODER_RATIOS:
        if pruned_shape(teacher, ratio) == shape:
            return ratio
    ratios = ", ".join(f"{ratio:g}" for ratio in PRUNED_DECODER_RATIOS)
    raise StudentError(f"this decoder ({shape}) is "
                       f"not the teacher's pruned by {ratios}, the ratios that ship as variants; train one with "
                       "`qingyin compress prune-decoder --ratio R`")


def ship_vocoder(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the pruned vocoder of recovery run `run`, as of its checkpoint, into `out` (default: the package's
    folder for its teacher model) with `write_vocoder`; returns the folder."""
    run = Path(run)
    recipe, checkpoint = _run_state(run, "prune-vocoder")
    try:  # the architecture the run saves with its checkpoint: the vocoder as it runs (sub-bands rounded)
        vocoder = vocoder_from(json.loads((run / PRUNED_CONFIG).read_text()), checkpoint["model"])
    except (OSError, ValueError, VocoderWidthsError) as error:
        raise StudentError(f"{run}'s {PRUNED_CONFIG} does not describe its checkpoint ({error})") from None
    model = recipe["teacher"]["model"]
    record = _run_record(run, recipe, int(checkpoint["step"]), "val_log_mel_l1", "prune-vocoder")
    record["ratio"] = recipe["settings"]["ratio"]
    return write_vocoder(vocoder, Path(out) if out is not None else student_vocoder_dir(model), model, record)


def _run_state(run: Path, command: str) -> tuple[dict, dict]:
    """A training run's recipe and checkpoint (weights and step, saved together), or StudentError."""
    try:
        recipe = json.loads((run / RECIPE).read_text())
    except (OSError, ValueError) as error:
        raise StudentError(f"{run} is not a training run ({RECIPE}: {error}); train one with "
                           f"`qingyin compress {command}`") from None
    checkpoint = load_checkpoint(run / CHECKPOINT)
    if checkpoint is None:
        raise StudentError(f"{run} holds no {CHECKPOINT}: train first (`qingyin compress {command}`)")
    return recipe, checkpoint


SHIP_COMMAND = {"student": "ship-student", "prune-decoder": "ship-decoder", "prune-vocoder": "ship-vocoder"}


def _run_record(run: Path, recipe: dict, step: int, metric: str, command: str, flags: str = "") -> dict:
    """What a manifest tells of the run: its step, last validation, recipe, log and how to reproduce it (`flags`:
    what the training command needs besides the recipe's settings)."""
    log = [line for line in read_log(run) if line["step"] <= step]
    source = recipe.get("initialized_from")  # a second phase: first the run it started from, to its step
    first = "" if source is None else (f"qingyin compress {command} --steps {source['step']} with the settings of "
                                       "the recipe's initialized_from, then ")
    return {
        "step": step,
        f"validation_{metric.removeprefix('val_')}": next(
            (line[metric] for line in reversed(log) if metric in line), None),
        "recipe": recipe,
        "log": log,
        "reproduce": f"qingyin compress teacher-data (the recipe's teacher data), then {first}qingyin compress "
                     f"{command} {flags}--steps {step} with the recipe's settings"
                     f"{'' if source is None else ' and --init-from that run'}, then qingyin compress "
                     f"{SHIP_COMMAND[command]}",
    }


def write_student(student: FastSpeech2, folder: Path, model: str, record: dict) -> Path:
    """The student's config, its own tensors in fp16 and the manifest (with `record` in it) in `folder`.

    StudentError when the student's front is not the installed `model` teacher's, or its tensors would exceed
    MAX_SHIPPED_BYTES. Ends by loading the student the way an export will (students.load_student).
    """
    teacher = load_teacher_acoustic(model)
    _check_front(student, teacher, model)
    tensors = student_tensors(student)
    _check_size(tensors, "student")
    config_text = json.dumps(config_to_dict(student.config), indent=1) + "\n"
    _write_shipped(folder, model, (CONFIG_FILE, config_text), (WEIGHTS_FILE, tensors),
                   {**record, "fp16_max_mel_change": _fp16_change(student, tensors)})
    load_student(registry.model_dir(model), teacher, folder)  # what a user's export will do: files and hashes agree
    return folder


def write_vocoder(vocoder: MBMelGANGenerator, folder: Path, model: str, record: dict) -> Path:
    """The pruned vocoder's architecture, its tensors in fp16 and the manifest (with `record` in it) in `folder`.

    StudentError when its tensors would exceed MAX_SHIPPED_BYTES. Ends by loading it the way an export will
    (students.load_student_vocoder).
    """
    tensors = {key: tensor.detach().to(torch.float16).contiguous() for key, tensor in vocoder.state_dict().items()}
    _check_size(tensors, "pruned vocoder")
    architecture = vocoder_architecture(vocoder, ratio=record.get("ratio"))
    _write_shipped(folder, model, (VOCODER_CONFIG_FILE, json.dumps(architecture, indent=1) + "\n"),
                   (VOCODER_WEIGHTS_FILE, tensors), {**record, "fp16_max_audio_change": _fp16_audio_change(
                       vocoder, tensors, architecture)})
    load_student_vocoder(registry.model_dir(model), folder)
    return folder


def _check_size(tensors: dict[str, torch.Tensor], what: str) -> None:
    size = sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())
    if size > MAX_SHIPPED_BYTES:
        raise StudentError(f"the {what}'s tensors take {size / 2**20:.1f} MiB in fp16, more than the "
                           f"{MAX_SHIPPED_BYTES // 2**20} MiB a shipped model may; train a smaller one")


def _write_shipped(folder: Path, model: str, config: tuple[str, str], weights: tuple[str, dict],
                   record: dict) -> None:
    """A shipped model's config text and fp16 tensors, then (last: a folder with a manifest is complete) its
    manifest: the files' sha256, the teacher's model, licence and weights' sha256, and `record`."""
    folder.mkdir(parents=True, exist_ok=True)
    (config_name, config_text), (weights_name, tensors) = config, weights
    replace_file(folder / config_name, lambda path: path.write_text(config_text))
    replace_file(folder / weights_name, lambda path: save_file(tensors, str(path)))
    spec = registry.get_model(model)
    teacher_hashes = recorded_hashes(registry.model_dir(model), [registry.ACOUSTIC_WEIGHTS, registry.VOCODER_WEIGHTS])
    manifest = {
        "files": {name: sha256_file(folder / name) for name in (config_name, weights_name)},
        "teacher": {"model": model, "license": spec.license,
                    "acoustic_sha256": teacher_hashes[registry.ACOUSTIC_WEIGHTS],
                    "vocoder_sha256": teacher_hashes[registry.VOCODER_WEIGHTS]},
        "license": f"as the teacher's: {spec.license}",
        **record,
        "shipped": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    write_json(folder / MANIFEST_FILE, manifest)


def _check_front(student, teacher, model: str) -> None:
    for name in FRONT:
        mine, theirs = getattr(student, name), getattr(teacher, name)
        if (mine is None) != (theirs is None):
            raise StudentError(f"the student's {name} does not match the installed {model} teacher's")
        if mine is None:
            continue
        for (key, a), (_, b) in zip(mine.state_dict().items(), theirs.state_dict().items(), strict=True):
            if a.shape != b.shape or not torch.equal(a, b):
                raise StudentError(f"the student's {name}.{key} differs from the installed {model} teacher's: it was "
                                   "trained on other teacher weights; reinstall the teacher it was trained on")


@torch.inference_mode()
def _fp16_change(student, tensors: dict[str, torch.Tensor]) -> float:
    """The largest |mel difference| that rounding the student's tensors to fp16 makes, on a sentence of ids spread
    over the symbol table, with the durations and pitch its front predicts."""
    rounded = copy.deepcopy(student)
    put_tensors(rounded, tensors)
    ids = torch.arange(1, student.config.num_symbols, 3)[None]
    return float((rounded(ids).mel - student(ids).mel).abs().max())


@torch.inference_mode()
def _fp16_audio_change(vocoder: MBMelGANGenerator, tensors: dict[str, torch.Tensor], architecture: dict) -> float:
    """The largest |audio difference| that rounding the vocoder's tensors to fp16 makes, on a fixed mel of
    typical range (the sub-band rounding of the Baker vocoder counts in it: one step is 1/128)."""
    rounded = vocoder_from(architecture, tensors)
    mel = torch.from_numpy(np.random.default_rng(0).normal(-1.0, 1.0, (1, 60, vocoder.config.num_mels))
                           .astype(np.float32))
    return float((rounded(mel) - vocoder(mel)).abs().max())
