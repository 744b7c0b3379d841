"""Ray Serve: the FastAPI app of `qingyin serve` (qingyin.server.app) as the ingress of replicas, each a whole
single-process server. `qingyin serve --engine ray`, or `serve run qingyin.server.ray_serve:ray_serve_app`, or
deploy/ray-serve.yaml for a cluster. Ray is imported only when the application is built (the `cluster` extra)."""

from __future__ import annotations

import os


def ray_serve_app(args: dict[str, object] | None = None):  # -> ray.serve.Application
    """The Ray Serve application (`serve run qingyin.server.ray_serve:ray_serve_app`, or deploy/ray-serve.yaml).

    Each replica runs the unchanged app of `qingyin serve` (its own TTSService: voices loaded once per replica,
    `concurrency` syntheses at once, `queue_size` waiting, 429 with Retry-After beyond, /healthz, /metrics).
    Ray lets more requests than that through to a replica (max_ongoing_requests), so the load is shed by the
    replica's own admission control, with the same 429 as the single-process server, instead of Ray's 503.
    `args`: replicas (at start, default 1), max_replicas (autoscaling up to, default replicas), env (QINGYIN_*
    settings for the replicas, e.g. {"QINGYIN_VOICE": "baker"}; default: this process's QINGYIN_* variables),
    replica_cpus (CPUs Ray reserves per replica; default: threads x concurrency).
    """
    from ray import serve

    from qingyin.server.config import ServerConfig

    args = dict(args or {})
    environ = {k: str(v) for k, v in dict(args.get("env") or {}).items()} or {
        k: v for k, v in os.environ.items() if k.startswith("QINGYIN_")}
    config = ServerConfig.from_env(environ)  # a bad setting fails here, not in every replica
    replicas = int(args.get("replicas", 1))  # type: ignore[call-overload]
    max_replicas = int(args.get("max_replicas") or replicas)  # type: ignore[call-overload]
    if max_replicas < replicas:
        raise ValueError(f"max_replicas ({max_replicas}) must be at least replicas ({replicas})")
    scaling: dict[str, object] = {"num_replicas": replicas}
    if max_replicas > replicas:  # scale on requests in flight per replica: its synthesis slots
        scaling = {"autoscaling_config": {"min_replicas": replicas, "max_replicas": max_replicas,
                                          "target_ongoing_requests": config.concurrency}}

    @serve.deployment(name="qingyin", max_ongoing_requests=2 * (config.concurrency + config.queue_size) + 16,
                      ray_actor_options={"num_cpus": float(args.get("replica_cpus")  # type: ignore[arg-type]
                                                           or (config.threads or 1) * config.concurrency)},
                      health_check_period_s=10, **scaling)
    @serve.ingress()
    class QingyinServer:
        def __init__(self, environ: dict[str, str]):
            self.environ = environ

        def __serve_build_asgi_app__(self):  # noqa: ANN204  (runs in the replica)
            from qingyin.server.app import create_app
            from qingyin.server.logs import configure_logging

            replica_config = ServerConfig.from_env(self.environ)
            configure_logging(replica_config.log_level)
            return create_app(replica_config)

    return QingyinServer.bind(environ)
