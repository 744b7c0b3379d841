"""Long fuzzing run of every input path (issue 17): the properties of tests/test_fuzz.py with a large budget.

    .venv/bin/python -m benchmarks.fuzz --minutes 5 [--json report.json]

The strategies and properties are tests/fuzzing.py (hypothesis; the test extra). Each round runs every property
with `--examples` random examples (a new seed each round, no example database) until the time is up; a failing
property is shrunk by hypothesis to a small input, recorded, and run again in later rounds. The report: examples
run and failures per property, each distinct failure with its smallest input, and the slowest example per input
character (CPU seconds of the process: the server's worker threads included).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzzing as fz


def properties(tts, client) -> dict[str, tuple[st.SearchStrategy, Callable[..., None]]]:  # noqa: ANN001
    """name -> (strategy of one argument tuple, the property)."""

    def batch(case: tuple[str, list[str]]) -> None:
        with tempfile.TemporaryDirectory() as directory:
            fz.check_batch_input(Path(directory), *case)

    kinds = st.sampled_from(["lines", "jsonl", "book"])
    return {
        "frontend (text)": (st.tuples(fz.texts(40)), fz.check_frontend),
        "frontend (SSML)": (st.tuples(fz.ssml_documents()), fz.check_frontend),
        "normalize": (st.tuples(fz.texts(40)), fz.check_normalize),
        "limits": (st.tuples(st.one_of(fz.texts(), fz.ssml_documents()), fz.speeds), fz.check_limits),
        "options": (st.tuples(st.dictionaries(st.sampled_from(sorted(fz.FIELD_VALUES)), fz.json_values, max_size=4)
                              | st.dictionaries(st.sampled_from(["speed", "pitch", "energy", "sentence_pause",
                                                                 "intensity", "reference_strength", "emotion"]),
                                                st.one_of(fz.numbers, fz.FIELD_VALUES["emotion"]), max_size=4)),
                    fz.check_options),
        "engine": (st.tuples(st.one_of(fz.texts(8), fz.ssml_documents()), st.booleans(), fz.speeds),
                   lambda text, stream, speed: fz.check_engine(tts, text, stream, speed)),
        "batch input": (st.tuples(kinds.flatmap(lambda kind: st.tuples(st.just(kind), fz.batch_lines(kind)))),
                        batch),
        "POST /v1/tts": (st.tuples(fz.bodies("/v1/tts")), lambda body: fz.check_http(client, "/v1/tts", body)),
        "POST /v1/audio/speech": (st.tuples(fz.bodies("/v1/audio/speech")),
                                  lambda body: fz.check_http(client, "/v1/audio/speech", body)),
        "POST /v1/frontend": (st.tuples(fz.bodies("/v1/frontend")),
                              lambda body: fz.check_http(client, "/v1/frontend", body)),
        "raw bytes": (st.tuples(st.sampled_from(["/v1/tts", "/v1/audio/speech", "/v1/frontend"]),
                                st.binary(max_size=256)),
                      lambda route, data: fz.check_http(client, route, None, raw=data)),
        "GET /v1/tts": (st.tuples(st.dictionaries(st.sampled_from(["text", "voice", "speed", "emotion", "format",
                                                                   "stream", "sample_rate"]), fz.texts(6),
                                                  max_size=5)),
                        lambda params: fz.check_http_get(client, params)),
        "WebSocket": (st.tuples(st.lists(st.one_of(fz.bodies("ws"), fz.texts(3), st.binary(max_size=8)),
                                         min_size=1, max_size=3)),
                      lambda messages: fz.check_websocket(client, messages)),
    }


def run_once(strategy: st.SearchStrategy, check: Callable[..., None], examples: int, counted: list[int]) -> str | None:
    """One hypothesis run of `examples` random examples; the failure (shrunk) as text, None when all passed."""

    @settings(max_examples=examples, database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def test(arguments: tuple) -> None:
        counted[0] += 1
        check(*arguments)

    try:
        test()
    except Exception as error:  # noqa: BLE001  (a property failed: recorded)
        notes = "\n".join(getattr(error, "__notes__", []))
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        return f"{last[:600]}\n{notes[:600]}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to fuzz (default: 5)")
    parser.add_argument("--examples", type=int, default=60, help="examples per property per round (default: 60)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    args = parser.parse_args()

    import qingyin

    tts = qingyin.TTS(voice="baker", backend="onnx")  # as the server runs it
    fz.warm_up(tts)
    deadline = time.monotonic() + args.minutes * 60
    failures: dict[str, dict[str, int]] = {}
    examples: dict[str, list[int]] = {}
    rounds = 0
    began = time.monotonic()
    with fz.fuzz_client(tts) as client:
        checks = properties(tts, client)
        while time.monotonic() < deadline:
            rounds += 1
            for name, (strategy, check) in checks.items():
                if time.monotonic() >= deadline:
                    break
                failure = run_once(strategy, check, args.examples, examples.setdefault(name, [0]))
                if failure is not None:
                    seen = failures.setdefault(name, {})
                    seen[failure] = seen.get(failure, 0) + 1
    wall = time.monotonic() - began
    report = {"minutes": round(wall / 60, 2), "rounds": rounds,
              "examples": {name: count[0] for name, count in examples.items()},
              "failures": {name: list(seen) for name, seen in failures.items()},
              "outcomes": fz.STATS.outcomes,
              "slowest": {name: {"cpu_seconds": round(seconds, 3), "chars": size, "input": sample}
                          for name, (seconds, size, sample) in fz.STATS.slowest.items()},
              "per_char": {name: {"cpu_seconds_per_char": round(per_char, 5), "cpu_seconds": round(seconds, 3),
                                  "chars": size, "input": sample}
                           for name, (per_char, seconds, size, sample) in fz.STATS.per_char.items()}}
    total = sum(count[0] for count in examples.values())
    print(f"fuzzed for {wall / 60:.1f} min: {rounds} rounds, {total:,} examples (shrinking included)\n")
    print("| property | examples | distinct failures |\n|---|---:|---:|")
    for name, count in examples.items():
        print(f"| {name} | {count[0]:,} | {len(failures.get(name, {}))} |")
    print(f"\n| timed step | examples | how they ended | slowest: CPU s (characters) | slowest per character, "
          f"inputs of {fz.Stats.LONG}+: CPU ms (characters) |\n|---|---:|---|---:|---:|")
    for name in sorted(fz.STATS.examples):
        ended = ", ".join(f"{label} {count}" for label, count in sorted(fz.STATS.outcomes.get(name, {}).items(),
                                                                       key=lambda item: -item[1])[:5])
        seconds, size, _ = fz.STATS.slowest[name]
        per_char = fz.STATS.per_char.get(name)
        longest = f"{per_char[0] * 1000:.2f} ({per_char[2]})" if per_char else "-"
        print(f"| {name} | {fz.STATS.examples[name]:,} | {ended or '-'} | {seconds:.2f} ({size}) | {longest} |")
    for name, seen in failures.items():
        for failure, count in seen.items():
            print(f"\nFAILED {name} ({count}x):\n{failure}")
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
