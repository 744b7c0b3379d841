"""Words that name an emotion, in Chinese and English, mapped to qingyin's emotions (qingyin.options.EMOTIONS).

    emotion_in("请用开心的语气读") -> "happy"
    emotion_in("Speak in a calm voice.") -> None

Used where free text asks for a style, e.g. the `instructions` of the OpenAI-compatible route. The first emotion
word in the text wins (the one that starts earliest; at the same place, the longer word). Chinese words match
anywhere, except right after 不 or 没 (不开心 is not happy); English words match whole words, any case, so
"unhappy" is not happy. Anything subtler (sarcasm, "not at all happy") is beyond a word list.
"""

from __future__ import annotations

import re

# emotion -> the words that name it (Chinese, then English; a few inflections and the emotion's own name)
WORDS: dict[str, tuple[str, ...]] = {
    "happy": ("开心", "高兴", "快乐", "愉快", "兴奋",
              "happy", "happily", "cheerful", "cheerfully", "joyful", "joyfully"),
    "sad": ("难过", "伤心", "悲伤", "沮丧",
            "sad", "sadly"),
    "angry": ("生气", "愤怒", "恼火",
              "angry", "angrily", "anger"),
    "surprise": ("惊讶", "吃惊", "震惊",
                 "surprised", "surprise"),
    "fear": ("害怕", "恐惧", "紧张",
             "afraid", "scared", "fearful", "fearfully", "fear"),
    "disgust": ("厌恶", "恶心", "嫌弃",
                "disgusted", "disgust"),
}
NEGATIONS = "不没"  # 不开心, 没生气: a Chinese word right after one of these does not count

_WORD = {word.lower(): emotion for emotion, words in WORDS.items() for word in words}
_PATTERN = re.compile("|".join(
    (re.escape(word) if not word.isascii() else rf"\b{re.escape(word)}\b")
    for word in sorted(_WORD, key=len, reverse=True)), re.IGNORECASE)


def emotion_in(text: str) -> str | None:
    """The emotion the first emotion word of `text` names ("happy", "sad", "angry", "surprise", "fear",
    "disgust"), or None when the text names none."""
    if not isinstance(text, str):
        return None
    for match in _PATTERN.finditer(text):
        word = match.group(0)
        if not word.isascii() and match.start() > 0 and text[match.start() - 1] in NEGATIONS:
            continue
        return _WORD[word.lower()]
    return None


__all__ = ["WORDS", "emotion_in"]
