"""Ray Serve: the FastAPI app of `qingyin serve` as the ingress, with pools of synthesizer replicas behind it.

    HTTP -> ingress (qingyin.server.app: routes, checks, cache, metrics, /healthz, web UI; loads no model)
              -> pool "baker"  (replicas of VoiceReplica: a TTSService with its models, queue and 429)
              -> pool "yunxi"  ...
              -> pool "*"      (every other installed voice, loaded on its first request)

A request goes to the pool of its voice (a blend: of its heaviest voice), else to "*". Each pool autoscales on its
own (`replicas`..`max_replicas`, on requests in flight per replica) and reserves its own CPUs per replica. A replica
admits `concurrency` running + `queue_size` waiting like the single-process server and answers anything beyond with
the same 429 and Retry-After, which the ingress passes on. `qingyin serve --engine ray`, or `serve run
qingyin.server.ray_serve:ray_serve_app`, or deploy/ray-serve.yaml for a cluster. Ray is imported only when the
application is built (the `cluster` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qingyin.runtime.pool import parse_selector
from qingyin.runtime.synthesizer import StreamChunk, checked_options, read_text
from qingyin.server import service as service_module
from qingyin.server.config import ServerConfig
from qingyin.server.service import ServiceError, SpeechRequest, TTSService
from qingyin.text import Frontend

ANY_VOICE = "*"
INGRESS_ONGOING = 1024  # requests one ingress replica holds at once (they wait on pools, not on its CPU)
INGRESS_CPUS = 0.5  # the ingress parses, checks, caches and waits on the pools; it does not synthesize
VERSION_TTL_S = 60.0  # how long the ingress keys its cache by a pool's model version before asking again
REPLICA_GRACE_S = 30.0  # beyond the replica's own timeout, before the ingress gives up on it


@dataclass(frozen=True)
class Failure:
    """A ServiceError crossing from a replica to the ingress (Ray would wrap the exception in a traceback)."""

    kind: str  # the ServiceError subclass's name
    message: str
    param: str | None
    headers: dict[str, str]

    @classmethod
    def of(cls, error: ServiceError) -> Failure:
        return cls(type(error).__name__, error.message, error.param, dict(error.headers or {}))

    def error(self) -> ServiceError:
        kind = getattr(service_module, self.kind, ServiceError)
        return kind(self.message, self.param, self.headers or None)


@dataclass(frozen=True)
class Pool:
    """One deployment of synthesizer replicas: for one voice, or for every other one (ANY_VOICE)."""

    voice: str
    replicas: int = 1
    max_replicas: int = 1
    replica_cpus: float = 1.0
    env: Mapping[str, str] = field(default_factory=dict)  # QINGYIN_* settings over the shared ones

    @property
    def name(self) -> str:
        return "voices-any" if self.voice == ANY_VOICE else f"voice-{self.voice}"


def replica_config(environ: Mapping[str, str], voice: str) -> ServerConfig:
    """A pool replica's settings: the shared ones with its voice, and no cache (the ingress caches)."""
    config = ServerConfig.from_env(environ)
    if voice != ANY_VOICE:
        config = replace(config, voice=voice)
    return replace(config, cache_items=0, cache_dir=Path("off"), ui=False)


class VoiceReplica:
    """A pool's replica: the single-process server's TTSService (models, admission, timeouts) without HTTP."""

    def __init__(self, environ: Mapping[str, str], voice: str):
        from qingyin.server.logs import configure_logging

        self.config = replica_config(environ, voice)
        configure_logging(self.config.log_level)
        self.service = TTSService(self.config)
        if voice != ANY_VOICE:  # its voice loaded (and warmed up) before Ray sends it requests
            self.service.start()

    async def synthesize(self, request: SpeechRequest) -> service_module.Audio | Failure:
        try:
            return await self.service.synthesize(request)
        except ServiceError as error:
            return Failure.of(error)

    async def stream_chunks(self, request: SpeechRequest, first_chunk: int,
                            chunk: int) -> AsyncIterator[StreamChunk | Failure]:
        try:
            async with contextlib.aclosing(self.service.stream_chunks(request, first_chunk, chunk)) as pieces:
                async for piece in pieces:
                    yield piece
        except ServiceError as error:
            yield Failure.of(error)

    async def model_version(self, voice: str) -> str:
        return await asyncio.to_thread(self.service.model_version, voice)  # may load the voice: seconds

    def check_health(self) -> None:  # Ray restarts a replica that raises here
        if self.service.closing:
            raise RuntimeError("the replica is shutting down")


