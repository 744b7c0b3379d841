"""Shipping a trained student with qingyin: its own tensors in fp16, with a manifest, into the package.

    ship_student(run)   # $QINGYIN_HOME/train/student/baker-192x2 -> qingyin/families/fs2_mbmelgan/students/baker

Only what the student trained is shipped (qingyin.families.fs2_mbmelgan.students.student_tensors: every tensor
outside the teacher's front, about 5 MB for the 2 x 192 student); the front comes from the teacher installed on
the user's machine, and `load_student` checks that it is the same one. Before writing, the run's front is checked
against the installed teacher's, tensor for tensor, so the manifest's teacher hash is the one it was trained on.

The manifest records the files' sha256, the teacher (model, licence, the sha256 of its acoustic weights), the
run's recipe and log (what reproduces the weights: `qingyin compress student` with those settings on that
teacher data, for that many steps), and the largest difference the fp16 rounding makes to the mel on the
held-out utterances.
"""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from qingyin.compress.checkpoint import load_checkpoint
from qingyin.compress.runs import CHECKPOINT, RECIPE, read_log
from qingyin.compress.student import load_acoustic, load_teacher_acoustic
from qingyin.compress.student_recipe import StudentError
from qingyin.families.fs2_mbmelgan.model.config import config_to_dict
from qingyin.families.fs2_mbmelgan.model.fastspeech2 import FastSpeech2
from qingyin.families.fs2_mbmelgan.students import (
    CONFIG_FILE,
    FRONT,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    load_student,
    put_tensors,
    recorded_hashes,
    student_dir,
    student_tensors,
)
from qingyin.runtime.files import replace_file, write_json
from qingyin.voices import registry
from qingyin.voices.wheels import sha256_file

MAX_SHIPPED_BYTES = 10 * 1024 * 1024  # the house rule for weights committed to the repository


def ship_student(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the student of training run `run`, as of its checkpoint, into `out` (default: the package's folder
    for its teacher model) with `write_student`; returns the folder."""
    run = Path(run)
    try:
        recipe = json.loads((run / RECIPE).read_text())
    except (OSError, ValueError) as error:
        raise StudentError(f"{run} is not a student training run ({RECIPE}: {error}); train one with "
                           "`qingyin compress student`") from None
    checkpoint = load_checkpoint(run / CHECKPOINT)  # the weights and their step, saved together
    if checkpoint is None:
        raise StudentError(f"{run} holds no {CHECKPOINT}: train the student first (`qingyin compress student`)")
    student = load_acoustic(run)
    student.load_state_dict(checkpoint["model"])
    step = int(checkpoint["step"])
    log = [line for line in read_log(run) if line["step"] <= step]
    model = recipe["teacher"]["model"]
    record = {
        "step": step,
        "validation_mel_l1": next((line["val_mel_l1"] for line in reversed(log) if "val_mel_l1" in line), None),
        "recipe": recipe,
        "log": log,
        "reproduce": "qingyin compress teacher-data (the recipe's teacher data), then qingyin compress student "
                     f"--steps {step} with the recipe's settings, then qingyin compress ship-student",
    }
    return write_student(student, Path(out) if out is not None else student_dir(model), model, record)


def write_student(student: FastSpeech2, folder: Path, model: str, record: dict) -> Path:
    """The student's config, its own tensors in fp16 and the manifest (with `record` in it) in `folder`.

    StudentError when the student's front is not the installed `model` teacher's, or its tensors would exceed
    MAX_SHIPPED_BYTES. Ends by loading the student the way an export will (students.load_student).
    """
    teacher = load_teacher_acoustic(model)
    _check_front(student, teacher, model)
    tensors = student_tensors(student)
    size = sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())
    if size > MAX_SHIPPED_BYTES:
        raise StudentError(f"the student's own tensors take {size / 2**20:.1f} MiB in fp16, more than the "
                           f"{MAX_SHIPPED_BYTES // 2**20} MiB a shipped model may; train a smaller one")
    folder.mkdir(parents=True, exist_ok=True)
    config_text = json.dumps(config_to_dict(student.config), indent=1) + "\n"
    replace_file(folder / CONFIG_FILE, lambda path: path.write_text(config_text))
    replace_file(folder / WEIGHTS_FILE, lambda path: save_file(tensors, str(path)))
    teacher_dir = registry.model_dir(model)
    spec = registry.get_model(model)
    manifest = {
        "files": {name: sha256_file(folder / name) for name in (CONFIG_FILE, WEIGHTS_FILE)},
        "teacher": {"model": model, "license": spec.license,
                    "acoustic_sha256": recorded_hashes(teacher_dir, [registry.ACOUSTIC_WEIGHTS])[
                        registry.ACOUSTIC_WEIGHTS]},
        "license": f"as the teacher's: {spec.license}",
        **record,
        "fp16_max_mel_change": _fp16_change(student, tensors),
        "shipped": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    write_json(folder / MANIFEST_FILE, manifest)  # last: a folder with a manifest is complete
    load_student(teacher_dir, teacher, folder)  # what a user's export will do: the files and hashes agree
    return folder


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
