"""Ray Serve's pools and the errors that cross from a replica to the ingress, without Ray (tests/test_ray.py runs
the deployment itself)."""

from __future__ import annotations

import argparse

import pytest

from qingyin.cli import _pools
from qingyin.server.ray_serve import ANY_VOICE, Failure, read_pools
from qingyin.server.service import BadRequest, QueueFull, ShuttingDown


def test_a_replicas_error_reaches_the_ingress_as_the_same_error_with_its_headers() -> None:
    busy = Failure.of(QueueFull("the server is busy; retry in 3 s", headers={"Retry-After": "3"})).error()
    assert isinstance(busy, QueueFull) and busy.status == 429 and busy.headers == {"Retry-After": "3"}
    bad = Failure.of(BadRequest("unknown voice 'x'", "voice")).error()
    assert isinstance(bad, BadRequest) and (bad.message, bad.param) == ("unknown voice 'x'", "voice")
    assert isinstance(Failure.of(ShuttingDown("bye")).error(), ShuttingDown)


def test_pools_default_to_the_served_voice_and_one_replica_for_every_other_voice() -> None:
    pools = read_pools({"replicas": 2, "max_replicas": 4}, "baker")
    assert [(p.voice, p.replicas, p.max_replicas, p.name) for p in pools] == [
        ("baker", 2, 4, "voice-baker"), (ANY_VOICE, 1, 1, "voices-any")]


def test_pools_from_the_voices_argument_carry_their_own_settings() -> None:
    pools = read_pools({"voices": {"yunxi": {"replicas": 1, "max_replicas": 3, "replica_cpus": 2,
                                             "env": {"QINGYIN_CONCURRENCY": 4}}}}, "baker")
    assert len(pools) == 1 and pools[0].replica_cpus == 2.0 and pools[0].env == {"QINGYIN_CONCURRENCY": "4"}


@pytest.mark.parametrize(("voices", "message"), [
    ({"nobody": {}}, "nobody"),
    ({"baker": {"replicas": 3, "max_replicas": 2}}, "replicas <= max_replicas"),
    ({"baker": {"replica_cpus": 0}}, "replica_cpus"),
    ({"baker": {"replica": 2}}, "unknown setting"),
    ({}, "voices must map"),
])
def test_a_bad_pool_is_refused_naming_what_is_wrong(voices: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_pools({"voices": voices}, "baker")


def cli_args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(**({"pool": None, "replicas": None, "max_replicas": None} | values))


def test_the_cli_reads_pools_from_pool_flags_or_replica_counts() -> None:
    assert _pools(cli_args(pool=["baker=2:8", "*=1"]), "baker") == {
        "baker": {"replicas": 2, "max_replicas": 8}, "*": {"replicas": 1, "max_replicas": 1}}
    assert _pools(cli_args(replicas=2), "yunxi") == {
        "yunxi": {"replicas": 2, "max_replicas": 2}, "*": {"replicas": 1, "max_replicas": 1}}
    for bad in (["baker"], ["baker=0"], ["=2"], ["baker=2:x"]):
        with pytest.raises(ValueError, match="VOICE=REPLICAS"):
            _pools(cli_args(pool=bad), "baker")
    with pytest.raises(ValueError, match="either --pool"):
        _pools(cli_args(pool=["baker=1"], replicas=2), "baker")


class CountingPool:
    """A stand-in for a pool's DeploymentHandle: `model_version.remote(voice)` answers, and counts the calls."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.model_version = self

    def remote(self, voice: str):  # noqa: ANN201  (an awaitable, as a DeploymentResponse is)
        self.asked.append(voice)

        async def answer() -> str:
            return f"version-{len(self.asked)}"

        return answer()


def test_the_ingress_asks_a_pool_for_its_model_version_once_per_model_until_it_is_stale(monkeypatch) -> None:
    import asyncio
    from pathlib import Path

    from qingyin.server import ray_serve
    from qingyin.server.config import ServerConfig
    from qingyin.server.ray_serve import IngressService

    pool = CountingPool()
    service = IngressService(ServerConfig(cache_dir=Path("off"), voice="yunxi"), {ANY_VOICE: pool})
    blends = ["yunxi", "xiaobei:0.6,yunxi:0.4", "xiaobei:0.61,yunxi:0.39"]  # one model: Kokoro
    versions = [asyncio.run(service._model_version(voice)) for voice in blends]
    assert versions == ["version-1"] * 3 and len(pool.asked) == 1 and len(service._model_versions) == 1
    monkeypatch.setattr(ray_serve, "VERSION_TTL_S", -1.0)  # stale at once: a replica may have switched variant
    assert asyncio.run(service._model_version("yunxi")) == "version-2"
