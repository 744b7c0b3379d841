"""Request bodies of the HTTP API (pydantic), and how each becomes a SpeechRequest."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from qingyin.server.service import NEUTRAL, BadRequest, SpeechRequest
from qingyin.voices import registry

# OpenAI's voice names: clients written for OpenAI send one of these; each maps to the server's default voice.
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "qingyin")
OPENAI_FORMATS = {"mp3": "mp3", "opus": "opus", "wav": "wav", "flac": "flac", "pcm": "pcm"}  # not aac


class TTSBody(BaseModel):
    """POST /v1/tts. Give `text` (plain text, or SSML starting with <speak>) or `ssml`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "今天天气不错，我们去公园散步吧。", "speed": 1.1, "format": "mp3"},
        {"ssml": '<speak>请稍等<break time="500ms"/>好了。</speak>', "format": "wav"},
    ]})

    text: str | None = Field(None, description="Text to read; SSML when it starts with <speak>")
    ssml: str | None = Field(None, description="SSML; <speak> is added when missing")
    voice: str = Field(registry.DEFAULT_VOICE, description="see GET /v1/voices")
    emotion: str = Field(NEUTRAL, description="see GET /v1/voices (the Baker voice has neutral only)")
    intensity: float = Field(1.0, description="emotion intensity, 0–1")
    speed: float = Field(1.0, description="speaking rate, 0.25–4 (2 = twice as fast)")
    pitch: float = Field(1.0, description="pitch excursion scale, 0–3 (not a transposition)")
    energy: float = Field(1.0, description="energy excursion scale, 0–3 (not a gain)")
    format: str = Field("wav", description="wav, mp3, ogg, opus, flac or pcm (16-bit little-endian mono)")
    sample_rate: int | None = Field(None, description="output rate in Hz; default the voice's (24000)")
    lexicon: dict[str, str] | None = Field(None, description="word -> pinyin for this request, e.g. {\"行长\": "
                                                             "\"hang2 zhang3\"}")
    stream: bool = Field(False, description="chunked transfer as audio is produced (wav or pcm)")

    def to_request(self) -> SpeechRequest:
        return SpeechRequest(
            text=_text_of(self.text, self.ssml), voice=self.voice, emotion=self.emotion, intensity=self.intensity,
            speed=self.speed, pitch=self.pitch, energy=self.energy, format=self.format,
            sample_rate=self.sample_rate, lexicon=tuple(sorted((self.lexicon or {}).items())))


class SpeechBody(BaseModel):
    """POST /v1/audio/speech, as OpenAI's API defines it."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(..., description=f"one of {', '.join(OPENAI_MODELS)} (all use the same voice model)")
    input: str = Field(..., description="text to read (at most the server's --max-chars)")
    voice: str = Field(..., description="a qingyin voice, or an OpenAI voice name (mapped to the default voice)")
    response_format: str = Field("mp3", description="mp3, opus, wav, flac or pcm (24 kHz 16-bit LE)")
    speed: float = Field(1.0, description="0.25–4")
    instructions: str | None = Field(None, description="not supported: style instructions are ignored")
    stream_format: str | None = Field(None, description="'audio' (default); 'sse' is not supported")

    def to_request(self, voices: list[str], default_voice: str) -> SpeechRequest:
        if self.model not in OPENAI_MODELS and self.model not in voices:
            raise BadRequest(f"unknown model {self.model!r}; use one of {', '.join(OPENAI_MODELS)}", "model")
        if self.voice in voices:
            voice = self.voice
        elif self.voice.lower() in OPENAI_VOICES:
            voice = default_voice
        else:
            raise BadRequest(f"unknown voice {self.voice!r}; use one of {', '.join(voices)} or an OpenAI voice "
                             f"name ({', '.join(OPENAI_VOICES)}), which all map to {default_voice!r}", "voice")
        if self.response_format not in OPENAI_FORMATS:
            raise BadRequest(f"unsupported response_format {self.response_format!r}; use one of "
                             f"{', '.join(OPENAI_FORMATS)}", "response_format")
        if self.stream_format not in (None, "audio"):
            raise BadRequest(f"stream_format {self.stream_format!r} is not supported; use 'audio'", "stream_format")
        return SpeechRequest(text=self.input, voice=voice, speed=self.speed,
                             format=OPENAI_FORMATS[self.response_format])


class FrontendBody(BaseModel):
    """POST /v1/frontend."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., description="text (or SSML) to analyse")


def _text_of(text: str | None, ssml: str | None) -> str:
    if (text is None) == (ssml is None):
        raise BadRequest("give exactly one of `text` and `ssml`", "text")
    if ssml is not None:
        stripped = ssml.strip()
        return stripped if stripped.startswith(("<speak", "<?xml")) else f"<speak>{stripped}</speak>"
    return text or ""
