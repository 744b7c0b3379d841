"""qingyin.compress: the teacher corpus, and teacher data rendered by the real Baker voice on a tiny corpus."""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil

import numpy as np
import pytest

from qingyin.compress.cli import add_compress_parser, compress_command
from qingyin.compress.corpus import (
    CPP_DIR,
    MARK,
    MAX_CHARS,
    CorpusError,
    CorpusText,
    cpp_texts,
    filter_texts,
    parse_sources,
    teacher_corpus,
)
from qingyin.compress.teacher_data import (
    INFO,
    LOCK,
    MANIFEST,
    PCM_SCALE,
    TeacherData,
    TeacherDataError,
    default_out,
    read_manifest,
    render_teacher_data,
    shard_name,
)
from qingyin.runtime.synthesizer import NothingToSayError
from qingyin.voices.registry import UnknownVoiceError
from tests.rounding import ONE_FLIP

HOP = 300
# Six short texts, two per shard: one has two sentences (two utterances), one has nothing to say (skipped).
TINY = [("t1", "你好。"), ("t2", "谢谢。再见！"), ("t3", "……"), ("t4", "我们走吧。"), ("t5", "好的。"),
        ("t6", "今天很好。")]
IDS = ["t1/0", "t2/0", "t2/1", "t4/0", "t5/0", "t6/0"]


@pytest.fixture(scope="module")
def first(tmp_path_factory, tts):
    """TINY rendered once, in this process, by the session's Baker engine."""
    out = tmp_path_factory.mktemp("teacher") / "baker"
    summary = render_teacher_data(TINY, out=out, shard_size=2, progress=False, synthesizer=tts)
    return summary, TeacherData(out, verify=True)


def _render(out, synthesizer, **settings):
    return render_teacher_data(TINY, out=out, shard_size=2, progress=False, synthesizer=synthesizer, **settings)


# --- the corpus ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not (CPP_DIR / "dev.sent").is_file(), reason=f"CPP is not beside the checkout ({CPP_DIR})")
def test_the_corpus_is_cpp_then_everyday_unmarked_unique_and_speakable():
    corpus = teacher_corpus()
    ids = [item.id for item in corpus]
    texts = [item.text for item in corpus]
    assert len(set(ids)) == len(ids) and len(set(texts)) == len(texts)
    assert 25_000 < len(corpus) < 27_000
    assert corpus[0] == ("cpp-dev-000001", "1990年9月15日，在克里米亚发现了此天体。")  # line 1, marks removed
    assert ids.index("everyday-dev-0001") > ids.index("cpp-test-010254")
    assert dict(corpus)["everyday-dev-0001"] == "你吃饭了吗？我刚下班回来。"  # the sentence column, not the char
    assert not any(MARK in text for text in texts)
    assert all(len(text) <= MAX_CHARS for text in texts)
    assert not any(item.startswith("default-") for item in ids)  # the evaluation set is left out by default
    assert teacher_corpus(["default"])[0].id == "default-001"


def test_the_corpus_filter_drops_duplicates_the_unspeakable_and_the_too_long():
    texts = [CorpusText("a", "你好。"), CorpusText("b", " 你好。"), CorpusText("c", "……"), CorpusText("d", "OK!"),
             CorpusText("e", "长" * 11), CorpusText("f", "第2次。")]
    kept, dropped = filter_texts(texts, max_chars=10)
    assert kept == [("a", "你好。"), ("f", "第2次。")]
    assert dropped == {"duplicate": 1, "unspeakable": 2, "too long": 1}
    with pytest.raises(CorpusError, match="used twice"):
        filter_texts([CorpusText("a", "你"), CorpusText("a", "好")])


