"""The FastAPI application: REST (native and OpenAI-compatible), streaming, WebSocket, metrics and the web UI.

    qingyin serve --host 127.0.0.1 --port 8000          # or: uvicorn --factory qingyin.server.app:create_app_from_env

Routes (OpenAPI docs at /docs):
    POST /v1/tts              JSON -> audio (stream: true -> chunked wav/pcm as it is produced)
    GET  /v1/tts?text=...     the same, for quick use
    POST /v1/tts/reference    multipart: a reference recording and the fields of /v1/tts -> audio with its prosody
    POST /v1/audio/speech     OpenAI's text-to-speech API
    WS   /v1/tts/ws           JSON requests in, JSON events and binary audio out
    POST /v1/frontend         what the frontend makes of a text (pinyin, phones, warnings)
    GET  /v1/voices           the voices of this server (gender, family, capabilities, blends, sample URL)
    GET  /v1/voices/{name}/sample   a fixed sentence (service.SAMPLE_TEXT) in that voice
    GET  /healthz, /metrics, /ui (Gradio)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from dataclasses import replace
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Query, Request, UploadFile, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect

import qingyin
from qingyin.options import EMOTIONS, ENERGY, INTENSITY, NEUTRAL, PITCH, REFERENCE_STRENGTH, SPEED
from qingyin.server import encoding
from qingyin.server.config import OPEN_ROUTES, ServerConfig
from qingyin.server.logs import LOGGER, configure_logging, request_id
from qingyin.server.schemas import (
    EMOTION_TEXT_HELP,
    OPENAI_VOICES,
    FrontendBody,
    SpeechBody,
    TTSBody,
    emotion_field,
    openai_voice_table,
)
from qingyin.server.service import (
    BLEND_HELP,
    EMOTIONS_NOTE,
    REFERENCE_NOTE,
    SAMPLE_TEXT,
    Audio,
    BadRequest,
    ServiceError,
    ShuttingDown,
    SpeechRequest,
    TextTooLong,
    TTSService,
    Unauthorized,
    UploadTooLarge,
    as_service_error,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
JSON_OVERHEAD = 64 * 1024  # bytes a request body may have beyond its text (field names, options, a lexicon)
WARNING_HEADER = "X-Qingyin-Warning"  # what was changed, ignored or doubtful about a request ("; "-separated)
# Upload types that may hold audio; anything else declared (text/plain, image/png, ...) is refused unread.
AUDIO_TYPES = ("application/octet-stream", "application/ogg", "video/ogg")


def create_app(config: ServerConfig | None = None, service: TTSService | None = None) -> FastAPI:
    config = config or ServerConfig().validated()
    service = service or TTSService(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.get_running_loop().run_in_executor(None, service.start)
        LOGGER.info("ready", extra={"voices": service.voices, "backend": config.backend})
        yield
        LOGGER.info("shutting down: finishing requests in progress")
        await asyncio.get_running_loop().run_in_executor(None, service.close)

    app = FastAPI(title="qingyin", version=qingyin.__version__, lifespan=lifespan,
                  description="Mandarin text-to-speech: native and OpenAI-compatible APIs, streaming, web UI.")
    app.state.service = service
    app.state.config = config
    _add_error_handlers(app)
    _add_routes(app, service, config)
    if config.ui:
        _mount_ui(app, service, config)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["*"],
                           allow_headers=["*"],
                           expose_headers=["X-Request-ID", "X-Audio-Duration", "X-Cache", WARNING_HEADER])
    app.add_middleware(RequestMiddleware, service=service, config=config)
    return app


def create_app_from_env() -> FastAPI:
    """The app configured from QINGYIN_* variables (what `qingyin serve` sets), for uvicorn's --factory."""
    config = ServerConfig.from_env()
    configure_logging(config.log_level)
    return create_app(config)


