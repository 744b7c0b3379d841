"""Request bodies of the HTTP API (pydantic), and how each becomes a SpeechRequest."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from qingyin.options import EMOTIONS, ENERGY, INTENSITY, NEUTRAL, PITCH, REFERENCE_STRENGTH, SPEED
from qingyin.runtime.limits import check_text
from qingyin.server.service import BadRequest, SpeechRequest
from qingyin.style.names import emotion_in
from qingyin.voices import registry

# OpenAI's voice names -> ours, by the gender OpenAI's voices are usually heard as (the one place this is decided;
# README "## Serve" shows it). A mapped voice that is not installed falls back to the server's default voice and
# the response says so in X-Qingyin-Warning. Our own voice names and blends are accepted as they are.
OPENAI_VOICE_MAP = {
    "alloy": "baker",  # neutral; our default voice
    "ash": "yunjian",
    "ballad": "yunxia",
    "cedar": "yunyang",
    "coral": "xiaoyi",
    "echo": "yunxi",
    "fable": "yunyang",
    "marin": "xiaoxiao",
    "nova": "xiaoxiao",
    "onyx": "yunjian",
    "sage": "xiaoni",
    "shimmer": "xiaobei",
    "verse": "yunxi",
}
OPENAI_VOICES = tuple(OPENAI_VOICE_MAP)
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "qingyin")
OPENAI_FORMATS = {"mp3": "mp3", "opus": "opus", "wav": "wav", "flac": "flac", "pcm": "pcm"}  # not aac
_EMOTION_NAMES = f"one of {', '.join(EMOTIONS)} (every voice; rendered by prosody control, see GET /v1/voices)"
EMOTION_HELP = (f"{_EMOTION_NAMES}, or a mix: {{\"happy\": 0.6, \"surprise\": 0.3}} or \"happy:0.6,surprise:0.3\" "
                "(weights sum to at most 2)")
EMOTION_TEXT_HELP = f"{_EMOTION_NAMES}, or a mix such as happy:0.6,surprise:0.3 (weights sum to at most 2)"
INSTRUCTIONS_IGNORED = ("instructions were ignored: they name no emotion (e.g. happy, sad, angry, surprised, afraid, "
                        "disgusted, or the same in Chinese)")


class TTSBody(BaseModel):
    """POST /v1/tts. Give `text` (plain text, or SSML starting with <speak>) or `ssml`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "今天天气不错，我们去公园散步吧。", "speed": 1.1, "format": "mp3"},
        {"ssml": '<speak>请稍等<break time="500ms"/>好了。</speak>', "format": "wav"},
        {"text": "真的吗？太好了！", "emotion": "happy", "intensity": 1.2},
        {"text": "什么？你怎么来了？", "emotion": {"surprise": 0.7, "happy": 0.3}},
    ]})

    text: str | None = Field(None, description="Text to read; SSML when it starts with <speak>")
    ssml: str | None = Field(None, description="SSML; <speak> is added when missing")
    voice: str | None = Field(None, description="a voice of GET /v1/voices, or a blend of voices of one model "
                                               "such as \"xiaobei:0.6,yunxi:0.4\"; default: the server's voice")
    emotion: str | dict[str, Any] = Field(NEUTRAL, description=EMOTION_HELP)
    intensity: float = Field(INTENSITY.default, description=INTENSITY.describe())
    reference_strength: float = Field(REFERENCE_STRENGTH.default, description=REFERENCE_STRENGTH.describe() +
                                      "; for POST /v1/tts/reference (no effect without a reference recording)")
    speed: float = Field(SPEED.default, description=SPEED.describe())
    pitch: float = Field(PITCH.default, description=PITCH.describe())
    energy: float = Field(ENERGY.default, description=ENERGY.describe())
    format: str = Field("wav", description="wav, mp3, ogg, opus, flac or pcm (16-bit little-endian mono)")
    sample_rate: int | None = Field(None, description="output rate in Hz; default the voice's (24000)")
    lexicon: dict[str, str] | None = Field(None, description="word -> pinyin for this request, e.g. {\"行长\": "
                                                             "\"hang2 zhang3\"}")
    stream: bool = Field(False, description="chunked transfer as audio is produced (wav or pcm)")

    def to_request(self, default_voice: str = registry.DEFAULT_VOICE) -> SpeechRequest:
        voice = default_voice if self.voice is None else self.voice
        return SpeechRequest(
            text=_text_of(self.text, self.ssml), voice=voice, emotion=self.emotion, intensity=self.intensity,
            speed=self.speed, pitch=self.pitch, energy=self.energy, format=self.format,
            sample_rate=self.sample_rate, lexicon=tuple(sorted((self.lexicon or {}).items())),
            reference_strength=self.reference_strength)


