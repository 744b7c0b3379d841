"""Speed and memory of the text frontend (no model): characters per second, per stage and end to end.

    .venv/bin/python -m benchmarks.frontend_speed [--chars 100000]

Stages are timed on the built-in evaluation sentences (qingyin/evaluate/texts/zh_default.txt); then a long
document of `--chars` characters is streamed through `Frontend.iter_sentences`, reporting its speed and how
much the process's peak memory grew while doing it (bounded memory: it should not grow with the length).
"""

from __future__ import annotations

import argparse
import resource
import time

from qingyin.text import Frontend
from qingyin.text.corpus import read_texts
from qingyin.text.g2p import citation_pinyin
from qingyin.text.normalize import normalize
from qingyin.text.segmentation import segment

DOCUMENT_UNIT = "今天是2024年3月5日，气温25℃，湿度60%。我们在公园里散步，聊了很多事情！银行行长说：“重新开始吧。”"


def _rate(function, texts: list[str], repeats: int) -> float:
    """Characters per second of `function` over `texts`, best of `repeats` passes."""
    chars = sum(len(t) for t in texts)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            function(text)
        best = min(best, time.perf_counter() - start)
    return chars / best


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=100_000, help="length of the streamed document")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    frontend = Frontend()
    texts = read_texts()
    frontend(texts[0])  # loads the dictionaries, the segmenter and the polyphone model
    normalized = [normalize(t).text for t in texts]
    print(f"{len(texts)} sentences, {sum(len(t) for t in texts)} characters (qingyin/evaluate/texts/zh_default.txt)")
    print(f"  normalize                 {_rate(normalize, texts, args.repeats):>10,.0f} chars/s")
    g2p_rate = _rate(lambda t: citation_pinyin(segment(t)), normalized, args.repeats)
    print(f"  segment + citation pinyin {g2p_rate:>10,.0f} chars/s")
    print(f"  whole frontend            {_rate(frontend, texts, args.repeats):>10,.0f} chars/s")

    document = (DOCUMENT_UNIT * (args.chars // len(DOCUMENT_UNIT) + 1))[: args.chars]
    before = _peak_rss_mib()
    start = time.perf_counter()
    sentences = sum(1 for _ in frontend.iter_sentences(document))
    seconds = time.perf_counter() - start
    print(f"streamed {len(document):,} characters: {sentences} sentences in {seconds:.1f} s "
          f"({len(document) / seconds:,.0f} chars/s); peak RSS {before:.0f} → {_peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