# --- routes ------------------------------------------------------------------------------------------
def _add_routes(app: FastAPI, service: TTSService, config: ServerConfig) -> None:
    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/ui/" if config.ui else "/docs")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.post("/v1/tts", tags=["speech"], response_class=Response,
              responses={200: {"content": {"audio/wav": {}, "audio/mpeg": {}}, "description": "the audio"}})
    async def tts(body: TTSBody) -> Response:
        """Text or SSML to audio. `stream: true` sends wav or pcm chunks as soon as they are synthesized."""
        return await _speak(service, body.to_request(config.voice), body.stream)

    @app.get("/v1/tts", tags=["speech"], response_class=Response)
    async def tts_get(
        text: str = Query(..., description="text to read"), voice: str = config.voice,
        emotion: str = Query(NEUTRAL, description=EMOTION_TEXT_HELP),
        intensity: float = Query(INTENSITY.default, description=INTENSITY.describe()),
        reference_strength: float = Query(REFERENCE_STRENGTH.default, description="as in POST /v1/tts (no effect "
                                          "without a reference recording: POST /v1/tts/reference)"),
        speed: float = SPEED.default, pitch: float = PITCH.default, energy: float = ENERGY.default,
        format: str = "wav", sample_rate: int | None = None, stream: bool = False,
    ) -> Response:
        """The same as POST /v1/tts, with the options as query parameters (an emotion mix as happy:0.6,surprise:0.3)."""
        request = SpeechRequest(text=text, voice=voice, emotion=emotion_field(emotion), intensity=intensity,
                                speed=speed, pitch=pitch, energy=energy, format=format, sample_rate=sample_rate,
                                reference_strength=reference_strength)
        return await _speak(service, request, stream)

    @app.post("/v1/tts/reference", tags=["speech"], response_class=Response,
              responses={200: {"content": {"audio/wav": {}, "audio/mpeg": {}}, "description": "the audio"}})
    async def tts_reference(
        reference: Annotated[UploadFile, File(description="a recording of 1-60 s of speech (wav, flac, ogg, mp3)")],
        text: Annotated[str | None, Form(description="text to read; SSML when it starts with <speak>")] = None,
        ssml: Annotated[str | None, Form(description="SSML; <speak> is added when missing")] = None,
        voice: Annotated[str | None, Form(description="a voice or blend; default: the server's voice")] = None,
        emotion: Annotated[str, Form(description=EMOTION_TEXT_HELP)] = NEUTRAL,
        intensity: Annotated[float, Form(description=INTENSITY.describe())] = INTENSITY.default,
        reference_strength: Annotated[float, Form(description=REFERENCE_STRENGTH.describe())] =
        REFERENCE_STRENGTH.default,
        speed: Annotated[float, Form(description=SPEED.describe())] = SPEED.default,
        pitch: Annotated[float, Form(description=PITCH.describe())] = PITCH.default,
        energy: Annotated[float, Form(description=ENERGY.describe())] = ENERGY.default,
        format: Annotated[str, Form(description="wav, mp3, ogg, opus, flac or pcm")] = "wav",
        sample_rate: Annotated[int | None, Form(description="output rate in Hz; default the voice's")] = None,
    ) -> Response:
        """Speak the text with the prosody of a reference recording: its pitch register and range, loudness
        contrasts, speaking rate and pauses are measured and carried over to the voice (`reference_strength` of
        the way), on top of `emotion` and the other fields of POST /v1/tts. The voice's timbre is its own.

        The upload is checked for size and type before it is decoded; a recording that cannot be used (unreadable,
        shorter than 1 s or longer than 60 s, silent, no voice in it) gets a 400 that says why. What makes the
        measurement doubtful (clipping, noise) or where the transfer was limited is said in X-Qingyin-Warning."""
        data = await _read_upload(reference, config)
        body = TTSBody(text=text, ssml=ssml, voice=voice, emotion=emotion_field(emotion), intensity=intensity,
                       speed=speed, pitch=pitch, energy=energy, format=format, sample_rate=sample_rate,
                       reference_strength=reference_strength)
        request = replace(body.to_request(config.voice), reference=data)
        return await _speak(service, request, stream=False)

    @app.post("/v1/audio/speech", tags=["openai"], response_class=Response)
    async def openai_speech(body: SpeechBody) -> Response:
        """OpenAI-compatible: `client.audio.speech.create(model="tts-1", voice="alloy", input=...)` works with
        base_url pointed here. OpenAI voice names map to ours (schemas.OPENAI_VOICE_MAP; one that is not installed
        falls back to the default voice), our own voices and blends work too. `instructions` that name an emotion
        (开心, happy, cheerful, 难过, sad, 生气, angry, 惊讶, surprised, 害怕, afraid, 厌恶, disgusted, ...:
        qingyin.style.names) set it, the first one named wins; other instructions are ignored. What was changed or
        ignored is said in the X-Qingyin-Warning header."""
        request, warnings = body.to_request(service.voices, config.voice)
        try:
            response = await _speak(service, request, stream=request.format in encoding.STREAM_FORMATS)
        except BadRequest as error:
            if error.param != "voice":
                raise
            raise BadRequest(f"{error.message}; or an OpenAI voice name ({', '.join(OPENAI_VOICES)})", "voice",
                             error.headers) from None
        if warnings:
            _add_warnings(response, warnings)
        return response

    @app.websocket("/v1/tts/ws")
    async def tts_ws(websocket: WebSocket) -> None:
        await _websocket_session(websocket, service)

    @app.post("/v1/frontend", tags=["frontend"])
    async def frontend(body: FrontendBody) -> dict[str, object]:
        """What the frontend reads: normalized text, words, pinyin, phones and warnings, per sentence."""
        if len(body.text) > config.max_chars:
            raise TextTooLong(f"text has {len(body.text)} characters; at most {config.max_chars}", "text")
        return service.frontend_report(body.text)

    @app.get("/v1/voices", tags=["info"])
    async def voices() -> dict[str, object]:
        """The voices this server has (gender, family, capabilities, which can be blended and with which, speakers,
        emotions, sample rates, formats, variants, sample URL), the default voice, and how OpenAI's voice names map."""
        installed = service.voices
        return {"voices": service.voices_info(), "default": config.voice, "max_chars": config.max_chars,
                "blend": BLEND_HELP, "sample_text": SAMPLE_TEXT, "emotions": list(EMOTIONS),
                "emotions_note": EMOTIONS_NOTE, "intensity": {"min": INTENSITY.low, "max": INTENSITY.high,
                                                              "default": INTENSITY.default},
                "reference": REFERENCE_NOTE, "openai_voices": openai_voice_table(installed, config.voice)}

    @app.get("/v1/voices/{name}/sample", tags=["info"], response_class=Response,
             responses={200: {"content": {"audio/wav": {}, "audio/mpeg": {}}, "description": "the sample"}})
    async def voice_sample(name: str, format: str = "wav", sample_rate: int | None = None) -> Response:
        """The voice saying the same short sentence as every other voice (`sample_text` of GET /v1/voices), for
        comparing them; synthesized and cached like any request. 404 for a name that is not a voice here."""
        return await _speak(service, service.sample_request(name, format, sample_rate), stream=False)

    @app.get("/healthz", tags=["info"])
    async def healthz() -> Response:
        if service.closing:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        return JSONResponse({"status": "ok", "version": qingyin.__version__, "voices": service.voices,
                             "queue_depth": service.queue_depth})

    @app.get("/metrics", tags=["info"])
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=service.metrics.content_type)


