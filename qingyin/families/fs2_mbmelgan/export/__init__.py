"""Exports of a voice's models to other runtimes (ONNX), and where the exported files live.

This module only names the layout and checks it, so runtimes can import it without torch or onnx;
`qingyin.families.fs2_mbmelgan.export.onnx_export` does the exporting (it needs torch, onnx and onnxruntime).

    voice_dir/onnx/<variant>/acoustic_encoder.onnx   ids, scales -> encoder states, durations, pitch, energy
    voice_dir/onnx/<variant>/acoustic_decoder.onnx   length-regulated states -> mel
    voice_dir/onnx/<variant>/vocoder.onnx            mel -> audio
    voice_dir/onnx/<variant>/manifest.json           written last: sha256 of the files and of their source
    voice_dir/onnx/<variant>/gate.json               the quality gate's verdict and speed (qingyin.evaluate.gate)

`default_variant` picks the variant a runtime loads when none is asked for: the fastest that passed its gate.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from qingyin.families.fs2_mbmelgan.students import (
    VOCODER_FOLDER,
    VOCODER_WEIGHTS_FILE,
    WEIGHTS_FILE,
    StudentUnavailableError,
    pruned_decoder_dir,
    pruned_decoder_folder,
    recorded_hashes,
    student_dir,
    student_hash,
    student_vocoder_hash,
    voice_model,
)
from qingyin.voices import registry
from qingyin.voices.wheels import sha256_file

PRUNED_DECODER_RATIOS = (0.3, 0.5, 0.7)  # issue 15's: the share of every width of the decoder and postnet removed


def pruned_decoder_variant(ratio: float, int8: bool = False) -> str:
    """The variant that decodes with the decoder pruned by `ratio`, e.g. "pruned50-int8" for 0.5 made as
    student-int8 is."""
    return f"pruned{round(ratio * 100)}{'-int8' if int8 else ''}"


# The variants whose decoder is a shipped pruned one (students.pruned_decoder_dir), float or as student-int8 is
PRUNED_DECODER_VARIANTS = {pruned_decoder_variant(ratio, int8): ratio
                           for ratio in PRUNED_DECODER_RATIOS for int8 in (False, True)}
VARIANTS = ("fp32", "int8-dynamic", "int8-static", "student", "student-int8", "student-int8-pruned",
            *PRUNED_DECODER_VARIANTS)
# The variants whose acoustic decoder is a shipped student's (qingyin.families.fs2_mbmelgan.students) rather than
# the teacher's: they are judged by how they sound, not by how closely they compute the teacher's mel.
STUDENT_VARIANTS = ("student", "student-int8", "student-int8-pruned", *PRUNED_DECODER_VARIANTS)
_PRUNED_INT8 = tuple(name for name in PRUNED_DECODER_VARIANTS if name.endswith("-int8"))
# decoder convolutions in static INT8 (export.static_quant)
STATIC_INT8_VARIANTS = ("int8-static", "student-int8", "student-int8-pruned", *_PRUNED_INT8)
# the weights static INT8 leaves float, stored in INT8 (export.weight_storage)
WEIGHT_STORAGE_VARIANTS = ("student-int8", "student-int8-pruned", *_PRUNED_INT8)
PRUNED_VOCODER_VARIANTS = ("student-int8-pruned",)  # the shipped pruned vocoder instead of the teacher's
PRUNED_VOCODER_SOURCE = f"{VOCODER_FOLDER}/{VOCODER_WEIGHTS_FILE}"  # its key in an export's source hashes
VARIANT_ALIASES = {"int8": "int8-static"}  # the INT8 variant that holds the quality bar
VARIANT_CHOICES = ", ".join(f"{name} (int8 = {name})" if name in VARIANT_ALIASES.values() else name
                            for name in VARIANTS)
ONNX_FOLDER = "onnx"
ENCODER_FILE = "acoustic_encoder.onnx"
DECODER_FILE = "acoustic_decoder.onnx"
VOCODER_FILE = "vocoder.onnx"
MODEL_FILES = (ENCODER_FILE, DECODER_FILE, VOCODER_FILE)
MANIFEST_FILE = "manifest.json"
# Of the graphs' inputs and outputs, of the manifest and of what the exporter does; an export of another format
# is redone. 2: Mish in closed form (onnx_export.replace_mish), faster on ONNX Runtime's CPU provider.
# 3: the vocoder's convolutions as 2-D ones (export.conv2d_layout) and its PQMF in polyphase form.
# 4: the size variants (WEIGHT_STORAGE_VARIANTS) compute their position tables (export.position_tables).
FORMAT = 4
EXPORT_IDENTITY = ("format", "source", "files")  # the manifest entries that tell one export from another
GATE_FILE = "gate.json"
GATE_VERSION = 1  # of the gate's metrics and thresholds; a gate.json of another version no longer counts
SOURCE_FILES = (registry.ACOUSTIC_CONFIG, registry.ACOUSTIC_WEIGHTS, registry.VOCODER_CONFIG, registry.VOCODER_WEIGHTS)


class UnknownVariantError(ValueError):
    """An export variant that does not exist; the message lists the valid ones."""


def check_variant(variant: str) -> str:
    """The variant's name (an alias resolved), or UnknownVariantError naming the choices."""
    name = VARIANT_ALIASES.get(variant, variant)
    if name not in VARIANTS:
        raise UnknownVariantError(f"unknown ONNX variant {variant!r}; available: {VARIANT_CHOICES}")
    return name


