"""Prometheus metrics of one server process (its own registry, so several apps in one process stay apart)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0)
RTF_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("qingyin_requests", "HTTP and WebSocket requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("qingyin_request_seconds", "Request latency (whole response) by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.first_audio = Histogram("qingyin_first_audio_seconds", "Time to the first audio bytes of a stream",
                                     buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rtf = Histogram("qingyin_real_time_factor", "Synthesis seconds per second of audio",
                             buckets=RTF_BUCKETS, registry=self.registry)
        self.audio_seconds = Counter("qingyin_audio_seconds", "Seconds of audio synthesized",
                                     registry=self.registry)
        self.queue_depth = Gauge("qingyin_queue_depth", "Syntheses running or waiting", registry=self.registry)
        self.rejected = Counter("qingyin_rejected", "Requests turned away because the queue was full",
                                registry=self.registry)
        self.cache_hits = Counter("qingyin_cache_hits", "Responses served from the audio cache",
                                  registry=self.registry)
        self.cache_misses = Counter("qingyin_cache_misses", "Cacheable responses that had to be synthesized",
                                    registry=self.registry)
        self.cache_memory_bytes = Gauge("qingyin_cache_memory_bytes", "Encoded audio the cache holds in memory",
                                        registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
