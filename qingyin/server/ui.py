"""The web UI at /ui: a Gradio page over TTSService for people who would rather not write HTTP requests.

    gr.mount_gradio_app(app, build_ui(service), path="/ui")

Everything goes through the same TTSService as the HTTP API (admission control, cache, timeouts, checks), so
the page refuses what the API refuses, with the same message. The page's own Gradio endpoints are private:
scripts should use /v1/*.
"""

from __future__ import annotations

import asyncio
import html
import io
import wave
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import processing_utils, utils

from qingyin.options import EMOTIONS, ENERGY, INTENSITY, NEUTRAL, PITCH, REFERENCE_STRENGTH, SPEED
from qingyin.server.service import SAMPLE_TEXT, BadRequest, ServiceError, SpeechRequest, TTSService, UploadTooLarge

TITLE = "轻音 qingyin · 中文语音合成 Mandarin text-to-speech"
# Gradio deletes the WAV files it handed out after an hour (checked every hour), and all of them at shutdown.
CACHE_CLEANUP = (3600, 3600)

EXAMPLES: list[tuple[str, bool]] = [
    ("今天天气很好，我们一起去公园散步吧。", False),
    ("欢迎使用轻音。这是一个轻量、快速的中文语音合成系统，可以在普通的电脑上运行。", False),
    ("2024年3月15日下午3:30，会议在305室召开。门票¥1,299.00，比去年涨了12.5%。电话010-62345678。", False),
    ("他是银行行长，长得很高。重庆的重要会议明天召开。", False),
    ('<speak>请稍等<break time="500ms"/>我们马上开始。<prosody rate="slow" pitch="+20%">这一句说得慢一点。</prosody>'
     "</speak>", True),
    ('<speak>这个字读<phoneme alphabet="py" ph="chong2">重</phoneme>，'
     '编号是<say-as interpret-as="digits">2024</say-as>。</speak>', True),
]

SSML_HELP = """\
**SSML**（语音合成标记语言 speech markup）: tick the box, then use tags such as
`<break time="500ms"/>` (pause 停顿), `<prosody rate="slow" pitch="+20%" volume="loud">…</prosody>`
(speed/pitch/energy of a part 局部语速语调), `<phoneme alphabet="py" ph="chong2">重</phoneme>` (reading 读音),
`<say-as interpret-as="digits">2024</say-as>` (how to read numbers 数字读法), `<sub alias="世界卫生组织">WHO</sub>`.
Without `<speak>…</speak>` around the text, the page adds it. Unknown tags are an error, never silently dropped.
"""

PRONUNCIATION_HELP = """\
**读错了？ Wrong reading?** Open *前端 / 拼音* below to see how the text was read. In plain text, fix a character's
reading by writing its pinyin right after it, e.g. `重[chong2]庆` (tone number 1–5, 5 = neutral tone).
"""

EMOTION_NAMES = {"neutral": "中性", "happy": "开心", "sad": "悲伤", "angry": "生气", "surprise": "惊讶",
                 "fear": "害怕", "disgust": "厌恶"}
assert tuple(EMOTION_NAMES) == EMOTIONS

EMOTION_NOTE = """\
**情感 Emotion:** 每个音色都能说七种情感。情感由韵律控制实现（音高的高低和起伏、句末与重音的语调、响度、语速、停顿）；
音色本身是用中性朗读训练的，所以这是改变了韵律的中性语音，不是真正的情感音色。
Every voice speaks all seven emotions, rendered by prosody control: pitch register and range, intonation contours
(the sentence end, the focus word), loudness and its contrasts, speaking rate and pauses are reshaped from the
voice's own prediction. The voices were trained on neutral speech, so this is neutral speech reshaped, not an
emotional voice. Intensity 强度: 0 = neutral, 1 = the preset, 2 = strong. Mixes and spans: SSML
`<emotion category="happy" intensity="1.0">…</emotion>`, or the API's `{"happy": 0.6, "surprise": 0.3}`.
"""