async def _speak(service: TTSService, request: SpeechRequest, stream: bool) -> Response:
    extension = "ogg" if request.format == "opus" else request.format
    headers = {"Content-Disposition": f'inline; filename="speech.{extension}"'}
    if stream:
        began = time.perf_counter()
        start = await service.stream(request)
        service.metrics.first_audio.observe(time.perf_counter() - began)
        return StreamingResponse(start.chunks, media_type=start.content_type,
                                 headers=headers | {"X-Sample-Rate": str(start.sample_rate)})
    audio: Audio = await service.synthesize(request)
    headers |= {"X-Sample-Rate": str(audio.sample_rate), "X-Cache": "hit" if audio.cached else "miss"}
    if audio.audio_seconds is not None:
        headers["X-Audio-Duration"] = f"{audio.audio_seconds:.3f}"
    response = Response(audio.data, media_type=audio.content_type, headers=headers)
    if audio.warnings:
        _add_warnings(response, audio.warnings)
    return response


def _add_warnings(response: Response, warnings: Sequence[str]) -> None:
    """Warnings into the X-Qingyin-Warning header (appended to any already there). Headers are Latin-1: other
    characters are sent as \\uXXXX escapes."""
    text = "; ".join([*filter(None, [response.headers.get(WARNING_HEADER)]), *warnings])
    text = text.encode("latin-1", "backslashreplace").decode("latin-1").replace("\r", " ").replace("\n", " ")
    response.headers[WARNING_HEADER] = text