def test_the_cpp_folder_is_configurable_and_must_exist(tmp_path):
    (tmp_path / "dev.sent").write_text(f"他来{MARK}了{MARK}。\n\n他来了。\n", encoding="utf-8")
    (tmp_path / "test.sent").write_text(f"{MARK}行{MARK}长好。\n", encoding="utf-8")
    assert cpp_texts(tmp_path) == [("cpp-dev-000001", "他来了。"), ("cpp-dev-000003", "他来了。"),
                                   ("cpp-test-000001", "行长好。")]
    assert teacher_corpus(["cpp"], cpp_dir=tmp_path) == [("cpp-dev-000001", "他来了。"),
                                                         ("cpp-test-000001", "行长好。")]
    with pytest.raises(CorpusError, match=f"CPP folder {tmp_path / 'missing'} not found"):
        teacher_corpus(cpp_dir=tmp_path / "missing")
    with pytest.raises(CorpusError, match="unknown corpus source"):
        parse_sources("cpp,wikipedia")


# --- the data --------------------------------------------------------------------------------------------------
def test_the_shards_hold_what_the_engine_produces(first, tts):
    summary, data = first
    assert (summary.shards, summary.rendered, summary.texts, summary.utterances, summary.skipped) == (3, 3, 6, 6, 1)
    assert [u.id for u in data] == IDS and len(data) == 6
    assert data.skipped[0][0] == "t3" and "NothingToSayError" in data.skipped[0][1]
    assert data.info["teacher"] == {"voice": "baker", "model": "baker", "family": "fs2_mbmelgan", "backend": "torch",
                                    "variant": "fp32", "sample_rate": 24000}
    utterances = iter(data)
    for text_id, text in TINY:
        if text_id == "t3":
            with pytest.raises(NothingToSayError):
                list(tts.iter_sentences(text))
            continue
        for piece in (s for s in tts.iter_sentences(text) if s.phones):
            u = next(utterances)
            features = piece.features
            assert u.text_id == text_id and u.text == piece.text and u.symbols == piece.phones
            assert u.token_ids.tolist() == tts.voice.parse_symbols(piece.phones).ids  # eos included
            assert np.array_equal(u.durations, features.durations)
            assert u.frames == u.mel.shape[0] and len(u.audio) == u.frames * HOP
            assert np.array_equal(u.pitch, features.pitch) and np.array_equal(u.energy, features.energy)
            np.testing.assert_allclose(u.mel, features.mel, rtol=2e-3, atol=2e-3)  # float16
            _assert_same_audio(u.audio, piece.audio)
    arrays = data.shard(0)
    assert (arrays["mel"].dtype, arrays["audio"].dtype, arrays["durations"].dtype) == (np.float16, np.int16, np.int32)
    pcm = arrays["audio"][: arrays["audio_offsets"][1]]
    assert np.array_equal(pcm.astype(np.float32) / PCM_SCALE, data[0].audio)
    assert summary.audio_seconds == pytest.approx(data.seconds, abs=1e-3)
    assert data.seconds == pytest.approx(sum(u.seconds for u in data), abs=1e-3)


def test_random_access_reads_what_iteration_reads(first):
    _, data = first
    assert [data[i].id for i in (5, 0, 3, 1)] == [IDS[5], IDS[0], IDS[3], IDS[1]]
    assert data[-1].id == IDS[-1] and np.array_equal(data[2].audio, list(data)[2].audio)
    with pytest.raises(IndexError):
        data[6]


def test_a_rerun_skips_finished_shards(first, tmp_path, tts):
    copy = shutil.copytree(first[1].path, tmp_path / "copy")
    stamps = {p.name: p.stat().st_mtime_ns for p in copy.glob("shard-*.npz")}
    summary = _render(copy, tts)
    assert (summary.shards, summary.rendered, summary.texts, summary.total_utterances) == (3, 0, 0, 6)
    assert {p.name: p.stat().st_mtime_ns for p in copy.glob("shard-*.npz")} == stamps


class _Killed(Exception):
    pass


class _KilledAt:
    """The engine, until it is asked for `text` (a run killed there)."""

    def __init__(self, engine, text):
        self.engine, self.text = engine, text

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def iter_sentences(self, text, *args, **kwargs):
        if text == self.text:
            raise _Killed
        return self.engine.iter_sentences(text, *args, **kwargs)


