"""qingyin batch: inputs, the manifest, resuming, bad input, the local engine (real Baker voice, short texts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qingyin.batch import Manifest, read_items, run_batch
from qingyin.batch.engines import EngineError, check_reachable, plan_workers
from qingyin.batch.items import BatchInputError, split_parts
from qingyin.batch.job import OutputError
from qingyin.runtime.audio import read_wav

LINES = ["今天天气不错。", "你好。", "我们明天见。", "谢谢。"]


def records(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def lines_file(tmp_path: Path) -> Path:
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(LINES[:2]) + "\n\n" + "\n".join(LINES[2:]) + "\n", encoding="utf-8")
    return path


def test_lines_jsonl_and_book_inputs(tmp_path: Path) -> None:
    lines = tmp_path / "a.txt"
    lines.write_text("一。\n\n二。\n", encoding="utf-8")
    assert [(i.id, i.parts) for i in read_items(lines, "baker")] == [("00001", ["一。"]), ("00003", ["二。"])]

    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"id": "x", "text": "你好。", "voice": "yunxi", "emotion": "happy"}\n'
                     "not json\n"
                     '{"ssml": "请<break time=\\"200ms\\"/>稍等。", "speed": 1.2}\n'
                     '{"id": "x", "text": "again"}\n'
                     '{"text": "好。", "colour": "red"}\n', encoding="utf-8")
    items = read_items(jsonl, "baker", {"pitch": 1.1})
    assert (items[0].id, items[0].voice, items[0].options) == ("x", "yunxi", {"pitch": 1.1, "emotion": "happy"})
    assert "line 2" in items[1].error
    assert items[2].parts == ['<speak>请<break time="200ms"/>稍等。</speak>'] and items[2].options["speed"] == 1.2
    assert "used already on line 1" in items[3].error and items[3].id != "x"
    assert "unknown field(s) colour" in items[4].error

    book = tmp_path / "book.md"
    book.write_text("# 第一章 开始\n\n" + "他走了。" * 100 + "\n\n## 第二章\n\n*她* 来了。[链接](http://x)\n",
                    encoding="utf-8")
    chapters = read_items(book, "baker", part_chars=100)
    assert [c.id for c in chapters] == ["ch001", "ch002"]
    assert len(chapters[0].parts) > 3 and all(len(p) <= 100 for p in chapters[0].parts)
    assert chapters[0].parts[0].startswith("第一章 开始。")
    assert chapters[1].text == "第二章。她 来了。链接。"


def test_split_parts_cuts_only_at_sentence_ends() -> None:
    assert split_parts(["一二三。四五六！", "", "七八？"], 4) == ["一二三。", "四五六！", "七八？"]


def test_plan_workers_fills_the_cores() -> None:
    assert plan_workers(None, None, cores=8) == (8, 1)
    assert plan_workers(None, 2, cores=8) == (4, 2)
    assert plan_workers(2, None, cores=8) == (2, 4)


def test_missing_input_and_unwritable_output(tmp_path: Path, lines_file: Path) -> None:
    with pytest.raises(BatchInputError, match="does not exist"):
        read_items(tmp_path / "nope.txt", "baker")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write to the output folder"):
        run_batch(read_items(lines_file, "baker"), blocker / "out")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputError, match=str(locked)):
            run_batch(read_items(lines_file, "baker"), locked)


def test_unreachable_ray_address_is_named_quickly() -> None:
    with pytest.raises(EngineError, match="RAY_ADDRESS=127.0.0.1:9"):
        check_reachable("127.0.0.1:9", timeout=2)


def test_manifest_skips_a_torn_line_and_compacts(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"id": "a", "status": "error"}\n{"id": "b", "status": "done"}\n{"id": "a", "status": "done"}\n'
                    '{"id": "c", "sta', encoding="utf-8")
    manifest = Manifest(path)
    assert set(manifest.records) == {"a", "b"} and manifest.records["a"]["status"] == "done"
    manifest.compact(["b", "a"])
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["b", "a"]


def test_batch_records_errors_resumes_and_never_duplicates(tmp_path: Path, lines_file: Path, baker_dir) -> None:
    out = tmp_path / "out"
    items = read_items(lines_file, "baker")
    items[1].voice = "nosuch"  # an unknown voice on one line: recorded, the job goes on
    seen: list[str] = []
    report = run_batch(items, out, workers=2, progress=False, on_result=lambda r: seen.append(r.item))
    assert (report.done, report.failed) == (3, 1)
    rows = records(out)
    assert [r["id"] for r in rows] == ["00001", "00002", "00004", "00005"]
    assert [r["status"] for r in rows] == ["done", "error", "done", "done"]
    assert "unknown voice 'nosuch'" in rows[1]["error"]
    for row in rows[::2]:
        audio, rate = read_wav(out / row["path"])
        assert rate == 24000 and abs(len(audio) / rate - row["seconds"]) < 1e-3 and row["sha256"]

    items[1].voice = "baker"  # fixed: only the failed item is redone
    seen.clear()
    report = run_batch(items, out, workers=1, progress=False, on_result=lambda r: seen.append(r.item))
    assert (report.done, report.skipped, report.failed) == (1, 3, 0) and seen == ["00002"]
    rows = records(out)
    assert [r["id"] for r in rows] == ["00001", "00002", "00004", "00005"] and {r["status"] for r in rows} == {"done"}

    items[0].options = {"speed": 1.3}  # a changed input is redone; other files are untouched
    report = run_batch(items, out, workers=1, progress=False)
    assert (report.done, report.skipped) == (1, 3) and len(records(out)) == 4


def test_book_parts_are_joined_in_order(tmp_path: Path, baker_dir) -> None:
    book = tmp_path / "book.md"
    book.write_text("# 第一章\n\n今天天气不错。我们去公园吧。好的。\n", encoding="utf-8")
    items = read_items(book, "baker", part_chars=8)
    assert items[0].parts == ["第一章。", "今天天气不错。", "我们去公园吧。", "好的。"]
    run_batch(items, tmp_path / "split", workers=2, progress=False, format="flac")
    whole = read_items(book, "baker", part_chars=1000)
    assert len(whole[0].parts) == 1
    run_batch(whole, tmp_path / "whole", workers=1, progress=False, format="flac")
    split, whole_row = records(tmp_path / "split")[0], records(tmp_path / "whole")[0]
    assert split["path"] == "ch001.flac"
    # the same sentences and pauses, whether one worker read the chapter or three parts were joined
    assert split["seconds"] == pytest.approx(whole_row["seconds"], abs=0.05)


def test_a_killed_local_worker_loses_no_item(tmp_path: Path, baker_dir) -> None:
    items = read_items_from(tmp_path, [f"第{n}句。" for n in range(1, 9)])
    killed: list[int] = []

    def kill_once(result) -> None:  # noqa: ANN001
        if not killed:
            killed.append(result.pid)
            os.kill(result.pid, signal.SIGKILL)

    report = run_batch(items, tmp_path / "out", workers=2, progress=False, on_result=kill_once)
    assert killed and (report.done, report.failed) == (8, 0)
    rows = records(tmp_path / "out")
    assert sorted(r["id"] for r in rows) == [f"{n:05d}" for n in range(1, 9)]


def read_items_from(tmp_path: Path, lines: list[str]):  # noqa: ANN201
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return read_items(path, "baker")


def _interruptible() -> None:
    """In the child: SIGINT back to its default, so that Python turns it into KeyboardInterrupt. An ignored SIGINT
    is inherited across exec, and a library loaded earlier in the test session may have left it ignored (in a full
    `make test` run the job then ran to the end)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_leaves_a_consistent_manifest_and_a_rerun_finishes(tmp_path: Path, baker_dir) -> None:
    path = tmp_path / "in.txt"
    # Items long enough (three sentences each) that the job is still running when the third is recorded.
    path.write_text("".join(f"这是第{n}个句子，用来测试中断。我们在中途按下停止键。然后再把它重新运行一遍。\n"
                            for n in range(1, 41)), encoding="utf-8")
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "qingyin.cli", "batch", str(path), "-o", str(out),
                                "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True, preexec_fn=_interruptible)
    manifest = out / "manifest.jsonl"
    try:
        for _ in range(600):  # interrupt once a few items are recorded
            if manifest.exists() and len(manifest.read_text().splitlines()) >= 3:
                break
            try:
                process.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                pass
        os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C does: the job and its workers
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    first = records(out)
    assert 0 < len(first) < 40 and len({r["id"] for r in first}) == len(first)
    assert all(r["status"] == "done" and (out / r["path"]).is_file() for r in first)
    assert not list(out.glob("*.part"))

    done_before = {r["id"]: r["sha256"] for r in first}
    seen: list[str] = []
    report = run_batch(read_items(path, "baker"), out, workers=2, progress=False,
                       on_result=lambda r: seen.append(r.item))
    assert report.skipped == len(first) and not set(seen) & set(done_before)
    rows = records(out)
    assert [r["id"] for r in rows] == [f"{n:05d}" for n in range(1, 41)]
    assert all(rows[int(i) - 1]["sha256"] == sha for i, sha in done_before.items())


