"""What the HTTP routes, the WebSocket and the web UI share: loaded voices, admission control, caching, timeouts.

Synthesis is CPU work, so it runs in a small thread pool (`concurrency` at once); at most `queue_size` more
requests wait, the rest get QueueFullError (HTTP 429 with Retry-After). A request that runs past `timeout`
is stopped between sentences (or chunks, when streaming) so it does not keep a worker busy for nothing;
the same happens when a streaming client goes away.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import qingyin
from qingyin import families
from qingyin.evaluate.background_gate import start_background_gate
from qingyin.families.base import MIX
from qingyin.options import EMOTIONS, INTENSITY, NEUTRAL, REFERENCE_STRENGTH
from qingyin.runtime.limits import WorkLimitError, check_text
from qingyin.runtime.memory import MemoryTrimmer
from qingyin.runtime.pool import ModelPool, parse_selector
from qingyin.runtime.synthesizer import StreamChunk, SynthesisCancelled, Synthesizer
from qingyin.server import encoding
from qingyin.server.cache import AudioCache, cache_key, source_digest
from qingyin.server.config import ServerConfig
from qingyin.server.logs import LOGGER
from qingyin.server.metrics import Metrics
from qingyin.text import markup
from qingyin.voices import registry
from qingyin.voices.wheels import ModelDamagedError, VoiceNotAvailableError

EMOTIONS_NOTE = ("Every voice speaks all seven emotions, rendered by prosody control: the pitch register and range, "
                 "the intonation contours (sentence end, focus word, declination), loudness and its contrasts, the "
                 "speaking rate and the pauses are edited from the voice's own predicted prosody. The voices were "
                 "trained on neutral speech, so this is neutral speech reshaped, not an emotional voice. "
                 "`emotion` is a name or a mix such as {\"happy\": 0.6, \"surprise\": 0.3} (text form "
                 "happy:0.6,surprise:0.3); `intensity` 0-2 (0 = neutral, 1 = the preset, 2 = strong).")
REFERENCE_NOTE = ("POST /v1/tts/reference takes a recording (1-60 s of speech; wav, flac, ogg or mp3) and speaks "
                  "the text with its prosody (pitch register and range, loudness contrasts, rate, pauses) carried "
                  "over to the voice, `reference_strength` 0-1 of the way.")
MAX_SELECTORS = 32  # engines kept for distinct voice selectors (mixes are free-form); they share the loaded models
WARNINGS_KEPT = 1024  # warnings of cached answers with a reference recording, so a cache hit says them too
STREAM_BUFFER = 8  # audio chunks a streaming worker may run ahead of a slow client
SAMPLE_TEXT = "你好，欢迎使用轻音。"  # what GET /v1/voices/{name}/sample says, the same for every voice
BLEND_HELP = "a blend is name:weight,name:weight of voices of one model that can mix, e.g. xiaobei:0.6,yunxi:0.4"
SSML_PREFIXES = ("<speak", "<?xml", "<!DOCTYPE")  # text that the frontend reads as SSML (qingyin.text.markup.parse)
T = TypeVar("T")


class ServiceError(Exception):
    """An error with the HTTP status and the message the client gets (the message says what to fix)."""

    status = 500
    kind = "server_error"

    def __init__(self, message: str, param: str | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = dict(headers or {})


class BadRequest(ServiceError):
    status, kind = 400, "invalid_request_error"


class TextTooLong(ServiceError):
    status, kind = 413, "text_too_long"


class QueueFull(ServiceError):
    status, kind = 429, "queue_full"


class ShuttingDown(ServiceError):
    status, kind = 503, "shutting_down"


class SynthesisTimeout(ServiceError):
    status, kind = 504, "timeout"


class Unauthorized(ServiceError):
    status, kind = 401, "unauthorized"


class UploadTooLarge(ServiceError):
    status, kind = 413, "upload_too_large"


class NotAvailable(ServiceError):
    status, kind = 501, "not_available"


class NotFound(ServiceError):
    status, kind = 404, "not_found"


class VoiceUnavailable(ServiceError):
    """The voice's model files on this server are damaged (the log names the file); other voices still serve."""

    status, kind = 503, "voice_unavailable"


class TooMuchWork(ServiceError):
    """Over a work limit (qingyin.runtime.limits): audio seconds, SSML elements or break time per request."""

    status, kind = 413, "work_limit"


