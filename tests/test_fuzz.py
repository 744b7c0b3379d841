"""Property-based fuzzing of every input path (issue 17), with a fixed seed and a small budget.

The strategies and properties are in tests/fuzzing.py; benchmarks/fuzz.py runs them for minutes and reports.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzzing as fz


def budget(examples: int) -> settings:
    """A fixed seed (derandomize), no example database, no hypothesis deadline (fuzzing.timed bounds the time)."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    fz.warm_up()  # a first call loads dictionaries and models; the time bound is per example


@pytest.fixture(scope="module")
def engine(baker_dir):
    """Baker on ONNX Runtime, as the server runs it (torch's oneDNN compiles each new input length once: seconds
    per example that would measure the backend, not the input)."""
    from qingyin.runtime.synthesizer import Synthesizer

    tts = Synthesizer("baker", backend="onnx")
    fz.warm_up(tts)
    return tts


@pytest.fixture(scope="module")
def client(engine):
    with fz.fuzz_client(engine) as client:
        yield client


# --- the library -------------------------------------------------------------------------------------------
@budget(400)
@given(fz.texts(20))
def test_frontend_reads_any_text(text):
    fz.check_frontend(text)


@budget(300)
@given(fz.ssml_documents())
def test_frontend_reads_any_ssml_tree(document):
    fz.check_frontend(document)


@budget(300)
@given(fz.texts(20))
def test_normalization_keeps_only_han_and_punctuation(text):
    fz.check_normalize(text)


@budget(300)
@given(st.one_of(fz.texts(), fz.ssml_documents()), fz.speeds)
def test_work_limits_check_only_raises_value_errors(text, speed):
    fz.check_limits(text, speed)


@budget(300)
@given(st.dictionaries(st.one_of(st.sampled_from(sorted(fz.FIELD_VALUES)), fz.texts(2)), fz.json_values, max_size=4)
       | st.dictionaries(st.sampled_from(["speed", "pitch", "energy", "sentence_pause", "intensity",
                                          "reference_strength", "emotion"]),
                         st.one_of(fz.numbers, fz.FIELD_VALUES["emotion"], fz.json_values), max_size=4))
def test_option_validation_only_raises_invalid_option(options):
    fz.check_options(options)


@budget(100)
@given(st.one_of(fz.texts(8), fz.ssml_documents()), st.booleans(), fz.speeds)
def test_engine_stays_within_its_limits(engine, text, stream, speed):
    fz.check_engine(engine, text, stream, speed)


@budget(150)
@given(st.sampled_from(["lines", "jsonl", "book"]).flatmap(lambda kind: st.tuples(st.just(kind),
                                                                                    fz.batch_lines(kind))))
def test_batch_input_parsing(case):
    kind, lines = case
    with tempfile.TemporaryDirectory() as directory:
        fz.check_batch_input(Path(directory), kind, lines)


# --- the server --------------------------------------------------------------------------------------------
@budget(200)
@given(fz.bodies("/v1/tts"))
def test_tts_route_never_fails_with_500(client, body):
    fz.check_http(client, "/v1/tts", body)


@budget(120)
@given(fz.bodies("/v1/audio/speech"))
def test_openai_route_never_fails_with_500(client, body):
    fz.check_http(client, "/v1/audio/speech", body)


@budget(100)
@given(fz.bodies("/v1/frontend"))
def test_frontend_route_never_fails_with_500(client, body):
    fz.check_http(client, "/v1/frontend", body)


@budget(60)
@given(st.sampled_from(["/v1/tts", "/v1/audio/speech", "/v1/frontend"]), st.binary(max_size=64))
def test_routes_take_any_bytes(client, route, data):
    fz.check_http(client, route, None, raw=data)


@budget(60)
@given(st.dictionaries(st.sampled_from(["text", "voice", "speed", "emotion", "format", "stream", "sample_rate"]),
                       fz.texts(4), max_size=5))
def test_get_route_never_fails_with_500(client, params):
    fz.check_http_get(client, params)


@budget(60)
@given(st.lists(st.one_of(fz.bodies("ws"), fz.texts(3), st.binary(max_size=8)), min_size=1, max_size=3))
def test_websocket_answers_every_message(client, messages):
    fz.check_websocket(client, messages)