async def _read_upload(upload: UploadFile, config: ServerConfig) -> bytes:
    """The reference recording's bytes, read no further than the size limit; its declared type and its first
    bytes are checked before anything decodes it (the service checks size and type again, for every caller)."""
    limit = int(config.max_upload_mb * 2**20)
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if declared and not declared.startswith("audio/") and declared not in AUDIO_TYPES:
        raise BadRequest(f"the reference file is of type {declared!r}, not audio; send wav, flac, ogg or mp3",
                         "reference")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise UploadTooLarge(f"the reference recording is over {config.max_upload_mb:g} MB; send a shorter one "
                             "(a few seconds is enough)", "reference")
    return data


# --- WebSocket -----------------------------------------------------------------------------------------
class WebSocketBody(TTSBody):
    """One message on /v1/tts/ws: the fields of POST /v1/tts; audio comes as binary frames (format wav or pcm)."""

    format: str = "pcm"


async def _websocket_session(websocket: WebSocket, service: TTSService) -> None:
    """Each text message is one request, answered in order: a `start` event, then for each sentence a
    `sentence` event followed by its binary audio, then `done` (or `error`, after which the connection stays
    open). A message {"type": "close"} ends the session."""
    await websocket.accept()
    number = 0
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        number += 1
        began = time.perf_counter()
        status = 200
        try:
            payload = _ws_payload(message)
            if payload.get("type") == "close":
                await websocket.close()
                return
            payload.pop("type", None)
            request = WebSocketBody.model_validate(payload).to_request(service.config.voice)
            await _ws_request(websocket, service, number, request)
        except _ClientGone:
            return
        except (ServiceError, ValidationError, ValueError) as error:
            if isinstance(error, ValidationError):
                error = BadRequest(_validation_message(error.errors()))
            answer = as_service_error(error)
            status = answer.status
            with contextlib.suppress(Exception):
                await websocket.send_json({"type": "error", "id": number, "status": status, "message": answer.message})
        finally:
            service.metrics.requests.labels("/v1/tts/ws", str(status)).inc()
            service.metrics.latency.labels("/v1/tts/ws").observe(time.perf_counter() - began)


class _ClientGone(Exception):
    pass


