"""qingyin (轻音): light, fast Mandarin text-to-speech.

    import qingyin
    tts = qingyin.TTS(voice="baker")
    result = tts.synthesize("今天天气不错。", speed=1.1)
    result.save("out.wav")  # result.audio: float32 numpy, result.sample_rate

Every synthesis call (synthesize, iter_sentences, stream_chunks, synthesize_stream, synthesize_phones, ...) takes
the same options, with the same names as the CLI flags and the server's JSON fields:

    tts.synthesize("真的吗？太好了！", emotion="happy", intensity=1.2)         # qingyin.EMOTIONS, intensity 0-2
    tts.synthesize("什么？", emotion={"surprise": 0.7, "happy": 0.3})         # or "surprise:0.7,happy:0.3"
    tts.synthesize("我们明天见。", reference="my_reading.wav", reference_strength=0.7)  # a path or the file's bytes

Emotions are rendered by prosody control (pitch register and range, contours, loudness, rate, pauses) on every
voice: the voices were trained on neutral speech. A bad value raises qingyin.options.InvalidOptionError (a
ValueError) naming the option.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "TTS", "SynthesisOptions", "SynthesisResult", "list_voices", "__version__"]

if TYPE_CHECKING:
    from qingyin.options import EMOTIONS
    from qingyin.runtime.synthesizer import SynthesisOptions, SynthesisResult
    from qingyin.runtime.synthesizer import Synthesizer as TTS


def list_voices() -> list[str]:
    """Names of the voices qingyin knows (installed or fetchable)."""
    from qingyin.voices.registry import VOICES

    return sorted(VOICES)


def __getattr__(name: str) -> Any:
    # Lazy, so that `import qingyin.text` (pure Python) never pulls in torch.
    if name == "EMOTIONS":
        from qingyin.options import EMOTIONS

        return EMOTIONS
    if name in ("TTS", "SynthesisOptions", "SynthesisResult"):
        from qingyin.runtime import synthesizer

        return {"TTS": synthesizer.Synthesizer, "SynthesisOptions": synthesizer.SynthesisOptions,
                "SynthesisResult": synthesizer.SynthesisResult}[name]
    raise AttributeError(f"module 'qingyin' has no attribute {name!r}")
