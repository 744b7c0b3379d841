"""Emulate the reference runtime's INT8 "hybrid" kernels on our float model (tests only).

LiteRT's XNNPACK delegate runs the .tflite's INT8-weight layers by quantizing their float inputs on
the fly to asymmetric int8: one scale per row (symbol or frame) for fully-connected layers and one
per tensor for convolutions. With this applied, our model reproduces the reference's numerics
closely, which separates "same model" from "same rounding noise" in the parity tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def fake_quantize_asymmetric(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    low = x.amin(dim=dims, keepdim=True).clamp(max=0)
    high = x.amax(dim=dims, keepdim=True).clamp(min=0)
    scale = ((high - low) / 255).clamp_min(1e-12)
    zero_point = torch.round(-128 - low / scale)
    return (torch.round(x / scale + zero_point).clamp(-128, 127) - zero_point) * scale


@contextmanager
def xnnpack_dynamic_int8(model: nn.Module) -> Iterator[None]:
    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.out_features > 1:  # the 1-wide predictor heads stay float
            hooks.append(module.register_forward_pre_hook(
                lambda _m, args: (fake_quantize_asymmetric(args[0], (-1,)),)))
        elif isinstance(module, nn.Conv1d):  # input (B, C, T): one scale for the whole utterance
            hooks.append(module.register_forward_pre_hook(
                lambda _m, args: (fake_quantize_asymmetric(args[0], (1, 2)),)))
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
