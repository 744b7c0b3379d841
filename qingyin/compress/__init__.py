"""Compression of a voice: smaller, faster students distilled from a teacher voice, exported as voice variants.

The plan (issue 15), one stage feeding the next; teacher data, vocoder pruning and recovery, the student acoustic
model's training, shipping trained students and mobile bundles are implemented so far:

    corpus.py        the texts a teacher reads: CPP's sentences (marks removed) and our everyday polyphone
                     sentences, deduplicated, with stable ids; `teacher_corpus()`
    teacher_data.py  teacher data: any voice, through the engine (qingyin.runtime.synthesizer), renders the
                     corpus into tokens, durations, pitch, energy, mels and audio, in resumable shards under
                     $QINGYIN_HOME/train/teacher/<voice>/, in parallel processes; `render_teacher_data()` writes
                     them, `TeacherData(path)` reads them for training
    prune.py         structured channel pruning of the MB-MelGAN vocoder (torch-pruning, the `compress` extra);
                     a pruned vocoder is rebuilt from its channel counts (fs2_mbmelgan.model.widths) without it
    vocoder_recipe.py  the settings of a vocoder recovery run (torch-free, for the command line)
    vocoder_losses.py  multi-resolution STFT (full band, sub-band via PQMF analysis), log-mel L1 for validation
    vocoder_recovery.py  recovery fine-tuning of a pruned vocoder against the teacher data, resumable
                     (checkpoints in $QINGYIN_HOME/train/prune/vocoder-<ratio>/); generator losses only so far
    student_recipe.py  a student's shape (decoder and postnet widths) and training settings (torch-free)
    student.py       a student acoustic model: the teacher's FastSpeech2 front (encoder, variance predictors)
                     with a smaller decoder and postnet cut from the teacher's; saved as a voice's acoustic files
    student_training.py  trains the student's decoder and postnet on the teacher data's mels, the front frozen
                     (checkpoints in $QINGYIN_HOME/train/student/<voice>-<hidden>x<layers>/)
    runs.py          what the training runs share: their folder (recipe, log), resuming, the loop of steps,
                     validations and checkpoints with a progress bar
    checkpoint.py    atomic training checkpoints with the random states
    ship.py          a trained student or pruned vocoder into the package, fp16 with a sha256 manifest
                     (qingyin.families.fs2_mbmelgan.students loads them; the student variants are exported from them)
    bundle.py        a mobile bundle of an exported Baker variant: its graphs in ORT format, the operator list for
                     a reduced ONNX Runtime build, symbols, configs, licence notice and a manifest, checked to
                     synthesize like the ONNX graphs; into $QINGYIN_HOME/bundles/<voice>-<variant>/
    pruning          (planned) structured pruning of the acoustic model's decoder and postnet
    quantization     (planned) quantization-aware training of the students (post-training INT8 holds so far)

cli.py adds `qingyin compress teacher-data ...`, `prune-vocoder ...`, `student ...`, `ship-student ...`,
`ship-vocoder ...` and `bundle ...` to the command line (`add_compress_parser`).
"""
