"""Errors the models raise, importable without torch (the ONNX runtime path never loads it)."""

from __future__ import annotations


class SequenceTooLongError(ValueError):
    """A symbol sequence or its mel is longer than the model's positional table."""
