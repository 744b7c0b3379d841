"""The web UI at /ui: a Gradio page over TTSService for people who would rather not write HTTP requests.

    gr.mount_gradio_app(app, build_ui(service), path="/ui")

Everything goes through the same TTSService as the HTTP API (admission control, cache, timeouts, checks), so
the page refuses what the API refuses, with the same message. The page's own Gradio endpoints are private:
scripts should use /v1/*.
"""

from __future__ import annotations

import html
import io
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio import processing_utils, utils

from qingyin.options import ENERGY, PITCH, SPEED
from qingyin.server.service import NEUTRAL, SAMPLE_TEXT, ServiceError, SpeechRequest, TTSService

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

REFERENCE_NOTE = """\
**参考音频（韵律迁移） Reference audio (prosody transfer):** 本版本尚不支持 — not available in this version.
Shape the delivery with speed, pitch and energy, or with SSML `<prosody>`.
"""

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

    def request(self) -> SpeechRequest:
        return SpeechRequest(text=prepare_text(self.text, self.ssml), voice=chosen_voice(self.voice, self.blend),
                             emotion=self.emotion,
                             intensity=float(self.intensity), speed=float(self.speed), pitch=float(self.pitch),
                             energy=float(self.energy), format="wav")


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
    emotions = list(info.get("emotions") or [NEUTRAL])
    if emotions == [NEUTRAL]:
        return ("此音色只有中性风格 (neutral)：训练数据是中性朗读，暂无情感风格，所以情感和强度不可调。  \n"
                "This voice has only a neutral style: it was trained on neutral read speech, so there are no "
                "emotion styles yet and intensity has no effect.")
    return f"情感风格 Emotion styles: {', '.join(emotions)}."


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
    """Choices and interactivity of the emotion dropdown and intensity slider for a voice, and its note."""
    emotions = list(info.get("emotions") or [NEUTRAL])
    styled = len(emotions) > 1
    return (gr.update(choices=emotions, value=emotions[0], interactive=styled),
            gr.update(interactive=styled), emotion_note(info))


# --- handlers ----------------------------------------------------------------------------------------
async def synthesize(service: TTSService, form: SpeechForm) -> tuple[Any, Any, str, Any]:
    """(audio path, file path, info line, error box) for the form; a service error fills only the error box."""
    try:
        audio = await service.synthesize(form.request())
    except ServiceError as error:
        return None, None, "", gr.update(value=error_html(error.message), visible=True)
    path = processing_utils.save_bytes_to_cache(audio.data, "qingyin.wav", utils.get_upload_folder())
    info = f"时长 Duration **{wav_seconds(audio.data):.2f} s** · {audio.sample_rate} Hz · WAV"
    if audio.cached:
        info += " · 来自缓存 from cache"
    return path, path, info, gr.update(value="", visible=False)


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
        panel = _frontend_panel()
        _wire(service, text, ssml, controls, button, (audio, download, info, error), panel)

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


def _controls(voices: Sequence[dict[str, Any]], default: dict[str, Any]) -> _Controls:
    voice = gr.Dropdown([_voice_label(info) for info in voices], value=default["name"], label="音色 Voice",
                        elem_id="voice")
    sample = gr.Audio(label=f"试听 Sample: 「{SAMPLE_TEXT}」", type="filepath", interactive=False,
                      buttons=["download"], waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                      elem_id="voice-sample")
    blend = gr.Textbox(label="混合 Blend (optional)", placeholder="xiaobei:0.6,yunxi:0.4", elem_id="blend")
    gr.Markdown(blend_note(voices), elem_id="blend-note")
    emotions = list(default.get("emotions") or [NEUTRAL])
    styled = len(emotions) > 1
    with gr.Row():
        emotion = gr.Dropdown(emotions, value=emotions[0], label="情感 Emotion", interactive=styled,
                              elem_id="emotion")
        intensity = gr.Slider(0, 1, value=1, step=0.05, label="情感强度 Intensity", interactive=styled,
                              elem_id="intensity")
    note = gr.Markdown(emotion_note(default), elem_id="emotion-note")
    speed = gr.Slider(*SPEED.range, value=SPEED.default, step=0.05, label="语速 Speed", elem_id="speed",
                      info="2 = 两倍快 twice as fast, 0.5 = 一半 half speed")
    pitch = gr.Slider(*PITCH.range, value=PITCH.default, step=0.05, label="音调 Pitch", info=PITCH_INFO,
                      elem_id="pitch")
    energy = gr.Slider(*ENERGY.range, value=ENERGY.default, step=0.05, label="能量 Energy", info=ENERGY_INFO,
                       elem_id="energy")
    gr.Markdown(REFERENCE_NOTE, elem_id="reference-note")
    return _Controls(voice, blend, sample, emotion, intensity, note, speed, pitch, energy)


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
            controls.pitch, controls.energy]
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
