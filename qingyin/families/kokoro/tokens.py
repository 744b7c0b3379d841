"""Kokoro-82M v1.0 input symbols from qingyin's Baker phones. Pure Python, never imports torch.

Kokoro's Mandarin voices were trained on misaki's legacy Chinese G2P (`misaki.zh.ZHG2P` without a frontend):
pinyin → IPA after stefantaubert/pinyin-to-ipa, Chao tone letters replaced by arrows (1 →, 2 ↗, 3 ↓, 4 ↘,
neutral: none) placed right after the syllable's nucleus (before a coda n/ŋ), the diacritic U+032F dropped,
syllabic ɹ̩/ɻ̩ written ɨ, words separated by spaces and punctuation written ", . ! ? ; :". The tables below
give the same strings, keyed by our initial and final names (checked syllable by syllable against misaki in
tests/families/test_kokoro_tokens.py), so `to_kokoro("sil n i3 #0 h ao3 sil".split(), "。")` is "ni↓xau↓.".

Differences from misaki that are deliberate: the phones carry qingyin's tone sandhi (你好 is n i2 h ao3),
where misaki gave citation tones; an erhua 儿 (er5 after its host) is a toneless ɚ joined to the host
(哪儿 na↓ɚ), where misaki read 儿 with its dictionary tone (ɚ↗); syllabic nasals (嗯 n, 哼 hng) arrive in our
notation as en and are read ən; and a #3 boundary always becomes ", " whatever punctuation made it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from qingyin.text.symbols import ERHUA_SUFFIX, ZERO_INITIAL

# Kokoro's context is 512 ids, two of them the 0 (pad) that open and close every input.
MAX_TOKENS = 510

INITIALS: dict[str, str] = {
    ZERO_INITIAL: "",
    "b": "p", "p": "pʰ", "m": "m", "f": "f",
    "d": "t", "t": "tʰ", "n": "n", "l": "l",
    "g": "k", "k": "kʰ", "h": "x",
    "j": "ʨ", "q": "ʨʰ", "x": "ɕ",
    "zh": "ꭧ", "ch": "ꭧʰ", "sh": "ʂ", "r": "ɻ",  # ꭧ (U+AB67) is misaki's one-letter tʂ
    "z": "ʦ", "c": "ʦʰ", "s": "s",
}  # fmt: skip
"""IPA of each Baker initial (misaki takes the first of its variants: h → x, r → ɻ)."""

FINALS: dict[str, tuple[str, str]] = {
    "a": ("a", ""), "ai": ("ai", ""), "an": ("a", "n"), "ang": ("a", "ŋ"), "ao": ("au", ""),
    "e": ("ɤ", ""), "ei": ("ei", ""), "en": ("ə", "n"), "eng": ("ə", "ŋ"), "er": ("ɚ", ""),
    "i": ("i", ""), "ia": ("ja", ""), "ian": ("jɛ", "n"), "iang": ("ja", "ŋ"), "iao": ("jau", ""),
    "ie": ("je", ""), "in": ("i", "n"), "ing": ("i", "ŋ"), "iong": ("jʊ", "ŋ"), "iou": ("jou", ""),
    "ii": ("ɨ", ""), "iii": ("ɨ", ""),  # apical vowels: misaki's ɹ̩ (zi ci si) and ɻ̩ (zhi chi shi ri) → ɨ
    "o": ("wo", ""),  # bo po mo fo (and lo) are read buo, as in misaki; alone it is ɔ (ZERO_INITIAL_FINALS)
    "ong": ("ʊ", "ŋ"), "ou": ("ou", ""),
    "u": ("u", ""), "ua": ("wa", ""), "uai": ("wai", ""), "uan": ("wa", "n"), "uang": ("wa", "ŋ"),
    "uei": ("wei", ""), "uen": ("wə", "n"), "ueng": ("wə", "ŋ"), "uo": ("wo", ""),
    "v": ("y", ""), "van": ("ɥɛ", "n"), "ve": ("ɥe", ""), "vn": ("y", "n"),
}  # fmt: skip
"""IPA of each Baker final as (onset and nucleus, coda): the tone arrow goes between the two."""

ZERO_INITIAL_FINALS: dict[str, tuple[str, str]] = {"o": ("ɔ", "")}
"""Finals read differently without an initial: the interjection 哦 o is ɔ (misaki's interjection table)."""

TONES: dict[str, str] = {"1": "→", "2": "↗", "3": "↓", "4": "↘", "5": ""}

ERHUA = "ɚ"
"""Appended to the host syllable of an erhua (our "er5" right after a final)."""

BOUNDARIES: dict[str, str] = {"#0": "", "#1": " ", "#2": " ", "#3": ", ", "sil": ""}
"""Symbols for our boundary marks: #0 stays inside a word, #1/#2 separate words, #3 is a comma (a pause)."""

_LEVELS = {"#0": 0, "#1": 1, "#2": 2, "#3": 3, "sil": 0}

ENDINGS: dict[str, str] = {
    "。": ".", ".": ".", "．": ".", "？": "?", "?": "?", "！": "!", "!": "!",
    "；": ";", ";": ";", "：": ":", ":": ":", "…": "…",
}  # fmt: skip
"""Sentence-final punctuation → Kokoro's. Anything else (a quote, a dash, no mark at all) ends with "."."""


class UnknownKokoroSymbolError(ValueError):
    """A symbol that the Kokoro vocabulary does not contain."""

    def __init__(self, symbol: str, position: int) -> None:
        self.symbol = symbol
        self.position = position
        code = " ".join(f"U+{ord(c):04X}" for c in symbol)
        super().__init__(f"symbol {symbol!r} ({code}) at position {position} is not in the Kokoro vocab")


@dataclass(frozen=True)
class KokoroTokens:
    """Kokoro's input for one sentence: one symbol per token, each traced back to the phone it came from.

    `source[k]` is the index in `phones` of token k (the initial or final for a syllable's letters and arrow,
    the er5 for an erhua ɚ, the boundary mark for a space or ", ", the last phone for the ending punctuation).
    `breaks` are (position, level) pairs where the sentence may be split, in token order: `symbols[:position]`
    ends with the boundary's " " or ", " and `symbols[position:]` starts the next word; level is 3 for a #3
    (comma), 2 for a #2 and 1 for a #1 boundary. Prefer the highest level when a sentence is too long.
    """

    text: str = ""  # the symbols as one string, the way misaki prints them
    symbols: list[str] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    breaks: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.text != "".join(self.symbols) or len(self.source) != len(self.symbols):
            raise ValueError("KokoroTokens: text must be the joined symbols, with one source index per symbol")

    def __len__(self) -> int:
        return len(self.symbols)


def syllable_ipa(initial: str, final_with_tone: str) -> str:
    """Kokoro string of one syllable in our notation, e.g. ("zh", "iii1") → "ꭧɨ→", ("^", "ian2") → "jɛ↗n"."""
    final, tone = final_with_tone[:-1], final_with_tone[-1:]
    if initial not in INITIALS:
        raise ValueError(f"unknown initial {initial!r}")
    table = ZERO_INITIAL_FINALS if initial == ZERO_INITIAL and final in ZERO_INITIAL_FINALS else FINALS
    if final not in table or tone not in TONES:
        raise ValueError(f"unknown final {final_with_tone!r}: expected a Baker final and a tone digit 1-5")
    head, coda = table[final]
    return INITIALS[initial] + head + TONES[tone] + coda


def ending_symbol(ending: str) -> str:
    """Kokoro's end mark for a sentence's final punctuation: a question anywhere in it wins, then "!"."""
    if "?" in ending or "？" in ending:
        return "?"
    if "!" in ending or "！" in ending:
        return "!"
    return ENDINGS.get(ending[-1:], ".")


def to_kokoro(phones: Sequence[str], ending: str = "") -> KokoroTokens:
    """Kokoro symbols for one sentence's phones (our Baker notation) and its final punctuation.

    Every syllable (initial, final+tone) becomes its IPA with a tone arrow, an erhua er5 adds ɚ to its host,
    "#0" and "sil" add nothing, "#1"/"#2" a space and "#3" ", " (the strongest wins where marks meet; marks
    before the first or after the last syllable are dropped). The sentence ends with the mark a listener
    expects from `ending` ("。" → ".", "？" → "?", "！" → "!", "；" → ";", "：" → ":", "…" → "…"); a sentence
    without one still gets "." so that Kokoro closes it with a falling, final intonation rather than
    trailing off. Phones that speak nothing (`[]`, only sil) give no tokens at all.
    """
    symbols: list[str] = []
    source: list[int] = []
    breaks: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None  # (level, index) of the strongest mark since the last syllable
    after_final = False
    i = 0
    while i < len(phones):
        phone = phones[i]
        if phone in _LEVELS:
            level = _LEVELS[phone]
            if pending is None or level > pending[0]:
                pending = (level, i)
            after_final = False
            i += 1
            continue
        if phone == ERHUA_SUFFIX and after_final:
            symbols.append(ERHUA)  # right after a final: the host's r-colouring, same word
            source.append(i)
            after_final = False
            i += 1
            continue
        if phone not in INITIALS or i + 1 >= len(phones):
            raise ValueError(f"phone {i} ({phone!r}): expected an initial, a boundary mark or er5 after a final")
        try:
            initial_ipa = INITIALS[phone]
            syllable = syllable_ipa(phone, phones[i + 1])
        except ValueError as error:
            raise ValueError(f"phones {i}-{i + 1} ({phone!r} {phones[i + 1]!r}): {error}") from None
        if symbols and pending is not None and pending[0] > 0:
            level, mark = pending
            symbols.extend(BOUNDARIES[phones[mark]])
            source.extend([mark] * len(BOUNDARIES[phones[mark]]))
            breaks.append((len(symbols), level))
        pending = None
        symbols.extend(syllable)
        source.extend([i] * len(initial_ipa) + [i + 1] * (len(syllable) - len(initial_ipa)))
        after_final = True
        i += 2
    if symbols:
        symbols.append(ending_symbol(ending))
        source.append(len(phones) - 1)
    return KokoroTokens(text="".join(symbols), symbols=symbols, source=source, breaks=breaks)


class SentenceLike(Protocol):
    """What `sentence_tokens` reads of a `qingyin.text.frontend.Sentence`."""

    phones: list[str]
    normalized: str


def sentence_tokens(sentence: SentenceLike) -> KokoroTokens:
    """`to_kokoro` of a frontend Sentence: its phones, ended by the last character of its normalized text."""
    return to_kokoro(sentence.phones, sentence.normalized.rstrip()[-1:])


def load_vocab(path: str | Path) -> dict[str, int]:
    """Kokoro's symbol → id table from its config/vocab JSON (`{"vocab": {...}}`) or a bare object."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    vocab = data.get("vocab", data)
    if not isinstance(vocab, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in vocab.items()):
        raise ValueError(f"{path}: expected a JSON object of symbol → integer id")
    return vocab


def ids(tokens: KokoroTokens | Iterable[str], vocab: Mapping[str, int]) -> list[int]:
    """Ids of the tokens' symbols (without Kokoro's opening and closing 0); names the first unknown symbol."""
    symbols = tokens.symbols if isinstance(tokens, KokoroTokens) else tokens
    out = []
    for position, symbol in enumerate(symbols):
        try:
            out.append(vocab[symbol])
        except KeyError:
            raise UnknownKokoroSymbolError(symbol, position) from None
    return out
