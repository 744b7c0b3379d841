"""What counts as a Chinese character, in one place for every stage of the frontend."""

from __future__ import annotations

# The same ranges as a regular-expression character class, for patterns that look for Han characters.
HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f\u3007"


def is_han(char: str) -> bool:
    """Whether `char` is one CJK ideograph (the basic block, extensions A–G, compatibility ideographs) or 〇."""
    if len(char) != 1:
        return False
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x3134F
        or code == 0x3007
    )
