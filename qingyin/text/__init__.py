"""Mandarin text frontend: text → Baker (CSMSC) phone sequences for a FastSpeech2 voice."""

from .frontend import FrontendResult, Sentence, text_to_sentences
from .symbols import SymbolTable, UnknownSymbolError, syllable_to_phones

__all__ = [
    "FrontendResult",
    "Sentence",
    "SymbolTable",
    "UnknownSymbolError",
    "syllable_to_phones",
    "text_to_sentences",
]
