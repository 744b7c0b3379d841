"""qingyin.style.names: words in free text (the OpenAI route's `instructions`) that name an emotion."""

from __future__ import annotations

import pytest

from qingyin.options import EMOTIONS
from qingyin.style.names import WORDS, emotion_in


@pytest.mark.parametrize(("text", "emotion"), [
    ("请用开心的语气朗读", "happy"), ("高兴一点", "happy"), ("快乐地", "happy"), ("愉快", "happy"), ("很兴奋", "happy"),
    ("Happy!", "happy"), ("Read it in a CHEERFUL tone.", "happy"), ("joyful", "happy"), ("speak happily", "happy"),
    ("难过", "sad"), ("伤心地说", "sad"), ("悲伤", "sad"), ("有点沮丧", "sad"), ("Sound sad.", "sad"),
    ("生气", "angry"), ("愤怒地", "angry"), ("恼火", "angry"), ("angry", "angry"),
    ("惊讶", "surprise"), ("吃惊", "surprise"), ("震惊", "surprise"), ("Surprised", "surprise"),
    ("害怕", "fear"), ("恐惧", "fear"), ("紧张地", "fear"), ("afraid", "fear"), ("scared", "fear"),
    ("Fearful voice", "fear"),
    ("厌恶", "disgust"), ("恶心", "disgust"), ("嫌弃地说", "disgust"), ("disgusted", "disgust"),
])
def test_each_word_names_its_emotion(text, emotion):
    assert emotion_in(text) == emotion


@pytest.mark.parametrize("text", ["", "Speak slowly and clearly.", "像新闻主播一样", "unhappy", "saddle the horse",
                                  "不开心", "他没生气", None, 42])
def test_text_without_an_emotion_word_names_none(text):
    assert emotion_in(text) is None


def test_the_first_emotion_word_wins():
    assert emotion_in("先开心，然后难过") == "happy"
    assert emotion_in("先难过，然后开心") == "sad"
    assert emotion_in("Start sad, end happy") == "sad"
    assert emotion_in("不开心，很生气") == "angry"  # 不开心 is not happy: the next word counts


def test_every_word_maps_to_a_known_emotion():
    assert set(WORDS) <= set(EMOTIONS) - {"neutral"} and set(WORDS) == set(EMOTIONS) - {"neutral"}
