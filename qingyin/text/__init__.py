"""Mandarin text frontend: text → Baker (CSMSC) phone sequences for a FastSpeech2 voice. Never imports torch.

Names are loaded lazily, so `import qingyin.text.symbols` does not pull in the segmenter and the normalizer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .frontend import Frontend, FrontendResult, Sentence, text_to_sentences
    from .symbols import SymbolTable, UnknownSymbolError, syllable_to_phones

_HOMES = {
    "Frontend": "frontend",
    "FrontendResult": "frontend",
    "Sentence": "frontend",
    "text_to_sentences": "frontend",
    "SymbolTable": "symbols",
    "UnknownSymbolError": "symbols",
    "syllable_to_phones": "symbols",
}
__all__ = [
    "Frontend",
    "FrontendResult",
    "Sentence",
    "SymbolTable",
    "UnknownSymbolError",
    "syllable_to_phones",
    "text_to_sentences",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module 'qingyin.text' has no attribute {name!r}")