def test_a_killed_or_partial_shard_is_redone_and_a_larger_limit_extends(first, tmp_path, tts):
    out = tmp_path / "resumed"
    assert _render(out, tts, limit=3).rendered == 2  # shard 1 holds t3 only
    with pytest.raises(_Killed):  # shard 1 is redone with t3 and t4; the run dies inside shard 2
        _render(out, _KilledAt(tts, "好的。"))
    assert sorted(read_manifest(out)) == [0, 1]
    # what a killed writer can leave: a temporary file, a shard file not yet listed, a torn manifest line
    (out / f".{shard_name(2)}.99.tmp").write_bytes(b"partial")
    (out / shard_name(2)).write_bytes(b"not listed")
    with open(out / MANIFEST, "a", encoding="utf-8") as manifest:
        manifest.write('{"index": 2, "shard": "shard-00002.np')
    summary = _render(out, tts)
    assert (summary.rendered, summary.texts) == (1, 2)
    assert not list(out.glob(".*.tmp"))
    _assert_same(TeacherData(out, verify=True), first[1])
    # a listed shard whose file is not the size listed is redone (here as the first text alone: limit 1)
    (out / shard_name(0)).write_bytes((out / shard_name(0)).read_bytes()[:100])
    summary = _render(out, tts, limit=1)
    assert (summary.rendered, summary.texts) == (1, 1)
    assert [u.id for u in TeacherData(out, verify=True)] == ["t1/0", *IDS[3:]]


def test_two_workers_give_the_same_data_as_one(first, tmp_path):
    summary = render_teacher_data(TINY, "baker", tmp_path / "two", workers=2, shard_size=2, progress=False)
    assert (summary.shards, summary.rendered, summary.utterances, summary.skipped) == (3, 3, 6, 1)
    data = TeacherData(tmp_path / "two", verify=True)
    assert data.info["teacher"] == first[1].info["teacher"]
    _assert_same(data, first[1])  # 1 thread per worker against 2 threads: float rounding only


def _assert_same(data, expected):
    """The same utterances: tokens and durations equal, the rest within float16 and the vocoder's rounding."""
    assert [u.id for u in data] == [u.id for u in expected] and data.skipped == expected.skipped
    for u, v in zip(data, expected, strict=True):
        assert (u.text, u.symbols, u.token_ids.tolist(), u.durations.tolist()) == (
            v.text, v.symbols, v.token_ids.tolist(), v.durations.tolist())
        np.testing.assert_allclose(u.pitch, v.pitch, atol=1e-4)
        np.testing.assert_allclose(u.energy, v.energy, atol=1e-4)
        np.testing.assert_allclose(u.mel, v.mel, rtol=2e-3, atol=2e-3)  # float16 rounding flips
        _assert_same_audio(u.audio, v.audio)


def _assert_same_audio(a, b):
    """Equal but for the vocoder's rounding of its sub-band signals to 1/128 (tests/rounding.py): the engine's
    float32 mel moves in its last bits between runs and thread counts (the float16 mel does not), which tips
    values on a rounding edge here and there in a sentence (2 threads against 1: SNR ~39 dB)."""
    assert a.shape == b.shape
    off = a.astype(np.float64) - b
    assert np.abs(off).max() <= 4 * ONE_FLIP
    assert (off**2).sum() <= (a.astype(np.float64) ** 2).sum() * 10 ** (-25 / 10)  # SNR >= 25 dB


