"""The voice's models on ONNX Runtime (CPU), with the torch backend's interface; never imports torch.

The acoustic model runs as two graphs (see fs2_mbmelgan.export.onnx_export): the encoder gives unrounded, scaled
frame counts per symbol; here they are rounded half to even (as torch.round), replaced by forced durations
if given, and the encoder states are repeated per frame before the decoder graph. A batch is padded to its
longest item for each graph (the graphs mask by `lengths` / `mel_lengths`). The graphs are made beforehand
(`qingyin models fetch baker` exports fp32, `qingyin export baker --variant X` the others); a variant whose files
are missing or were made from other weights is refused with VoiceNotAvailableError naming that command.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from qingyin.families.errors import SequenceTooLongError
from qingyin.families.fs2_mbmelgan.backends import check_threads, vocoder_input
from qingyin.families.fs2_mbmelgan.export import (
    DECODER_FILE,
    ENCODER_FILE,
    MANIFEST_FILE,
    VOCODER_FILE,
    WEIGHT_STORAGE_VARIANTS,
    check_variant,
    default_variant,
    is_exported,
    variant_dir,
)
from qingyin.families.fs2_mbmelgan.features import AcousticControls, AcousticFeatures, frame_states
from qingyin.families.fs2_mbmelgan.streaming import vocoder_context_frames
from qingyin.families.onnx_sessions import cpu_session, session_options
from qingyin.voices import registry
from qingyin.voices.wheels import VoiceNotAvailableError

DEFAULT_THREADS = 2


class OnnxBackend:
    """FastSpeech2 + MB-MelGAN as ONNX Runtime sessions on the CPU; `variant` is one of fs2_mbmelgan.export.VARIANTS,
    or None for `fs2_mbmelgan.export.default_variant` (the fastest that passed its quality gate, else fp32).

    `graphs`: a folder to load the three graphs and their geometry (manifest.json) from instead of the variant's
    export, e.g. a mobile bundle (qingyin.compress.bundle), whose graphs are ORT-format .ort files."""

    def __init__(self, voice_dir: str | Path, variant: str | None = None, threads: int | None = None,
                 graphs: str | Path | None = None):
        voice_dir = Path(voice_dir)
        variant = default_variant(voice_dir) if variant is None else check_variant(variant)
        self.variant = variant
        check_threads(threads)
        self.threads = threads or min(DEFAULT_THREADS, os.cpu_count() or 1)
        folder = exported_dir(voice_dir, variant) if graphs is None else Path(graphs)
        options = session_options(self.threads)
        float_options = session_options(self.threads)
        if variant in WEIGHT_STORAGE_VARIANTS:
            # Their encoder and vocoder hold INT8-stored weights before float arithmetic (export.weight_storage).
            # With ONNX Runtime's QDQ handling on, DequantizeLinear is not constant-folded, so they were dequantized
            # on every call; without it they are folded into float weights once, at load: the same output, the
            # vocoder 0.78-0.81x the time (BENCHMARKS.md, "Student acoustic model"). The decoder keeps it for its
            # static INT8 convolutions; its INT8-stored MatMul weights fuse into MatMulNBits, told to do float
            # arithmetic (accuracy level 1, as a mobile bundle's are: qingyin.compress.bundle) rather than quantize
            # the activations too (ONNX Runtime's default, level 4).
            float_options.add_session_config_entry("session.disable_quant_qdq", "1")
            options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "1")
        self.encoder = cpu_session(graph_file(folder, ENCODER_FILE), float_options)
        self.decoder = cpu_session(graph_file(folder, DECODER_FILE), options)
        self.vocoder = cpu_session(graph_file(folder, VOCODER_FILE), float_options)
        geometry = _geometry(folder)
        self.hop_length = geometry["hop_length"]
        self.max_positions = geometry["max_positions"]
        self.min_vocoder_frames = geometry["min_vocoder_frames"]
        acoustic_config = json.loads((voice_dir / registry.ACOUSTIC_CONFIG).read_text(encoding="utf-8"))
        self.pad_id = int(acoustic_config.get("pad_id", 0))  # FastSpeech2Config's default when absent
        vocoder_config = json.loads((voice_dir / registry.VOCODER_CONFIG).read_text(encoding="utf-8"))
        # The config's fields, read without importing the torch module that defines MBMelGANConfig.
        self.vocoder_context_frames = vocoder_context_frames(
            SimpleNamespace(**vocoder_config, hop_length=self.hop_length))

    def acoustic(self, ids: list[int], controls: AcousticControls) -> AcousticFeatures:
        return self._acoustic_rows([(ids, controls)])[0]

    def acoustic_batch(self, batch: list[tuple[list[int], AcousticControls]]) -> list[AcousticFeatures]:
        """Several utterances in one padded encoder run and one padded decoder run (the graphs' masks keep each
        item as it would be alone: durations identical, mel/pitch/energy within float noise).

        Like the torch backend, a batch of one or one with forced durations or a pitch contour inside symbols
        (`pitch_scale_end`) goes through `acoustic` one by one.
        """
        if len(batch) <= 1 or any(c.durations is not None or c.pitch_scale_end is not None for _, c in batch):
            return [self.acoustic(ids, controls) for ids, controls in batch]
        return self._acoustic_rows(batch)

    def _acoustic_rows(self, batch: list[tuple[list[int], AcousticControls]]) -> list[AcousticFeatures]:
        """`batch` through both graphs at once, padded to its longest item; each row checked as if alone."""
        counts = [len(ids) for ids, _ in batch]
        for count in counts:
            if count > self.max_positions:
                raise SequenceTooLongError(f"{count} symbols exceed the model's limit of {self.max_positions}")
        controls = [c for _, c in batch]
        states, _, frames, pitch, energy = self.encoder.run(None, encoder_feed(batch, self.pad_id))
        durations = [_durations(frames[row, :count], c.durations)
                     for row, (count, c) in enumerate(zip(counts, controls, strict=True))]
        end_states = [None] * len(batch)
        if any(c.pitch_scale_end is not None for c in controls):
            # The same symbols at each one's end pitch (energy and durations unchanged; only the states are used).
            ends = [(ids, replace(c, pitch_scale=c.pitch_scale if c.pitch_scale_end is None else c.pitch_scale_end))
                    for ids, c in batch]
            states_at_end, _, _, pitch_at_end, _ = self.encoder.run(None, encoder_feed(ends, self.pad_id))
            end_states = [None if c.pitch_scale_end is None else states_at_end[row, :count]
                          for row, (count, c) in enumerate(zip(counts, controls, strict=True))]
            pitch = (pitch + pitch_at_end) / 2  # each symbol's pitch at its middle
        mels = self.decode_batch([(states[row, :count], durations[row]) for row, count in enumerate(counts)],
                                 end_states)
        return [AcousticFeatures(mel, durations[row], pitch[row, :count], energy[row, :count])
                for row, (count, mel) in enumerate(zip(counts, mels, strict=True))]

    def predict(self, ids: list[int], speaker: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Unrounded frames, pitch and energy per symbol at neutral settings, and the encoder states (symbols, H)
        that `decode_batch` turns into a mel with those pitch and energy."""
        if len(ids) > self.max_positions:
            raise SequenceTooLongError(f"{len(ids)} symbols exceed the model's limit of {self.max_positions}")
        states, _, frames, pitch, energy = self.encoder.run(
            None, encoder_feed([(ids, AcousticControls(speaker=speaker))], self.pad_id))
        return frames[0], pitch[0], energy[0], states[0]

    def decode_batch(self, items: list[tuple[np.ndarray, np.ndarray]],
                     end_states: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """Mels of (encoder states (symbols, H), integer frames per symbol) items, in one padded decoder run;
        an item's `end_states` (its symbols at their end pitch) make each symbol's frames move from one to the
        other (features.frame_states)."""
        totals = [self._checked_total(frames) for _, frames in items]
        ends = end_states or [None] * len(items)
        expanded = np.zeros((len(items), max(totals), items[0][0].shape[-1]), dtype=items[0][0].dtype)
        for row, ((states, frames), end) in enumerate(zip(items, ends, strict=True)):
            expanded[row, : totals[row]] = frame_states(states, frames, end)
        (mel,) = self.decoder.run(None, {"states": expanded, "mel_lengths": np.asarray(totals, dtype=np.int64)})
        return [mel[row, :total] for row, total in enumerate(totals)]

    def _checked_total(self, durations: np.ndarray) -> int:
        """The mel length of one item's integer durations, checked as for an item alone."""
        total = int(durations.sum())
        if total == 0:
            raise ValueError("every symbol got zero frames: nothing to synthesize (speak slower or force durations)")
        if total > self.max_positions:
            raise SequenceTooLongError(f"{total} mel frames exceed the model's limit of {self.max_positions}; "
                                       "synthesize shorter sentences or speak faster")
        return total

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        frames = mel.shape[0]
        if frames == 0:
            return np.zeros(0, np.float32)
        (audio,) = self.vocoder.run(None, {"mel": vocoder_input(mel, self.min_vocoder_frames)[None]})
        return audio[0, : frames * self.hop_length]


def exported_dir(voice_dir: Path, variant: str) -> Path:
    """The variant's folder; VoiceNotAvailableError naming the command that makes it when missing or stale."""
    if not is_exported(voice_dir, variant):
        command = (f"qingyin models fetch {voice_dir.name}" if variant == "fp32"
                   else f"qingyin export {voice_dir.name} --variant {variant}")
        raise VoiceNotAvailableError(
            f"the {variant} ONNX graphs of {voice_dir.name!r} are missing or were made from other weights "
            f"({variant_dir(voice_dir, variant)}); run `{command}`")
    return variant_dir(voice_dir, variant)


def graph_file(folder: Path, name: str) -> Path:
    """The graph `name` (an .onnx file name) in `folder`, or its ORT-format twin (.ort) when only that is there."""
    path = folder / name
    ort_format = path.with_suffix(".ort")
    return ort_format if not path.is_file() and ort_format.is_file() else path


def encoder_feed(batch: list[tuple[list[int], AcousticControls]], pad_id: int = 0) -> dict[str, np.ndarray]:
    """The encoder graph's inputs for `batch`: ids padded with `pad_id` to the longest item, lengths, speakers
    and per-symbol scales (the padding is masked in the graph)."""
    counts = [len(ids) for ids, _ in batch]
    steps = max(counts)
    symbols = np.full((len(batch), steps), pad_id, dtype=np.int64)
    for row, (ids, _) in enumerate(batch):
        symbols[row, : len(ids)] = ids
    controls = [c for _, c in batch]
    return {
        "symbols": symbols,
        "lengths": np.asarray(counts, dtype=np.int64),
        "speakers": np.asarray([c.speaker for c in controls], dtype=np.int64),
        "duration_scale": _per_symbol([c.duration_scale for c in controls], counts, steps),
        "pitch_scale": _per_symbol([c.pitch_scale for c in controls], counts, steps),
        "energy_scale": _per_symbol([c.energy_scale for c in controls], counts, steps),
    }


def _per_symbol(scales: list[float | np.ndarray], counts: list[int], steps: int) -> np.ndarray:
    """Scales as the (batch, steps) float32 array the encoder graph takes: a float fills its row, an array has
    one value per symbol of its item; the padding after an item is 1 (masked in the graph)."""
    rows = np.ones((len(scales), steps), dtype=np.float32)
    for row, (scale, count) in enumerate(zip(scales, counts, strict=True)):
        values = np.asarray(scale, dtype=np.float32)
        if values.ndim != 0 and values.shape != (count,):
            raise ValueError(f"per-symbol scales need {count} values (eos included), got shape {values.shape}")
        rows[row, :count] = values
    return rows


def _durations(frames: np.ndarray, forced: np.ndarray | None) -> np.ndarray:
    """Integer frames per symbol: the predictions rounded half to even like torch.round, or the forced ones."""
    if forced is None:
        return np.rint(frames).astype(np.int64)
    forced = np.asarray(forced).astype(np.int64)
    if forced.shape != frames.shape:
        raise ValueError(f"forced durations need {frames.shape[0]} values (eos included), got shape {forced.shape}")
    return forced


def _geometry(folder: Path) -> dict[str, int]:
    """hop_length, max_positions and min_vocoder_frames, as the exporter recorded them from the torch configs."""
    return json.loads((folder / MANIFEST_FILE).read_text())["geometry"]