REFERENCE_NOTE = """\
**参考音频（韵律迁移） Reference recording (prosody transfer):** 上传或录制 1–60 秒的语音，它的音高、起伏、响度对比、
语速和停顿会迁移到所选音色上（音色不变）。Upload or record 1–60 s of speech: its pitch register and range, loudness
contrasts, rate and pauses are carried over to the voice (the timbre stays the voice's own); strength 强度 0 = not
at all, 1 = fully. Emotion applies on top.
"""

GALLERY_TEXT = "这个消息我刚刚才知道，明天就要出发了。"  # what the gallery says in every emotion
GALLERY_VOICES = 16  # voices (or blends) whose gallery audio is kept in memory

PITCH_INFO = ("音调起伏 — scales how far intonation rises and falls around the voice's own pitch "
              "(1 = natural, 0 = flat); it does not make the voice higher or lower overall")
ENERGY_INFO = ("强弱起伏 — scales the loud/soft contrast within the speech (1 = natural, 0 = even); "
               "it is not a volume knob")
GENDERS = {"female": "女 female", "male": "男 male"}


@dataclass(frozen=True)
class SpeechForm:
    """The values of the synthesis controls, in the order the event passes them."""

    text: str
    ssml: bool
    voice: str
    blend: str  # a blend such as "xiaobei:0.6,yunxi:0.4"; when given, it is the voice
    emotion: str
    intensity: float
    speed: float
    pitch: float
    energy: float
    reference: str | None = None  # the path of the uploaded or recorded reference (Gradio's upload folder)
    reference_strength: float = REFERENCE_STRENGTH.default

    def request(self, max_upload_mb: float | None = None) -> SpeechRequest:
        """The service request; the reference recording, if any, is read here (refused unread when it is larger
        than `max_upload_mb`)."""
        return SpeechRequest(text=prepare_text(self.text, self.ssml), voice=chosen_voice(self.voice, self.blend),
                             emotion=self.emotion or NEUTRAL,
                             intensity=float(self.intensity), speed=float(self.speed), pitch=float(self.pitch),
                             energy=float(self.energy), format="wav",
                             reference=read_reference(self.reference, max_upload_mb),
                             reference_strength=float(self.reference_strength))


def read_reference(path: str | None, max_upload_mb: float | None = None) -> bytes | None:
    """The bytes of the reference recording Gradio saved (None: no recording); the size is checked before reading,
    the rest (type, length, a voice in it) by the service as for POST /v1/tts/reference."""
    if not path:
        return None
    file = Path(path)
    if not file.is_file():
        raise BadRequest("the reference recording is gone (uploads are kept for an hour); upload it again",
                         "reference")
    if max_upload_mb is not None and file.stat().st_size > max_upload_mb * 2**20:
        raise UploadTooLarge(f"the reference recording is over {max_upload_mb:g} MB; send a shorter one (a few "
                             "seconds is enough)", "reference")
    return file.read_bytes()


def chosen_voice(voice: str, blend: str | None) -> str:
    """The blend when one was typed, else the picked voice."""
    return (blend or "").strip() or voice


def prepare_text(text: str, ssml: bool) -> str:
    """The text to send: wrapped in <speak> when SSML is on and the user did not write the root tag."""
    stripped = (text or "").strip()
    if ssml and stripped and not stripped.startswith("<speak"):
        return f"<speak>{stripped}</speak>"
    return text or ""


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as reader:
        return reader.getnframes() / reader.getframerate()


def format_pinyin(report: dict[str, Any]) -> str:
    """One block per sentence: its text, then each spoken character with its reading, e.g. 行hang2."""
    blocks = []
    for number, sentence in enumerate(report.get("sentences", []), 1):
        readings = " ".join(f"{char}{reading}" for char, reading in sentence["pinyin"])
        pause = f"  [+{sentence['break_ms']} ms]" if sentence.get("break_ms") is not None else ""
        blocks.append(f"{number}. {sentence['normalized'] or sentence['text']}{pause}\n   {readings or '—'}")
    return "\n".join(blocks)


