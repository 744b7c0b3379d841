"""Baker (CSMSC) phone inventory: the voice's symbol table and pinyin-syllable decomposition."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

INITIALS = (
    "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
    "j", "q", "x", "zh", "ch", "sh", "r", "z", "c", "s",
)  # fmt: skip
ZERO_INITIAL = "^"
FINALS = frozenset(
    """a ai an ang ao e ei en eng er i ia ian iang iao ie ii iii in ing iong iou
    o ong ou u ua uai uan uang uei uen ueng uo v van ve vn""".split()
)
ERHUA_SUFFIX = "er5"

_SYLLABLE_RE = re.compile(r"([a-z]+)([1-5]?)")
_BY_LENGTH = sorted(INITIALS, key=len, reverse=True)  # so "zh" wins over "z"
_FINALS_ALONE = frozenset("a ai an ang ao e ei en eng er o ou".split())
# iu/ui/un are pinyin's abbreviations of iou/uei/uen. Baker has no "io" final and its dictionary
# reads yo as you; "uong" (the rare wong) is the same sound as weng.
_FINAL_ALIASES = {"io": "iou", "uong": "ueng", "iu": "iou", "ui": "uei", "un": "uen"}
_APICAL = {"z": "ii", "c": "ii", "s": "ii", "zh": "iii", "ch": "iii", "sh": "iii", "r": "iii"}
_PALATAL = frozenset("jqx")
_NO_MEDIAL_I = frozenset("g k h zh ch sh r z c s".split())
_TAKES_V = frozenset([ZERO_INITIAL, "j", "q", "x", "l", "n"])


class UnknownSymbolError(ValueError):
    """A phone that the voice's symbol table does not contain."""

    def __init__(self, symbol: str, position: int) -> None:
        self.symbol = symbol
        self.position = position
        super().__init__(
            f"unknown symbol {symbol!r} at position {position}; valid: sil, #0-#3, initials, finals+tone 1-5"
        )