def _ws_payload(message: Message) -> dict[str, Any]:
    if message.get("text") is None:
        raise BadRequest('send requests as JSON text messages, e.g. {"text": "你好"}')
    try:
        payload = json.loads(message["text"])
    except json.JSONDecodeError as error:
        raise BadRequest(f"message is not valid JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(payload, dict):
        raise BadRequest('a message must be a JSON object, e.g. {"text": "你好"}')
    return payload


async def _ws_request(websocket: WebSocket, service: TTSService, number: int, request: SpeechRequest) -> None:
    chunks = service.stream_chunks(request)  # checks the request first
    source_rate = service.source_rate(request.voice)
    rate = request.sample_rate or source_rate
    encoder = encoding.StreamEncoder(request.format, source_rate, request.sample_rate)
    seconds = 0.0
    async with contextlib.aclosing(chunks):
        first = True
        async for piece in chunks:
            if first:
                await _send(websocket, {"type": "start", "id": number, "format": request.format, "sample_rate": rate})
                await _send(websocket, encoder.header())
                first = False
            if piece.starts is not None:
                await _send(websocket, {"type": "sentence", "id": number, "index": piece.sentence,
                                        "text": piece.starts})
            seconds += len(piece.audio) / source_rate
            await _send(websocket, encoder.encode(piece.audio))
    await _send(websocket, encoder.finish())
    await _send(websocket, {"type": "done", "id": number, "audio_seconds": round(seconds, 3)})


async def _send(websocket: WebSocket, item: dict[str, object] | bytes) -> None:
    try:
        if isinstance(item, dict):
            await websocket.send_json(item)
        elif item:
            await websocket.send_bytes(item)
    except Exception as error:  # the client went away mid-stream: stop synthesizing for it
        raise _ClientGone() from error


# --- errors --------------------------------------------------------------------------------------------
def error_response(status: int, kind: str, message: str, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The error body every route uses (OpenAI's shape, so OpenAI clients show the message)."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": status},
            "request_id": request_id.get()}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(errors: Any) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        if error.get("type") == "json_invalid":
            parts.append("the request body is not valid JSON" + (f" ({error['ctx']['error']})"
                                                                  if "ctx" in error else ""))
        elif error.get("type") == "extra_forbidden":
            parts.append(f"unknown field {where!r}")
        else:
            parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError) -> JSONResponse:
        return error_response(error.status, error.kind, error.message, error.param, error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_request_error", _validation_message(error.errors()))

    @app.exception_handler(ValidationError)
    async def model_error(request: Request, error: ValidationError) -> JSONResponse:
        return error_response(400, "invalid_request_error", _validation_message(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = str(error.detail) if error.status_code != 404 else f"no route {request.url.path}; see /docs"
        return error_response(error.status_code, "http_error", message, headers=dict(error.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        LOGGER.exception("unexpected error")
        return error_response(500, "server_error", "internal error; the server log has the details "
                                                   f"(request id {request_id.get()})")


# --- middleware ------------------------------------------------------------------------------------------
class RequestMiddleware:
    """Request ids, API keys, body size limits, a JSON log line and metrics for every request (pure ASGI, so
    streaming responses and client disconnects pass through untouched)."""

    def __init__(self, app: Callable[..., Awaitable[None]], service: TTSService, config: ServerConfig):
        self.app = app
        self.service = service
        self.config = config
        self.body_limit = config.max_chars * 4 + JSON_OVERHEAD  # UTF-8 needs at most 4 bytes a character
        self.upload_limit = int(config.max_upload_mb * 2**20) + JSON_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        rid = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        status = [0]
        began = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            rejection = self._rejection(scope, headers)
            if rejection is None and scope["type"] == "http" and "content-length" not in headers:
                receive, rejection = await self._read_unsized_body(scope["path"], receive)
            if rejection is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008, "reason": rejection.message[:120]})
                    return
                await error_response(rejection.status, rejection.kind, rejection.message, rejection.param,
                                     rejection.headers)(scope, receive, send_with_id)
                return
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as error:
                if scope["type"] != "http":
                    raise
                await self._unhandled(error, bool(status[0]), scope, receive, send_with_id)
                status[0] = 500
        finally:
            if scope["type"] == "http":
                self._record(scope, status[0] or 500, time.perf_counter() - began)
            request_id.reset(token)

    @staticmethod
    async def _unhandled(error: Exception, started: bool, scope: Scope, receive: Receive, send: Send) -> None:
        """An error no route handled. Before the response started: a 500 that carries the request id, logged with
        its traceback. After it started (a stream whose synthesis failed): the response can only be cut short.
        Returning with it incomplete makes the server drop the connection (uvicorn logs "ASGI callable returned
        without completing response"), so the client sees a broken transfer (an incomplete chunked body), never
        a short file that looks whole; why is logged here, with the request id."""
        if not started:
            LOGGER.error("unexpected error", exc_info=error)
            await error_response(500, "server_error", "internal error; the server log has the details (request id "
                                                      f"{request_id.get()})")(scope, receive, send)
            return
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, ServiceError):
            cause = cause.__cause__ or cause.__context__
        LOGGER.error("response cut short: %s", cause.message if isinstance(cause, ServiceError) else error)

    def _rejection(self, scope: Scope, headers: dict[str, str]) -> ServiceError | None:
        path = scope["path"]
        if self.config.api_keys and not self._open(path) and not self._authorized(scope, headers):
            return Unauthorized("missing or wrong API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
                                 " (WebSocket: ?api_key=<key>)", headers={"WWW-Authenticate": "Bearer"})
        length = int(headers["content-length"]) if headers.get("content-length", "").isdigit() else 0
        too_large = self._too_large(path, length)
        if too_large is not None:
            return too_large
        if self.service.closing and path.startswith("/v1/"):
            return ShuttingDown("the server is shutting down; retry on another instance")
        return None

    def _too_large(self, path: str, length: int, unsized: bool = False) -> ServiceError | None:
        """413 for a body of `length` bytes over the path's limit (uploads: max_upload_mb; the rest: max_chars)."""
        at_least = "at least " if unsized else ""
        if _is_upload(path):
            if length > self.upload_limit:
                return UploadTooLarge(f"the upload is {at_least}{length / 2**20:.1f} MB; this server accepts at most "
                                      f"{self.config.max_upload_mb:g} MB (a few seconds of audio is enough)")
        elif length > self.body_limit:
            return TextTooLong(f"request body is {at_least}{length} bytes; this server accepts at most "
                               f"{self.body_limit} bytes ({self.config.max_chars} characters of text per request; "
                               "split the text)")
        return None

    async def _read_unsized_body(self, path: str, receive: Receive) -> tuple[Receive, ServiceError | None]:
        """A body sent without Content-Length (chunked), read here no further than the path's limit, since the
        routes' parsers would take any size (the multipart one spooling it to disk); then handed to the app as it
        came. A 413 when it is over the limit."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client went away
                break
            size += len(message.get("body", b""))
            too_large = self._too_large(path, size, unsized=True)
            if too_large is not None:
                return receive, too_large
            if not message.get("more_body", False):
                break
        pending = iter(messages)

        async def replay() -> Message:
            return next(pending, None) or await receive()

        return replay, None

    def _open(self, path: str) -> bool:
        """Whether `path` needs no API key: "/" (a redirect), the favicon and the routes of `open_routes`."""
        if path in ("/", "/favicon.ico"):
            return True
        return any(path == prefix or path.startswith(prefix + "/")
                   for name in self.config.open_routes for prefix in OPEN_ROUTES[name])

    def _authorized(self, scope: Scope, headers: dict[str, str]) -> bool:
        given = []
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            given.append(bearer[7:].strip())
        if "x-api-key" in headers:
            given.append(headers["x-api-key"])
        if scope["type"] == "websocket":
            from urllib.parse import parse_qs

            given += parse_qs(scope.get("query_string", b"").decode("latin-1")).get("api_key", [])
        return any(key_matches(key, self.config.api_keys) for key in given)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        path = scope["path"]
        endpoint = getattr(route, "path", None) or ("/ui" if path.startswith("/ui") else "other")
        self.service.metrics.requests.labels(endpoint, str(status)).inc()
        self.service.metrics.latency.labels(endpoint).observe(seconds)
        if not path.startswith("/ui"):  # the web UI's own asset requests would drown the log
            LOGGER.info("request", extra={"method": scope.get("method"), "path": path, "status": status,
                                          "ms": round(seconds * 1000, 1), "client": (scope.get("client") or [""])[0]})


def _is_upload(path: str) -> bool:
    """Routes that take a recording: POST /v1/tts/reference and the web UI's (Gradio's) upload route."""
    return path == "/v1/tts/reference" or (path.startswith("/ui/") and path.endswith("/upload"))


def key_matches(given: str, keys: Sequence[str]) -> bool:
    """Whether `given` is one of `keys`, compared in constant time (hmac.compare_digest on the UTF-8 bytes, every
    key compared), so that response timing does not tell how much of a guess was right."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode("utf-8", "surrogatepass"), key.encode("utf-8", "surrogatepass"))
    return found


def _mount_ui(app: FastAPI, service: TTSService, config: ServerConfig) -> None:
    try:
        import gradio as gr

        from qingyin.server.ui import build_ui
    except ImportError as error:
        LOGGER.warning("web UI disabled: %s (install gradio)", error)
        return
    auth = None
    if config.api_keys:  # the UI calls the service directly, so it asks for a key itself
        def auth(username: str, password: str) -> bool:
            return key_matches(password, config.api_keys)

    # The UI's events are private (scripts use /v1/*), so Gradio's "use via API" footer link would show nothing.
    gr.mount_gradio_app(app, build_ui(service), path="/ui", auth=auth, footer_links=["gradio", "settings"],
                        max_file_size=int(config.max_upload_mb * 2**20),
                        auth_message="Enter any user name and one of the server's API keys as the password.")

