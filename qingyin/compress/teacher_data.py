"""Teacher data: a voice reads a corpus through the engine; what it produced is kept for students to learn from.

    render_teacher_data(corpus, voice="baker", out=DIR, workers=2)   writes (resumably, in parallel) the shards
    data = TeacherData(DIR); data[i], len(data), data.seconds       reads them

Any voice is a teacher: the texts go through the public engine (qingyin.runtime.synthesizer.Synthesizer) at neutral
settings, and each spoken piece (`SentenceAudio`: one pass of the model; a text may have several sentences, and
the engine halves a sentence too long for the model) becomes one *utterance*: the voice's symbols and token ids,
the durations per token (frames), pitch and energy (per token for Baker, per frame for Kokoro, in the family's
units), the mel where the family has one (Baker: normalized, frames x 80) and the audio.

On disk, in `out` (default $QINGYIN_HOME/train/teacher/<voice>/):

    info.json        the teacher (voice, model, backend, variant, sample rate, frame length), the shard size,
                     the corpus and the fields; a later run into the folder must use the same teacher and shard size
    manifest.jsonl   one line per finished shard: its index, file, bytes, sha256, the (id, text hash) of every
                     text it covers, counts and seconds of audio (the last line of an index wins)
    shard-00000.npz  texts [k * shard_size, (k + 1) * shard_size) of the corpus (numpy's compressed npz, no
                     pickles; Baker: ~49 kB per second of audio, see BENCHMARKS.md): per
                     field the utterances' arrays concatenated, with `<field>_offsets` (utterances + 1) into them:
                     symbols (str), token_ids (int32), durations (int32), pitch, energy (float32), mel (float16),
                     audio (int16 PCM, full scale 32767); per utterance text_ids, pieces, texts (str), trim_frames
                     (int32: Kokoro's leading frames cut from the audio); skipped_ids and skipped_reasons for texts
                     the voice could not read

Resumable: a shard is written to a temporary file and renamed, then listed in the manifest; a shard is done when
the manifest lists it with the same texts (a run with a larger --limit redoes only the last, partial shard) and
its file has the listed size. Anything else (a temporary file, a shard file the manifest does not list, a torn
last manifest line) is redone. One run at a time writes a folder (a lock file says so).

Parallel: `workers` processes (spawned: each loads the voice once, with cores // workers threads) render whole
shards; the parent writes the manifest and draws the progress bar (texts, utterances, seconds of audio). The
shards do not depend on the number of workers, only the floating-point threads may round differently.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import math
import multiprocessing
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import qingyin
from qingyin.compress.corpus import CorpusText, teacher_corpus
from qingyin.runtime.files import replace_file, writable_folder, write_json
from qingyin.voices import registry

FORMAT = 1
SHARD_SIZE = 64  # texts per shard: ~7 min of Baker audio on CPP, ~20 MB
TEACHER_VARIANT = "fp32"  # a teacher runs at full precision, not the quantized variant its backend may prefer
INFO = "info.json"
MANIFEST = "manifest.jsonl"
LOCK = ".lock"
PCM_SCALE = 32767.0
# The per-utterance arrays of a shard, concatenated along their first axis, and how each is stored.
FIELDS = {"symbols": str, "token_ids": np.int32, "durations": np.int32, "pitch": np.float32, "energy": np.float32,
          "mel": np.float16, "audio": np.int16}
_SHARD = re.compile(r"^shard-(\d{5})\.npz$")
_TEMPORARY = re.compile(r"^\.shard-\d{5}\.npz\.\d+\.tmp$")


class TeacherDataError(ValueError):
    """Bad settings, a folder that cannot be written or holds another teacher's data, or damaged data."""


def default_out(voice: str) -> Path:
    """$QINGYIN_HOME/train/teacher/<voice> (a blend's name with its ':' and ',' replaced)."""
    return registry.qingyin_home() / "train" / "teacher" / re.sub(r"[^A-Za-z0-9._-]+", "_", voice)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.npz"


