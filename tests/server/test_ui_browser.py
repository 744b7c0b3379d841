"""The web UI end to end: a real uvicorn server with the UI at /ui, driven by headless Chromium (Playwright).

Needs Debian's chromium at /usr/bin/chromium (Playwright's own browser download is not used). Without it the
test is skipped, except under CI=true, where it fails so a broken CI image is noticed. A screenshot of the page
after synthesis goes to $QINGYIN_SCREENSHOT_DIR (or the test's tmp dir).
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import os
import re
import socket
import threading
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SENTENCE = "今天天气很好，我们去公园散步吧。"
POLYPHONE = "他是银行行长，长得很高。"
POLYPHONE_READINGS = "银yin2 行hang2 行hang2 长zhang3 长zhang3"  # 银行 yínháng, 行长 hángzhǎng, 长得 zhǎngde
SYNTHESIS_TIMEOUT_MS = 60_000  # the machine may be shared; synthesis itself takes about a second
# The page must not reach outside the server (no analytics, fonts or CDN scripts).
LOCAL_SCHEMES = ("blob:", "data:")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str, fix: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason}; CI must run the browser test: {fix}")
    pytest.skip(f"{reason} ({fix} to run it)")


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if importlib.util.find_spec("playwright") is None:
        _unavailable("the playwright package is not installed", "pip install playwright")
    if not CHROMIUM.is_file():
        _unavailable(f"no Chromium at {CHROMIUM}", "apt-get install chromium")
    return CHROMIUM


@dataclass
class Server:
    url: str
    service: Any  # TTSService


def _make_app(config: Any, service: Any) -> Any:
    """The real application when qingyin.server.app.create_app exists; otherwise a bare app with only the UI."""
    if importlib.util.find_spec("qingyin.server.app") is not None:
        from qingyin.server import app as app_module

        if hasattr(app_module, "create_app"):
            return app_module.create_app(config, service=service)
    import gradio as gr
    from fastapi import FastAPI

    from qingyin.server.ui import build_ui

    return gr.mount_gradio_app(FastAPI(), build_ui(service), path="/ui")


@pytest.fixture(scope="module")
def server(chromium_path: Path, tts: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """uvicorn in a thread on a free 127.0.0.1 port, serving the app with the UI at /ui (the session's voice)."""
    if importlib.util.find_spec("gradio") is None:
        _unavailable("gradio is not installed", "pip install gradio")
    import uvicorn

    from qingyin.server.config import ServerConfig
    from qingyin.server.service import TTSService

    with pytest.MonkeyPatch.context() as env:
        env.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        env.setenv("HF_HUB_OFFLINE", "1")
        env.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        # No audio cache: the page's request and the test's direct one must both really synthesize.
        config = ServerConfig(warmup=False, cache_dir=Path("off"), cache_items=0, ui=True)
        service = TTSService(config, synthesizers={"baker": tts})
        service.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # uvicorn takes the bound socket, so no other process can grab the port
        uv = uvicorn.Server(uvicorn.Config(_make_app(config, service), log_level="warning"))
        thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        _wait_started(uv, thread)
        try:
            yield Server(f"http://127.0.0.1:{sock.getsockname()[1]}", service)
        finally:
            uv.should_exit = True
            thread.join(timeout=30)
            sock.close()
            service.close()  # the app's lifespan closes it too; the bare fallback app has none


def _wait_started(uv: Any, thread: threading.Thread, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not uv.started:
        if not thread.is_alive():
            pytest.fail("the uvicorn server thread exited during start-up (see the log above)")
        if time.monotonic() > deadline:
            pytest.fail(f"the server did not start within {timeout:g} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class UIPage:
    page: Any  # playwright Page
    outside_requests: list[str]


@pytest.fixture
def ui(server: Server, browser: Any) -> Iterator[UIPage]:
    page = browser.new_page()
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith((server.url, *LOCAL_SCHEMES)) else None)
    page.goto(f"{server.url}/ui/")
    page.locator("#text-input textarea").wait_for(timeout=30_000)
    yield UIPage(page, outside)
    page.close()


def _synthesize(page: Any, text: str) -> None:
    page.locator("#text-input textarea").fill(text)
    page.locator("#synthesize").click()


def _wait_for_audio(page: Any, previous_src: str = "") -> dict[str, Any]:
    """The output <audio> element once it has a new source and its metadata (duration) is loaded."""
    page.wait_for_function(
        """previous => {
            const audio = document.querySelector('#output-audio audio');
            return audio && audio.src && audio.src !== previous && audio.readyState >= 1;
        }""",
        arg=previous_src, timeout=SYNTHESIS_TIMEOUT_MS)
    return page.evaluate(
        """async () => {
            const audio = document.querySelector('#output-audio audio');
            const response = await fetch(audio.src, {cache: 'no-store'});
            const bytes = (await response.arrayBuffer()).byteLength;
            return {src: audio.src, duration: audio.duration, status: response.status,
                    contentType: response.headers.get('content-type'), bytes};
        }""")


def _wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as reader:
        return reader.getnframes() / reader.getframerate()


def _direct_seconds(server: Server, text: str, voice: str = "baker") -> float:
    from qingyin.server.service import SpeechRequest

    # Playwright's sync API keeps an event loop running in this thread, so the coroutine runs in another one.
    with ThreadPoolExecutor(1) as pool:
        request = SpeechRequest(text=text, voice=voice)
        audio = pool.submit(asyncio.run, server.service.synthesize(request)).result(timeout=60)
    return _wav_seconds(audio.data)


def _sample_src(page: Any, previous_src: str = "") -> str:
    """The voice sample player's source once it has a new one that the browser could load."""
    page.wait_for_function(
        """previous => {
            const audio = document.querySelector('#voice-sample audio');
            return audio && audio.src && audio.src !== previous && audio.readyState >= 1;
        }""",
        arg=previous_src, timeout=SYNTHESIS_TIMEOUT_MS)
    return page.evaluate("() => document.querySelector('#voice-sample audio').src")


def _screenshot_dir(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("QINGYIN_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_synthesize_plays_audio_of_the_right_length(ui: UIPage, server: Server, tmp_path: Path) -> None:
    page = ui.page
    _synthesize(page, SENTENCE)
    audio = _wait_for_audio(page)
    page.screenshot(path=str(_screenshot_dir(tmp_path) / "ui-synthesized.png"), full_page=True)

    assert audio["status"] == 200
    assert audio["contentType"] in ("audio/wav", "audio/x-wav", "audio/wave")
    served = page.request.get(audio["src"]).body()
    assert len(served) == audio["bytes"]
    served_seconds = _wav_seconds(served)
    expected = _direct_seconds(server, SENTENCE)
    assert 1.0 < expected < 10.0  # a sanity check on the reference itself
    assert audio["duration"] == pytest.approx(served_seconds, abs=0.01)
    assert audio["duration"] == pytest.approx(expected, abs=0.05)
    assert f"{served_seconds:.2f} s" in page.locator("#audio-info").inner_text()
    download = page.locator("#output-file a[download]").first.get_attribute("href")
    assert download and download.endswith(".wav")
    assert ui.outside_requests == []


def test_empty_text_shows_the_service_message_and_the_page_keeps_working(ui: UIPage) -> None:
    from playwright.sync_api import expect

    page = ui.page
    _synthesize(page, "   ")
    error = page.locator("#error-message")
    expect(error).to_be_visible(timeout=SYNTHESIS_TIMEOUT_MS)
    expect(error).to_contain_text("text is empty")
    assert "Traceback" not in error.inner_text()

    _synthesize(page, "你好。")
    audio = _wait_for_audio(page)
    assert audio["duration"] > 0.2
    expect(error).to_be_hidden()


def test_frontend_panel_shows_pinyin_of_a_polyphone_sentence(ui: UIPage) -> None:
    from playwright.sync_api import expect

    page = ui.page
    page.locator("#text-input textarea").fill(POLYPHONE)
    page.locator("#frontend-panel").get_by_text("前端 / 拼音").first.click()
    page.locator("#show-pinyin").click()
    pinyin = page.locator("#pinyin textarea")
    expect(pinyin).to_have_value(re.compile(re.escape(POLYPHONE_READINGS)), timeout=30_000)
    assert pinyin.input_value().startswith(f"1. {POLYPHONE}")
    expect(page.locator("#normalized textarea")).to_have_value(POLYPHONE)



def test_pick_a_kokoro_voice_hear_its_sample_and_synthesize(ui: UIPage, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from qingyin.voices import registry

    if not registry.is_installed("yunxi"):
        pytest.skip("the Kokoro voices are not installed (qingyin models fetch kokoro)")
    page = ui.page
    baker_sample = _sample_src(page)  # the default voice's sample, loaded with the page
    assert "sample-baker" in baker_sample
    page.locator("#voice input").click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible(timeout=10_000)
    labels = options.all_inner_texts()
    assert len(labels) == len(server.service.voices) and "xiaoxiao — 女 female · kokoro" in labels
    page.get_by_role("option", name="yunxi — 男 male · kokoro").click()
    assert "sample-yunxi" in _sample_src(page, baker_sample)

    _synthesize(page, "你好。")
    audio = _wait_for_audio(page)
    page.screenshot(path=str(_screenshot_dir(tmp_path) / "ui-kokoro.png"), full_page=True)
    assert audio["duration"] == pytest.approx(_direct_seconds(server, "你好。", "yunxi"), abs=0.05)
    assert audio["duration"] != pytest.approx(_direct_seconds(server, "你好。", "baker"), abs=0.05)

    page.locator("#blend textarea, #blend input").first.fill("xiaobei:0.6,baker:0.4")  # across models: refused
    page.locator("#synthesize").click()
    error = page.locator("#error-message")
    expect(error).to_be_visible(timeout=SYNTHESIS_TIMEOUT_MS)
    expect(error).to_contain_text("blends voices of different models")
    assert ui.outside_requests == []


def test_emotion_synthesis_and_the_gallery(ui: UIPage, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from qingyin.options import EMOTIONS

    page = ui.page
    page.locator("#emotion input").click()
    page.get_by_role("option", name="开心 happy").click()
    _synthesize(page, "你好。")
    audio = _wait_for_audio(page)
    assert audio["status"] == 200 and audio["duration"] > 0.3

    page.locator("#gallery-panel").get_by_text("情感画廊").first.click()
    page.locator("#gallery-button").click()
    page.wait_for_function(
        """ids => ids.every(id => {
            const audio = document.querySelector(`#gallery-${id} audio`);
            return audio && audio.src && audio.readyState >= 1;
        })""", arg=list(EMOTIONS), timeout=SYNTHESIS_TIMEOUT_MS * 2)
    sources = page.evaluate("ids => ids.map(id => document.querySelector(`#gallery-${id} audio`).src)",
                            list(EMOTIONS))
    assert len(set(sources)) == len(EMOTIONS)
    expect(page.locator("#gallery-error")).to_be_hidden()
    page.screenshot(path=str(_screenshot_dir(tmp_path) / "ui-gallery.png"), full_page=True)
    assert ui.outside_requests == []
