"""Errors the models of every family raise, importable without torch or any runtime (re-exported by base)."""

from __future__ import annotations


class SequenceTooLongError(ValueError):
    """A symbol sequence or its mel is longer than the model's positional table."""