class IngressService(TTSService):
    """The TTSService of the ingress: checks, cache and metrics here, synthesis in the pools (no model loaded)."""

    def __init__(self, config: ServerConfig, pools: Mapping[str, Any]):  # voice or ANY_VOICE -> DeploymentHandle
        super().__init__(config)
        self.pools = dict(pools)
        self._frontend = Frontend()
        self._model_versions: dict[str, tuple[float, str]] = {}  # model -> (when asked, the pool's version)

    def start(self) -> None:  # the pools load their voices
        return None

    @property
    def voices(self) -> list[str]:
        named = [voice for voice in self.pools if voice != ANY_VOICE]
        if ANY_VOICE not in self.pools:
            return named
        return list(dict.fromkeys([*named, *super().voices]))

    def pool(self, voice: str) -> Any:
        """The handle of the pool that serves a voice selector (a blend: its heaviest voice's)."""
        name = parse_selector(voice)[0].name
        return self.pools.get(name) or self.pools[ANY_VOICE]  # `check` has refused voices no pool serves

    def source_rate(self, voice: str) -> int:
        return parse_selector(voice)[0].sample_rate

    def _check_options(self, request: SpeechRequest) -> None:
        checked_options(request.synthesis_options(reference=False))

    async def _model_version(self, voice: str) -> str:
        """The pool's version of the voice's model, asked at most every VERSION_TTL_S: per model, not per selector
        (blends are free-form, so a dict keyed by them would grow with the requests), and not for ever (a replica's
        background gate may switch its variant, which the cache keys must then follow)."""
        model = parse_selector(voice)[0].model.name
        asked, version = self._model_versions.get(model, (-math.inf, ""))
        if time.monotonic() - asked > VERSION_TTL_S:
            version = await self.pool(voice).model_version.remote(voice)
            self._model_versions[model] = (time.monotonic(), version)
        return version

    def frontend_report(self, text: str, voice: str | None = None) -> dict[str, object]:
        self._check_voice(voice or self.config.voice)
        try:
            return read_text(self._frontend, text).report()
        except ValueError as error:
            raise service_module.BadRequest(str(error), "text") from None

    async def _render(self, request: SpeechRequest, rate: int) -> tuple[bytes, float, tuple[str, ...]]:
        self._reserve(None)  # counted for /healthz and /metrics; the pools' replicas admit or refuse
        began = time.perf_counter()
        response = self.pool(request.voice).synthesize.remote(request)

        async def result() -> service_module.Audio | Failure:
            return await response

        answered = False
        try:  # the replica times the synthesis out itself; this bounds a replica that died or hangs
            result = await asyncio.wait_for(result(), timeout=self.config.timeout + REPLICA_GRACE_S)
            answered = True
        except TimeoutError:
            raise service_module.SynthesisTimeout(f"no answer from the {request.voice!r} pool in "
                                                  f"{self.config.timeout + REPLICA_GRACE_S:g} s") from None
        finally:
            if not answered:  # timed out, or the client went away: the replica stops its work
                response.cancel()
            self._finish(time.perf_counter() - began)
        if isinstance(result, Failure):
            raise result.error()
        self.metrics.audio_seconds.inc(result.audio_seconds or 0.0)
        return result.data, result.audio_seconds or 0.0, result.warnings

    async def _stream_chunks(self, request: SpeechRequest, first_chunk: int,
                             chunk: int) -> AsyncIterator[StreamChunk]:
        self._reserve(None)
        began = time.perf_counter()
        pieces = self.pool(request.voice).options(stream=True).stream_chunks.remote(request, first_chunk, chunk)
        rate = self.source_rate(request.voice)
        ended = False
        try:
            async for piece in pieces:
                if isinstance(piece, Failure):
                    raise piece.error()
                self.metrics.audio_seconds.inc(len(piece.audio) / rate)
                yield piece
            ended = True
        finally:
            if not ended:  # a client that went away, or an error: the replica stops its synthesis
                pieces.cancel()
            self._finish(time.perf_counter() - began)