class SymbolTable:
    """Maps Baker phone symbols to the integer ids a voice was trained with."""

    def __init__(self, symbol_to_id: Mapping[str, int]) -> None:
        ids = list(symbol_to_id.values())
        if len(set(ids)) != len(ids) or any(not isinstance(i, int) or i < 0 for i in ids):
            raise ValueError("symbol ids must be unique non-negative integers")
        for required in ("pad", "eos"):
            if required not in symbol_to_id:
                raise ValueError(f"symbol table has no {required!r} symbol")
        self._to_id = dict(symbol_to_id)

    @classmethod
    def from_json(cls, path: str | Path) -> SymbolTable:
        """Load from a TensorFlowTTS mapper JSON (or a bare symbol_to_id JSON object)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data.get("symbol_to_id", data))

    def ids(self, phones: Sequence[str]) -> list[int]:
        """Ids of `phones`, in order; raises UnknownSymbolError on the first unknown one."""
        out = []
        for position, phone in enumerate(phones):
            try:
                out.append(self._to_id[phone])
            except (KeyError, TypeError):
                raise UnknownSymbolError(phone, position) from None
        return out

    @property
    def eos_id(self) -> int:
        """Id of the end-of-sequence symbol the voice expects after the phones."""
        return self._to_id["eos"]

    @property
    def pad_id(self) -> int:
        """Id of the padding symbol."""
        return self._to_id["pad"]

    @property
    def symbols(self) -> list[str]:
        """All symbols, in id order."""
        return sorted(self._to_id, key=self._to_id.__getitem__)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._to_id

    def __len__(self) -> int:
        return len(self._to_id)

    def __repr__(self) -> str:
        return f"SymbolTable({len(self)} symbols)"


def syllable_to_phones(pinyin_tone3: str) -> list[str]:
    """Baker phones [initial, final+tone] (+ "er5" for erhua) of one TONE3 pinyin syllable."""
    body, tone = _parse(pinyin_tone3)
    erhua = body.endswith("r") and body not in ("er", "r")
    if erhua:
        body = body[:-1]
    initial, final = _split(body, pinyin_tone3)
    if erhua and final == "er":
        raise ValueError(f"not a Mandarin pinyin syllable: {pinyin_tone3!r}")
    # Baker's labels write erhua (huar1) as the host syllable followed by a toneless er.
    return [initial, final + tone] + ([ERHUA_SUFFIX] if erhua else [])


def _parse(syllable: str) -> tuple[str, str]:
    """Split a TONE3 syllable into a plain-letter body (ü as v, ê as e) and its tone digit."""
    text = syllable.strip().lower().replace("ü", "v").replace("u:", "v").replace("ê", "e")
    match = _SYLLABLE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a Mandarin pinyin syllable: {syllable!r}")
    return match.group(1), match.group(2) or "5"


def _split(body: str, original: str) -> tuple[str, str]:
    """Decompose a toneless syllable into (initial, final) by standard pinyin spelling rules."""
    if body in ("m", "n", "ng", "hm", "hn", "hng"):
        # Syllabic nasals (呣, 嗯, 哼): Baker's dictionary reads n/ng as the zero-initial en.
        return ("h" if body.startswith("h") else ZERO_INITIAL), "en"
    initial = next((i for i in _BY_LENGTH if body.startswith(i)), ZERO_INITIAL)
    if initial != ZERO_INITIAL:
        final = _consonant_final(initial, body[len(initial) :])
    elif body[0] in "yw":
        final = _zero_initial_final(body)
    else:
        final = body if body in _FINALS_ALONE else ""
    final = _FINAL_ALIASES.get(final, final)
    if not _is_valid(initial, final):
        raise ValueError(f"not a Mandarin pinyin syllable: {original!r}")
    return initial, final


def _zero_initial_final(body: str) -> str:
    """Final of a y-/w- spelled syllable: yi→i, ya→ia, yu→v, yue→ve, wu→u, wa→ua ("" if misspelt)."""
    rest = body[1:]
    if body[0] == "w":
        if rest == "u":
            return rest
        return "" if rest[:1] in ("", "u", "i", "v") else "u" + rest
    if rest in ("i", "in", "ing"):
        return rest
    if rest[:1] in ("u", "v"):
        return "v" + rest[1:]
    return "" if rest[:1] in ("", "i") else "i" + rest


def _consonant_final(initial: str, rest: str) -> str:
    """Final after a consonant initial: ju→v, zi→ii, zhi→iii, lue→ve."""
    if initial in _PALATAL and rest.startswith("u"):
        return "v" + rest[1:]
    if initial in _APICAL and rest == "i":
        return _APICAL[initial]
    if initial in ("l", "n") and rest == "ue":
        return "ve"
    return rest


def _is_valid(initial: str, final: str) -> bool:
    """Whether an (initial, final) pair is a possible Mandarin syllable in Baker's inventory."""
    if final not in FINALS:
        return False
    medial_i = final.startswith("i") and final not in ("ii", "iii")
    if final == "ii":
        return initial in ("z", "c", "s")
    if final == "iii":
        return initial in ("zh", "ch", "sh", "r")
    if final == "er":
        return initial == ZERO_INITIAL
    if final.startswith("v"):
        return initial in _TAKES_V
    if initial in _PALATAL:
        return medial_i
    return not (medial_i and initial in _NO_MEDIAL_I)


# Marks that belong to the syllable before them: the Baker model spends that syllable's tail frames on them.
_SYLLABLE_TAIL_MARKS = frozenset({"#0", "#1"})


def phone_syllables(phones: Sequence[str]) -> list[int]:
    """The syllable each phone belongs to (0, 1, ... in order), -1 for what is no syllable's (sil, #2, #3, marks
    before the first syllable). An initial opens a syllable, its final and an erhua er5 join it, #0/#1 join the
    syllable before them."""
    owners: list[int] = []
    current = -1
    after_initial = False
    for phone in phones:
        if phone in INITIALS or phone == ZERO_INITIAL:
            current += 1
            owners.append(current)
            after_initial = True
            continue
        if phone[-1:].isdigit() and current >= 0 and (after_initial or phone == ERHUA_SUFFIX):
            owners.append(current)
        elif phone in _SYLLABLE_TAIL_MARKS and current >= 0:
            owners.append(current)
        else:
            owners.append(-1)
        after_initial = False
    return owners