@dataclass
class Utterance:
    """One spoken piece as the teacher produced it."""

    id: str  # "<text id>/<piece>"
    text_id: str  # the corpus id of the text it is part of
    piece: int  # 0, 1, ... within that text
    text: str  # what this piece says
    symbols: list[str]  # the voice's symbols (Baker: phones, eos excluded)
    token_ids: np.ndarray  # (tokens,) int64, what the model took (Baker: eos included)
    durations: np.ndarray  # (tokens,) int64 frames
    pitch: np.ndarray  # float32, per token (Baker) or per frame (Kokoro), the family's units
    energy: np.ndarray
    mel: np.ndarray | None  # (frames, mels) float32, the voice's normalized mel; None for families without one
    audio: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    trim_frames: int = 0  # leading frames rendered but not in the audio (Kokoro)

    @property
    def frames(self) -> int:
        return int(self.durations.sum())

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass
class RenderSummary:
    """What a run did, and what the folder holds after it."""

    out: Path
    shards: int  # shards the run's plan covers
    rendered: int  # of them, rendered by this run
    texts: int  # texts rendered by this run
    utterances: int  # utterances rendered by this run
    skipped: int  # texts the voice could not read, in this run
    audio_seconds: float  # audio rendered by this run
    wall_seconds: float
    total_utterances: int  # in the folder after the run
    total_seconds: float

    @property
    def reused(self) -> int:
        return self.shards - self.rendered

    @property
    def utterances_per_second(self) -> float:
        return self.utterances / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def audio_seconds_per_second(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0


Report = Callable[[int, int, float], None]  # (texts, utterances, seconds of audio) done since the last call


def render_teacher_data(
    corpus: Sequence[tuple[str, str]] | None = None,
    voice: str | None = None,
    out: str | Path | None = None,
    *,
    limit: int | None = None,
    workers: int = 1,
    shard_size: int | None = None,
    backend: str | None = None,
    variant: str | None = TEACHER_VARIANT,
    threads: int | None = None,
    progress: bool = True,
    synthesizer: object = None,
    corpus_name: str | None = None,
) -> RenderSummary:
    """Render the first `limit` texts of `corpus` ((id, text) pairs; default: `teacher_corpus()`) with `voice`
    (default: the synthesizer's, else qingyin's default voice) into shards of `shard_size` texts (default: the
    folder's, else SHARD_SIZE) in `out` (default: `default_out(voice)`), skipping the shards already done.
    `backend` and `variant` pick the voice's runtime (default: its default backend, at fp32). `workers` processes,
    each with `threads` threads (default: cores // workers). `synthesizer`: an engine already
    loaded, used in this process (only with workers=1). `corpus_name` describes the corpus in info.json (default:
    the default sources, or "custom" for a corpus given).
    """
    _check_count("limit", limit, allow_none=True)
    _check_count("workers", workers)
    _check_count("shard_size", shard_size, allow_none=True)
    _check_count("threads", threads, allow_none=True)
    if synthesizer is not None and workers != 1:
        raise TeacherDataError("a synthesizer given is used in this process: workers must be 1")
    if synthesizer is not None:
        voice = synthesizer.selection.name  # type: ignore[attr-defined]
    voice = voice or registry.DEFAULT_VOICE
    spec = _voice_spec(voice)
    if corpus is None:
        corpus, corpus_name = teacher_corpus(), corpus_name or "cpp,everyday (qingyin.compress.corpus)"
    items = _checked_corpus(corpus)
    out = Path(out) if out is not None else default_out(voice)

    _make_folder(out)
    with _locked(out):
        info = _read_info(out)
        shard_size = shard_size or (SHARD_SIZE if info is None else int(info["shard_size"]))
        if info is not None:
            _check_info(out, info, voice, shard_size)
        plan_all = [items[i : i + shard_size] for i in range(0, len(items), shard_size)]
        count = len(items) if limit is None else min(limit, len(items))
        plan = {k: plan_all[k][: count - k * shard_size] for k in range(math.ceil(count / shard_size))}
        entries = _tidy(out, plan_all)
        pending = [k for k, texts in plan.items() if not _done(entries.get(k), texts)]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        settings = {"voice": voice, "backend": backend, "variant": variant, "out": str(out),
                    "threads": threads or max(1, cores // workers),
                    "expected": None if info is None else info["teacher"]}
        header = {"format": FORMAT, "shard_size": shard_size, "corpus": corpus_name or "custom",
                  "qingyin": qingyin.__version__, "fields": {k: np.dtype(v).name for k, v in FIELDS.items()}}
        begun = time.perf_counter()
        shown = {"utterances": 0, "seconds": 0.0}  # for the progress bar; the summary counts the shards' entries
        rendered: list[dict] = []
        texts_total = sum(len(plan[k]) for k in pending)
        if pending and workers == 1 and synthesizer is None:
            from qingyin.runtime.synthesizer import Synthesizer

            synthesizer = Synthesizer(voice, threads=settings["threads"], backend=backend, variant=variant)
        bar = _progress_bar(texts_total, progress, f"teacher {voice}")
        try:
            def report(texts: int, utterances: int, seconds: float) -> None:
                shown["utterances"] += utterances
                shown["seconds"] += seconds
                if bar is not None:
                    bar.set_postfix_str(f"{shown['utterances']} utt, {shown['seconds']:.0f} s audio", refresh=False)
                    bar.update(texts)

            tasks = [(k, plan[k]) for k in pending]
            if not tasks:
                results: Iterator[dict] = iter(())
            elif workers == 1:
                results = _in_process(synthesizer, settings, tasks, report)
            else:
                from qingyin import families

                families.ensure_model(spec.model, quiet=True)  # once, before the workers load it
                results = _in_processes(settings, tasks, min(workers, len(tasks)), report)
            for entry in results:
                if info is None:
                    info = {**header, "teacher": entry["teacher"]}
                    write_json(out / INFO, info)
                elif entry["teacher"] != info["teacher"]:
                    raise TeacherDataError(f"shard {entry['index']} was rendered by {_teacher(entry['teacher'])}, "
                                           f"the folder's teacher is {_teacher(info['teacher'])}")
                _append_entry(out, entry)
                entries[entry["index"]] = entry
                rendered.append(entry)
        finally:
            if bar is not None:
                bar.close()
    now = {key: sum(e[key] for e in rendered) for key in ("texts", "utterances", "skipped", "audio_seconds")}
    return RenderSummary(out, len(plan), len(pending), now["texts"], now["utterances"], now["skipped"],
                         float(now["audio_seconds"]), time.perf_counter() - begun,
                         sum(e["utterances"] for e in entries.values()),
                         sum(e["audio_seconds"] for e in entries.values()))


# --- rendering ----------------------------------------------------------------------------------------------------
def teacher_identity(synthesizer: object) -> dict:
    """What makes a teacher: the voice as selected and the model, runtime and variant that spoke it."""
    voice = synthesizer.voice  # type: ignore[attr-defined]
    return {"voice": synthesizer.selection.name, "model": voice.model.name,  # type: ignore[attr-defined]
            "family": voice.model.family, "backend": getattr(voice, "backend_name", None),
            "variant": getattr(voice, "variant", None), "sample_rate": int(voice.sample_rate)}


def render_shard(synthesizer: object, out: Path, index: int, texts: Sequence[CorpusText],
                 report: Report | None = None) -> dict:
    """Speak `texts` with the engine, write shard `index` into `out` (atomically) and return its manifest entry."""
    from qingyin.runtime.synthesizer import NothingToSayError

    parse = synthesizer.voice.parse_symbols  # type: ignore[attr-defined]
    rate = int(synthesizer.sample_rate)  # type: ignore[attr-defined]
    columns: dict[str, list] = {name: [] for name in FIELDS}
    meta: dict[str, list] = {"text_ids": [], "pieces": [], "texts": [], "trim_frames": [], "skipped_ids": [],
                             "skipped_reasons": []}
    seconds = 0.0
    for text_id, text in texts:
        try:  # the whole text or nothing: a text is one unit of the plan
            pieces = [s for s in synthesizer.iter_sentences(text) if s.phones]  # type: ignore[attr-defined]
        except (NothingToSayError, ValueError) as error:  # nothing speakable, too long, a symbol the voice lacks
            meta["skipped_ids"].append(text_id)
            meta["skipped_reasons"].append(f"{type(error).__name__}: {error}")
            if report:
                report(1, 0, 0.0)
            continue
        spoken = 0.0
        for number, piece in enumerate(pieces):
            features = piece.features
            ids = np.asarray(parse(piece.phones).ids, np.int32)
            if len(ids) != len(features.durations):
                raise TeacherDataError(f"{text_id}: the voice's symbols give {len(ids)} tokens for "
                                       f"{len(features.durations)} durations")
            meta["text_ids"].append(text_id)
            meta["pieces"].append(number)
            meta["texts"].append(piece.text)
            meta["trim_frames"].append(int(getattr(features, "trim_frames", 0)))
            columns["symbols"].append(np.asarray(piece.phones, dtype=str))
            columns["token_ids"].append(ids)
            columns["durations"].append(np.asarray(features.durations, np.int32))
            columns["pitch"].append(np.asarray(features.pitch, np.float32))
            columns["energy"].append(np.asarray(features.energy, np.float32))
            columns["mel"].append(None if features.mel is None else np.asarray(features.mel, np.float16))
            columns["audio"].append(np.clip(np.rint(piece.audio * PCM_SCALE), -32768, 32767).astype(np.int16))
            spoken += len(piece.audio) / rate
        seconds += spoken
        if report:
            report(1, len(pieces), spoken)
    arrays = {name: np.asarray(values, dtype=np.int32 if name in ("pieces", "trim_frames") else str)
              for name, values in meta.items()}
    for name, values in columns.items():
        if any(v is None for v in values):
            if not all(v is None for v in values):
                raise TeacherDataError(f"shard {index}: some utterances have a {name} and others not")
            continue
        if values:
            arrays[name] = np.concatenate(values)
        elif name != "mel":  # an empty shard: no mel, whose width is unknown
            arrays[name] = np.zeros(0, FIELDS[name])
        else:
            continue
        arrays[f"{name}_offsets"] = np.cumsum([0, *(len(v) for v in values)]).astype(np.int64)
    size, digest = _write_shard(out, index, arrays)
    return {"index": index, "shard": shard_name(index), "bytes": size, "sha256": digest,
            "texts": len(texts), "utterances": len(meta["text_ids"]), "skipped": len(meta["skipped_ids"]),
            "audio_seconds": round(seconds, 4), "teacher": teacher_identity(synthesizer),
            "items": [_item_key(text_id, text) for text_id, text in texts]}


def _in_process(synthesizer: object, settings: dict, tasks: list, report: Report) -> Iterator[dict]:
    error = _identity_error(settings["expected"], teacher_identity(synthesizer))
    if error:
        raise TeacherDataError(error)
    for index, texts in tasks:
        yield render_shard(synthesizer, Path(settings["out"]), index, texts, report)


def _in_processes(settings: dict, tasks: list, workers: int, report: Report) -> Iterator[dict]:
    """Shards rendered by `workers` spawned processes, as they finish; their progress is drawn by a thread here.
    A worker that dies (killed, out of memory) fails the run with BrokenProcessPool; the shards done are kept."""
    context = multiprocessing.get_context("spawn")  # not fork: torch and ONNX Runtime threads do not survive it
    queue = context.Queue()

    def drain() -> None:
        while (message := queue.get()) is not None:
            report(*message)

    drawer = threading.Thread(target=drain, name="teacher-progress", daemon=True)
    drawer.start()
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(settings, queue))
    try:
        futures = [pool.submit(_worker_shard, task) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        queue.put(None)
        drawer.join(timeout=10)


_WORKER: dict = {}


def _start_worker(settings: dict, queue: object) -> None:
    """A worker process loads the voice once (an error is kept and raised by its first shard)."""
    _WORKER.update(settings=settings, queue=queue, error=None, synthesizer=None)
    try:
        from qingyin.runtime.synthesizer import Synthesizer

        synthesizer = Synthesizer(settings["voice"], threads=settings["threads"], backend=settings["backend"],
                                  variant=settings["variant"], fetch=False)
        error = _identity_error(settings["expected"], teacher_identity(synthesizer))
        _WORKER.update(synthesizer=synthesizer, error=TeacherDataError(error) if error else None)
    except Exception as error:  # noqa: BLE001 - raised again, in the parent, by the worker's first shard
        _WORKER["error"] = error


def _worker_shard(task: tuple[int, list[CorpusText]]) -> dict:
    if _WORKER["error"] is not None:
        raise _WORKER["error"]
    queue = _WORKER["queue"]
    index, texts = task
    return render_shard(_WORKER["synthesizer"], Path(_WORKER["settings"]["out"]), index, texts,
                        lambda *message: queue.put(message))


def _identity_error(expected: dict | None, found: dict) -> str | None:
    if expected is None or expected == found:
        return None
    return (f"the folder holds teacher data of {_teacher(expected)}; this run loaded {_teacher(found)} "
            "(give another --out, or the same backend and variant)")


def _teacher(identity: dict) -> str:
    return f"{identity['voice']} ({identity['backend']}, {identity['variant']}, {identity['sample_rate']} Hz)"


# --- the folder ---------------------------------------------------------------------------------------------------
def _make_folder(out: Path) -> None:
    try:
        writable_folder(out)
    except OSError as error:
        raise TeacherDataError(f"cannot write teacher data into {out}: {error.strerror or error}") from None


class _locked:
    """Holds the folder's lock file for one run; a second run on the folder is refused."""

    def __init__(self, out: Path):
        self.path = out / LOCK

    def __enter__(self) -> None:
        self.file = open(self.path, "a+")  # noqa: SIM115 - closed in __exit__
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise TeacherDataError(f"another run is writing teacher data into {self.path.parent}") from None

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def _read_info(out: Path) -> dict | None:
    path = out / INFO
    if not path.exists():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TeacherDataError(f"{path} is damaged ({error}); remove the folder or give another --out") from None
    if info.get("format") != FORMAT:
        raise TeacherDataError(f"{path} is of format {info.get('format')}, this qingyin writes {FORMAT}: "
                               "give another --out")
    return info


def _check_info(out: Path, info: dict, voice: str, shard_size: int) -> None:
    if info["teacher"]["voice"] != voice:
        raise TeacherDataError(f"{out} holds teacher data of voice {info['teacher']['voice']!r}, not {voice!r}: "
                               "give another --out")
    if info["shard_size"] != shard_size:
        raise TeacherDataError(f"{out} holds shards of {info['shard_size']} texts, not {shard_size}: use "
                               f"--shard-size {info['shard_size']} or give another --out")


def read_manifest(out: Path) -> dict[int, dict]:
    """The finished shards listed in the manifest, by index (the last line of an index wins; a torn line is
    skipped)."""
    entries: dict[int, dict] = {}
    try:
        lines = (out / MANIFEST).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return entries
    for line in lines:
        try:
            entry = json.loads(line)
            entries[int(entry["index"])] = entry
        except (ValueError, KeyError, TypeError):
            continue
    return dict(sorted(entries.items()))


def _tidy(out: Path, plan_all: list[list[CorpusText]]) -> dict[int, dict]:
    """At a run's start: temporary files of killed runs removed, and the manifest rewritten with only the entries
    whose file is there at its listed size and whose texts are those of the corpus at their place."""
    for path in out.iterdir():
        if _TEMPORARY.match(path.name):
            path.unlink(missing_ok=True)
    kept = {}
    for index, entry in read_manifest(out).items():
        planned = [_item_key(*item) for item in plan_all[index]] if index < len(plan_all) else []
        items = entry.get("items", [])
        file = out / shard_name(index)
        if items and items == planned[: len(items)] and file.is_file() and file.stat().st_size == entry["bytes"]:
            kept[index] = entry
    _write_text(out / MANIFEST, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in kept.values()))
    return kept


def _done(entry: dict | None, texts: list[CorpusText]) -> bool:
    """Whether a kept manifest entry covers the planned texts (a full shard covers a partial plan of it)."""
    return entry is not None and entry["items"][: len(texts)] == [_item_key(*item) for item in texts]


def _append_entry(out: Path, entry: dict) -> None:
    with open(out / MANIFEST, "a", encoding="utf-8") as file:
        file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        file.flush()
        os.fsync(file.fileno())


def _write_shard(out: Path, index: int, arrays: dict[str, np.ndarray]) -> tuple[int, str]:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # deflate: audio to ~0.7, mel to ~0.9, ~2 % of the CPU time
    data = buffer.getvalue()
    temporary = out / f".{shard_name(index)}.{os.getpid()}.tmp"
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, out / shard_name(index))
    return len(data), hashlib.sha256(data).hexdigest()