# --- bad inputs ------------------------------------------------------------------------------------------------
def test_bad_settings_are_refused_with_what_to_do(first, tmp_path, tts):
    for setting, value in [("limit", 0), ("workers", 0), ("shard_size", 0), ("threads", -1), ("limit", 1.5)]:
        with pytest.raises(TeacherDataError, match=f"{setting} must be a whole number >= 1"):
            render_teacher_data(TINY, "baker", tmp_path / "x", **{setting: value})
    with pytest.raises(TeacherDataError, match="workers must be 1"):
        render_teacher_data(TINY, out=tmp_path / "x", workers=2, synthesizer=tts)
    with pytest.raises(TeacherDataError, match="used twice"):
        render_teacher_data([("a", "你好。"), ("a", "再见。")], "baker", tmp_path / "x")
    with pytest.raises(TeacherDataError, match="empty"):
        render_teacher_data([], "baker", tmp_path / "x")
    with pytest.raises(UnknownVoiceError):
        render_teacher_data(TINY, "nobody", tmp_path / "x")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(TeacherDataError, match=f"cannot write teacher data into {blocker / 'out'}"):
        render_teacher_data(TINY, "baker", blocker / "out")
    assert not (tmp_path / "x").exists() or not list((tmp_path / "x").iterdir())  # refused before writing


def test_a_folder_keeps_its_teacher_and_shard_size_and_one_writer(first, tmp_path, tts):
    copy = shutil.copytree(first[1].path, tmp_path / "copy")
    with pytest.raises(TeacherDataError, match="shards of 2 texts, not 3: use --shard-size 2"):
        render_teacher_data(TINY, out=copy, shard_size=3, synthesizer=tts)
    with pytest.raises(TeacherDataError, match="voice 'baker', not 'yunxi'"):
        render_teacher_data(TINY, "yunxi", copy)
    with open(copy / LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(TeacherDataError, match="another run is writing"):
            render_teacher_data(TINY, out=copy, synthesizer=tts)
    assert render_teacher_data(TINY, out=copy, synthesizer=tts, progress=False).rendered == 0  # size: the folder's


def test_reading_a_folder_without_data_says_how_to_make_it(tmp_path):
    with pytest.raises(TeacherDataError, match=f"no teacher data in {tmp_path}.*qingyin compress teacher-data"):
        TeacherData(tmp_path)


def test_damaged_shards_are_found(first, tmp_path):
    copy = shutil.copytree(first[1].path, tmp_path / "copy")
    with open(copy / shard_name(1), "r+b") as shard:
        shard.seek(200)
        shard.write(b"\0\1\2")
    with pytest.raises(TeacherDataError, match="does not match its sha256"):
        TeacherData(copy, verify=True)
    (copy / shard_name(1)).unlink()
    with pytest.raises(TeacherDataError, match="listed in manifest.jsonl but missing"):
        TeacherData(copy)


def test_the_default_folder_is_in_qingyin_home(monkeypatch, tmp_path):
    monkeypatch.setenv("QINGYIN_HOME", str(tmp_path))
    assert default_out("baker") == tmp_path / "train" / "teacher" / "baker"
    assert default_out("xiaobei:0.6,yunxi:0.4") == tmp_path / "train" / "teacher" / "xiaobei_0.6_yunxi_0.4"


# --- the command line ------------------------------------------------------------------------------------------
def _parse(*argv):
    parser = argparse.ArgumentParser(prog="qingyin")
    add_compress_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["compress", "teacher-data", *argv])


def test_the_command_line_parses_and_refuses_bad_input(tmp_path):
    args = _parse("--voice", "baker", "--out", str(tmp_path), "--limit", "5", "--workers", "2", "--shard-size", "8")
    assert (args.voice, args.out, args.limit, args.workers, args.shard_size) == ("baker", tmp_path, 5, 2, 8)
    assert _parse().sources == "cpp,everyday" and _parse().shard_size is None
    with pytest.raises(ValueError, match="limit must be a whole number >= 1, got 0"):
        compress_command(_parse("--out", str(tmp_path / "a"), "--limit", "0", "--sources", "everyday"))
    with pytest.raises(ValueError, match="CPP folder .* not found"):
        compress_command(_parse("--out", str(tmp_path / "b"), "--cpp", str(tmp_path / "no-cpp")))
    assert not (tmp_path / "b").exists() and not os.path.exists(tmp_path / "a" / INFO)
