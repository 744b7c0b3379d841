"""`qingyin eval` and `qingyin bench`: variants, text sets, the runners and their CLI (no heavy models here)."""

from __future__ import annotations

import json
import math

import pytest

import qingyin.cli
from qingyin.evaluate.bench import format_report, run_bench
from qingyin.evaluate.reference import reference_available
from qingyin.evaluate.runner import format_table, run_eval
from qingyin.evaluate.variants import Variant, parse_variant
from qingyin.runtime.synthesizer import InvalidOptionError
from qingyin.text.corpus import DEFAULT_TEXTS, read_texts
from qingyin.voices.registry import UnknownVoiceError

pytest.importorskip("pyworld", reason="the signal metrics need the eval extra: pip install -e '.[eval]'")


def test_parse_variant():
    assert parse_variant("baker") == Variant("baker")
    assert parse_variant("baker:torch") == Variant("baker", "torch")
    assert parse_variant("baker:speed=1.2,pitch=0.9") == Variant("baker", None, {"speed": 1.2, "pitch": 0.9})
    assert parse_variant("baker:speed=1.2").name == "baker:speed=1.2"
    assert parse_variant("baker:torch").name == "baker:torch"
    assert parse_variant("yunxi:variant=fp32") == Variant("yunxi", None, variant="fp32")
    assert parse_variant("yunxi:onnx:speed=1.5").name == "yunxi:onnx:speed=1.5"


def test_variants_know_their_family():
    with pytest.raises(InvalidOptionError, match="unknown backend 'torch' for voice 'yunxi'; available: onnx"):
        parse_variant("yunxi:torch")
    with pytest.raises(InvalidOptionError, match="unknown Kokoro variant 'int8-static'"):
        parse_variant("yunxi:variant=int8-static")
    assert parse_variant("baker:onnx:variant=int8").variant == "int8-static"


@pytest.mark.parametrize(("spec", "words"), [
    ("nope", ["nope", "baker"]),
    ("baker:onnx-int8", ["onnx-int8", "torch"]),
    ("baker:emotion=joy", ["joy", "happy"]),
    ("baker:mood=sad", ["mood", "emotion"]),
    ("baker:speed=fast", ["speed", "fast"]),
])
def test_bad_variants_name_the_problem(spec, words):
    with pytest.raises((InvalidOptionError, UnknownVoiceError)) as error:
        parse_variant(spec)
    assert all(w in str(error.value) for w in words)


def test_variants_carry_emotion_and_intensity():
    variant = parse_variant("yunxi:emotion=sad,intensity=0.5")
    assert variant.options == {"emotion": "sad", "intensity": 0.5}
    assert variant.name == "yunxi:emotion=sad,intensity=0.5"


def test_default_text_set_is_large_and_varied():
    texts = read_texts()
    categories = [line for line in DEFAULT_TEXTS.read_text(encoding="utf-8").splitlines() if line.startswith("# ")]
    assert len(texts) >= 100 and len(set(texts)) == len(texts)
    assert {"# news", "# dialogue", "# numbers", "# questions", "# short", "# long"} <= set(categories)
    assert any(len(t) >= 40 for t in texts) and any(len(t) <= 4 for t in texts)


def test_read_texts_skips_comments_and_rejects_empty(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("# c\n\n你好。\n  \n再见。\n", encoding="utf-8")
    assert read_texts(path) == ["你好。", "再见。"]
    path.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(InvalidOptionError, match="no sentences"):
        read_texts(path)
    with pytest.raises(InvalidOptionError, match="cannot read"):
        read_texts(tmp_path / "missing.txt")


@pytest.fixture(scope="module")
def speed_report(tts):
    return run_eval(["今天天气不错，我们去公园散步吧。", "欢迎使用轻音。"], ["baker", "baker:speed=1.5"],
                    metrics=("prosody", "pair"))


def test_eval_measures_the_speed_control(speed_report):
    summary = speed_report["summary"]
    base, fast = summary["baker"]["mean"], summary["baker:speed=1.5"]
    assert base["utterances"] == fast["mean"]["utterances"] == 2
    ratio = fast["mean"]["speaking_rate"] / base["speaking_rate"]
    assert 1.3 < ratio < 1.7  # 1.5x faster speech, measured from the audio
    assert fast["delta"]["speaking_rate"] > 0
    assert fast["mean"]["duration_difference_s"] < -0.3  # shorter than the reference rendering
    assert fast["mean"]["mcd_db"] > 0 and not math.isnan(fast["mean"]["log_f0_rmse_cents"])
    assert "mcd_db" not in base  # the reference is not compared with itself


def test_eval_table_and_json(speed_report):
    table = format_table(speed_report)
    assert "baker:speed=1.5" in table and "syl/s" in table and "(+" in table
    json.dumps(speed_report)  # the report is plain JSON


def test_eval_rejects_unknown_metric(tts):
    with pytest.raises(InvalidOptionError, match="unknown metric"):
        run_eval(["你好。"], ["baker"], metrics=("bleu",))


def test_bench_report_has_every_number(tts):
    report = run_bench(["baker"], ["今天天气不错。", "欢迎使用轻音。"], threads=1, concurrency=(1, 2), repeats=1,
                       with_reference=reference_available() is None)
    entry = report["variants"]["baker"]
    for key in ("rtf", "acoustic_rtf", "vocoder_rtf", "first_audio_ms", "peak_rss_mb"):
        assert entry[key] > 0, key
    assert entry["rtf"] == pytest.approx(entry["acoustic_rtf"] + entry["vocoder_rtf"])
    assert set(entry["throughput"]) == {1, 2} and all(v > 0 for v in entry["throughput"].values())
    if reference_available() is None:
        assert report["reference"]["rtf"] > 0 and entry["rtf_vs_reference"] > 0
    assert "baker" in format_report(report)


def test_cli_bench_json_and_eval(tmp_path, capsys):
    code = qingyin.cli.main(["bench", "--json", "--limit", "1", "--concurrency", "1", "--repeats", "1",
                             "--threads", "1", "--no-reference"])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)
    assert report["variants"]["baker"]["rtf"] > 0 and "unavailable" in report["reference"]

    texts = tmp_path / "t.txt"
    texts.write_text("你好，欢迎。\n", encoding="utf-8")
    code = qingyin.cli.main(["eval", "--texts", str(texts), "--variant", "baker", "--variant", "baker:pitch=1.5",
                             "--metrics", "prosody,pair", "-o", str(tmp_path / "r.json")])
    assert code == 0
    assert "baker:pitch=1.5" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["utterances"]


@pytest.mark.parametrize("argv", [
    ["eval", "--variant", "baker:speed=0"], ["eval", "--metrics", "bleu", "--limit", "1"],
    ["eval", "--texts", "/nonexistent.txt"], ["bench", "--variant", "nope"], ["bench", "--concurrency", "0"],
])
def test_cli_bad_input_is_a_clear_error(argv, capsys):
    assert qingyin.cli.main(argv) == 2
    assert "qingyin: error:" in capsys.readouterr().err


@pytest.mark.heavy
def test_eval_all_metrics(tts):
    report = run_eval(["今天天气不错。"], ["baker", "baker:energy=1.3"])
    mean = report["summary"]["baker:energy=1.3"]["mean"]
    assert mean["cer"] <= 0.2 and 1.0 <= mean["dnsmos_ovrl"] <= 5.0 and mean["speaker_similarity"] > 0.8