@dataclass(frozen=True)
class SpeechRequest:
    """One synthesis job, after the route has parsed it (the JSON, form and OpenAI schemas all become this)."""

    text: str
    voice: str = registry.DEFAULT_VOICE
    emotion: str | Mapping[str, float] = NEUTRAL  # a name, "happy:0.6,surprise:0.3" or {"happy": 0.6, ...}
    intensity: float = INTENSITY.default
    speed: float = 1.0
    pitch: float = 1.0
    energy: float = 1.0
    format: str = "wav"
    sample_rate: int | None = None  # None = the voice's own rate
    lexicon: tuple[tuple[str, str], ...] = ()  # word -> pinyin, this request only
    reference: bytes | None = field(default=None, repr=False)  # a reference recording's file bytes
    reference_strength: float = REFERENCE_STRENGTH.default

    def synthesis_options(self, reference: bool = True) -> dict[str, object]:
        """The engine's options; `reference=False` leaves the recording out (it is checked in a worker)."""
        options: dict[str, object] = {
            "speed": self.speed, "pitch": self.pitch, "energy": self.energy, "emotion": _plain(self.emotion),
            "intensity": self.intensity, "reference_strength": self.reference_strength}
        if reference and self.reference is not None:
            options["reference"] = self.reference
        return options

    def cache_parts(self) -> dict[str, object]:
        """What the cache keys the request by: every field, the recording by its content hash."""
        parts = asdict(self)
        parts["emotion"] = _plain(self.emotion)
        if self.reference is not None:
            parts["reference"] = hashlib.sha256(self.reference).hexdigest()
        return parts


@dataclass(frozen=True)
class Audio:
    data: bytes
    content_type: str
    sample_rate: int
    audio_seconds: float | None  # None when served from the cache
    cached: bool
    warnings: tuple[str, ...] = ()  # about the reference recording (clipped, noisy, transfer limited)


@dataclass
class StreamStart:
    """What a stream says before its audio: the content type, the first bytes and the rest."""

    content_type: str
    sample_rate: int
    chunks: AsyncIterator[bytes]