def _write_text(path: Path, text: str) -> None:
    replace_file(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def _item_key(text_id: str, text: str) -> list[str]:
    return [text_id, hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]]


def _checked_corpus(corpus: Sequence[tuple[str, str]]) -> list[CorpusText]:
    if isinstance(corpus, str | bytes) or not isinstance(corpus, Sequence):
        raise TeacherDataError("corpus must be a list of (id, text) pairs")
    items, ids = [], set()
    for item in corpus:
        if not (isinstance(item, tuple | list) and len(item) == 2 and all(isinstance(v, str) for v in item)):
            raise TeacherDataError(f"corpus items must be (id, text) pairs of strings, got {item!r}")
        if item[0] in ids:
            raise TeacherDataError(f"corpus id {item[0]!r} is used twice")
        ids.add(item[0])
        items.append(CorpusText(*item))
    if not items:
        raise TeacherDataError("the corpus is empty")
    return items


def _voice_spec(voice: str) -> registry.VoiceSpec:
    """The catalogued voice (of a blend: the heaviest); UnknownVoiceError / VoiceSelectionError say what is wrong."""
    from qingyin.runtime.pool import parse_selector

    return parse_selector(voice)[0]


def _check_count(name: str, value: object, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TeacherDataError(f"{name} must be a whole number >= 1, got {value!r}")


def _progress_bar(total: int, enabled: bool, description: str):  # noqa: ANN202 - tqdm or None
    if not enabled or not total:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="text", desc=description, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


# --- reading ------------------------------------------------------------------------------------------------------
class TeacherData(Sequence[Utterance]):
    """The utterances of a teacher-data folder, in corpus order: `data[i]`, `for u in data`, `len(data)`,
    `data.seconds`. One shard is kept in memory at a time (iterate, or read indices in order, for speed).
    `verify`: check every shard's sha256 against the manifest first."""

    def __init__(self, path: str | Path, verify: bool = False):
        self.path = Path(path)
        info = _read_info(self.path) if self.path.is_dir() else None
        if info is None:
            raise TeacherDataError(f"no teacher data in {self.path} (no {INFO}); make it with "
                                   "`qingyin compress teacher-data --out DIR`")
        self.info = info
        self.sample_rate = int(info["teacher"]["sample_rate"])
        self.entries = list(read_manifest(self.path).values())
        for entry in self.entries:
            file = self.path / entry["shard"]
            if not file.is_file():
                raise TeacherDataError(f"{file} is listed in {MANIFEST} but missing: run the teacher data again")
            if verify and hashlib.sha256(file.read_bytes()).hexdigest() != entry["sha256"]:
                raise TeacherDataError(f"{file} does not match its sha256 in {MANIFEST}: run the teacher data again")
        self._starts = np.cumsum([0, *(e["utterances"] for e in self.entries)])
        self._cached: tuple[int, dict[str, np.ndarray]] | None = None

    @property
    def seconds(self) -> float:
        """Seconds of audio in all utterances."""
        return float(sum(e["audio_seconds"] for e in self.entries))

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(text id, reason) of the texts the voice could not read."""
        return [(str(i), str(r)) for n in range(len(self.entries))
                for i, r in zip(self.shard(n)["skipped_ids"], self.shard(n)["skipped_reasons"], strict=True)]

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> Utterance:  # type: ignore[override]
        if not isinstance(index, int | np.integer) or isinstance(index, bool):
            raise TypeError(f"teacher data is indexed by whole numbers, got {type(index).__name__}")
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(f"utterance {index} out of range: {len(self)} utterances")
        shard = int(np.searchsorted(self._starts, position, side="right")) - 1
        return self._utterance(self.shard(shard), int(position - self._starts[shard]))

    def __iter__(self) -> Iterator[Utterance]:
        for shard, entry in enumerate(self.entries):
            arrays = self.shard(shard)
            for row in range(entry["utterances"]):
                yield self._utterance(arrays, row)

    def shard(self, number: int) -> dict[str, np.ndarray]:
        """The arrays of the `number`-th shard listed (0-based), as stored."""
        if self._cached is None or self._cached[0] != number:
            with np.load(self.path / self.entries[number]["shard"], allow_pickle=False) as data:
                self._cached = (number, {name: data[name] for name in data.files})
        return self._cached[1]

    def _utterance(self, arrays: dict[str, np.ndarray], row: int) -> Utterance:
        def part(name: str) -> np.ndarray | None:
            if name not in arrays:
                return None
            offsets = arrays[f"{name}_offsets"]
            return arrays[name][offsets[row] : offsets[row + 1]]

        text_id, piece = str(arrays["text_ids"][row]), int(arrays["pieces"][row])
        mel = part("mel")
        return Utterance(
            id=f"{text_id}/{piece}", text_id=text_id, piece=piece, text=str(arrays["texts"][row]),
            symbols=[str(s) for s in part("symbols")], token_ids=part("token_ids").astype(np.int64),
            durations=part("durations").astype(np.int64), pitch=part("pitch").astype(np.float32),
            energy=part("energy").astype(np.float32), mel=None if mel is None else mel.astype(np.float32),
            audio=part("audio").astype(np.float32) / PCM_SCALE, sample_rate=self.sample_rate,
            trim_frames=int(arrays["trim_frames"][row]))

    def __repr__(self) -> str:
        return (f"TeacherData({str(self.path)!r}: {len(self)} utterances, {self.seconds / 3600:.2f} h, "
                f"teacher {_teacher(self.info['teacher'])})")
