"""Chunked vocoding: audio for the first frames of a mel comes out long before the whole mel is vocoded.

The MB-MelGAN generator is a stack of convolutions, so an audio sample depends only on the mel frames within
its receptive field. `stream_vocoder` vocodes each chunk of frames together with `context` frames of the real
mel on either side and keeps only the chunk's own samples; with `context >= vocoder_context_frames(config)`
the pieces concatenate to what one call on the whole mel gives (see `stream_vocoder` for why, and for the
limit the sub-band quantization puts on "exactly").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the config is only read; importing it would load torch
    from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANConfig


Vocode = Callable[[np.ndarray], np.ndarray]


def vocoder_context_frames(config: MBMelGANConfig) -> int:
    """Mel frames of real context needed on each side of a chunk for its samples to equal whole-mel vocoding.

    A window cut out of a longer mel differs from the whole mel beyond its cut edges; every layer carries
    that difference further in (by its half-width, reflection padding included), so after the PQMF the
    samples within `reach` of a cut edge can differ and the rest cannot. The context must cover that reach.
    For the Baker voice the reach is 6172 samples inward from a cut start and 6051 from a cut end
    (exactly the extent a one-frame perturbation spreads to, measured), i.e. 21 frames of 300 samples.
    """
    return math.ceil(max(vocoder_reach(config)) / config.hop_length)


def vocoder_reach(config: MBMelGANConfig) -> tuple[int, int]:
    """Audio samples (after a cut start, before a cut end) that can differ from whole-mel vocoding.

    Equivalently: changing mel frame f changes samples f * hop - reach[1] ... (f + 1) * hop - 1 + reach[0].
    """
    return _reach_from_cut_start(config), _reach_from_cut_end(config)


def _stack_half_width(config: MBMelGANConfig) -> int:
    """Samples one side of a sample that the dilated convolutions of one upsampling stage read, together."""
    half_kernel = (config.stack_kernel_size - 1) // 2
    return sum(half_kernel * config.stack_kernel_size**j for j in range(config.stacks))


def _reach_from_cut_start(config: MBMelGANConfig) -> int:
    """Audio samples after a cut start that can differ from whole-mel vocoding."""
    reach = config.kernel_size // 2  # in mel frames, after the input conv
    for scale in config.upsample_scales:
        # transposed conv (kernel 2 * scale, stride scale, first scale // 2 outputs cropped): output o reads
        # inputs ceil((o + scale // 2 + 1) / scale) - 2 ... floor((o + scale // 2) / scale)
        reach = (reach + 1) * scale - scale // 2 + _stack_half_width(config)
    reach += config.kernel_size // 2  # output conv
    # zero insertion puts input i at output subbands * i only, so the last differing one is subbands * (reach - 1)
    reach = max(0, (reach - 1) * config.subbands + 1)
    return reach + config.taps // 2


def _reach_from_cut_end(config: MBMelGANConfig) -> int:
    """Audio samples before a cut end that can differ from whole-mel vocoding."""
    reach = config.kernel_size // 2
    for scale in config.upsample_scales:
        reach = reach * scale + scale // 2 + _stack_half_width(config)
    reach += config.kernel_size // 2
    return reach * config.subbands + config.taps // 2


def chunk_bounds(frames: int, first_chunk: int, chunk: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges covering `frames`: `first_chunk` frames, then `chunk` frames at a time."""
    bounds, start, size = [], 0, first_chunk
    while start < frames:
        end = min(frames, start + size)
        bounds.append((start, end))
        start, size = end, chunk
    return bounds


def vocoder_window(start: int, end: int, frames: int, context: int, min_frames: int) -> tuple[int, int]:
    """Frames [lo, hi) to vocode for chunk [start, end): `context` real frames each side where the mel has them.

    A window shorter than `min_frames` would be padded by the backend (last frame repeated), which is not the
    mel that follows; it is widened with more real frames instead. Only a whole mel shorter than
    `min_frames` stays short, and then the window is the whole mel, padded just as whole-mel vocoding pads it.
    """
    lo, hi = max(0, start - context), min(frames, end + context)
    if hi - lo < min_frames:
        hi = min(frames, lo + min_frames)
        lo = max(0, hi - min_frames)
    return lo, hi


def stream_vocoder(vocode: Vocode, mel: np.ndarray, hop_length: int, context: int,
                   first_chunk: int = 10, chunk: int = 50, *, min_frames: int = 1) -> Iterator[np.ndarray]:
    """Vocode `mel` (frames x num_mels) chunk by chunk; yields each chunk's audio (its frames x hop_length).

    The first chunk has `first_chunk` frames so that audio starts early, later ones `chunk` frames (the last
    one what is left). Each chunk is vocoded as the window `vocoder_window` gives: up to `context` frames of
    the real mel either side. A zero-frame mel yields nothing. Pass the backend's `min_vocoder_frames` as
    `min_frames`, so that no window is ever padded by the backend.

    Why the concatenation equals `vocode(mel)`: the generator is convolutions (reflection-padded), transposed
    convolutions, pointwise nonlinearities and the PQMF filter, so a sample depends only on frames within its
    receptive field, and a window edge disturbs only samples within `vocoder_context_frames` frames of it.
    A window edge is either the true start or end of the mel, where the window reflects exactly the samples
    the whole mel reflects, or a cut at least `context` frames from the chunk, whose disturbance then stays
    in the discarded context. What is left is floating-point rounding: convolutions over different lengths
    may sum in a different order (about 1e-7 here).

    One step is not continuous: with `subband_quant_step` > 0 (the Baker voice) the tanh sub-band signals
    are rounded to multiples of the step (1/128). A sub-band value that lies within that floating-point
    rounding of a rounding boundary can land on the other side in one computation than in the other; it
    then differs by one step, and the PQMF spreads that over taps + 1 = 63 samples, each by at most
    step * subbands * max|synthesis filter| (1/128 * 4 * 0.2526 = 7.9e-3 for Baker, which is what is
    measured). Real sentences show about one such flip per few hundred frames; the tests bound both.
    """
    _check_whole(hop_length, "hop_length", 1)
    _check_whole(context, "context", 0)
    _check_whole(first_chunk, "first_chunk", 1)
    _check_whole(chunk, "chunk", 1)
    _check_whole(min_frames, "min_frames", 1)
    if not isinstance(mel, np.ndarray) or mel.ndim != 2:
        raise ValueError(f"mel must be a 2-D array (frames x num_mels), got {getattr(mel, 'shape', type(mel))}")
    return _stream(vocode, mel, hop_length, context, first_chunk, chunk, min_frames)


def _stream(vocode: Vocode, mel: np.ndarray, hop_length: int, context: int, first_chunk: int, chunk: int,
            min_frames: int) -> Iterator[np.ndarray]:
    """The generator behind `stream_vocoder`, so that bad arguments raise at the call, not at the first next()."""
    frames = mel.shape[0]
    for start, end in chunk_bounds(frames, first_chunk, chunk):
        lo, hi = vocoder_window(start, end, frames, context, min_frames)
        audio = vocode(mel[lo:hi])
        if audio.shape != ((hi - lo) * hop_length,):
            raise ValueError(f"vocode returned {audio.shape} samples for {hi - lo} frames; "
                             f"expected ({(hi - lo) * hop_length},) with hop_length {hop_length}")
        yield audio[(start - lo) * hop_length : (end - lo) * hop_length].copy()


def _check_whole(value: object, name: str, minimum: int) -> None:
    """Raise ValueError unless `value` is an int (not a bool) of at least `minimum`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
