"""Valid text and bounded work per request (issue 17): qingyin.runtime.limits, the engine, batch jobs and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qingyin.batch import read_items, run_batch
from qingyin.batch.job import LIMITS, check_item, item_key
from qingyin.runtime.limits import InvalidTextError, WorkLimitError, WorkLimits, check_text
from qingyin.runtime.synthesizer import NothingToSayError
from qingyin.server.config import ConfigError, ServerConfig

SENTENCE = "今天天气不错，我们去公园散步吧。"


# --- valid text ------------------------------------------------------------------------------------------------
def test_a_lone_surrogate_is_named_with_its_field_and_position() -> None:
    with pytest.raises(InvalidTextError, match=r"^input contains a lone surrogate U\+D800 at position 2; send valid "):
        check_text("你好\ud800", "input")
    with pytest.raises(InvalidTextError, match=r"U\+DCFF at position 0 \(an undecodable byte: the input is not UTF-8"):
        check_text(b"\xff".decode("utf-8", "surrogateescape"))
    with pytest.raises(InvalidTextError, match="text must be a string, got int"):
        check_text(3)
    assert check_text("😀𠮷\u200d") == "😀𠮷\u200d"  # a surrogate pair in UTF-16 is one valid character here


def test_the_engine_refuses_a_lone_surrogate_before_any_work(tts) -> None:
    for call in (tts.synthesize, tts.frontend, lambda text: list(tts.stream_chunks(text))):
        with pytest.raises(InvalidTextError, match="lone surrogate U\\+D800 at position 1"):
            call("你\ud800好")
    with pytest.raises(InvalidTextError, match="text 1: text contains a lone surrogate"):
        tts.synthesize_batch(["你好。", "\udfff"])


# --- work limits ---------------------------------------------------------------------------------------------
def test_the_default_audio_limit_follows_max_chars() -> None:
    assert WorkLimits.for_chars(5000).max_audio_seconds == 1500
    assert WorkLimits.for_chars(1000).max_audio_seconds == 300
    assert WorkLimits.for_chars(1000, 60).max_audio_seconds == 60
    with pytest.raises(ValueError, match="max_audio_seconds must be a number of seconds > 0, got 0"):
        WorkLimits.for_chars(1000, 0)
    with pytest.raises(ValueError, match="max_ssml_elements must be a whole number >= 1"):
        WorkLimits(max_ssml_elements=2.5).validated()  # type: ignore[arg-type]


def test_the_issue_request_is_refused_up_front_and_a_normal_one_is_not() -> None:
    limits = WorkLimits.for_chars(5000)
    limits.check("好" * 4999)  # the largest request at speed 1: ~1,200 s of audio, within 1,500
    with pytest.raises(WorkLimitError, match=r"at least 2,999 s of audio at speed 0.25; the limit is 1,500 s per "
                                             r"request \(max_audio_seconds: --max-audio-seconds or "
                                             r"QINGYIN_MAX_AUDIO_SECONDS on the server") as error:
        limits.check("好" * 4999 + "。", speed=0.25)
    assert error.value.limit == "max_audio_seconds" and isinstance(error.value, ValueError)
    with pytest.raises(WorkLimitError, match="at least"):  # SSML <prosody rate> counts as the speed does
        limits.check(f'<speak><prosody rate="x-slow">{"好" * 4000}</prosody></speak>', speed=0.5)


def test_ssml_elements_and_break_time_are_limited() -> None:
    limits = WorkLimits(max_ssml_elements=10, max_break_seconds=5)
    limits.check("<speak>" + "<s>好</s>" * 9 + "</speak>")
    with pytest.raises(WorkLimitError, match=r"more than 10 elements \(the next one at line 1, column 80\); the "
                                             r"limit is 10 per request \(max_ssml_elements: --max-ssml-elements"):
        limits.check("<speak>" + "<s>好</s>" * 10 + "</speak>")
    limits.check("好" * 100 + "<s>" * 20)  # plain text has no elements
    with pytest.raises(WorkLimitError, match=r"6 s of <break> in all; the limit is 5 s per request "
                                             r"\(max_break_seconds: --max-break-seconds"):
        limits.check('<speak>好<break time="3s"/>好<break time="3s"/>好</speak>')


def test_synthesis_stops_at_the_audio_limit_whole_or_streamed(tts) -> None:
    text = SENTENCE * 6  # the estimate (12.6 s) passes a 14 s limit; the audio (~20 s) does not
    limits = WorkLimits(max_audio_seconds=14)
    assert tts.synthesize(SENTENCE, limits=limits).duration_seconds < 14
    with pytest.raises(WorkLimitError, match=r"the audio would run past the limit \(stopped after \d+\.\d s\); the "
                                             r"limit is 14 s per request"):
        tts.synthesize(text, limits=limits)
    made = 0
    with pytest.raises(WorkLimitError, match="the audio would run past the limit"):
        for chunk in tts.stream_chunks(text, limits=limits):
            made += len(chunk.audio)
    assert 8 * tts.sample_rate < made <= 14 * tts.sample_rate  # what was within the limit came out first
    pieces = iter(tts.iter_sentences(tts.frontend(text), limits=limits))
    with pytest.raises(WorkLimitError):
        list(pieces)
    assert len(tts.synthesize(text).audio) > 14 * tts.sample_rate  # no limits: as before


def test_breaks_count_against_the_limits_while_synthesizing(tts) -> None:
    text = '<speak>好<break time="10s"/>好<break time="10s"/>好</speak>'
    with pytest.raises(WorkLimitError, match="max_audio_seconds"):
        tts.synthesize(text, limits=WorkLimits(max_audio_seconds=15, max_break_seconds=60))
    assert tts.synthesize(text, limits=WorkLimits(max_audio_seconds=30)).duration_seconds > 20
    with pytest.raises(NothingToSayError):  # the text's own errors are unchanged
        tts.synthesize("😀", limits=WorkLimits())


# --- the server's settings -----------------------------------------------------------------------------------
def test_server_settings_for_the_limits() -> None:
    assert ServerConfig().validated().work_limits == WorkLimits(1500, 1000, 120)
    config = ServerConfig.from_env({"QINGYIN_MAX_CHARS": "2000", "QINGYIN_MAX_SSML_ELEMENTS": "50"},
                                   max_break_seconds="30")
    assert config.work_limits == WorkLimits(600, 50, 30)
    assert ServerConfig.from_env({"QINGYIN_MAX_AUDIO_SECONDS": "90"}).work_limits.max_audio_seconds == 90
    with pytest.raises(ConfigError, match="max_audio_seconds must be a number of seconds > 0, got -1"):
        ServerConfig.from_env({"QINGYIN_MAX_AUDIO_SECONDS": "-1"})
    with pytest.raises(ConfigError, match="QINGYIN_MAX_SSML_ELEMENTS must be a number"):
        ServerConfig.from_env({"QINGYIN_MAX_SSML_ELEMENTS": "many"})


# --- batch jobs ----------------------------------------------------------------------------------------------
def test_a_jsonl_surrogate_is_that_lines_error_and_the_job_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [{"id": "a", "text": "\ud800你好"}, {"id": "b", "text": "你好。", "emotion": {"\udc00": 1}},
             {"id": "c", "text": "你好。", "\ud83d": 1}, {"id": "d", "text": "你好。"}]
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")  # "\ud800" escapes
    a, b, c, d = read_items(path, "baker")
    assert a.error == "line 1: text contains a lone surrogate U+D800 at position 0; send valid UTF-8/UTF-16 text"
    assert b.error == "line 2: a field name in emotion contains a lone surrogate U+DC00 at position 0; send valid " \
                      "UTF-8/UTF-16 text"
    assert c.error.startswith("line 3: a field name in record contains a lone surrogate U+D83D")
    assert d.error is None
    for item in (a, b, c, d):  # keyed and recorded: UTF-8 all the way
        json.dumps([item_key(item, "wav", None), item.error], ensure_ascii=False).encode("utf-8")


def test_a_batch_item_over_the_limits_is_its_error(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [{"id": "slow", "text": "好" * 9000 + "。", "speed": 0.25},
             {"id": "breaks", "ssml": '你<break time="10s"/>' * 13},
             {"id": "ok", "text": "你好。"}]
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines), encoding="utf-8")
    slow, breaks, ok = read_items(path, "baker")
    assert "at least 5,400 s of audio at speed 0.25; the limit is 3,000 s per request" in check_item(slow, LIMITS)
    assert check_item(breaks, LIMITS).startswith("line 2: the SSML asks for 130 s of <break> in all")
    assert check_item(ok, LIMITS) is None and check_item(slow) is None  # without limits: none checked
    report = run_batch([slow, breaks], tmp_path / "out", progress=False)  # refused before any model loads
    assert report.failed == 2 and report.done == 0
    report = run_batch([breaks], tmp_path / "out2", progress=False, limits=WorkLimits(max_break_seconds=200))
    assert report.failed == 0 and report.done == 1


def test_cli_flags_for_the_limits(tmp_path: Path, capsys) -> None:
    from qingyin.cli import main

    lines = tmp_path / "lines.txt"
    lines.write_text(SENTENCE * 3 + "\n", encoding="utf-8")
    assert main(["batch", str(lines), "-o", str(tmp_path / "o"), "--max-audio-seconds", "2"]) == 1
    assert "the limit is 2 s per request (max_audio_seconds" in capsys.readouterr().err
    assert main(["batch", str(lines), "--max-audio-seconds", "0"]) == 2
    assert "max_audio_seconds must be a number of seconds > 0" in capsys.readouterr().err
    assert main(["frontend", "ab" + b"\xff".decode("utf-8", "surrogateescape")]) == 2
    assert "text contains a lone surrogate U+DCFF at position 2 (an undecodable byte" in capsys.readouterr().err