def read_pools(args: Mapping[str, object], default_voice: str) -> list[Pool]:
    """The pools of the builder's arguments: `voices` ({voice or "*": {replicas, max_replicas, replica_cpus,
    env}}), else the configured voice with `replicas`/`max_replicas`/`replica_cpus` plus "*" with one replica."""
    spec = args.get("voices")
    if spec is None:
        shared = {key: args[key] for key in ("replicas", "max_replicas", "replica_cpus") if args.get(key)}
        spec = {default_voice: shared, ANY_VOICE: {"replica_cpus": shared.get("replica_cpus", 1)}}
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError('voices must map voice names (or "*") to pool settings, e.g. {"baker": {"replicas": 2}}')
    pools = []
    for voice, settings in spec.items():
        if voice != ANY_VOICE:
            parse_selector(voice)  # an unknown voice fails here, naming the catalogue
        settings = dict(settings or {})
        unknown = set(settings) - {"replicas", "max_replicas", "replica_cpus", "env"}
        if unknown:
            raise ValueError(f"pool {voice!r}: unknown setting(s) {sorted(unknown)}; "
                             "known: replicas, max_replicas, replica_cpus, env")
        replicas = int(settings.get("replicas", 1))
        max_replicas = int(settings.get("max_replicas") or replicas)
        if replicas < 1 or max_replicas < replicas:
            raise ValueError(f"pool {voice!r}: need 1 <= replicas <= max_replicas, got {replicas} and {max_replicas}")
        cpus = float(settings.get("replica_cpus", 1))
        if not cpus > 0:
            raise ValueError(f"pool {voice!r}: replica_cpus must be > 0, got {cpus}")
        env = {k: str(v) for k, v in dict(settings.get("env") or {}).items()}
        pools.append(Pool(voice, replicas, max_replicas, cpus, env))
    return pools


def ray_serve_app(args: dict[str, object] | None = None):  # -> ray.serve.Application
    """The Ray Serve application (`serve run qingyin.server.ray_serve:ray_serve_app`, or deploy/ray-serve.yaml).

    `args`: env (QINGYIN_* settings for every replica, e.g. {"QINGYIN_VOICE": "baker"}; default: this process's
    QINGYIN_* variables); voices ({voice or "*": {replicas, max_replicas, replica_cpus, env}}: one pool of
    synthesizer replicas each; default: the configured voice with `replicas` (1), `max_replicas` (= replicas) and
    `replica_cpus` (1), and "*" with one replica for the other installed voices); ingress_replicas (1);
    ingress_cpus (INGRESS_CPUS).
    """
    from ray import serve

    args = dict(args or {})
    environ = {k: str(v) for k, v in dict(args.get("env") or {}).items()} or {
        k: v for k, v in os.environ.items() if k.startswith("QINGYIN_")}
    config = ServerConfig.from_env(environ)  # a bad setting fails here, not in every replica
    pools = read_pools(args, config.voice)
    handles = {}
    for pool in pools:
        pool_environ = {**environ, **pool.env}
        pool_config = ServerConfig.from_env(pool_environ)
        scaling: dict[str, object] = {"num_replicas": pool.replicas}
        if pool.max_replicas > pool.replicas:  # scale on requests in flight per replica: its synthesis slots
            scaling = {"autoscaling_config": {"min_replicas": pool.replicas, "max_replicas": pool.max_replicas,
                                              "target_ongoing_requests": pool_config.concurrency}}
        # Ray sends a replica more than it admits, so that overload is answered by the replica's own 429 (with
        # Retry-After), as on the single-process server, rather than queued without bound in front of it.
        deployment = serve.deployment(
            VoiceReplica, name=pool.name, health_check_period_s=10,
            max_ongoing_requests=2 * (pool_config.concurrency + pool_config.queue_size) + 16,
            ray_actor_options={"num_cpus": pool.replica_cpus}, **scaling)
        handles[pool.voice] = deployment.bind(pool_environ, pool.voice)
    ingress_replicas = int(args.get("ingress_replicas", 1))  # type: ignore[call-overload]

    @serve.deployment(name="qingyin", num_replicas=ingress_replicas, max_ongoing_requests=INGRESS_ONGOING,
                      ray_actor_options={"num_cpus": float(args.get("ingress_cpus", INGRESS_CPUS))},  # type: ignore[arg-type]
                      health_check_period_s=10)
    @serve.ingress()
    class Ingress:
        def __init__(self, environ: dict[str, str], pools: dict[str, Any]):
            self.environ, self.pools = environ, pools

        def __serve_build_asgi_app__(self):  # noqa: ANN204  (runs in the replica)
            from qingyin.server.app import create_app
            from qingyin.server.logs import configure_logging

            ingress_config = ServerConfig.from_env(self.environ)
            configure_logging(ingress_config.log_level)
            self.service = IngressService(ingress_config, self.pools)
            return create_app(ingress_config, self.service)

        async def drain(self, seconds: float) -> int:
            """Refuse new requests (503, and /healthz 503) and wait up to `seconds` for those in progress;
            returns how many are still running. `qingyin serve --engine ray` calls it on SIGTERM / Ctrl-C."""
            await asyncio.to_thread(self.service.close)
            deadline = time.monotonic() + seconds
            while self.service.queue_depth and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return self.service.queue_depth

    return Ingress.bind(environ, handles)
