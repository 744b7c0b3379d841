"""Students shipped with qingyin: a smaller decoder and postnet that run on the teacher's front, and a pruned vocoder.

A student (qingyin.compress.student, trained by qingyin.compress.student_training) keeps its teacher's front
(FRONT: embeddings, encoder, duration, pitch and energy predictors) unchanged, so only what it trained is
shipped, in the package, per model:

    qingyin/families/fs2_mbmelgan/students/<model>/acoustic.json          the student's FastSpeech2 config
    qingyin/families/fs2_mbmelgan/students/<model>/student.safetensors    every tensor outside the front, fp16
    qingyin/families/fs2_mbmelgan/students/<model>/manifest.json          sha256 of both, the teacher's weights'
                                                                          sha256, licence, recipe and measurements

`load_student(voice_dir)` puts the two together: the installed teacher's front (checked to be the weights the
student was trained on) and the shipped tensors, in float32. The "student" ONNX variants
(qingyin.families.fs2_mbmelgan.export) are exported from it. Needs torch.

A pruned decoder (`qingyin compress prune-decoder`: the teacher's decoder and postnet with a share of every width
removed, retrained as a student is) is a student too, shipped the same way in its own folder,
`students/<model>/decoder-<percent removed>/` (pruned_decoder_dir); the "pruned<percent>" variants use it.

A pruned vocoder (qingyin.compress.prune, retrained on the teacher's mels and audio by
qingyin.compress.vocoder_recovery) is shipped whole, since pruning changed every layer:

    qingyin/families/fs2_mbmelgan/students/<model>/vocoder/vocoder.json          its config and channel widths
    qingyin/families/fs2_mbmelgan/students/<model>/vocoder/vocoder.safetensors   its tensors, fp16
    qingyin/families/fs2_mbmelgan/students/<model>/vocoder/manifest.json         as the student's

`load_student_vocoder(voice_dir)` builds it (qingyin.families.fs2_mbmelgan.model.widths), in float32; the
"-pruned" variants use it. It was trained on the mels of the teacher's acoustic model, so it too is refused
when the installed teacher's acoustic weights are not those.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING

from qingyin.voices import registry
from qingyin.voices.wheels import sha256_file

if TYPE_CHECKING:
    from qingyin.families.fs2_mbmelgan.model.fastspeech2 import FastSpeech2
    from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANGenerator

STUDENTS_DIR = Path(__file__).parent / "students"
CONFIG_FILE = registry.ACOUSTIC_CONFIG
WEIGHTS_FILE = "student.safetensors"
MANIFEST_FILE = "manifest.json"
VOCODER_FOLDER = "vocoder"  # in a model's students folder
PRUNED_DECODER_PREFIX = "decoder-"  # likewise, with the percent of the widths removed
VOCODER_CONFIG_FILE = "vocoder.json"
VOCODER_WEIGHTS_FILE = "vocoder.safetensors"
# The modules in front of the length regulator: the teacher's, unchanged, in every student.
FRONT = ("symbol_embedding", "speaker_embedding", "emotion_embedding", "encoder", "duration_predictor",
         "pitch_predictor", "energy_predictor", "pitch_embedding", "energy_embedding")


class StudentUnavailableError(ValueError):
    """No student is shipped for this model, or it was trained on other teacher weights, or its files are damaged."""


def student_dir(model: str) -> Path:
    """Where the student of catalog model `model` is shipped."""
    return STUDENTS_DIR / model


def pruned_decoder_dir(model: str, ratio: float) -> Path:
    """Where the decoder of catalog model `model` pruned by `ratio` (a `qingyin compress prune-decoder` run) is
    shipped: a student with the teacher's layers, beside the student."""
    return student_dir(model) / pruned_decoder_folder(ratio)


def pruned_decoder_folder(ratio: float) -> str:
    """The folder name of a pruned decoder in a model's students folder, e.g. "decoder-70" for 0.7."""
    return f"{PRUNED_DECODER_PREFIX}{round(ratio * 100)}"


