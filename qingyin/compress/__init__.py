"""Compression of a voice: smaller, faster students distilled from a teacher voice, exported as voice variants.

The plan (issue 15), one stage feeding the next; only the first is implemented so far:

    corpus.py        the texts a teacher reads: CPP's sentences (marks removed) and our everyday polyphone
                     sentences, deduplicated, with stable ids; `teacher_corpus()`
    teacher_data.py  teacher data: any voice, through the engine (qingyin.runtime.synthesizer), renders the
                     corpus into tokens, durations, pitch, energy, mels and audio, in resumable shards under
                     $QINGYIN_HOME/train/teacher/<voice>/, in parallel processes; `render_teacher_data()` writes
                     them, `TeacherData(path)` reads them for training
    pruning          (planned) structured pruning of the teacher's acoustic model and vocoder
    students         (planned) smaller acoustic models and vocoders distilled on the teacher data; training is
                     resumable across sessions (checkpoints in $QINGYIN_HOME/train/...) and runs on CPU with
                     torch.set_flush_denormal(True); each recipe has a smoke test on a tiny corpus in `make test`
    quantization     (planned) quantization-aware training of the students
    variants         (planned) the students exported as variants of their voice, through the quality gate

cli.py adds `qingyin compress teacher-data ...` to the command line (`add_compress_parser`).
"""