class TTSService:
    def __init__(self, config: ServerConfig, synthesizers: Mapping[str, Synthesizer] | None = None,
                 metrics: Metrics | None = None):
        self.config = config
        self.metrics = metrics or Metrics()
        self._synthesizers: OrderedDict[str, Synthesizer] = OrderedDict(synthesizers or {})
        self.models = ModelPool(backend=config.backend, variant=config.variant, threads=self.threads, fetch=False,
                                max_mb=config.models_mb)
        self._executor = ThreadPoolExecutor(config.concurrency, thread_name_prefix="qingyin-synth")
        self._trimmer = MemoryTrimmer()  # a long-running server's memory stays flat (BENCHMARKS.md, "Soak")
        self._lock = threading.Lock()
        self._active = 0
        self._closing = False
        self._started = False
        self._versions: dict[str, str] = {}
        self._seconds_per_request = 1.0  # moving average, for Retry-After
        self._warnings: OrderedDict[str, tuple[str, ...]] = OrderedDict()  # cache key -> its reference warnings
        self.cache = AudioCache(max_items=config.cache_items, max_bytes=config.cache_mb * 2**20,
                                directory=config.disk_cache, max_disk_bytes=config.cache_disk_mb * 2**20)
        self.metrics.cache_memory_bytes.set_function(lambda: self.cache.stats()["bytes"])

    # --- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Install the configured voice's model if needed (fetch and convert, idempotent), load it and, if asked,
        warm it up with one sentence. Other installed voices load on their first request."""
        if self._started:
            return
        if self.config.voice not in self._synthesizers:
            families.ensure_model(parse_selector(self.config.voice)[0].model, quiet=True)
        tts = self.synthesizer(self.config.voice)
        if self.config.warmup:
            tts.synthesize("你好。")
        # Baker's int8-static: gated in the background, switched to when it passes (QINGYIN_BACKGROUND_GATE=false: off)
        start_background_gate(self.models, on_switch=lambda: (self._synthesizers.clear(), self._versions.clear()))
        self._started = True

    def close(self) -> None:
        """Refuse new work and wait for what is running (graceful shutdown)."""
        self._closing = True
        self._executor.shutdown(wait=True, cancel_futures=False)

    def synthesizer(self, voice: str) -> Synthesizer:
        """The engine for a voice selector (a voice, or a blend such as "xiaobei:0.6,yunxi:0.4")."""
        with self._lock:
            if voice in self._synthesizers:
                self._synthesizers.move_to_end(voice)
                return self._synthesizers[voice]
        try:
            tts = Synthesizer(voice, models=self.models)  # loads the model outside the lock: it takes seconds
        except ModelDamagedError as error:  # not cached: once the files are repaired, the next request loads them
            raise as_service_error(error) from error
        with self._lock:
            tts = self._synthesizers.setdefault(voice, tts)
            while len(self._synthesizers) > MAX_SELECTORS:
                self._synthesizers.popitem(last=False)
        return tts

    def source_rate(self, voice: str) -> int:
        """The sample rate a voice selector synthesizes at (before any resampling the request asks for)."""
        return self.synthesizer(voice).sample_rate

    def model_version(self, voice: str) -> str:
        """What the cache keys audio by besides the request: qingyin (its version and a digest of its files), the
        files of the voice's model, backend and variant (read once per model: hashing on every request would put
        file I/O on the hot path; per model, not per selector, since blends are free-form). The variant is the one
        loaded, so that a gate-chosen default is told apart from fp32. The request itself (voice or blend included)
        is keyed too."""
        tts = self.synthesizer(voice)  # before the lock: loading takes it too
        model = tts.spec.model.name
        with self._lock:
            if model not in self._versions:
                manifest = registry.model_dir(model) / registry.MANIFEST
                digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16] if manifest.is_file() else "none"
                runtime = f"{self.config.backend}-{tts.voice.variant}"
                code = source_digest(Path(qingyin.__file__).parent)
                self._versions[model] = f"qingyin-{qingyin.__version__}-{code}/{model}-{digest}/{runtime}"
            return self._versions[model]

    async def _request_version(self, request: SpeechRequest) -> str:
        """The model versions of every voice a request uses: its own and those its SSML <voice> elements name."""
        voices = dict.fromkeys([request.voice, *ssml_voices(request.text)])
        return "+".join(dict.fromkeys([await self._model_version(voice) for voice in voices]))

    async def _model_version(self, voice: str) -> str:
        return self.model_version(voice)

    @property
    def threads(self) -> int:
        """Threads per synthesis: the configured number, else the cores shared among the concurrent syntheses
        (more threads than cores makes ONNX Runtime's spinning workers fight: measured in BENCHMARKS.md)."""
        return self.config.threads or max(1, (os.cpu_count() or 1) // self.config.concurrency)

    # --- what the server offers ------------------------------------------------------------------
    @property
    def voices(self) -> list[str]:
        """The catalogued voices whose files are installed (the configured one always), in catalog order."""
        installed = registry.installed_voices()
        return installed if self.config.voice in installed else [self.config.voice, *installed]

    def voices_info(self) -> list[dict[str, object]]:
        """One entry per voice of `voices` (GET /v1/voices, the web UI)."""
        info = []
        loaded = {name: self.models.model(registry.get_model(name)) for name in self.models.loaded()}
        voices = self.voices
        for name in voices:
            spec = registry.get_voice(name)
            voice = loaded.get(spec.model.name)
            capabilities = sorted(families.capabilities(spec.model))
            mixable = MIX in capabilities
            info.append({
                "name": name, "description": spec.description, "language": spec.language, "gender": spec.gender,
                "family": spec.family, "model": spec.model.name, "capabilities": capabilities, "mixable": mixable,
                "mixable_with": [v for v in voices if v != name and registry.VOICES[v].model == spec.model]
                if mixable else [],
                "speakers": list(spec.speakers), "emotions": list(EMOTIONS), "emotions_note": EMOTIONS_NOTE,
                "intensity": _range(INTENSITY), "reference_prosody": True, "reference_strength":
                _range(REFERENCE_STRENGTH),
                "sample_rate": spec.sample_rate, "sample_rates": list(encoding.SAMPLE_RATES),
                "formats": list(encoding.FORMATS), "stream_formats": list(encoding.STREAM_FORMATS),
                "backend": self.config.backend, "variant": voice.variant if voice is not None else None,
                "variants": _variants(spec.model, self.config.backend), "license": spec.license,
                "sample": f"/v1/voices/{name}/sample",
            })
        return info

    def sample_request(self, voice: str, format: str = "wav", sample_rate: int | None = None) -> SpeechRequest:
        """The request for a voice's sample (SAMPLE_TEXT): an ordinary request, so it is checked and cached like
        any other. NotFound (404) for a name that is not a voice of this server."""
        if voice not in self.voices:
            if voice in registry.VOICES:
                reason = (f"voice {voice!r} is not installed on this server (the administrator can run "
                          f"`qingyin models fetch {registry.VOICES[voice].model.name}`)")
            else:
                reason = f"unknown voice {voice!r}"
            raise NotFound(f"{reason}; available: {', '.join(self.voices)}", "name")
        return SpeechRequest(text=SAMPLE_TEXT, voice=voice, format=format, sample_rate=sample_rate)

    # --- checks ----------------------------------------------------------------------------------
    def check(self, request: SpeechRequest, stream: bool = False) -> None:
        """Everything that can be said about a request before it is queued; raises BadRequest, TextTooLong or
        TooMuchWork."""
        if not isinstance(request.text, str) or not request.text.strip():
            raise BadRequest("text is empty: send some Chinese text to read", "text")
        if len(request.text) > self.config.max_chars:
            raise TextTooLong(f"text has {len(request.text)} characters; this server reads at most "
                              f"{self.config.max_chars} per request (split it, or raise --max-chars)", "text")
        for name, text in (("text", request.text), *(("lexicon", t) for entry in request.lexicon for t in entry)):
            try:
                check_text(text, name)
            except ValueError as error:
                raise BadRequest(str(error), name) from None
        spec = self._check_voice(request.voice)
        for name in ssml_voices(request.text):
            try:
                self._check_voice(name)
            except BadRequest as error:
                raise BadRequest(f"SSML <voice name=\"{name}\">: {error.message}", "voice") from None
        try:
            encoding.check_format(request.format, request.sample_rate or spec.sample_rate, stream=stream)
        except encoding.AudioFormatError as error:
            raise BadRequest(str(error), "format") from None
        from qingyin.style.presets import check_intensity, emotion_weights  # the engine's own checks

        for name, check in (("emotion", emotion_weights), ("intensity", check_intensity)):
            try:
                check(getattr(request, name))
            except ValueError as error:
                raise BadRequest(str(error), name) from None
        if request.reference is not None:
            self.check_reference(request.reference)
        try:  # the recording itself is measured in a worker (`synthesize`): it takes a second or two
            self._check_options(request)
        except ValueError as error:
            raise BadRequest(str(error), _param_of(str(error))) from None
        try:  # the engine checks again and counts the audio as it is made
            self.config.work_limits.check(request.text, request.speed)
        except ValueError as error:
            raise as_service_error(error) from None

    def _check_options(self, request: SpeechRequest) -> None:
        """The engine's check of the request's options (ValueError naming the bad one)."""
        self.synthesizer(request.voice).check_options(**request.synthesis_options(reference=False))

    def check_reference(self, data: bytes) -> None:
        """What can be said about a reference recording without decoding it: its size and its type (the file's
        first bytes). BadRequest or UploadTooLarge, naming the field `reference`."""
        limit = int(self.config.max_upload_mb * 2**20)
        if not isinstance(data, bytes | bytearray):
            raise BadRequest("reference must be the bytes of a recording", "reference")
        if len(data) > limit:
            raise UploadTooLarge(f"the reference recording is over {self.config.max_upload_mb:g} MB; send a shorter "
                                 "one (a few seconds is enough)", "reference")
        if not data:
            raise BadRequest("the reference recording is empty (0 bytes); send a wav, flac, ogg or mp3 file",
                             "reference")
        if audio_type(data) is None:
            raise BadRequest("the reference file is not audio this server can read; send wav, flac, ogg or mp3",
                             "reference")

    def _check_voice(self, voice: str) -> registry.VoiceSpec:
        """The (heaviest) voice of a selector, checked: catalogued, a valid blend, installed on this server."""
        voices = self.voices  # reads the install markers: once per check
        available = f"this server has: {', '.join(voices)}"
        if not isinstance(voice, str) or not voice.strip():
            raise BadRequest(f"voice is empty: name a voice ({available}) or a blend ({BLEND_HELP})", "voice")
        names = [part.partition(":")[0].strip() for part in voice.split(",")]
        unknown = next((name for name in names if name not in registry.VOICES), None)
        if unknown is not None:
            blend = f"; {BLEND_HELP}" if len(names) > 1 else ""
            raise BadRequest(f"unknown voice {unknown!r}; {available}{blend}", "voice")
        try:
            spec, _ = parse_selector(voice)  # one model, a family that blends, weights that can be read
        except ValueError as error:
            raise BadRequest(str(error), "voice") from None
        missing = next((name for name in names if name not in voices), None)
        if missing is not None:
            raise BadRequest(f"voice {missing!r} is not installed on this server (the administrator can run "
                             f"`qingyin models fetch {registry.VOICES[missing].model.name}`); {available}", "voice")
        return spec

    # --- synthesis -------------------------------------------------------------------------------
    async def synthesize(self, request: SpeechRequest) -> Audio:
        """The whole audio, encoded; from the cache when the same request was answered before."""
        self.check(request)
        rate = request.sample_rate or self.source_rate(request.voice)
        key = cache_key({**request.cache_parts(), "sample_rate": rate, "model": await self._request_version(request)})
        if self.config.cache_items or self.cache.directory is not None:
            data = await asyncio.to_thread(self.cache.get, key)  # may read the disk
            if data is not None:
                self.metrics.cache_hits.inc()
                return Audio(data, encoding.content_type(request.format, rate), rate, None, True,
                             self._warnings.get(key, ()))
            self.metrics.cache_misses.inc()
        data, seconds, warnings = await self._render(request, rate)
        await asyncio.to_thread(self.cache.put, key, data)
        if warnings:
            with self._lock:
                self._warnings[key] = warnings
                while len(self._warnings) > WARNINGS_KEPT:
                    self._warnings.popitem(last=False)
        return Audio(data, encoding.content_type(request.format, rate), rate, seconds, False, warnings)

    async def _render(self, request: SpeechRequest, rate: int) -> tuple[bytes, float, tuple[str, ...]]:
        """The request's audio encoded at `rate`, its seconds and the reference's warnings (in a worker)."""
        tts = self.synthesizer(request.voice)
        cancelled = threading.Event()

        def work() -> tuple[bytes, float, tuple[str, ...]]:
            options = request.synthesis_options()
            warnings: tuple[str, ...] = ()
            if request.reference is not None:
                options["reference"], warnings = reference_prosody(tts, request)
            result = tts.synthesize(request.text, dict(request.lexicon) or None, cancel=cancelled.is_set,
                                    limits=self.config.work_limits, **options)
            self._observe(result.real_time_factor, result.duration_seconds)
            data = encoding.encode(result.audio, tts.sample_rate, request.format, rate)
            return data, result.duration_seconds, warnings

        return await self._run(work, cancelled)

    async def stream(self, request: SpeechRequest, first_chunk: int = 10, chunk: int = 100) -> StreamStart:
        """Encoded audio as it is produced; errors that can be known before the first audio are raised here."""
        self.check(request, stream=True)
        source_rate = self.source_rate(request.voice)
        encoder = encoding.StreamEncoder(request.format, source_rate, request.sample_rate)
        events = self._stream_chunks(request, first_chunk, chunk)
        first = await anext(events)  # raises the request's errors (bad markup, nothing to say, queue full...)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                yield encoder.header() + encoder.encode(first.audio)
                async for piece in events:
                    yield encoder.encode(piece.audio)
                yield encoder.finish()
            finally:
                await events.aclose()

        return StreamStart(encoder.content_type, request.sample_rate or source_rate, chunks())

    def stream_chunks(self, request: SpeechRequest, first_chunk: int = 10,
                      chunk: int = 100) -> AsyncIterator[StreamChunk]:
        """Float audio chunks tagged with their sentence; closing the iterator stops the worker.

        `timeout` applies to each chunk (a long text may stream for longer than `timeout` in all)."""
        self.check(request, stream=True)
        return self._stream_chunks(request, first_chunk, chunk)

    async def _stream_chunks(self, request: SpeechRequest, first_chunk: int,
                             chunk: int) -> AsyncIterator[StreamChunk]:
        tts = self.synthesizer(request.voice)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[StreamChunk | BaseException | None] = asyncio.Queue(STREAM_BUFFER)
        cancelled = threading.Event()
        began = time.perf_counter()

        def hand_over(item: StreamChunk | BaseException | None) -> None:
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            while not cancelled.is_set():
                try:
                    future.result(timeout=0.1)
                    return
                except TimeoutError:
                    continue
            future.cancel()
            raise SynthesisCancelled("client went away")

        def work() -> None:
            seconds = 0.0
            try:
                pieces: Iterator[StreamChunk] = tts.stream_chunks(
                    request.text, dict(request.lexicon) or None, first_chunk=first_chunk, chunk=chunk,
                    limits=self.config.work_limits, **request.synthesis_options())
                for piece in pieces:
                    hand_over(piece)
                    seconds += len(piece.audio) / tts.sample_rate
                hand_over(None)
                self._observe((time.perf_counter() - began) / seconds if seconds else 0.0, seconds)
            except SynthesisCancelled:
                pass
            except BaseException as error:  # handed to the client side, which raises it
                try:
                    hand_over(error)
                except SynthesisCancelled:
                    pass

        job = self._admit(work)
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=self.config.timeout)
                except TimeoutError:
                    raise SynthesisTimeout(f"no audio for {self.config.timeout:g} s; the server is overloaded "
                                           "or the --timeout is too short") from None
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise as_service_error(item) from item
                yield item
        finally:
            cancelled.set()
            job.cancel()  # still queued: never starts
            self._release_if_never_started(job)

    def frontend_report(self, text: str, voice: str | None = None) -> dict[str, object]:
        """The frontend's view of a text (normalized text, words, pinyin, phones, warnings)."""
        voice = voice or self.config.voice
        self._check_voice(voice)
        tts = self.synthesizer(voice)
        try:
            return tts.frontend(text).report()
        except ValueError as error:
            raise BadRequest(str(error), "text") from None

    # --- admission, execution --------------------------------------------------------------------
    async def _run(self, work: Callable[[], T], cancelled: threading.Event) -> T:
        job = self._admit(work)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job), timeout=self.config.timeout)
        except TimeoutError:
            raise SynthesisTimeout(f"synthesis took longer than {self.config.timeout:g} s; send a shorter text "
                                   "or raise the server's --timeout") from None
        except SynthesisCancelled:
            raise SynthesisTimeout(f"synthesis took longer than {self.config.timeout:g} s") from None
        except (ServiceError, asyncio.CancelledError):
            raise  # a cancellation is the request's own (its client went away, the server stops), not a failure
        except BaseException as error:
            raise as_service_error(error) from error
        finally:
            cancelled.set()
            self._release_if_never_started(job)

    def _admit(self, work: Callable[[], T]):  # -> concurrent.futures.Future[T]
        self._reserve(self.config.concurrency + self.config.queue_size)
        began = time.perf_counter()

        def run() -> T:
            try:
                return work()
            finally:
                remaining = self._finish(time.perf_counter() - began)
                self._trimmer.after_work(idle=remaining == 0)

        return self._executor.submit(run)

    def _reserve(self, limit: int | None) -> None:
        """Count a request in (ShuttingDown while closing; QueueFull when `limit` are in progress or waiting)."""
        with self._lock:
            if self._closing:
                raise ShuttingDown("the server is shutting down; retry on another instance")
            if limit is not None and self._active >= limit:
                raise self._busy()
            self._active += 1
            self.metrics.queue_depth.set(self._active)

    def _busy(self) -> QueueFull:
        """The 429 of a full queue, counted, with a Retry-After from the recent time per request."""
        self.metrics.rejected.inc()
        wait = max(1, math.ceil(self._seconds_per_request * self._active / self.config.concurrency))
        return QueueFull(f"the server is busy ({self._active} requests in progress or waiting); retry in {wait} s",
                         headers={"Retry-After": str(wait)})

    def _finish(self, seconds: float) -> int:
        """Count a request out; the number still in progress or waiting."""
        with self._lock:
            self._active -= 1
            self.metrics.queue_depth.set(self._active)
            self._seconds_per_request = 0.8 * self._seconds_per_request + 0.2 * seconds
            return self._active

    def _release_if_never_started(self, job) -> None:  # noqa: ANN001
        """A job cancelled while still queued never runs `run`, so its slot is given back here."""
        if job.cancelled():
            with self._lock:
                self._active -= 1
                self.metrics.queue_depth.set(self._active)

    def _observe(self, rtf: float, audio_seconds: float) -> None:
        self.metrics.rtf.observe(rtf)
        self.metrics.audio_seconds.inc(audio_seconds)

    @property
    def queue_depth(self) -> int:
        return self._active

    @property
    def closing(self) -> bool:
        return self._closing


