"""TensorFlowTTS .tflite files -> our safetensors weights + JSON configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safetensors.torch import save_file

from qingyin.families.fs2_mbmelgan.convert.fastspeech2 import import_fastspeech2
from qingyin.families.fs2_mbmelgan.convert.mb_melgan import import_mb_melgan
from qingyin.families.fs2_mbmelgan.model.config import config_to_dict
from qingyin.voices import registry
from qingyin.voices.tflite_graph import TFLiteGraph


def convert_voice(assets: dict[str, Path], output: Path) -> None:
    """assets: {'acoustic', 'vocoder', 'symbols'} -> the converted files in `output`."""
    for importer, source, config_name, weights_name in (
        (import_fastspeech2, assets["acoustic"], registry.ACOUSTIC_CONFIG, registry.ACOUSTIC_WEIGHTS),
        (import_mb_melgan, assets["vocoder"], registry.VOCODER_CONFIG, registry.VOCODER_WEIGHTS),
    ):
        config, state = importer(TFLiteGraph(source))
        save_file({k: v.contiguous() for k, v in state.items()}, str(output / weights_name))
        (output / config_name).write_text(json.dumps(config_to_dict(config), indent=2))
    shutil.copyfile(assets["symbols"], output / registry.SYMBOLS)