def variant_dir(voice_dir: str | Path, variant: str) -> Path:
    """Where the files of one exported variant of the voice in `voice_dir` live."""
    return Path(voice_dir) / ONNX_FOLDER / check_variant(variant)


def source_hashes(voice_dir: str | Path, variant: str = "fp32") -> dict[str, str]:
    """sha256 of the converted voice's config and weight files, as its own manifest records them (or hashed now);
    for a student variant also of the shipped student's weights, and for a pruned one of the shipped vocoder's
    (None where none is shipped)."""
    hashes: dict[str, str | None] = dict(recorded_hashes(voice_dir, SOURCE_FILES))
    variant = check_variant(variant)
    shipped = []
    if variant in STUDENT_VARIANTS:  # keyed by the weights' path in the model's students folder
        ratio = PRUNED_DECODER_VARIANTS.get(variant)
        key = WEIGHTS_FILE if ratio is None else f"{pruned_decoder_folder(ratio)}/{WEIGHTS_FILE}"
        shipped.append((key, lambda voice_dir: student_hash(voice_dir, student_folder(voice_dir, variant))))
    if variant in PRUNED_VOCODER_VARIANTS:
        shipped.append((PRUNED_VOCODER_SOURCE, student_vocoder_hash))
    for key, hash_of in shipped:
        try:
            hashes[key] = hash_of(voice_dir)
        except StudentUnavailableError:
            hashes[key] = None
    return hashes


def student_folder(voice_dir: str | Path, variant: str) -> Path:
    """The shipped student a student variant decodes with: a pruned decoder's folder or the student's."""
    model = voice_model(voice_dir)
    ratio = PRUNED_DECODER_VARIANTS.get(check_variant(variant))
    return student_dir(model) if ratio is None else pruned_decoder_dir(model, ratio)


def available_variants(voice_dir: str | Path) -> list[str]:
    """The variants that can be exported from the voice in `voice_dir`: those whose shipped students exist."""
    return [variant for variant in VARIANTS if None not in source_hashes(voice_dir, variant).values()]


def is_exported(voice_dir: str | Path, variant: str) -> bool:
    """True when the variant's files are complete and were exported from the voice's current weights.

    Only the manifest is read (hashing the models on every load would cost more than it protects);
    `verify_export` checks the files themselves.
    """
    manifest_path = variant_dir(voice_dir, variant) / MANIFEST_FILE
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    files_present = all((manifest_path.parent / name).is_file() for name in MODEL_FILES)
    current = manifest.get("format") == FORMAT and manifest.get("source") == source_hashes(voice_dir, variant)
    return files_present and current


def verify_export(voice_dir: str | Path, variant: str) -> list[str]:
    """Names of the variant's model files whose sha256 differs from its manifest (empty = all good)."""
    folder = variant_dir(voice_dir, variant)
    recorded = json.loads((folder / MANIFEST_FILE).read_text())["files"]
    return [name for name in MODEL_FILES
            if not (folder / name).is_file() or sha256_file(folder / name) != recorded.get(name)]


def current_gate(voice_dir: str | Path, variant: str) -> dict | None:
    """The variant's gate.json as a dict when it judged the export now on disk, else None.

    Current means: the same gate version, and the export it measured (format, source hashes and model file
    hashes, as the manifest records them) is the variant's current, complete export.
    """
    folder = variant_dir(voice_dir, variant)
    try:
        gate = json.loads((folder / GATE_FILE).read_text())
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(gate, dict) or gate.get("gate_version") != GATE_VERSION or not is_exported(voice_dir, variant):
        return None
    measured = gate.get("export")
    same_export = isinstance(measured, dict) and all(
        measured.get(key) == value for key, value in export_identity(manifest).items())
    return gate if same_export else None


def export_identity(manifest: dict) -> dict[str, object]:
    """What identifies an export, from its manifest: format, source hashes and model file hashes."""
    return {key: manifest.get(key) for key in EXPORT_IDENTITY}


def default_variant(voice_dir: str | Path) -> str:
    """The variant to load when none is asked for: of those whose gate.json is current and passed, the fastest,
    if it is faster than fp32; else "fp32" (which needs no gate: it is what the others are measured against).

    Speed is the gate's rtf relative to fp32 ONNX's measured in the same run (1 for fp32 itself), so that gate
    runs made at different times on a busy machine compare fairly.
    """
    best, best_speed = "fp32", 1.0
    for variant in VARIANTS:
        gate = current_gate(voice_dir, variant)
        if not gate or gate.get("passed") is not True:
            continue
        try:
            speed = float(gate["rtf"]) / float(gate["fp32_rtf"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue
        if math.isfinite(speed) and speed > 0 and speed < best_speed:
            best, best_speed = variant, speed
    return best