def as_service_error(error: BaseException) -> ServiceError:
    """The client-facing form of an error: a ValueError (bad input) is a 400 with its message."""
    if isinstance(error, ServiceError):
        return error
    if isinstance(error, WorkLimitError):
        return TooMuchWork(str(error), "text")
    if isinstance(error, ModelDamagedError):  # the server's fault, not the request's: 503, the path only in the log
        LOGGER.error("voice model damaged: %s", error)
        return VoiceUnavailable(f"this voice cannot be served: its model files on this server are damaged (the "
                                f"server log names the file); the administrator can run `{error.fix}`", "voice")
    if isinstance(error, ValueError | VoiceNotAvailableError):  # bad input; a voice (SSML <voice>) not installed
        return BadRequest(str(error), _param_of(str(error)))
    if isinstance(error, Exception):  # not a cancellation: a bug or a broken runtime, so its traceback is logged
        LOGGER.error("synthesis failed: %s: %s", type(error).__name__, error, exc_info=error)
    return ServiceError(f"synthesis failed ({type(error).__name__}); the server log has the details")


def ssml_voices(text: str) -> list[str]:
    """The voices (selectors) that SSML <voice name="…"> elements of a text name, in order; none for plain text
    or SSML that does not parse (synthesis then reports the SSML error)."""
    if not isinstance(text, str) or "<voice" not in text or not text.lstrip().startswith(SSML_PREFIXES):
        return []
    try:
        segments = markup.parse(text)
    except ValueError:
        return []
    return list(dict.fromkeys(voice for segment in segments if (voice := getattr(segment, "voice", None))))