class SpeechBody(BaseModel):
    """POST /v1/audio/speech, as OpenAI's API defines it."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(..., description=f"one of {', '.join(OPENAI_MODELS)} (all use the same voice model)")
    input: str = Field(..., description="text to read (at most the server's --max-chars)")
    voice: str = Field(..., description="an OpenAI voice name (mapped to one of ours, see OPENAI_VOICE_MAP), or a "
                                        "qingyin voice or blend")
    response_format: str = Field("mp3", description="mp3, opus, wav, flac or pcm (24 kHz 16-bit LE)")
    speed: float = Field(SPEED.default, description=SPEED.describe())
    instructions: str | None = Field(None, description="the first emotion word in them sets the emotion (开心/"
                                     "happy/cheerful -> happy, 难过/sad -> sad, 生气/angry -> angry, 惊讶/surprised "
                                     "-> surprise, 害怕/afraid -> fear, 厌恶/disgusted -> disgust; "
                                     "qingyin.style.names); anything else in them is ignored")
    stream_format: str | None = Field(None, description="'audio' (default); 'sse' is not supported")

    def to_request(self, voices: list[str], default_voice: str) -> tuple[SpeechRequest, list[str]]:
        """The request, and warnings for the X-Qingyin-Warning header (an OpenAI voice that fell back, instructions
        that named no emotion)."""
        if self.model not in OPENAI_MODELS and self.model not in voices:
            raise BadRequest(f"unknown model {self.model!r}; use one of {', '.join(OPENAI_MODELS)}", "model")
        voice, warning = openai_voice(self.voice, voices, default_voice)
        if self.response_format not in OPENAI_FORMATS:
            raise BadRequest(f"unsupported response_format {self.response_format!r}; use one of "
                             f"{', '.join(OPENAI_FORMATS)}", "response_format")
        if self.stream_format not in (None, "audio"):
            raise BadRequest(f"stream_format {self.stream_format!r} is not supported; use 'audio'", "stream_format")
        emotion = emotion_in(self.instructions) if self.instructions else None
        request = SpeechRequest(text=_valid(self.input, "input"), voice=voice, speed=self.speed,
                                emotion=emotion or NEUTRAL, format=OPENAI_FORMATS[self.response_format])
        warnings = [warning] if warning else []
        if self.instructions and emotion is None:
            warnings.append(INSTRUCTIONS_IGNORED)
        return request, warnings


def openai_voice(name: str, voices: list[str], default_voice: str) -> tuple[str, str | None]:
    """The voice for OpenAI's `voice` field and, when an OpenAI voice's mapping is not installed, a warning.

    An OpenAI name (any case) maps through OPENAI_VOICE_MAP; anything else is one of our voices or a blend, checked
    by the service like every request."""
    mapped = OPENAI_VOICE_MAP.get(name.lower()) if isinstance(name, str) else None
    if mapped is None:
        return name, None
    if mapped in voices:
        return mapped, None
    return default_voice, (f"OpenAI voice {name!r} maps to {mapped!r}, which is not installed on this server; "
                           f"used the default voice {default_voice!r}")


def openai_voice_table(voices: list[str], default_voice: str) -> dict[str, dict[str, str]]:
    """OpenAI voice -> the voice it maps to and the voice this server uses for it (GET /v1/voices)."""
    return {name: {"maps_to": mapped, "uses": openai_voice(name, voices, default_voice)[0]}
            for name, mapped in OPENAI_VOICE_MAP.items()}


class FrontendBody(BaseModel):
    """POST /v1/frontend."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., description="text (or SSML) to analyse")


def emotion_field(value: str) -> str | dict[str, Any]:
    """An emotion from a query or form field: a name or a mix in text form, or a mix as a JSON object."""
    if not value.strip().startswith("{"):
        return value
    try:
        mix = json.loads(value)
    except json.JSONDecodeError as error:
        raise BadRequest(f"emotion {value!r} is not a JSON object ({error.msg}); write e.g. happy:0.6,surprise:0.3",
                         "emotion") from None
    if not isinstance(mix, dict):
        raise BadRequest("emotion must be a name, happy:0.6,surprise:0.3 or a JSON object", "emotion")
    return mix


def _valid(text: str, field: str) -> str:
    """`text` when it is valid Unicode; BadRequest naming `field` for a lone surrogate (a JSON "\\ud800")."""
    try:
        return check_text(text, field)
    except ValueError as error:
        raise BadRequest(str(error), field) from None


def _text_of(text: str | None, ssml: str | None) -> str:
    if (text is None) == (ssml is None):
        raise BadRequest("give exactly one of `text` and `ssml`", "text")
    if ssml is not None:
        _valid(ssml, "ssml")
        stripped = ssml.strip()
        return stripped if stripped.startswith(("<speak", "<?xml")) else f"<speak>{stripped}</speak>"
    return _valid(text or "", "text")
