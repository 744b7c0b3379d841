"""Static INT8 quantization of the exported graphs (the "int8-static" variant), calibrated on real sentences.

Calibration: the last `CALIBRATION_TEXTS` lines of qingyin/text/data/zh_default.txt go through the
frontend, and the float graphs are run on them to record what each graph sees: the encoder's inputs, the
length-regulated states the decoder gets and the mels the vocoder gets. The quality gate (qingyin.evaluate.gate)
evaluates on the *first* lines of the same file, so calibration and evaluation sentences are disjoint as long
as both counts together stay within the file's 103 sentences (checked in tests/test_export_gate.py).

What is quantized (QDQ format: int8 per-channel weights, uint8 activations with a static per-tensor range
from MinMax calibration) was chosen by quantizing one layer or group at a time and measuring its error
against fp32 (BENCHMARKS.md, "Static INT8"):

- acoustic decoder: the feed-forward and postnet convolutions, ~98 % of its multiply-adds, except the last
  layer's first feed-forward convolution: alone, it made 3/4 of the decoder's mel error (0.033 of 0.042 mean
  |diff|); without it the error is 0.026, inside the gate's bound, for 9 % of the multiply-adds left float.
  The attention and mel projections (MatMul) stay float: they cost little, and the mel projection alone
  gave as much error (0.039) as all the convolutions together.
- acoustic encoder: nothing. It is ~7 % of the time, and its duration predictor turns small errors into
  whole-frame duration changes (91 % identical durations with it quantized, 100 % without).
- vocoder: nothing. Its last upsampling stage, its output convolution and the PQMF filter, each quantized
  alone, raised the MCD against fp32 to 7-10 dB. The first two stages quantized added 1.2 dB to the whole
  variant's MCD (the first alone 0.4 dB), for a vocoder speed-up of 0.77-1.03x in repeated runs, no more
  than the spread of timing one graph twice (0.87-1.13x). The upsampling ConvTranspose layers stayed float in
  ONNX Runtime's optimized graph even when listed for quantization.

Weights are quantized to 7 bits (`reduce_range`): without VNNI, ONNX Runtime's x86 kernels add pairs of
uint8 x int8 products in 16 bits, which saturates with 8-bit weights (mel error x2.3 on the decoder).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from qingyin.families.fs2_mbmelgan.export import DECODER_FILE, ENCODER_FILE, VOCODER_FILE
from qingyin.families.fs2_mbmelgan.features import AcousticControls
from qingyin.families.fs2_mbmelgan.onnx_runtime import encoder_feed

CALIBRATION_TEXTS = 24  # the last lines of the default texts; ~3 min of speech, ~6,600 mel frames
QUANTIZED_OPS = ("Conv",)


def quantized_weights(decoder_layers: int) -> dict[str, tuple[str, ...]]:
    """Per graph, prefixes of the torch parameter names (kept by the exporter as the weights' initializer names)
    of the convolutions to quantize, for a decoder of `decoder_layers` layers (the teacher's 3, a student's
    fewer): every layer's but the last one's first feed-forward convolution, and the postnet's. Graphs not
    listed stay float."""
    last = decoder_layers - 1
    decoder = tuple(f"model.decoder.layers.{index}." for index in range(last)) + (
        f"model.decoder.layers.{last}.ffn_out.", "model.postnet.convs.")
    return {DECODER_FILE: decoder}


Feeds = list[dict[str, np.ndarray]]


class _FeedReader(CalibrationDataReader):
    """Hands quantize_static the recorded inputs of one graph, one sentence at a time."""

    def __init__(self, feeds: Feeds):
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def calibration_ids(voice_dir: str | Path, count: int = CALIBRATION_TEXTS) -> list[list[int]]:
    """Symbol ids (eos appended) of every sentence of the last `count` default texts."""
    from qingyin.families.fs2_mbmelgan.voice import sentence_ids
    from qingyin.text.corpus import read_texts

    return sentence_ids(voice_dir, read_texts()[-count:])


def graph_feeds(folder: Path, sequences: list[list[int]]) -> dict[str, Feeds]:
    """The inputs each graph gets when the graphs in `folder` speak `sequences`, keyed by file name."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    encoder, decoder = (ort.InferenceSession(str(folder / name), options, providers=["CPUExecutionProvider"])
                        for name in (ENCODER_FILE, DECODER_FILE))
    feeds: dict[str, Feeds] = {ENCODER_FILE: [], DECODER_FILE: [], VOCODER_FILE: []}
    for ids in sequences:
        feed = encoder_feed([(ids, AcousticControls())])
        states, _, frames, _, _ = encoder.run(None, feed)
        durations = np.rint(frames[0]).astype(np.int64)  # half to even, as the runtime rounds
        decoder_feed = {"states": np.repeat(states[0], durations, axis=0)[None],
                        "mel_lengths": np.asarray([durations.sum()], np.int64)}
        (mel,) = decoder.run(None, decoder_feed)
        feeds[ENCODER_FILE].append(feed)
        feeds[DECODER_FILE].append(decoder_feed)
        feeds[VOCODER_FILE].append({"mel": mel})
    return feeds


def quantized_nodes(model: onnx.ModelProto, prefixes: Sequence[str]) -> list[str]:
    """Names of the QUANTIZED_OPS nodes whose weight is an initializer named with one of `prefixes`."""
    weights = {tensor.name for tensor in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type in QUANTIZED_OPS and len(node.input) > 1 and node.input[1] in weights
            and node.input[1].startswith(tuple(prefixes))]


def quantize_graph(source: Path, target: Path, feeds: Feeds, prefixes: Sequence[str]) -> None:
    """Statically quantize the convolutions of `source` named by `prefixes`, calibrated on `feeds`."""
    nodes = quantized_nodes(onnx.load(str(source)), prefixes)
    if not nodes:
        raise ValueError(f"no convolution of {source.name} has a weight named {' or '.join(prefixes)}")
    with _quiet_quantizer():
        quantize_static(source, target, _FeedReader(feeds), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_quantize=nodes, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """quantize_static logs a generic "consider pre-processing" warning per graph on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
