"""Where a sentence's syllables, words, phrase ends and pauses are among a voice's tokens.

Built from what every family puts in its Tokens: `syllables` (the syllable each token belongs to, -1 for none)
and `breaks` (token index, boundary level: 1 word, 2 phrase, 3 intonational phrase). A break at token k lies
between the syllables of the tokens before k and those after it, whichever family placed it (Baker puts the mark
token itself at k, Kokoro the first token of the next word).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qingyin.families.base import Tokens

WORD, PHRASE = 1, 2  # boundary levels


@dataclass(frozen=True)
class Layout:
    """Boolean masks and positions over the tokens of one sentence (or piece of one)."""

    syllable: np.ndarray  # (tokens,) int, -1 for tokens of no syllable
    position: np.ndarray  # (tokens,) float, 0 at the first syllable .. 1 at the last (pauses: their neighbours')
    pause: np.ndarray  # (tokens,) bool: tokens of no syllable between the first and the last syllable
    last_syllable: np.ndarray  # (tokens,) bool: the tokens of the last syllable
    # (tokens,) bool: the tokens of no syllable after the last one (Baker's sil and eos, Kokoro's final punctuation
    # and pad). Baker's last vowel sounds mostly in them: shifting the last syllable's own tokens by +4 st moved
    # the last 300 ms of voicing by +0.4 st, shifting these too by +2.6 st (BENCHMARKS.md, "The final contour").
    tail: np.ndarray
    phrase_final: np.ndarray  # (tokens,) bool: the tokens of each phrase's last syllable
    focus: np.ndarray  # (tokens,) bool: the tokens of each phrase's last word

    @classmethod
    def of(cls, tokens: Tokens, durations: np.ndarray) -> Layout | None:
        """The layout, or None when the family gives no syllables or the tokens say none."""
        if tokens.syllables is None:
            return None
        owner = np.asarray(tokens.syllables, dtype=np.int64)
        spoken = np.flatnonzero(owner >= 0)
        if owner.shape != (len(tokens.ids),) or not spoken.size:
            return None
        first, last = int(owner[spoken].min()), int(owner[spoken].max())
        inside = np.zeros(owner.shape, bool)
        inside[spoken[0]: spoken[-1] + 1] = True
        pause = inside & (owner < 0)
        tail = np.zeros(owner.shape, bool)
        tail[spoken[-1] + 1:] = True
        position = np.interp(np.arange(owner.size), spoken, (owner[spoken] - first) / max(last - first, 1))

        word_ends, phrase_ends = _boundaries(owner, tokens.breaks)
        phrase_ends.add(last)
        phrase_final = np.isin(owner, sorted(phrase_ends))
        focus_syllables = [s for end in phrase_ends for s in _word_of(end, word_ends | phrase_ends, first)]
        focus = np.isin(owner, focus_syllables) & (owner >= 0)
        return cls(owner, position, pause, owner == last, tail, phrase_final, focus)

    @property
    def final(self) -> np.ndarray:
        """(tokens,) bool: where the sentence-final contour goes, the last syllable and the tail."""
        return self.last_syllable | self.tail


def _boundaries(owner: np.ndarray, breaks: list[tuple[int, int]]) -> tuple[set[int], set[int]]:
    """The syllables that end a word, and those that end a phrase (level >= 2)."""
    words: set[int] = set()
    phrases: set[int] = set()
    for index, level in breaks:
        before = owner[:index]
        before = before[before >= 0]
        if level < WORD or not before.size or not (owner[index:] >= 0).any():
            continue
        (phrases if level >= PHRASE else words).add(int(before.max()))
    return words, phrases


def _word_of(end: int, ends: set[int], first: int) -> range:
    """The syllables of the word that ends at syllable `end`."""
    earlier = [e for e in ends if e < end]
    start = max(earlier) + 1 if earlier else first
    return range(start, end + 1)
