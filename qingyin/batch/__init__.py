"""Batch synthesis: a corpus or a book in, audio files and a resumable manifest.jsonl out.

    items.py     the inputs: a text file (one utterance a line), JSONL ({id, text|ssml, voice, emotion, ...}),
                 a text/Markdown book (chapters -> files, each split into parts so workers share a chapter)
    manifest.py  manifest.jsonl: one line per item (id, path, seconds, sha256, voice, options, status, error)
    work.py      the unit of work and what a worker process does with it (one engine per voice per process)
    engines.py   where the work runs: `local` (a process pool, the default) or `ray` (a Ray cluster)
    job.py       the job: validate, skip what is done, run, assemble, encode, record

Ray is optional (`pip install 'qingyin[cluster]'`) and imported only by the ray engine.
"""

from __future__ import annotations

from qingyin.batch.items import Item, read_items
from qingyin.batch.job import BatchReport, run_batch
from qingyin.batch.manifest import Manifest

__all__ = ["BatchReport", "Item", "Manifest", "read_items", "run_batch"]