def test_cli_batch(tmp_path: Path, lines_file: Path, baker_dir, capsys) -> None:
    from qingyin.cli import main

    assert main(["batch", str(tmp_path / "missing.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["batch", str(lines_file), "-o", str(tmp_path / "o"), "--format", "mp3", "--workers", "1"]) == 0
    rows = records(tmp_path / "o")
    assert len(rows) == 4 and all(r["path"].endswith(".mp3") for r in rows)
    assert main(["batch", str(lines_file), "-o", str(tmp_path / "o"), "--format", "wma"]) == 2
    assert "unknown audio format" in capsys.readouterr().err


def test_audio_is_what_the_synthesizer_makes(tmp_path: Path, lines_file: Path, tts) -> None:
    run_batch(read_items(lines_file, "baker"), tmp_path / "o", workers=1, progress=False)
    audio, _ = read_wav(tmp_path / "o" / "00001.wav")
    direct = tts.synthesize(LINES[0]).audio
    assert len(audio) == len(direct)
    assert np.max(np.abs(audio - np.clip(direct, -1, 1))) < 2e-3


def test_an_empty_input_and_an_endless_line_are_refused_clearly(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(BatchInputError, match="has nothing to say: no lines of text"):
        read_items(empty, "baker")
    long = tmp_path / "long.txt"
    long.write_text("好" * 20_000 + "\n你好。\n", encoding="utf-8")
    endless, fine = read_items(long, "baker")
    assert endless.error == ("line 1: 20,000 characters without a sentence end; at most 10,000 in one go: split it "
                             "into lines, or read the file as a book (--kind book) with sentence punctuation")
    assert fine.error is None
