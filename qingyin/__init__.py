"""qingyin (轻音): light, fast Mandarin text-to-speech.

    import qingyin
    tts = qingyin.TTS(voice="baker")
    result = tts.synthesize("今天天气不错。", speed=1.1)
    result.save("out.wav")  # result.audio: float32 numpy, result.sample_rate
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["TTS", "SynthesisOptions", "SynthesisResult", "list_voices", "__version__"]

if TYPE_CHECKING:
    from qingyin.runtime.synthesizer import SynthesisOptions, SynthesisResult
    from qingyin.runtime.synthesizer import Synthesizer as TTS


def list_voices() -> list[str]:
    """Names of the voices qingyin knows (installed or fetchable)."""
    from qingyin.voices.registry import VOICES

    return sorted(VOICES)


def __getattr__(name: str) -> Any:
    # Lazy, so that `import qingyin.text` (pure Python) never pulls in torch.
    if name in ("TTS", "SynthesisOptions", "SynthesisResult"):
        from qingyin.runtime import synthesizer

        return {"TTS": synthesizer.Synthesizer, "SynthesisOptions": synthesizer.SynthesisOptions,
                "SynthesisResult": synthesizer.SynthesisResult}[name]
    raise AttributeError(f"module 'qingyin' has no attribute {name!r}")
