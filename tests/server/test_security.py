"""Security of the HTTP server: API keys compared in constant time, the routes open without a key, CORS closed
by default, uploads and bodies bounded before they are read, and no file path made from request data."""

from __future__ import annotations

import hmac
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from qingyin.server import app as app_module
from qingyin.server.cache import AudioCache, _DiskStore
from qingyin.server.config import OPEN_ROUTES, ConfigError, ServerConfig
from qingyin.voices import registry

PATH_LIKE = ("../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini", "baker/../../etc/passwd", "%2e%2e%2f")


def error_of(response) -> dict:
    return response.json()["error"]


def wav_bytes(seconds: float = 2.0) -> bytes:
    data = io.BytesIO()
    soundfile.write(data, np.zeros(int(24000 * seconds), np.float32), 24000, format="WAV")
    return data.getvalue()


# --- API keys ------------------------------------------------------------------------------------------------
def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def compare_digest(a, b):
        calls.append((type(a), type(b)))
        return real(a, b)

    monkeypatch.setattr(app_module.hmac, "compare_digest", compare_digest)
    keys = ("first-key", "second-key", "clé-trois")
    assert app_module.key_matches("first-key", keys)  # found first, and still compared with the others
    assert len(calls) == 3 and all(kinds == (bytes, bytes) for kinds in calls)
    assert app_module.key_matches("clé-trois", keys)  # not ASCII: compared as UTF-8 bytes, no TypeError
    assert not app_module.key_matches("first-ke", keys) and not app_module.key_matches("first-key ", keys)
    assert not app_module.key_matches("", keys) and not app_module.key_matches("x", ())


def test_open_routes_by_default_and_everything_else_needs_the_key(make_client):
    client = make_client(api_keys=("secret",))
    for path in ("/healthz", "/metrics", "/docs", "/openapi.json", "/"):
        assert client.get(path, follow_redirects=False).status_code in (200, 307), path
    for method, path in (("GET", "/v1/voices"), ("GET", "/v1/voices/baker/sample"), ("POST", "/v1/tts"),
                         ("GET", "/v1/nothing"), ("GET", "/anything-else")):
        response = client.request(method, path)
        assert response.status_code == 401, path  # an unknown route too: what exists is not told without a key
        assert response.headers["www-authenticate"] == "Bearer" and "API key" in error_of(response)["message"]
    assert client.get("/v1/voices", headers={"X-API-Key": "secret"}).status_code == 200
    assert client.get("/v1/voices", headers={"Authorization": "Bearer secret"}).status_code == 200
    assert client.get("/v1/voices", headers={"Authorization": "Bearer secre"}).status_code == 401


def test_open_routes_can_be_closed(make_client):
    client = make_client(api_keys=("secret",), open_routes=("healthz",))
    assert client.get("/healthz").status_code == 200
    for path in ("/metrics", "/docs", "/openapi.json", "/redoc"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"X-API-Key": "secret"}).status_code == 200, path
    closed = make_client(api_keys=("secret",), open_routes=())
    assert closed.get("/healthz").status_code == 401
    assert make_client(open_routes=()).get("/metrics").status_code == 200  # without keys, nothing is locked


def test_open_routes_setting_from_the_environment():
    assert ServerConfig().open_routes == tuple(OPEN_ROUTES) == ("healthz", "metrics", "docs", "ui")
    assert ServerConfig.from_env({"QINGYIN_OPEN_ROUTES": "healthz, metrics"}).open_routes == ("healthz", "metrics")
    assert ServerConfig.from_env({"QINGYIN_OPEN_ROUTES": ""}).open_routes == ()
    with pytest.raises(ConfigError, match="open_routes: unknown route 'v1'; choose from healthz, metrics, docs, ui"):
        ServerConfig.from_env({"QINGYIN_OPEN_ROUTES": "healthz,v1"})


