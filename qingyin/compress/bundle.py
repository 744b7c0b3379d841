"""A voice variant as a mobile bundle: its ONNX graphs in ONNX Runtime's ORT format, plus what an app needs to run them.

    qingyin compress bundle baker --variant fp32        # into $QINGYIN_HOME/bundles/baker-fp32/

    acoustic_encoder.ort, acoustic_decoder.ort, vocoder.ort
                                the variant's three graphs (fs2_mbmelgan.export), in ORT format
    required_operators.config   the operators they use, for a reduced-operator ONNX Runtime build
                                (ONNX Runtime's build.py --include_ops_by_config)
    symbols.json                the voice's symbol table: Baker phones -> ids (eos after the last phone)
    acoustic.json, vocoder.json the model configs the runtime reads (pad id; the vocoder's reach, for streaming)
    NOTICE.txt                  the voice's licence and where its weights come from
    manifest.json               written last: voice, variant, versions, the conversion's settings, the geometry
                                (hop, position limit, shortest vocoder input), the licence, and every other
                                file's size and sha256

The conversion is what onnxruntime's converter (onnxruntime.tools.convert_onnx_models_to_ort) does in the Fixed
optimization style at level "all" for target platform "arm" (a session that saves its optimized graph in ORT format,
NCHWc left out, int8 QDQ allowed, and the operator list from onnxruntime.tools.ort_format_model), done here with the
same public calls so that one more session setting can be given: the MatMuls whose weights are stored in INT8
(the size variants, export.weight_storage) fuse into MatMulNBits at accuracy level 1, float arithmetic on the
stored weights, which is what the ONNX backend and the quality gate run (the default, level 4, quantizes the
activations too and changed the encoder's output by up to 0.015 and the durations). The optimizations are applied
once, here, and saved in the file, so
a minimal mobile build needs no graph optimizer and its operator list is exactly what the files hold. The Runtime
style only pays off with a compiling execution provider (NNAPI, CoreML), which would take some nodes off the CPU;
"arm" leaves out x86's NCHWc layout and lets int8 QDQ pairs fuse with signed activations, as ARM CPUs run them.

A bundle is verified before it goes into place: every .ort file loads in ONNX Runtime with its .onnx graph's
inputs and outputs, and the voice's ONNX backend over the bundle folder synthesizes one sentence as it does over
the variant's .onnx graphs: the same durations, the mel within MEL_TOLERANCE, the audio within MIN_SNR_DB. The
audio is not held to a max difference: Baker's vocoder rounds its sub-band signals to steps of 1/128, so a last-bit
difference (here: no NCHWc layout, which is x86's) can tip a value on a rounding edge by one step, 7.9e-3 over
up to 63 samples (qingyin.families.fs2_mbmelgan.streaming); one such flip leaves ~60 dB.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from qingyin.families.fs2_mbmelgan.export import (
    MANIFEST_FILE,
    MODEL_FILES,
    check_variant,
    verify_export,
)
from qingyin.families.fs2_mbmelgan.features import AcousticControls, AcousticFeatures
from qingyin.families.fs2_mbmelgan.onnx_runtime import OnnxBackend, exported_dir
from qingyin.voices import registry
from qingyin.voices.staging import staging_folder
from qingyin.voices.wheels import sha256_file

BUNDLE_FORMAT = 1  # of the bundle's layout and manifest
FAMILY = "fs2_mbmelgan"  # the family whose graphs a bundle holds (Baker's FastSpeech2 + MB-MelGAN)
GRAPH_FILES = tuple(str(Path(name).with_suffix(".ort")) for name in MODEL_FILES)
OPERATORS_FILE = "required_operators.config"
NOTICE_FILE = "NOTICE.txt"
VOICE_FILES = (registry.SYMBOLS, registry.ACOUSTIC_CONFIG, registry.VOCODER_CONFIG)
OPTIMIZATION_STYLE = "Fixed"
OPTIMIZATION_LEVEL = "all"
TARGET_PLATFORM = "arm"
# The converter's settings for "arm" (the NCHWc layout is x86's), and float arithmetic for INT8-stored MatMuls.
SESSION_CONFIG = {"session.save_model_format": "ORT", "session.qdqisint8allowed": "1",
                  "session.qdq_matmulnbits_accuracy_level": "1"}
DISABLED_OPTIMIZERS = ["NchwcTransformer"]
MB = 1_000_000
MOBILE_TARGET_MB = 10  # issue 15: a mobile bundle under 10 MB
VERIFY_TEXT = "欢迎使用轻音，这是移动端语音包的校验句子。"
# The bundle against the .onnx graphs; the ONNX graphs meet the same bars against torch (tests/test_onnx.py).
MEL_TOLERANCE = 2e-4  # max |difference| of the normalized mel
MIN_SNR_DB = 55.0  # of the audio: ~140 dB without a sub-band rounding flip, 60-66 dB with one


class BundleError(ValueError):
    """A bundle that cannot be made as asked; the message says what to do instead."""


@dataclass(frozen=True)
class Verification:
    """The bundle against the variant's .onnx graphs, on one sentence."""

    text: str
    symbols: int  # ids spoken, eos included
    samples: int  # audio samples of the .onnx graphs
    same_io: bool  # every .ort graph has its .onnx graph's input and output names
    same_durations: bool
    mel_difference: float  # max |difference| of the mel, over the frames both have
    audio_difference: float  # max |difference| of the audio, over the samples both have
    snr_db: float  # of the audio against the .onnx graphs' (its noise floored at 1e-30: ~300 when identical)

    @property
    def passed(self) -> bool:
        return (self.same_io and self.same_durations and self.mel_difference <= MEL_TOLERANCE
                and self.snr_db >= MIN_SNR_DB)


