"""The server's settings: one dataclass, filled from QINGYIN_* environment variables, then CLI flags.

Every field has an environment variable (the field name upper-cased with a QINGYIN_ prefix, e.g.
QINGYIN_MAX_CHARS=2000); `qingyin serve --max-chars 2000` overrides it. README lists them all.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from qingyin.runtime.limits import MAX_BREAK_SECONDS, MAX_SSML_ELEMENTS, WorkLimits
from qingyin.runtime.pool import parse_selector
from qingyin.voices import registry

# The routes that `open_routes` may leave open when API keys are set, and the paths each covers ("/" and
# "/favicon.ico" are always open: a redirect and nothing).
OPEN_ROUTES: dict[str, tuple[str, ...]] = {
    "healthz": ("/healthz",),
    "metrics": ("/metrics",),
    "docs": ("/docs", "/redoc", "/openapi.json"),
    "ui": ("/ui",),
}


class ConfigError(ValueError):
    """A setting has a value the server cannot use; the message names the setting and what is expected."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # server processes; each loads its own copy of the voice
    voice: str = registry.DEFAULT_VOICE
    # ONNX Runtime: the same voice as torch (mel within 2e-5), more throughput and half the memory; torch's
    # oneDNN also caches kernels per input length, so a torch server's memory climbs for its first thousand shapes.
    backend: str = "onnx"
    variant: str | None = None  # ONNX variant; None = the backend's default
    threads: int | None = None  # intra-op threads per synthesis; None = cores / concurrency
    concurrency: int = 2  # syntheses running at once in one process
    queue_size: int = 32  # requests allowed to wait beyond those running; more get 429
    max_chars: int = 5000  # per request (text or SSML); more gets 413
    # Work per request (and WebSocket message), stream or not; more gets 413, or ends the stream (qingyin.runtime.
    # limits). None = 0.3 s of audio per character of max_chars (1500 s for 5000), pauses included.
    max_audio_seconds: float | None = None
    max_ssml_elements: int = MAX_SSML_ELEMENTS  # SSML elements, <speak> included
    max_break_seconds: float = MAX_BREAK_SECONDS  # SSML <break> time in all
    timeout: float = 300.0  # seconds a request may take, waiting included (streams: per chunk); then 504
    cache_items: int = 256  # in-memory audio cache entries (0 = off)
    cache_mb: int = 64  # in-memory audio cache size
    cache_dir: Path | None = None  # on-disk cache; None = $QINGYIN_HOME/cache/audio, "" or "off" = no disk cache
    cache_disk_mb: int = 512
    api_keys: tuple[str, ...] = ()  # when set, all but open_routes need `Authorization: Bearer <key>` or `X-API-Key`
    open_routes: tuple[str, ...] = ("healthz", "metrics", "docs", "ui")  # names of OPEN_ROUTES that need no key
    cors_origins: tuple[str, ...] = ()  # e.g. ("https://example.com",) or ("*",)
    ui: bool = True  # the Gradio web UI at /ui
    max_upload_mb: float = 10.0  # reference-audio uploads
    log_level: str = "info"
    warmup: bool = True  # synthesize one short sentence at start-up, so the first request is not slow
    models_mb: int = 2048  # loaded models (baker ~0.1 GB, kokoro ~0.3 GB: all nine voices fit); past it, LRU

    def validated(self) -> ServerConfig:
        for name in ("port", "workers", "concurrency", "max_chars"):
            _at_least(name, getattr(self, name), 1)
        for name in ("queue_size", "cache_items", "cache_mb", "cache_disk_mb", "models_mb"):
            _at_least(name, getattr(self, name), 0)
        if not self.timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {self.timeout}")
        if not self.max_upload_mb > 0:
            raise ConfigError(f"max_upload_mb must be > 0, got {self.max_upload_mb}")
        if self.threads is not None:
            _at_least("threads", self.threads, 1)
        try:
            self.work_limits  # noqa: B018  (checks max_audio_seconds, max_ssml_elements, max_break_seconds)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        unknown = [name for name in self.open_routes if name not in OPEN_ROUTES]
        if unknown:
            raise ConfigError(f"open_routes: unknown route {unknown[0]!r}; choose from {', '.join(OPEN_ROUTES)} "
                              "(comma-separated; empty = every route needs a key)")
        parse_selector(self.voice)  # UnknownVoiceError lists the voices; a bad blend says why
        return self

    @property
    def work_limits(self) -> WorkLimits:
        """What one request may ask for: audio seconds (derived from max_chars unless set), SSML elements, breaks."""
        return WorkLimits.for_chars(self.max_chars, self.max_audio_seconds, self.max_ssml_elements,
                                    self.max_break_seconds)

    @property
    def disk_cache(self) -> Path | None:
        if self.cache_dir is None:
            return registry.qingyin_home() / "cache" / "audio"
        return None if str(self.cache_dir) in ("", "off") else self.cache_dir

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> ServerConfig:
        """Defaults, then QINGYIN_<FIELD> variables, then `overrides` (None values are skipped; strings are read
        like the variables)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(f"QINGYIN_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(f.name, raw)
        values.update({k: _parse(k, v) if isinstance(v, str) else v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values).validated()  # type: ignore[arg-type]


def _field_type(name: str) -> type:
    """The type a field holds, without its None option (int for `int | None`, tuple for `tuple[str, ...]`)."""
    hint = typing.get_type_hints(ServerConfig)[name]
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return typing.get_origin(hint) or hint


def _parse(name: str, raw: str) -> object:
    """An environment variable's text as the field's type; ConfigError names the variable."""
    variable = f"QINGYIN_{name.upper()}"
    kind = _field_type(name)
    if kind is bool:
        if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"{variable} must be true or false, got {raw!r}")
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise ConfigError(f"{variable} must be a number, got {raw!r}") from None
    if kind is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind is Path:
        return Path(raw) if raw not in ("", "off") else Path("off")
    return raw or (None if name == "variant" else raw)


def _at_least(name: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be a whole number >= {low}, got {value!r}")