# --- CORS ----------------------------------------------------------------------------------------------------
def test_cors_is_closed_by_default(client):
    preflight = client.options("/v1/tts", headers={"Origin": "https://example.com",
                                                   "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    simple = client.get("/v1/voices", headers={"Origin": "https://example.com"})
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


# --- uploads and bodies --------------------------------------------------------------------------------------
@pytest.fixture
def decoded(monkeypatch):
    """Every reference recording the service goes on to decode (qingyin.server.service.reference_prosody)."""
    from qingyin.server import service

    seen = []
    real = service.reference_prosody

    def reference_prosody(tts, request):
        seen.append(request)
        return real(tts, request)

    monkeypatch.setattr(service, "reference_prosody", reference_prosody)
    return seen


def chunks(data: bytes, size: int = 64 * 1024):
    """A body without Content-Length (httpx sends an iterator chunked)."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_uploads_are_checked_for_size_and_type_before_decoding(make_client, decoded):
    client = make_client(max_upload_mb=1.0)
    form = {"text": "你好"}
    declared = client.post("/v1/tts/reference", data=form, files={"reference": ("a.txt", wav_bytes(), "text/plain")})
    assert declared.status_code == 400 and "not audio" in error_of(declared)["message"]
    sniffed = client.post("/v1/tts/reference", data=form, files={"reference": ("a.wav", b"#!/bin/sh\n" * 50)})
    assert sniffed.status_code == 400 and "not audio" in error_of(sniffed)["message"]
    big = client.post("/v1/tts/reference", data=form, files={"reference": ("a.wav", wav_bytes(30))})  # 1.4 MB
    assert big.status_code == 413 and error_of(big)["type"] == "upload_too_large"
    assert decoded == []  # none of them was decoded


def test_a_body_without_content_length_is_bounded_too(make_client, decoded):
    client = make_client(max_upload_mb=1.0)
    boundary = "qingyin-test"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n你好\r\n--{boundary}\r\n"
                 f"Content-Disposition: form-data; name=\"reference\"; filename=\"a.wav\"\r\n"
                 f"Content-Type: audio/wav\r\n\r\n").encode() + wav_bytes(30) + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    upload = client.post("/v1/tts/reference", content=chunks(multipart), headers=headers)
    assert upload.status_code == 413 and "at least" in error_of(upload)["message"]
    assert decoded == []
    text = client.post("/v1/tts", content=chunks(json.dumps({"text": "好" * 100_000}).encode()),
                       headers={"Content-Type": "application/json"})
    assert text.status_code == 413 and error_of(text)["type"] == "text_too_long"
    assert "at least" in error_of(text)["message"]  # refused while it was read, not after it was all in memory
    small = client.post("/v1/tts", content=chunks(json.dumps({"text": "你好。"}).encode(), 4),
                        headers={"Content-Type": "application/json"})
    assert small.status_code == 200 and small.content[:4] == b"RIFF"  # a small chunked body reaches the route whole


def test_the_web_ui_takes_a_recording_of_a_few_seconds_and_bounds_it(make_client):
    pytest.importorskip("gradio")
    client = make_client(ui=True, max_upload_mb=1.0)
    route = "/ui/gradio_api/upload"
    recording = client.post(route, files={"files": ("a.wav", wav_bytes(5), "audio/wav")})  # 240 kB
    assert recording.status_code == 200, recording.text  # was refused as "text too long" (the body limit of /v1)
    too_big = client.post(route, files={"files": ("a.wav", wav_bytes(30), "audio/wav")})
    assert too_big.status_code == 413 and error_of(too_big)["type"] == "upload_too_large"


# --- no path from request data -------------------------------------------------------------------------------
@pytest.fixture
def paths_made(monkeypatch):
    """The model folders and the disk-cache files the server builds paths for while the test runs."""
    made: dict[str, list[str]] = {"models": [], "cache": []}
    model_dir, cache_path = registry.model_dir, _DiskStore.path
    monkeypatch.setattr(registry, "model_dir", lambda model: (made["models"].append(model), model_dir(model))[1])
    monkeypatch.setattr(_DiskStore, "path", lambda self, key: (made["cache"].append(key), cache_path(self, key))[1])
    return made


@pytest.mark.parametrize("value", PATH_LIKE)
def test_path_like_request_values_never_become_paths(make_client, tmp_path, paths_made, value):
    client = make_client(cache_items=0, cache_dir=tmp_path / "cache")
    for body in ({"text": "你好。", "voice": value}, {"text": "你好。", "format": value},
                 {"text": f'<speak><voice name="{value}">你好。</voice></speak>'},
                 {"text": "你好。", "voice": f"xiaobei:0.5,{value}:0.5"}):
        response = client.post("/v1/tts", json=body)
        assert response.status_code == 400, (body, response.text)
    for response in (client.get("/v1/tts", params={"text": "你好。", "voice": value}),
                     client.post("/v1/frontend", json={"text": "你好。", "voice": value})):
        assert response.status_code in (400, 422), response.text
    sample = client.get(f"/v1/voices/{value.replace('/', '%2F')}/sample")
    assert sample.status_code == 404
    served = client.post("/v1/tts", json={"text": "你好。", "lexicon": {value: "ni3"}})  # any word, as a word
    assert served.status_code in (200, 400)
    assert set(paths_made["models"]) <= {model.name for model in registry.MODELS.values()}
    assert all(len(key) == 64 and set(key) <= set("0123456789abcdef") for key in paths_made["cache"])
    for path in (tmp_path / "cache").rglob("*"):  # only <key[:2]>/<key> under the cache directory
        assert path.is_dir() and len(path.name) == 2 or path.parent.name == path.name[:2] and len(path.name) == 64
    with pytest.raises(ValueError, match="SHA-256 hex digests"):
        AudioCache(directory=tmp_path / "cache").get(value)  # the cache refuses a key that is not a digest
    assert not Path(tmp_path / "etc").exists()
