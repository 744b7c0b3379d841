"""Character error rate of synthesized speech, as heard by Whisper.

Both sides are normalized the same way before they are compared (`normalize_for_cer`): traditional characters
become simplified ones (zhconv), then the text goes through qingyin's own frontend and only the Han characters
it would speak are kept. So "3个" and "三个" match (the frontend reads digits), and punctuation, Latin letters,
emoji and whitespace are ignored (the frontend does not speak them).

The edit distance is a plain Levenshtein distance over characters (substitutions, deletions and insertions
each count one), divided by the length of the normalized reference. For a corpus, add up `character_errors`
over the clips and divide the sums, rather than averaging per-clip rates.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from qingyin.evaluate.assets import METRIC_SAMPLE_RATE, ensure_whisper, import_optional, prepare_audio
from qingyin.text import text_to_sentences

PAD_SECONDS = 0.5
WHISPER_PROMPT = "以下是普通话的句子。"  # nudges Whisper towards simplified characters and punctuation


def normalize_for_cer(text: str) -> str:
    """The Han characters qingyin would speak for `text`, in simplified form.

    Needs zhconv (the ``eval`` extra). Characters the frontend cannot read (no Mandarin reading) are dropped,
    like punctuation, Latin letters and emoji.
    """
    zhconv = import_optional("zhconv")
    simplified = zhconv.convert(text, "zh-hans")  # character for character; no regional word substitutions
    return "".join(char for sentence in text_to_sentences(simplified).sentences for char, _ in sentence.pinyin)


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance between two strings, counted in characters."""
    start = 0  # a shared prefix and suffix cost nothing; dropping them keeps the table small
    while start < min(len(reference), len(hypothesis)) and reference[start] == hypothesis[start]:
        start += 1
    end_ref, end_hyp = len(reference), len(hypothesis)
    while end_ref > start and end_hyp > start and reference[end_ref - 1] == hypothesis[end_hyp - 1]:
        end_ref -= 1
        end_hyp -= 1
    reference, hypothesis = reference[start:end_ref], hypothesis[start:end_hyp]
    previous = list(range(len(hypothesis) + 1))
    for i, ref_char in enumerate(reference, start=1):
        current = [i]
        for j, hyp_char in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_char != hyp_char)))
        previous = current
    return previous[-1]


def character_errors(reference: str, hypothesis: str, normalize: bool = False) -> tuple[int, int]:
    """(edit distance, reference length) in characters; with `normalize`, of the normalized texts.

    Without `normalize` the strings are compared exactly as given.
    """
    if normalize:
        reference, hypothesis = normalize_for_cer(reference), normalize_for_cer(hypothesis)
    return edit_distance(reference, hypothesis), len(reference)


def cer(reference_text: str, hypothesis_text: str) -> float:
    """Character error rate of `hypothesis_text` against `reference_text`, both normalized first.

    It can exceed 1 (insertions count). When the normalized reference is empty (nothing to speak) the rate is
    0.0 if the normalized hypothesis is empty too, and `math.inf` otherwise: every character is an insertion and
    there is no length to divide by, and inf cannot be mistaken for a score.
    """
    errors, length = character_errors(reference_text, hypothesis_text, normalize=True)
    if length == 0:
        return 0.0 if errors == 0 else math.inf
    return errors / length


class WhisperTranscriber:
    """Whisper-base (faster-whisper, int8 on the CPU) transcribing Mandarin; the model is loaded once, when
    the transcriber is made.

    The model is fetched into $QINGYIN_HOME/eval/whisper-base on first use (see `ensure_whisper`) unless
    `model_dir` names a folder holding it.
    """

    def __init__(self, model_dir: str | Path | None = None, *, cpu_threads: int = 0, beam_size: int = 5,
                 quiet: bool = True) -> None:
        faster_whisper = import_optional("faster_whisper", "faster-whisper")
        import_optional("scipy.signal", "scipy")  # checked now rather than at the first resampled clip
        directory = Path(model_dir) if model_dir is not None else ensure_whisper(quiet=quiet)
        self.model_dir = directory
        self.beam_size = beam_size
        self._model = faster_whisper.WhisperModel(str(directory), device="cpu", compute_type="int8",
                                                  cpu_threads=cpu_threads)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """What Whisper hears in mono `audio` (any sample rate; resampled to 16 kHz), as one string."""
        wav = prepare_audio(audio, sample_rate, METRIC_SAMPLE_RATE)
        if wav.size == 0:
            return ""
        # Half a second of silence each side: Whisper-base often drops a one-word clip that starts and ends
        # at the edges (on our short sentences, CER 0.25 -> 0.08). The same for every system measured.
        pad = np.zeros(int(PAD_SECONDS * METRIC_SAMPLE_RATE), dtype=wav.dtype)
        wav = np.concatenate([pad, wav, pad])
        segments, _info = self._model.transcribe(
            wav, language="zh", task="transcribe", initial_prompt=WHISPER_PROMPT, beam_size=self.beam_size,
            condition_on_previous_text=False, vad_filter=False,
            temperature=0.0,  # no sampling fallback: deterministic, and no minutes-long retries on garbled audio
        )
        text = "".join(segment.text.strip() for segment in segments)
        # On very short clips Whisper sometimes repeats its prompt instead of transcribing; the prompt is ours,
        # never the speaker's, so an echo of it is removed rather than counted as nine inserted characters.
        return text.replace(WHISPER_PROMPT, "").replace(WHISPER_PROMPT.rstrip("。"), "")