# Inline, with the theme's error colours: a Blocks has no CSS of its own in Gradio 6 (it moved to launch/mount).
ERROR_STYLE = ("color: var(--error-text-color); background: var(--error-background-fill); "
               "border: 1px solid var(--error-border-color); border-radius: 6px; padding: 8px 12px")


def error_html(message: str) -> str:
    return f'<div class="qingyin-error" role="alert" style="{ERROR_STYLE}">⚠️ {html.escape(message)}</div>'


def emotion_note(info: dict[str, Any]) -> str:
    """How emotion is rendered (the same for every voice: prosody control over neutral-trained voices)."""
    emotions = list(info.get("emotions") or EMOTIONS)
    return EMOTION_NOTE + f"\n{info.get('name', 'This voice')}: {', '.join(emotions)}."


def emotion_choices(emotions: Sequence[str] = EMOTIONS) -> list[tuple[str, str]]:
    """("开心 happy", "happy") for the emotion picker."""
    return [(f"{EMOTION_NAMES.get(name, name)} {name}", name) for name in emotions]


def _voice_label(info: dict[str, Any]) -> tuple[str, str]:
    """("yunxi — 男 male · kokoro", "yunxi") for the voice picker."""
    gender = str(info.get("gender") or "")
    return f"{info['name']} — {GENDERS.get(gender, gender)} · {info['family']}", str(info["name"])


def blend_note(voices: Sequence[dict[str, Any]]) -> str:
    """How to blend, naming the voices of this server that can be blended."""
    mixable = [str(info["name"]) for info in voices if info.get("mixable")]
    if len(mixable) < 2:
        return "此服务器没有可混合的音色 — no voices on this server can be blended."
    return (f"**混合音色 Blend:** `name:weight,name:weight` of voices of one model, e.g. "
            f"`{mixable[0]}:0.6,{mixable[1]}:0.4` (weights are normalized). Can be blended: {', '.join(mixable)}. "
            "Leave empty to use the picked voice.")


def _voice_info(service: TTSService, voice: str) -> dict[str, Any]:
    infos = service.voices_info()
    return next((info for info in infos if info["name"] == voice), infos[0])