def _param_of(message: str) -> str | None:
    """The request field an option error is about (its message starts with the option's name)."""
    first = message.split(" ", 1)[0]
    return first if first in ("speed", "pitch", "energy", "voice", "emotion", "intensity",
                              "reference_strength") else None


def _range(setting: Any) -> dict[str, float]:
    """A setting's range for clients: {"min": 0, "max": 2, "default": 1}."""
    return {"min": setting.low, "max": setting.high, "default": setting.default}


def _plain(emotion: object) -> object:
    """An emotion mix as a plain dict in a fixed order (for the engine and the cache key); a name as it is."""
    return dict(sorted(emotion.items())) if isinstance(emotion, Mapping) else emotion


# The first bytes of the files libsndfile reads: wav (RIFF/RIFX/RF64 + WAVE), wave64, flac, ogg, aiff, au, caf, mp3
_MAGIC = ((b"RIFF", "wav"), (b"RIFX", "wav"), (b"RF64", "wav"), (b"riff", "w64"), (b"fLaC", "flac"),
          (b"OggS", "ogg"), (b"FORM", "aiff"), (b".snd", "au"), (b"caff", "caf"), (b"ID3", "mp3"))


def audio_type(data: bytes) -> str | None:
    """The kind of audio file `data` starts like ("wav", "flac", "ogg", "mp3", ...), or None for anything else.
    A check of the first bytes only: decoding (in the engine) may still find the file broken."""
    head = bytes(data[:12])
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:  # an MPEG audio frame
        return "mp3"
    return None


