"""The voice's models as PyTorch modules on the CPU (the reference backend; see backends.py for the interface)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from qingyin.families.fs2_mbmelgan.backends import check_threads, vocoder_input
from qingyin.families.fs2_mbmelgan.features import AcousticControls, AcousticFeatures
from qingyin.families.fs2_mbmelgan.model.config import config_from_dict
from qingyin.families.fs2_mbmelgan.model.fastspeech2 import FastSpeech2, FastSpeech2Config
from qingyin.families.fs2_mbmelgan.model.mb_melgan import MBMelGANConfig, MBMelGANGenerator
from qingyin.families.fs2_mbmelgan.streaming import vocoder_context_frames
from qingyin.voices import registry


class TorchBackend:
    """FastSpeech2 + MB-MelGAN as PyTorch modules on the CPU."""

    def __init__(self, voice_dir: str | Path, threads: int | None = None):
        voice_dir = Path(voice_dir)
        check_threads(threads)
        if threads is not None:
            torch.set_num_threads(threads)
        self.acoustic_model = load_module(voice_dir, registry.ACOUSTIC_CONFIG, registry.ACOUSTIC_WEIGHTS,
                                    FastSpeech2Config, FastSpeech2)
        self.vocoder = load_module(voice_dir, registry.VOCODER_CONFIG, registry.VOCODER_WEIGHTS,
                             MBMelGANConfig, MBMelGANGenerator)
        self.hop_length = self.vocoder.config.hop_length
        self.max_positions = self.acoustic_model.config.max_positions
        self.min_vocoder_frames = self.vocoder.config.min_frames
        self.vocoder_context_frames = vocoder_context_frames(self.vocoder.config)

    @torch.inference_mode()
    def acoustic(self, ids: list[int], controls: AcousticControls) -> AcousticFeatures:
        durations = None if controls.durations is None else torch.as_tensor(controls.durations)[None].long()
        out = self.acoustic_model(
            torch.tensor([ids], dtype=torch.long),
            speakers=torch.tensor([controls.speaker]),
            duration_scale=_scale(controls.duration_scale),
            pitch_scale=_scale(controls.pitch_scale),
            energy_scale=_scale(controls.energy_scale),
            durations=durations,
            pitch_scale_end=None if controls.pitch_scale_end is None else _scale(controls.pitch_scale_end),
        )
        return AcousticFeatures(out.mel[0].numpy(), out.durations[0].numpy().astype(np.int64),
                                out.pitch[0].numpy(), out.energy[0].numpy())

    @torch.inference_mode()
    def predict(self, ids: list[int], speaker: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, None]:
        """Unrounded frames, pitch and energy per symbol at neutral settings (no reusable states: None)."""
        frames, pitch, energy = self.acoustic_model.predict(torch.tensor([ids], dtype=torch.long),
                                                            torch.tensor([speaker]))
        return frames[0].numpy(), pitch[0].numpy(), energy[0].numpy(), None

    @torch.inference_mode()
    def acoustic_batch(self, batch: list[tuple[list[int], AcousticControls]]) -> list[AcousticFeatures]:
        """Several utterances in one padded forward pass (masks keep each item as it would be alone).

        Forced durations and pitch contours inside symbols are not batched: such items go through `acoustic` one
        by one.
        """
        if any(c.durations is not None or c.pitch_scale_end is not None for _, c in batch) or len(batch) == 1:
            return [self.acoustic(ids, controls) for ids, controls in batch]
        lengths = [len(ids) for ids, _ in batch]
        steps = max(lengths)
        symbols = torch.full((len(batch), steps), self.acoustic_model.config.pad_id, dtype=torch.long)
        for row, (ids, _) in enumerate(batch):
            symbols[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        out = self.acoustic_model(
            symbols,
            torch.tensor(lengths),
            speakers=torch.tensor([controls.speaker for _, controls in batch]),
            duration_scale=_batch_scale([c.duration_scale for _, c in batch], steps),
            pitch_scale=_batch_scale([c.pitch_scale for _, c in batch], steps),
            energy_scale=_batch_scale([c.energy_scale for _, c in batch], steps),
        )
        features = []
        for row, count in enumerate(lengths):
            frames = int(out.mel_lengths[row])
            features.append(AcousticFeatures(
                out.mel[row, :frames].numpy(), out.durations[row, :count].numpy().astype(np.int64),
                out.pitch[row, :count].numpy(), out.energy[row, :count].numpy()))
        return features

    @torch.inference_mode()
    def vocode(self, mel: np.ndarray) -> np.ndarray:
        frames = mel.shape[0]
        if frames == 0:
            return np.zeros(0, np.float32)
        audio = self.vocoder(torch.from_numpy(vocoder_input(mel, self.min_vocoder_frames))[None])[0]
        return audio[: frames * self.hop_length].numpy()


def _scale(value: float | np.ndarray) -> float | torch.Tensor:
    """A float as is; per-symbol values as a (1, symbols) tensor."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))[None]
    return value


def _batch_scale(scales: list[float | np.ndarray], steps: int) -> torch.Tensor:
    """(batch, steps) per-symbol scales: a float fills its row; an array fills its row's first symbols."""
    rows = torch.ones(len(scales), steps)
    for row, scale in enumerate(scales):
        if isinstance(scale, np.ndarray):
            rows[row, : len(scale)] = torch.from_numpy(np.asarray(scale, dtype=np.float32))
        else:
            rows[row] = float(scale)
    return rows


def load_module(voice_dir: Path, config_name: str, weights_name: str, config_cls: type, model_cls: type
                ) -> torch.nn.Module:
    """`model_cls` built from the JSON config `config_name` in `voice_dir` and loaded with the weights
    `weights_name` (safetensors), in eval mode."""
    config = config_from_dict(config_cls, json.loads((voice_dir / config_name).read_text()))
    with torch.device("meta"):  # no random initialization: every tensor comes from the file
        model = model_cls(config)
    model.load_state_dict(load_file(str(voice_dir / weights_name)), strict=True, assign=True)
    return model.eval()