def voice_model(voice_dir: str | Path) -> str:
    """The catalog model an installed voice folder holds, as its manifest names it."""
    manifest = Path(voice_dir) / registry.MANIFEST
    try:
        return json.loads(manifest.read_text())["voice"]
    except (OSError, ValueError, KeyError) as error:
        raise StudentUnavailableError(f"{voice_dir} is not an installed voice ({manifest}: {error}); install it "
                                      "with `qingyin models fetch baker`") from None


def student_vocoder_dir(model: str) -> Path:
    """Where the pruned vocoder of catalog model `model` is shipped."""
    return student_dir(model) / VOCODER_FOLDER


def student_manifest(voice_dir: str | Path, folder: Path | None = None) -> dict:
    """The manifest of the student shipped for the voice in `voice_dir` (or of the one in `folder`), or
    StudentUnavailableError."""
    return _manifest(voice_dir, folder, vocoder=False)


def student_vocoder_manifest(voice_dir: str | Path, folder: Path | None = None) -> dict:
    """The manifest of the pruned vocoder shipped for the voice in `voice_dir` (or of the one in `folder`), or
    StudentUnavailableError."""
    return _manifest(voice_dir, folder, vocoder=True)


def _manifest(voice_dir: str | Path, folder: Path | None, vocoder: bool) -> dict:
    model = voice_model(voice_dir)
    folder = Path(folder) if folder is not None else (student_vocoder_dir if vocoder else student_dir)(model)
    if vocoder:
        what, weights, train = "pruned vocoder", VOCODER_WEIGHTS_FILE, "qingyin compress prune-vocoder"
    elif folder.name.startswith(PRUNED_DECODER_PREFIX):
        what, weights, train = ("pruned decoder", WEIGHTS_FILE,
                                "qingyin compress prune-decoder` and `qingyin compress ship-decoder")
    else:
        what, weights, train = "student acoustic model", WEIGHTS_FILE, "qingyin compress student"
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise StudentUnavailableError(f"no {what} is shipped for {model!r} (looked in {folder}); use another "
                                      f"variant, or train one with `{train}`") from None
    except (OSError, ValueError) as error:
        raise StudentUnavailableError(f"{folder / MANIFEST_FILE} is unreadable ({error}); reinstall qingyin") from None
    complete = isinstance(manifest, dict) and isinstance(manifest.get("files"), dict) and \
        weights in manifest["files"] and isinstance(manifest.get("teacher"), dict) and \
        "acoustic_sha256" in manifest["teacher"]
    if not complete:
        raise StudentUnavailableError(f"{folder / MANIFEST_FILE} lacks the files' or the teacher's hashes; reinstall "
                                      "qingyin")
    return manifest


def student_hash(voice_dir: str | Path, folder: Path | None = None) -> str:
    """sha256 of the shipped student's weights (or those of the one in `folder`), as its manifest records it: what
    an export of it depends on."""
    return student_manifest(voice_dir, folder)["files"][WEIGHTS_FILE]


def student_vocoder_hash(voice_dir: str | Path) -> str:
    """sha256 of the shipped pruned vocoder's weights, as its manifest records it."""
    return student_vocoder_manifest(voice_dir)["files"][VOCODER_WEIGHTS_FILE]


def load_student(voice_dir: str | Path, teacher: FastSpeech2 | None = None,
                 folder: str | Path | None = None) -> FastSpeech2:
    """The shipped student of the voice in `voice_dir` (or the one in `folder`) on the installed teacher's front,
    float32, in eval mode.

    `teacher`: the voice's acoustic model if already loaded (default: loaded from `voice_dir`). Checks the
    student's files against its manifest and the teacher's weights against those it was trained on.
    """
    from safetensors.torch import load_file

    from qingyin.families.fs2_mbmelgan.model.config import config_from_dict
    from qingyin.families.fs2_mbmelgan.model.fastspeech2 import FastSpeech2, FastSpeech2Config
    from qingyin.families.fs2_mbmelgan.torch_runtime import load_module

    voice_dir = Path(voice_dir)
    folder = Path(folder) if folder is not None else student_dir(voice_model(voice_dir))
    _check_files(voice_dir, folder, student_manifest(voice_dir, folder))
    if teacher is None:
        teacher = load_module(voice_dir, registry.ACOUSTIC_CONFIG, registry.ACOUSTIC_WEIGHTS, FastSpeech2Config,
                              FastSpeech2)
    config = config_from_dict(FastSpeech2Config, json.loads((folder / CONFIG_FILE).read_text()))
    student = FastSpeech2(config).eval()
    for name in FRONT:
        setattr(student, name, copy.deepcopy(getattr(teacher, name)))
    shipped = load_file(str(folder / WEIGHTS_FILE))
    state = student.state_dict()
    outside_front = {key for key in state if key.split(".")[0] not in FRONT and not key.endswith("num_batches_tracked")}
    if set(shipped) != outside_front or any(shipped[key].shape != state[key].shape for key in shipped):
        raise StudentUnavailableError(f"{folder / WEIGHTS_FILE} does not hold the tensors {CONFIG_FILE} describes; "
                                      "reinstall qingyin")
    put_tensors(student, shipped)
    return student


