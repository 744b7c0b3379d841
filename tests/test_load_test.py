"""The pure parts of benchmarks/load_test.py: percentiles, texts, the URL check, the memory rule (no server)."""

from __future__ import annotations

import itertools
import math

import pytest

from benchmarks.load_test import (
    MIB,
    Level,
    Result,
    check_local_url,
    error_kind,
    iter_texts,
    memory_report,
    memory_verdict,
    percentile,
    read_sentences,
)


def test_percentile_interpolates_like_numpy():
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile(values, 0) == 1 and percentile(values, 100) == 10
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_texts_are_distinct_and_about_twenty_characters():
    texts = list(itertools.islice(iter_texts(read_sentences()), 5000))
    assert len(set(texts)) == 5000
    assert all(18 <= len(text) <= 22 for text in texts)
    assert 19 <= sum(map(len, texts)) / len(texts) <= 21.5


def test_texts_refuse_sentences_that_cannot_fit():
    with pytest.raises(ValueError):
        next(iter_texts(["这句话实在是太长了，无论怎样都不可能放进二十二个字以内的范围。"]))
    with pytest.raises(ValueError):
        next(iter_texts([]))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000/", "http://[::1]:9000",
                                 "https://127.0.0.2"])
def test_local_urls_are_accepted(url):
    assert check_local_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.5:8000", "http://0.0.0.0:8000",
                                 "ftp://127.0.0.1", "127.0.0.1:8000", "http://127.0.0.1.example.com"])
def test_remote_or_malformed_urls_are_refused(url):
    with pytest.raises(ValueError):
        check_local_url(url)


def test_memory_rule_allows_five_percent_or_twenty_mib():
    assert memory_verdict(400 * MIB, 415 * MIB)[0]  # +15 MiB: under the 20 MiB floor
    assert not memory_verdict(400 * MIB, 421 * MIB)[0]  # +21 MiB > max(20, 20 MiB)
    assert memory_verdict(1000 * MIB, 1045 * MIB)[0]  # +45 MiB < 5 % of 1000 MiB
    assert not memory_verdict(1000 * MIB, 1051 * MIB)[0]
    assert memory_verdict(500 * MIB, 450 * MIB)[0]  # shrinking is fine


def _level(rss_mib: list[float], errors: int = 0) -> Level:
    level = Level(clients=8, planned=100)
    level.results = [Result(100.0, 200, None, 1000, 2.0) for _ in range(100 - errors)]
    level.results += [Result(5.0, 429, "HTTP 429", 100, 0.0) for _ in range(errors)]
    level.rss_checkpoints = [(10 * (i + 1), int(mib * MIB)) for i, mib in enumerate(rss_mib)]
    level.rss_samples = [int(rss_mib[0] * MIB), int(max(rss_mib) * MIB), int(rss_mib[-1] * MIB)]
    return level


def test_memory_report_judges_the_second_half_and_errors():
    flat = [300, 320, 330, 330, 331, 331, 332, 332, 333, 334]  # the early rise is warm-up, not growth
    assert memory_report(_level(flat))[1]["verdict"] == "pass"
    assert memory_report(_level([300 + 10 * i for i in range(10)]))[1]["verdict"] == "fail"
    assert memory_report(_level(flat, errors=1))[1]["verdict"] == "fail"


def test_level_summary():
    summary = _level([300, 310, 320, 330, 340, 350, 360, 370, 380, 390], errors=2).summary()
    assert summary["requests"] == 100 and summary["errors"] == 2
    assert summary["errors_by_kind"] == {"HTTP 429": 2}
    assert summary["rss_growth_after_10pct_mib"] == 90.0  # 390 at the end - 300 after 10 %
    assert error_kind(200, None) is None and error_kind(503, None) == "HTTP 503"
    assert error_kind(None, TimeoutError()) == "TimeoutError"
