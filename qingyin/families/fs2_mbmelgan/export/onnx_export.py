"""Export a voice's FastSpeech2 + MB-MelGAN to ONNX, for `qingyin.families.fs2_mbmelgan.onnx_runtime.OnnxBackend`.

    .venv/bin/python -m qingyin.families.fs2_mbmelgan.export.onnx_export [--voice baker] [--variant fp32 ...] [--force]

(`qingyin export baker --variant X [--gate]` does the same, and gates with qingyin.evaluate.gate.)

The acoustic model's length regulator repeats each symbol's vector a data-dependent number of times, and its
rounding of durations must match the torch model exactly, so the acoustic model is cut there into two graphs:

    acoustic_encoder: ids, lengths, speakers, duration/pitch/energy scales (per symbol)
                      -> states (after the pitch/energy embeddings), log_durations, frames (unrounded,
                         already scaled), pitch, energy
    acoustic_decoder: states expanded to frames, mel_lengths -> mel (after the postnet)

The runtime rounds `frames` half to even (as torch.round does), applies forced durations, checks the mel
length and expands the states with numpy between the two. Every axis is dynamic: batch and symbols/frames.

Variants (see qingyin.families.fs2_mbmelgan.export.VARIANTS):
    fp32          the exported graphs after ONNX Runtime's offline graph optimizations (level "extended",
                  which stays portable; layout-specific ones are left to load time)
    int8-dynamic  the same graphs with the MatMul weights quantized to int8 (quantize_dynamic); activations are
                  quantized on the fly. Convolutions stay float: ConvInteger is slower than float Conv on CPU.
    int8-static   the decoder's convolutions quantized to int8 with activation ranges calibrated on sentences
                  (QDQ, run as QLinearConv); see qingyin.families.fs2_mbmelgan.export.static_quant for what and why.
    student       the acoustic decoder is the shipped student's (qingyin.families.fs2_mbmelgan.students: the
                  teacher's front, a smaller decoder and postnet distilled from it), fp32
    student-int8  the student's decoder in static INT8, like int8-static; every other large weight stored in INT8
                  and dequantized before float arithmetic (export.weight_storage), the position tables computed
                  (export.position_tables): a smaller file
    student-int8-pruned  student-int8 with the shipped pruned vocoder (students.load_student_vocoder: 30 % of
                  the teacher vocoder's channels removed, then retrained) instead of the teacher's
    pruned30, pruned50, pruned70 (and -int8)  the acoustic decoder is the shipped pruned one (the teacher's decoder
                  and postnet with that share of every width and of the heads removed, then retrained), fp32, or
                  made as student-int8 is
Every variant computes Mish in closed form (`replace_mish`), which ONNX Runtime runs faster than its Softplus.
Check a variant against torch with `qingyin export --gate` (qingyin.evaluate.gate).
fp16 is not offered: ONNX Runtime's CPU provider has few fp16 kernels, so it only adds Cast nodes (measured in
benchmarks/onnx_variants.py's notes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

from qingyin.families.fs2_mbmelgan.export import (
    DECODER_FILE,
    ENCODER_FILE,
    FORMAT,
    MANIFEST_FILE,
    MODEL_FILES,
    PRUNED_VOCODER_VARIANTS,
    STATIC_INT8_VARIANTS,
    STUDENT_VARIANTS,
    VARIANTS,
    VOCODER_FILE,
    WEIGHT_STORAGE_VARIANTS,
    check_variant,
    is_exported,
    sha256_file,
    source_hashes,
    student_folder,
    variant_dir,
)
from qingyin.families.fs2_mbmelgan.export.conv2d_layout import to_conv2d_layout
from qingyin.families.fs2_mbmelgan.model.fastspeech2 import FastSpeech2, sequence_mask
from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANGenerator
from qingyin.voices import registry
from qingyin.voices.staging import staging_folder

__all__ = ["VARIANTS", "export_voice", "export_voice_dir"]

OPSET = 18
# Ops whose weights int8-dynamic quantizes. MatMul holds the transformers' and projections' weights; Conv is
# left out on purpose (ConvInteger has no fast CPU kernel, it made the vocoder several times slower).
QUANTIZED_OPS = ["MatMul"]
_MISH_LIMIT, _MISH_TWO = "mish_exp_limit", "mish_two"  # constants of replace_mish's closed form


class AcousticEncoderGraph(nn.Module):
    """FastSpeech2 up to the length regulator: the first half of its forward, with per-symbol scales."""

    def __init__(self, model: FastSpeech2):
        super().__init__()
        self.model = model

    def forward(self, symbols: Tensor, lengths: Tensor, speakers: Tensor, duration_scale: Tensor,
                pitch_scale: Tensor, energy_scale: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        model = self.model
        mask = sequence_mask(lengths, symbols.shape[1])
        valid = mask[..., None].float()
        x = model.encoder(model.symbol_embedding(symbols), mask)
        x = x + model.speaker_embedding(speakers)[:, None, :] * valid
        log_durations = model.duration_predictor(x, mask)
        frames = torch.relu(torch.exp(log_durations) - 1.0) * duration_scale
        pitch = model.pitch_predictor(x, mask) * pitch_scale * mask
        energy = model.energy_predictor(x, mask) * energy_scale * mask
        states = x + model.pitch_embedding(pitch, mask) + model.energy_embedding(energy, mask)
        return states, log_durations, frames, pitch, energy


class AcousticDecoderGraph(nn.Module):
    """FastSpeech2 after the length regulator: decoder, mel projection and postnet."""

    def __init__(self, model: FastSpeech2):
        super().__init__()
        self.model = model

    def forward(self, states: Tensor, mel_lengths: Tensor) -> Tensor:
        model = self.model
        mask = sequence_mask(mel_lengths, states.shape[1])
        x = model.decoder(model.decoder_projection(states), mask)
        mel_before = model.mel_projection(x) * mask[..., None]
        return mel_before + model.postnet(mel_before, mask)


def export_voice(voice: str, variant: str = "fp32", force: bool = False) -> Path:
    """Export the installed voice `voice` (fetched and converted first if needed); returns the variant's folder.

    Does nothing when the variant is already exported from the current weights, unless `force`.
    """
    from qingyin.families.fs2_mbmelgan.fetch import ensure_voice

    registry.get_voice(voice)  # UnknownVoiceError before any work
    return export_voice_dir(ensure_voice(voice, quiet=True), variant, force)


def export_voice_dir(voice_dir: str | Path, variant: str = "fp32", force: bool = False) -> Path:
    """Export the converted voice in `voice_dir`; writes into a temporary folder, then renames it into place."""
    voice_dir = Path(voice_dir)
    target = variant_dir(voice_dir, check_variant(variant))
    if is_exported(voice_dir, variant) and not force:
        return target
    duration = "a minute" if variant in STATIC_INT8_VARIANTS else "half a minute"  # static: + calibration
    print(f"qingyin: exporting {voice_dir.name} to ONNX ({variant}), once; this takes about {duration}",
          file=sys.stderr)
    staging = staging_folder(target)
    try:
        _export_into(voice_dir, variant, staging)
        _replace_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _export_into(voice_dir: Path, variant: str, folder: Path) -> None:
    """Write the variant's three graphs and its manifest (last) into `folder`."""
    from qingyin.families.fs2_mbmelgan.torch_runtime import TorchBackend

    backend = TorchBackend(voice_dir)
    acoustic = backend.acoustic_model
    if variant in STUDENT_VARIANTS:
        from qingyin.families.fs2_mbmelgan.students import load_student

        acoustic = load_student(voice_dir, acoustic, student_folder(voice_dir, variant))
    vocoder = backend.vocoder
    if variant in PRUNED_VOCODER_VARIANTS:
        from qingyin.families.fs2_mbmelgan.students import load_student_vocoder

        vocoder = load_student_vocoder(voice_dir)
    raw = folder / "raw"
    raw.mkdir()
    _export_acoustic(acoustic, raw)
    _export_vocoder(vocoder, raw)
    if variant in STATIC_INT8_VARIANTS:
        _quantize_static_and_optimize(voice_dir, raw, folder, acoustic.config.decoder.layers)
    else:
        finish: Callable[[Path, Path], None] = _quantize_and_optimize if variant == "int8-dynamic" else _optimize
        for name in MODEL_FILES:
            finish(raw / name, folder / name)
    if variant in WEIGHT_STORAGE_VARIANTS:  # made for size
        from qingyin.families.fs2_mbmelgan.export.position_tables import compute_position_tables
        from qingyin.families.fs2_mbmelgan.export.weight_storage import store_weights_int8

        for name in (ENCODER_FILE, DECODER_FILE):  # the sinusoid tables as the formula, not stored
            compute_position_tables(folder / name, folder / name, widths=(acoustic.config.encoder.hidden,))
        for name in MODEL_FILES:  # what static INT8 left float, weights only
            store_weights_int8(folder / name, folder / name)
    shutil.rmtree(raw)
    manifest = {
        "format": FORMAT,
        "variant": variant,
        "files": {name: sha256_file(folder / name) for name in MODEL_FILES},
        "source": source_hashes(voice_dir, variant),
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "opset": OPSET,
        "geometry": {"hop_length": backend.hop_length, "max_positions": backend.max_positions,
                     "min_vocoder_frames": backend.min_vocoder_frames},
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def _export_acoustic(model: FastSpeech2, folder: Path) -> None:
    """The two halves of the acoustic model, with dynamic batch, symbol and frame axes."""
    limit = model.config.max_positions
    batch = torch.export.Dim("batch", min=1, max=256)
    symbols = torch.export.Dim("symbols", min=2, max=limit)
    frames = torch.export.Dim("frames", min=2, max=limit)
    # Examples with batch 2: torch.export specializes an axis whose example size is 1.
    ids = torch.randint(1, model.config.num_symbols, (2, 12))
    # One tensor per scale: torch.export would merge arguments that are the same tensor into one input.
    scales = [torch.full((2, 12), value) for value in (1.0, 1.1, 0.9)]
    per_symbol = {0: batch, 1: symbols}
    _export(AcousticEncoderGraph(model), (ids, torch.tensor([12, 9]), torch.tensor([0, 0]), *scales),
            folder / ENCODER_FILE,
            inputs=["symbols", "lengths", "speakers", "duration_scale", "pitch_scale", "energy_scale"],
            outputs=["states", "log_durations", "frames", "pitch", "energy"],
            dynamic_shapes=(per_symbol, {0: batch}, {0: batch}, per_symbol, per_symbol, per_symbol))
    states = torch.randn(2, 40, model.config.encoder.hidden)
    _export(AcousticDecoderGraph(model), (states, torch.tensor([40, 31])), folder / DECODER_FILE,
            inputs=["states", "mel_lengths"], outputs=["mel"],
            dynamic_shapes=({0: batch, 1: frames}, {0: batch}))
    for name in (ENCODER_FILE, DECODER_FILE):
        graph = onnx.load(str(folder / name))
        replace_mish(graph)
        onnx.save(graph, str(folder / name))


def replace_mish(model: onnx.ModelProto) -> int:
    """Rewrite every Mish node of `model` as x * n / (n + 2), n = e^x (e^x + 2); returns how many.

    That is tanh(softplus(x)) in closed form. ONNX Runtime runs Mish as its function body, Softplus -> Tanh ->
    Mul, and its Softplus kernel is slow: 14 % of the fp32 decoder's time, 21 % of the int8 one's. The closed
    form made the decoder 11-19 % faster and is closer to float64 Mish (max error 7e-7 against 1.9e-6).
    Above x = 20, e^x is held at e^20, where the ratio is 1 in float32 anyway (no inf / inf).
    """
    graph, nodes, count = model.graph, [], 0
    for node in graph.node:
        if node.op_type != "Mish" or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        x, y, p = node.input[0], node.output[0], f"{node.name}_closed_form"
        steps = [("Min", [x, _MISH_LIMIT], "clipped"), ("Exp", [f"{p}_clipped"], "exp"),
                 ("Add", [f"{p}_exp", _MISH_TWO], "exp_plus_2"), ("Mul", [f"{p}_exp", f"{p}_exp_plus_2"], "n"),
                 ("Add", [f"{p}_n", _MISH_TWO], "n_plus_2"), ("Div", [f"{p}_n", f"{p}_n_plus_2"], "tanh")]
        nodes += [onnx.helper.make_node(op, inputs, [f"{p}_{out}"], name=f"{p}_{out}") for op, inputs, out in steps]
        nodes.append(onnx.helper.make_node("Mul", [x, f"{p}_tanh"], [y], name=p))
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend([onnx.numpy_helper.from_array(np.asarray(value, np.float32), name)
                                  for name, value in ((_MISH_LIMIT, 20.0), (_MISH_TWO, 2.0))])
    return count


def _export_vocoder(vocoder: MBMelGANGenerator, folder: Path) -> None:
    """The vocoder, mel (batch, frames >= min_frames, mels) -> audio (batch, frames * hop), its convolutions
    as 2-D ones (qingyin.families.fs2_mbmelgan.export.conv2d_layout: ONNX Runtime's faster kernels)."""
    config = vocoder.config
    frames = torch.export.Dim("frames", min=config.min_frames, max=1 << 16)
    batch = torch.export.Dim("batch", min=1, max=256)
    mel = torch.randn(2, max(40, config.min_frames), config.num_mels)
    _export(to_conv2d_layout(vocoder), (mel,), folder / VOCODER_FILE, inputs=["mel"], outputs=["audio"],
            dynamic_shapes=({0: batch, 1: frames},))


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic_shapes: tuple) -> None:
    """torch.export-based ONNX export into one self-contained file."""
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_shapes=dynamic_shapes, opset_version=OPSET, dynamo=True,
                          external_data=False, verbose=False)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress lines (printed) and its notes about torchvision ops it skips (logged)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _optimize(source: Path, target: Path) -> None:
    """Save ONNX Runtime's portable ("extended") offline optimization of `source` to `target`."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def _quantize_and_optimize(source: Path, target: Path) -> None:
    """int8 weights for the MatMuls of `source` (dynamic activation quantization), then optimized like fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = target.with_suffix(".quantized.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a generic "consider pre-processing" warning per graph
    try:
        quantize_dynamic(source, quantized, op_types_to_quantize=QUANTIZED_OPS, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    _optimize(quantized, target)
    quantized.unlink()


def _quantize_static_and_optimize(voice_dir: Path, raw: Path, folder: Path, decoder_layers: int) -> None:
    """int8-static: calibrate on sentences run through the float graphs, quantize, then optimize like fp32."""
    from qingyin.families.fs2_mbmelgan.export import static_quant

    feeds = static_quant.graph_feeds(raw, static_quant.calibration_ids(voice_dir))
    quantized_weights = static_quant.quantized_weights(decoder_layers)
    for name in MODEL_FILES:
        prefixes = quantized_weights.get(name)
        if prefixes is None:
            _optimize(raw / name, folder / name)
            continue
        quantized = folder / name.replace(".onnx", ".quantized.onnx")
        static_quant.quantize_graph(raw / name, quantized, feeds[name], prefixes)
        _optimize(quantized, folder / name)
        quantized.unlink()


def _replace_folder(staging: Path, target: Path) -> None:
    """Move the finished `staging` folder to `target`, replacing an old export with one rename each way."""
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        os.replace(target, retired / target.name)
        try:
            os.replace(staging, target)
        finally:
            shutil.rmtree(retired, ignore_errors=True)
        return
    try:
        os.replace(staging, target)
    except OSError:  # another process finished the same export first: keep theirs
        if not (target / MANIFEST_FILE).is_file():
            raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voice", default=registry.DEFAULT_VOICE)
    parser.add_argument("--variant", choices=VARIANTS, action="append", dest="variants",
                        help="repeat for several (default: fp32)")
    parser.add_argument("--force", action="store_true", help="export again even if the files are current")
    args = parser.parse_args()
    for variant in args.variants or ["fp32"]:
        print(export_voice(args.voice, variant, args.force))


if __name__ == "__main__":
    main()