def _emotion_controls(info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Choices of the emotion dropdown and the intensity slider for a voice (every voice has all seven, so the
    picked emotion is kept), and its note."""
    emotions = list(info.get("emotions") or EMOTIONS)
    return (gr.update(choices=emotion_choices(emotions), interactive=True), gr.update(interactive=True),
            emotion_note(info))


# --- handlers ----------------------------------------------------------------------------------------
async def synthesize(service: TTSService, form: SpeechForm) -> tuple[Any, Any, str, Any]:
    """(audio path, file path, info line, error box) for the form; a service error fills only the error box."""
    try:
        request = await asyncio.to_thread(form.request, service.config.max_upload_mb)
        audio = await service.synthesize(request)
    except ServiceError as error:
        return None, None, "", gr.update(value=error_html(error.message), visible=True)
    path = processing_utils.save_bytes_to_cache(audio.data, "qingyin.wav", utils.get_upload_folder())
    info = f"时长 Duration **{wav_seconds(audio.data):.2f} s** · {audio.sample_rate} Hz · WAV"
    if audio.cached:
        info += " · 来自缓存 from cache"
    if audio.warnings:
        info += "\n\n" + "\n".join(f"⚠️ {html.escape(warning)}" for warning in audio.warnings)
    return path, path, info, gr.update(value="", visible=False)


class Gallery:
    """The gallery: GALLERY_TEXT in each of the seven emotions (intensity 1) for a voice, through the service (so
    checked and admitted like any request). The audio is kept in memory per voice, so a second click is instant."""

    def __init__(self, service: TTSService, text: str = GALLERY_TEXT, keep: int = GALLERY_VOICES):
        self.service = service
        self.text = text
        self.keep = keep
        self._audio: OrderedDict[str, list[bytes]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def requests(self, voice: str) -> list[SpeechRequest]:
        return [SpeechRequest(text=self.text, voice=voice, emotion=emotion, intensity=INTENSITY.default,
                              format="wav") for emotion in EMOTIONS]

    async def audio(self, voice: str) -> list[bytes]:
        """The seven WAVs, in EMOTIONS order (ServiceError for a voice the service refuses)."""
        if voice in self._audio:
            self._audio.move_to_end(voice)
            return self._audio[voice]
        async with self._locks.setdefault(voice, asyncio.Lock()):  # two clicks at once render it once
            if voice not in self._audio:
                answers = [await self.service.synthesize(request) for request in self.requests(voice)]
                self._audio[voice] = [answer.data for answer in answers]
                while len(self._audio) > self.keep:
                    self._audio.popitem(last=False)
        self._locks.pop(voice, None)
        return self._audio[voice]

    async def render(self, voice: str) -> list[Any]:
        """A file per emotion for the seven players, then the error box."""
        try:
            audio = await self.audio(voice)
        except ServiceError as error:
            return [None] * len(EMOTIONS) + [gr.update(value=error_html(error.message), visible=True)]
        folder = utils.get_upload_folder()
        paths = [processing_utils.save_bytes_to_cache(data, f"gallery-{emotion}.wav", folder)
                 for emotion, data in zip(EMOTIONS, audio, strict=True)]
        return [*paths, gr.update(value="", visible=False)]


async def voice_sample(service: TTSService, voice: str) -> str | None:
    """A WAV file of the voice saying SAMPLE_TEXT (the service's sample request: checked and cached as usual)."""
    try:
        audio = await service.synthesize(service.sample_request(voice))
    except ServiceError:
        return None
    return processing_utils.save_bytes_to_cache(audio.data, f"sample-{voice}.wav", utils.get_upload_folder())


def frontend(service: TTSService, text: str, ssml: bool, voice: str) -> tuple[str, str, str, dict[str, Any]]:
    """(normalized text, pinyin per sentence, warnings, raw report) for the frontend panel."""
    prepared = prepare_text(text, ssml)
    if not prepared.strip():
        return "", "", "请先输入文本 — enter some text first", {}
    if len(prepared) > service.config.max_chars:
        return "", "", f"text has {len(prepared)} characters; at most {service.config.max_chars}", {}
    try:
        report = service.frontend_report(prepared, voice)
    except ServiceError as error:
        return "", "", f"⚠️ {error.message}", {}
    warnings = "\n".join(f"• {warning}" for warning in report.get("warnings", [])) or "无 none"
    return str(report.get("normalized", "")), format_pinyin(report), warnings, report


# --- layout ------------------------------------------------------------------------------------------
def build_ui(service: TTSService) -> gr.Blocks:
    """The page; mount it with gr.mount_gradio_app(app, build_ui(service), path="/ui")."""
    voices = service.voices_info()
    default = _voice_info(service, service.config.voice)
    with gr.Blocks(title="qingyin 轻音 TTS", analytics_enabled=False, delete_cache=CACHE_CLEANUP) as ui:
        gr.Markdown(f"# {TITLE}\n输入中文文本，点击 **合成 Synthesize**，即可试听和下载。"
                    " Type Chinese text, press **Synthesize**, then listen or download.")
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(label="文本 Text", lines=6, max_lines=20, elem_id="text-input",
                                  placeholder="在这里输入要朗读的中文…  Type the Chinese text to read…")
                ssml = gr.Checkbox(label="SSML 标记 (speak/break/prosody/phoneme/say-as)", value=False,
                                   elem_id="ssml")
                gr.Examples(examples=[list(example) for example in EXAMPLES], inputs=[text, ssml],
                            label="示例 Examples (click to fill 点击填入)")
                with gr.Accordion("帮助 Help: SSML & pronunciation", open=False):
                    gr.Markdown(SSML_HELP + "\n" + PRONUNCIATION_HELP)
            with gr.Column(scale=2):
                controls = _controls(voices, default)
        button = gr.Button("合成 Synthesize", variant="primary", elem_id="synthesize")
        error = gr.HTML("", visible=False, elem_id="error-message")
        with gr.Row():
            # The browser's own player: a real <audio> element with the file as its src (the waveform player
            # plays a blob copy instead), keyboard-accessible and with the browser's download menu.
            audio = gr.Audio(label="语音 Audio", type="filepath", interactive=False, buttons=["download"],
                             waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                             elem_id="output-audio")
            download = gr.File(label="下载 WAV Download", interactive=False, elem_id="output-file")
        info = gr.Markdown("", elem_id="audio-info")
        gallery = _gallery_panel()
        panel = _frontend_panel()
        _wire(service, text, ssml, controls, button, (audio, download, info, error), panel)
        _wire_gallery(Gallery(service), controls, gallery)

        async def on_load(voice_value: str) -> str | None:
            return await voice_sample(service, voice_value)

        ui.load(on_load, inputs=controls.voice, outputs=controls.sample, concurrency_limit=None,
                api_visibility="private")
    return ui


@dataclass(frozen=True)
class _Controls:
    voice: gr.Dropdown
    blend: gr.Textbox
    sample: gr.Audio
    emotion: gr.Dropdown
    intensity: gr.Slider
    note: gr.Markdown
    speed: gr.Slider
    pitch: gr.Slider
    energy: gr.Slider
    reference: gr.Audio
    reference_strength: gr.Slider


def _controls(voices: Sequence[dict[str, Any]], default: dict[str, Any]) -> _Controls:
    voice = gr.Dropdown([_voice_label(info) for info in voices], value=default["name"], label="音色 Voice",
                        elem_id="voice")
    sample = gr.Audio(label=f"试听 Sample: 「{SAMPLE_TEXT}」", type="filepath", interactive=False,
                      buttons=["download"], waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                      elem_id="voice-sample")
    blend = gr.Textbox(label="混合 Blend (optional)", placeholder="xiaobei:0.6,yunxi:0.4", elem_id="blend")
    gr.Markdown(blend_note(voices), elem_id="blend-note")
    emotions = list(default.get("emotions") or EMOTIONS)
    with gr.Row():
        emotion = gr.Dropdown(emotion_choices(emotions), value=NEUTRAL, label="情感 Emotion", interactive=True,
                              elem_id="emotion")
        intensity = gr.Slider(*INTENSITY.range, value=INTENSITY.default, step=0.1, label="情感强度 Intensity",
                              info="0 = 中性 neutral, 1 = 预设 preset, 2 = 强 strong", interactive=True,
                              elem_id="intensity")
    note = gr.Markdown(emotion_note(default), elem_id="emotion-note")
    speed = gr.Slider(*SPEED.range, value=SPEED.default, step=0.05, label="语速 Speed", elem_id="speed",
                      info="2 = 两倍快 twice as fast, 0.5 = 一半 half speed")
    pitch = gr.Slider(*PITCH.range, value=PITCH.default, step=0.05, label="音调 Pitch", info=PITCH_INFO,
                      elem_id="pitch")
    energy = gr.Slider(*ENERGY.range, value=ENERGY.default, step=0.05, label="能量 Energy", info=ENERGY_INFO,
                       elem_id="energy")
    with gr.Accordion("参考音频 Reference recording (prosody transfer)", open=False, elem_id="reference-panel"):
        gr.Markdown(REFERENCE_NOTE, elem_id="reference-note")
        reference = gr.Audio(label="参考音频 Reference (1–60 s of speech)", type="filepath",
                             sources=["upload", "microphone"], elem_id="reference-audio")
        reference_strength = gr.Slider(*REFERENCE_STRENGTH.range, value=REFERENCE_STRENGTH.default, step=0.05,
                                       label="参考强度 Reference strength", info="0 = 不迁移 none, 1 = 完全 fully",
                                       elem_id="reference-strength")
    return _Controls(voice, blend, sample, emotion, intensity, note, speed, pitch, energy, reference,
                     reference_strength)


@dataclass(frozen=True)
class _GalleryPanel:
    button: gr.Button
    players: list[gr.Audio]
    error: gr.HTML


def _gallery_panel() -> _GalleryPanel:
    with gr.Accordion("情感画廊 Emotion gallery: one sentence in all seven emotions", open=False,
                      elem_id="gallery-panel"):
        gr.Markdown(f"「{GALLERY_TEXT}」 in the picked voice (or blend), intensity 1. 第二次点击立即播放 — a second "
                    "click plays at once (kept in memory).")
        button = gr.Button("生成情感画廊 Render the gallery", elem_id="gallery-button")
        error = gr.HTML("", visible=False, elem_id="gallery-error")
        players = []
        with gr.Row():
            for emotion in EMOTIONS:
                players.append(gr.Audio(label=f"{EMOTION_NAMES[emotion]} {emotion}", type="filepath",
                                        interactive=False, buttons=["download"],
                                        waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                                        elem_id=f"gallery-{emotion}", min_width=120))
    return _GalleryPanel(button, players, error)


def _wire_gallery(gallery: Gallery, controls: _Controls, panel: _GalleryPanel) -> None:
    async def on_gallery(voice_value: str, blend_value: str) -> list[Any]:
        return await gallery.render(chosen_voice(voice_value, blend_value))

    panel.button.click(on_gallery, inputs=[controls.voice, controls.blend], outputs=[*panel.players, panel.error],
                       concurrency_limit=None, api_visibility="private")


@dataclass(frozen=True)
class _FrontendPanel:
    button: gr.Button
    normalized: gr.Textbox
    pinyin: gr.Textbox
    warnings: gr.Textbox
    report: gr.JSON


def _frontend_panel() -> _FrontendPanel:
    with gr.Accordion("前端 / 拼音 Frontend / pinyin (check pronunciation 检查读音)", open=False,
                      elem_id="frontend-panel"):
        button = gr.Button("查看拼音 Show pinyin", elem_id="show-pinyin")
        normalized = gr.Textbox(label="规范化文本 Normalized text (numbers, dates… as read)", interactive=False,
                                elem_id="normalized")
        pinyin = gr.Textbox(label="拼音 Pinyin per sentence (tone 5 = neutral)", lines=4, interactive=False,
                            elem_id="pinyin")
        warnings = gr.Textbox(label="警告 Warnings", interactive=False, elem_id="warnings")
        with gr.Accordion("完整报告 Full report (words, phones)", open=False):
            report = gr.JSON(label="report")
    return _FrontendPanel(button, normalized, pinyin, warnings, report)


def _wire(service: TTSService, text: gr.Textbox, ssml: gr.Checkbox, controls: _Controls, button: gr.Button,
          outputs: tuple[gr.Audio, gr.File, gr.Markdown, gr.HTML], panel: _FrontendPanel) -> None:
    async def on_synthesize(*values: Any) -> tuple[Any, Any, str, Any]:
        return await synthesize(service, SpeechForm(*values))

    def on_frontend(text_value: str, ssml_value: bool, voice_value: str) -> tuple[str, str, str, dict[str, Any]]:
        return frontend(service, text_value, ssml_value, voice_value)

    def on_voice(voice_value: str) -> tuple[dict[str, Any], dict[str, Any], str]:
        return _emotion_controls(_voice_info(service, voice_value))

    async def on_sample(voice_value: str) -> str | None:
        return await voice_sample(service, voice_value)

    form = [text, ssml, controls.voice, controls.blend, controls.emotion, controls.intensity, controls.speed,
            controls.pitch, controls.energy, controls.reference, controls.reference_strength]
    # The service does its own admission control (concurrency, queue size, 429 message), so Gradio's queue
    # must not serialize requests in front of it.
    button.click(on_synthesize, inputs=form, outputs=list(outputs), concurrency_limit=None,
                 api_visibility="private")
    panel.button.click(on_frontend, inputs=[text, ssml, controls.voice],
                       outputs=[panel.normalized, panel.pinyin, panel.warnings, panel.report],
                       concurrency_limit=2, api_visibility="private")
    controls.voice.change(on_voice, inputs=controls.voice, outputs=[controls.emotion, controls.intensity,
                                                                    controls.note], api_visibility="private")
    # The sample has its own event so that the emotion controls do not wait for its synthesis.
    controls.voice.change(on_sample, inputs=controls.voice, outputs=controls.sample, concurrency_limit=None,
                          api_visibility="private")