def reference_prosody(tts: Synthesizer, request: SpeechRequest) -> tuple[Any, tuple[str, ...]]:
    """The request's reference recording measured by the engine (ValueError -> 400 naming `reference`), and what
    the engine warns about it for the request's voice: the recording (clipped, noisy) and the transfer (limits
    reached). Runs in a worker: measuring takes a second or two."""
    try:
        measured = tts.check_options(reference=request.reference).reference
    except ValueError as error:
        raise BadRequest(str(error), "reference") from None
    warnings = tts.style_warnings(reference=measured, reference_strength=request.reference_strength)
    return measured, tuple(dict.fromkeys(warnings))


def _variants(model: registry.ModelSpec, backend: str) -> list[str]:
    """The variants a client may ask this model for: on ONNX, for Baker's family, those whose shipped students exist
    (a pruned decoder that failed its gate is not shipped, so its variants are not offered)."""
    if model.family == "kokoro":
        from qingyin.families.kokoro import VARIANTS as KOKORO_VARIANTS

        return list(KOKORO_VARIANTS)
    if backend != "onnx":
        return ["fp32"]
    from qingyin.families.fs2_mbmelgan.export import available_variants

    try:
        return available_variants(registry.model_dir(model.name))
    except (OSError, ValueError):  # not installed (yet): only what needs nothing shipped
        return ["fp32"]