def load_student_vocoder(voice_dir: str | Path, folder: str | Path | None = None) -> MBMelGANGenerator:
    """The pruned vocoder shipped for the voice in `voice_dir` (or the one in `folder`), float32, in eval mode.
    Checks its files against its manifest and the installed teacher's acoustic weights against those whose mels
    it was trained on."""
    from safetensors.torch import load_file

    from qingyin.families.fs2_mbmelgan.model.widths import VocoderWidthsError, vocoder_from

    voice_dir = Path(voice_dir)
    folder = Path(folder) if folder is not None else student_vocoder_dir(voice_model(voice_dir))
    _check_files(voice_dir, folder, student_vocoder_manifest(voice_dir, folder))
    try:
        return vocoder_from(json.loads((folder / VOCODER_CONFIG_FILE).read_text()),
                            load_file(str(folder / VOCODER_WEIGHTS_FILE)))
    except VocoderWidthsError as error:
        raise StudentUnavailableError(f"{folder}: {error}; reinstall qingyin") from None


def _check_files(voice_dir: Path, folder: Path, manifest: dict) -> None:
    """StudentUnavailableError unless the shipped files are those `manifest` records and the installed teacher's
    acoustic weights are those the shipped model was trained with."""
    for name, expected in manifest["files"].items():
        if not (folder / name).is_file() or sha256_file(folder / name) != expected:
            raise StudentUnavailableError(f"{folder / name} is missing or differs from its manifest; reinstall "
                                          "qingyin")
    trained_on = manifest["teacher"]["acoustic_sha256"]
    installed = recorded_hashes(voice_dir, [registry.ACOUSTIC_WEIGHTS])[registry.ACOUSTIC_WEIGHTS]
    if installed != trained_on:
        raise StudentUnavailableError(
            f"the shipped model in {folder} was trained on other {registry.ACOUSTIC_WEIGHTS} (sha256 "
            f"{trained_on[:12]}…) than the installed ones ({installed[:12]}…); reinstall the voice with `qingyin "
            f"models fetch {voice_model(voice_dir)} --force`, or use another variant")


def put_tensors(student: FastSpeech2, tensors: dict) -> None:
    """Copy `tensors` (a shipped student's, fp16) into `student`'s state, each in the dtype the state holds."""
    import torch

    state = student.state_dict()
    with torch.no_grad():
        for key, tensor in tensors.items():
            state[key].copy_(tensor.to(state[key].dtype))


def student_tensors(student: FastSpeech2) -> dict:
    """What a student ships: every state tensor outside the front, float ones as fp16 (batch counters left out)."""
    import torch

    return {key: (tensor.detach().to(torch.float16) if tensor.is_floating_point() else tensor.detach()).contiguous()
            for key, tensor in student.state_dict().items()
            if key.split(".")[0] not in FRONT and not key.endswith("num_batches_tracked")}


def recorded_hashes(voice_dir: str | Path, names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """sha256 of an installed voice's files `names`, as the voice's manifest records them (hashed now where it does
    not), read from the manifest once."""
    voice_dir = Path(voice_dir)
    manifest = voice_dir / registry.MANIFEST
    recorded = json.loads(manifest.read_text()).get("files", {}) if manifest.is_file() else {}
    return {name: recorded.get(name) or sha256_file(voice_dir / name) for name in names}
