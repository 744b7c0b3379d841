"""Speech quality without a reference: DNSMOS (Microsoft's DNS Challenge P.835 and P.808 predictors).

speechmos ships the DNSMOS ONNX models, so nothing is fetched; they are loaded on the first call and kept.
DNSMOS scores 9.01 s windows of 16 kHz audio (hopping by 1 s) and averages them. A shorter clip is tiled,
i.e. repeated end to end, to fill one window, as Microsoft's reference script does; the result's
``duration_s`` says how long the clip really was, so tiled scores can be told apart.
"""

from __future__ import annotations

import math

import numpy as np

from qingyin.evaluate.assets import METRIC_SAMPLE_RATE, import_optional, prepare_audio

DNSMOS_WINDOW_S = 9.01  # speechmos.dnsmos.INPUT_LENGTH
DNSMOS_KEYS = ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")


def dnsmos(audio: np.ndarray, sample_rate: int) -> dict[str, float]:
    """DNSMOS of mono `audio` (any sample rate; resampled to 16 kHz), on the 1-5 MOS scale.

    Returns ``ovrl_mos`` (overall), ``sig_mos`` (speech signal), ``bak_mos`` (background noise), ``p808_mos``
    (P.808 overall) and ``duration_s`` (the clip's length; below DNSMOS_WINDOW_S the clip was tiled). Samples
    beyond ±1 are clipped, as a 16-bit file would clip them. Raises ValueError for an empty clip.
    """
    if np.asarray(audio).size == 0:
        raise ValueError("cannot rate an empty clip")
    speechmos = import_optional("speechmos.dnsmos", "speechmos")
    wav = np.clip(prepare_audio(audio, sample_rate, METRIC_SAMPLE_RATE), -1.0, 1.0)
    duration = wav.size / METRIC_SAMPLE_RATE
    window = math.ceil(DNSMOS_WINDOW_S * METRIC_SAMPLE_RATE)
    if wav.size < window:
        wav = np.resize(wav, window)  # repeats the clip cyclically up to one window
    scores = speechmos.run(wav.astype(np.float32), sr=METRIC_SAMPLE_RATE)
    result = {key: float(scores[key]) for key in DNSMOS_KEYS}
    result["duration_s"] = duration
    return result