@dataclass(frozen=True)
class Bundle:
    """A finished bundle: its folder, its files (name -> bytes; manifest.json aside) and its verification."""

    folder: Path
    voice: str
    variant: str
    files: dict[str, int]
    verification: Verification

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())

    @property
    def under_target(self) -> bool:
        return self.total_bytes < MOBILE_TARGET_MB * MB


def default_out(voice: str, variant: str) -> Path:
    """Where a bundle goes when no folder is given: $QINGYIN_HOME/bundles/<voice>-<variant>."""
    return registry.qingyin_home() / "bundles" / f"{voice}-{check_variant(variant)}"


def make_bundle(voice: str, variant: str = "fp32", out: str | Path | None = None, *, force: bool = False,
                voice_dir: str | Path | None = None, text: str = VERIFY_TEXT) -> Bundle:
    """Bundle the exported `variant` of `voice` into `out` (default: `default_out`), verified; returns it.

    `voice_dir`: the voice's installed folder (default: the catalog's, in $QINGYIN_HOME). `force` replaces a bundle
    already in `out`; a folder holding anything else is never emptied. Nothing is left in `out` on failure.
    """
    spec = registry.get_voice(voice)  # UnknownVoiceError naming the voices
    if spec.family != FAMILY:
        bundled = ", ".join(name for name, v in registry.VOICES.items() if v.family == FAMILY)
        raise BundleError(f"voice {voice!r} is a {spec.family} voice; bundles are made for {FAMILY} voices "
                          f"({bundled}) so far")
    variant = check_variant(variant)
    voice_dir = Path(voice_dir) if voice_dir is not None else registry.voice_dir(voice)
    source = exported_dir(voice_dir, variant)  # VoiceNotAvailableError naming the command that exports it
    damaged = verify_export(voice_dir, variant)
    if damaged:
        raise BundleError(f"{', '.join(damaged)} in {source} differ from the export's manifest; export again: "
                          f"`qingyin export {voice} --variant {variant} --force`")
    converter = _converter()
    target = Path(out) if out is not None else default_out(voice, variant)
    _check_target(target, force)
    staging = staging_folder(target)
    try:
        folder = staging / "bundle"
        _convert(converter, source, folder)
        _copy_voice_files(spec, voice_dir, variant, folder)
        manifest = _manifest(spec, variant, source, folder)
        _write_json(folder / MANIFEST_FILE, manifest)  # the backend reads the geometry from it
        verification = verify_bundle(folder, voice_dir, variant, text)
        if not verification.passed:
            raise BundleError(f"the bundle does not synthesize like the {variant} ONNX graphs: "
                              f"{describe_verification(verification)}; nothing was written to {target}")
        manifest["verification"] = _verification_record(verification)
        _write_json(folder / MANIFEST_FILE, manifest)
        _move_into_place(folder, target, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Bundle(target, voice, variant, {name: entry["bytes"] for name, entry in manifest["files"].items()},
                  verification)


def verify_bundle(folder: Path, voice_dir: Path, variant: str, text: str = VERIFY_TEXT) -> Verification:
    """The bundle in `folder` loaded, and `text`'s first sentence spoken by it and by the variant's .onnx graphs."""
    from qingyin.text.frontend import text_to_sentences
    from qingyin.text.symbols import SymbolTable

    table = SymbolTable.from_json(folder / registry.SYMBOLS)
    ids = table.ids(text_to_sentences(text).sentences[0].phones) + [table.eos_id]
    reference = OnnxBackend(voice_dir, variant)
    bundled = OnnxBackend(folder, variant, graphs=folder)
    same_io = all(_io_names(getattr(reference, stage)) == _io_names(getattr(bundled, stage))
                  for stage in ("encoder", "decoder", "vocoder"))
    expected, expected_audio = _speak(reference, ids)
    actual, actual_audio = _speak(bundled, ids)
    frames = min(len(expected.mel), len(actual.mel))
    samples = min(len(expected_audio), len(actual_audio))
    reference_audio, noise = expected_audio[:samples], expected_audio[:samples] - actual_audio[:samples]
    snr_db = 10 * math.log10(max(float(np.sum(reference_audio**2)), 1e-30) / max(float(np.sum(noise**2)), 1e-30))
    return Verification(text, len(ids), len(expected_audio), same_io,
                        np.array_equal(expected.durations, actual.durations),
                        _max_difference(expected.mel[:frames], actual.mel[:frames]),
                        _max_difference(reference_audio, actual_audio[:samples]), snr_db)


def describe_verification(verification: Verification) -> str:
    io_names = "same inputs and outputs" if verification.same_io else "DIFFERENT inputs or outputs"
    durations = "same durations" if verification.same_durations else "DIFFERENT durations"
    return (f"{io_names}, {durations}; mel max |difference| {verification.mel_difference:.1e} (at most "
            f"{MEL_TOLERANCE:.0e}); audio max |difference| {verification.audio_difference:.1e}, SNR "
            f"{verification.snr_db:.1f} dB (at least {MIN_SNR_DB:.0f}) over {verification.samples} samples")


def summary(bundle: Bundle) -> str:
    """The bundle's files and sizes, its verification, and how it stands against the mobile target."""
    lines = [f"qingyin: {bundle.voice} {bundle.variant} bundle in {bundle.folder}:"]
    width = max(len(name) for name in bundle.files)
    lines += [f"  {name:<{width}}  {size:>12,} bytes  {size / MB:7.2f} MB"
              for name, size in sorted(bundle.files.items())]
    total = bundle.total_bytes / MB
    lines.append(f"  {'total':<{width}}  {bundle.total_bytes:>12,} bytes  {total:7.2f} MB (manifest.json aside)")
    lines.append(f"verified against the {bundle.variant} ONNX graphs on {bundle.verification.text!r}: "
                 f"{describe_verification(bundle.verification)}")
    if bundle.under_target:
        lines.append(f"{bundle.variant} is {total:.1f} MB: under the {MOBILE_TARGET_MB} MB mobile target")
    else:
        lines.append(f"{bundle.variant} is {total:.1f} MB: over the {MOBILE_TARGET_MB} MB mobile target; "
                     "a smaller (student) variant is needed")
    return "\n".join(lines)


def _converter() -> ModuleType:
    """onnxruntime's ORT-format tools (the operator list), or BundleError saying how to get them."""
    try:
        return importlib.import_module("onnxruntime.tools.ort_format_model")
    except ImportError as error:
        raise BundleError(f"ORT-format conversion needs onnxruntime's tools (onnxruntime.tools.ort_format_model, "
                          f"with the flatbuffers package), which did not import: {error}; install them: "
                          "pip install 'qingyin[onnx]' flatbuffers") from None


def _check_target(target: Path, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise BundleError(f"{target} is a file; give a folder with -o")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not force:
        raise BundleError(f"{target} is not empty; pass --force to replace the bundle in it, or give another "
                          "folder with -o")
    if not _holds_bundle(target):
        raise BundleError(f"{target} is not empty and holds no qingyin bundle (its manifest.json has no "
                          "\"bundle\" entry), so --force does not empty it; give an empty or new folder with -o")


def _holds_bundle(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "bundle" in manifest


def _convert(converter: ModuleType, source: Path, folder: Path) -> None:
    """The variant's graphs converted into `folder` (see the module's docstring), with their operator list."""
    import onnxruntime as ort

    folder.mkdir(parents=True)
    converted = []
    for name, graph in zip(MODEL_FILES, GRAPH_FILES, strict=True):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(folder / graph)
        for key, value in SESSION_CONFIG.items():
            options.add_session_config_entry(key, value)
        ort.InferenceSession(str(source / name), options, providers=["CPUExecutionProvider"],
                             disabled_optimizers=DISABLED_OPTIMIZERS)
        converted.append(folder / graph)
    logger = logging.getLogger("ort_format_model.utils")
    level = logger.level
    logger.setLevel(logging.WARNING)  # its INFO lines name every operator
    try:
        converter.create_config_from_models(converted, folder / OPERATORS_FILE, False)
    finally:
        logger.setLevel(level)
    missing = [name for name in (*GRAPH_FILES, OPERATORS_FILE) if not (folder / name).is_file()]
    if missing:
        raise BundleError(f"onnxruntime did not write {', '.join(missing)} into {folder}")
    _strip_paths(folder / OPERATORS_FILE)


def _strip_paths(config: Path) -> None:
    """The operator list's header names the models it was made from by absolute path; keep only their names."""
    lines = config.read_text(encoding="utf-8").splitlines()
    lines = [f"# - {Path(line[4:]).name}" if line.startswith("# - ") else line for line in lines]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _copy_voice_files(spec: registry.VoiceSpec, voice_dir: Path, variant: str, folder: Path) -> None:
    for name in VOICE_FILES:
        shutil.copyfile(voice_dir / name, folder / name)
    model, pins = spec.model, spec.model.source
    origin = (f"the {pins['package']} {pins.get('version', '')} package (wheel sha256 {pins.get('wheel_sha256')})"
              if "package" in pins else "the catalog's source")
    (folder / NOTICE_FILE).write_text(
        f"qingyin voice bundle: {spec.name} ({variant})\n"
        f"Model: {model.description}\n"
        f"License: {model.license}\n"
        f"Weights: from {origin}, converted and exported to ONNX by qingyin\n", encoding="utf-8")


def _manifest(spec: registry.VoiceSpec, variant: str, source: Path, folder: Path) -> dict:
    import onnxruntime

    from qingyin import __version__

    export = json.loads((source / MANIFEST_FILE).read_text(encoding="utf-8"))
    files = {path.name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
             for path in sorted(folder.iterdir()) if path.name != MANIFEST_FILE}
    return {
        "bundle": BUNDLE_FORMAT,
        "voice": spec.name,
        "variant": variant,
        "qingyin": __version__,
        "onnxruntime": onnxruntime.__version__,
        "ort_format": {"optimization_style": OPTIMIZATION_STYLE, "optimization_level": OPTIMIZATION_LEVEL,
                       "target_platform": TARGET_PLATFORM},
        "license": spec.license,
        "sample_rate": spec.sample_rate,
        "geometry": export["geometry"],
        "export": {"format": export.get("format"), "files": export.get("files")},  # the .onnx graphs bundled
        "files": files,
        "total_bytes": sum(entry["bytes"] for entry in files.values()),
    }


def _verification_record(verification: Verification) -> dict:
    return {"text": verification.text, "symbols": verification.symbols, "samples": verification.samples,
            "same_io": verification.same_io, "same_durations": verification.same_durations,
            "mel_max_abs_difference": verification.mel_difference,
            "audio_max_abs_difference": verification.audio_difference, "audio_snr_db": round(verification.snr_db, 2),
            "mel_tolerance": MEL_TOLERANCE, "min_snr_db": MIN_SNR_DB}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _max_difference(expected: np.ndarray, actual: np.ndarray) -> float:
    return float(np.max(np.abs(expected - actual), initial=0.0))


def _io_names(session: Any) -> tuple[list[str], list[str]]:  # an ONNX Runtime session (CpuSession)
    return [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]


def _speak(backend: OnnxBackend, ids: list[int]) -> tuple[AcousticFeatures, np.ndarray]:
    features = backend.acoustic(ids, AcousticControls())
    return features, backend.vocode(features.mel)


def _move_into_place(folder: Path, target: Path, staging: Path) -> None:
    """`folder` renamed to `target`; a folder already there (empty, or a bundle --force replaces) is moved aside
    into `staging` first, and goes with it."""
    if target.exists():
        os.replace(target, staging / "replaced")
    os.replace(folder, target)
