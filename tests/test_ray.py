"""The Ray engine and Ray Serve, on a local Ray cluster that the tests start on 127.0.0.1 (skipped without ray).

Bounded in time: every wait has a timeout; the cluster is shut down at the end of the module.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Serve's own pydantic v1-style fields

from qingyin.batch import read_items, run_batch  # noqa: E402
from qingyin.runtime.audio import read_wav  # noqa: E402

# Engines run the same code, but the two run it in different processes with their own thread settings: audio is
# compared sample by sample within this tolerance (int16 LSB is 3e-5), durations exactly.
AUDIO_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def local_ray(baker_dir):
    os.environ.pop("RAY_ADDRESS", None)
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    yield ray
    try:
        from ray import serve

        serve.shutdown()
    finally:
        ray.shutdown()


def forty(tmp_path: Path) -> Path:
    path = tmp_path / "forty.txt"
    path.write_text("".join(f"这是第{n}句话。\n" for n in range(1, 41)), encoding="utf-8")
    return path


def rows(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def test_forty_items_on_ray_equal_forty_on_local(tmp_path: Path, local_ray) -> None:
    items = read_items(forty(tmp_path), "baker")
    local = run_batch(items, tmp_path / "local", engine="local", workers=2, progress=False)
    remote = run_batch(items, tmp_path / "ray", engine="ray", workers=2, progress=False)
    assert (local.done, remote.done, remote.failed) == (40, 40, 0)
    by_engine = [rows(tmp_path / "local"), rows(tmp_path / "ray")]
    drop = ("sha256",)  # bytes may differ within the audio tolerance; everything else is the same
    assert [{k: v for k, v in r.items() if k not in drop} for r in by_engine[0]] == \
        [{k: v for k, v in r.items() if k not in drop} for r in by_engine[1]]
    for row in by_engine[0]:
        a, _ = read_wav(tmp_path / "local" / row["path"])
        b, _ = read_wav(tmp_path / "ray" / row["path"])
        assert len(a) == len(b) and float(np.max(np.abs(a - b))) <= AUDIO_TOLERANCE


def test_a_killed_ray_worker_loses_no_item_and_duplicates_none(tmp_path: Path, local_ray) -> None:
    items = read_items(forty(tmp_path), "baker")[:12]
    killed: list[int] = []

    def kill_once(result) -> None:  # noqa: ANN001
        if not killed:
            killed.append(result.pid)
            os.kill(result.pid, signal.SIGKILL)  # a worker that is running (or about to run) the next task

    seen: list[str] = []
    report = run_batch(items, tmp_path / "out", engine="ray", workers=2, progress=False,
                       on_result=lambda r: (seen.append(r.item), kill_once(r)))
    assert killed and (report.done, report.failed) == (12, 0)
    ids = [r["id"] for r in rows(tmp_path / "out")]
    assert ids == [f"{n:05d}" for n in range(1, 13)] and len(set(seen)) == 12


def test_interrupted_ray_job_resumes_without_redoing(tmp_path: Path, local_ray) -> None:
    items = read_items(forty(tmp_path), "baker")[:10]

    def stop_after_four(result, count=[0]) -> None:  # noqa: ANN001, B006
        count[0] += 1
        if count[0] == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(items, tmp_path / "out", engine="ray", workers=2, progress=False, on_result=stop_after_four)
    first = {r["id"] for r in rows(tmp_path / "out")}
    assert len(first) == 3
    seen: list[str] = []
    report = run_batch(items, tmp_path / "out", engine="ray", workers=2, progress=False,
                       on_result=lambda r: seen.append(r.item))
    assert report.skipped == 3 and report.done == 7 and not first & set(seen)
    assert [r["id"] for r in rows(tmp_path / "out")] == [f"{n:05d}" for n in range(1, 11)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(client, seconds: float = 180) -> None:  # noqa: ANN001
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"Serve did not answer /healthz within {seconds} s")


def test_serve_routes_voices_to_their_pools_and_sheds_load_with_429(local_ray) -> None:
    import httpx
    from ray import serve

    from qingyin.server.ray_serve import ray_serve_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    env = {"QINGYIN_VOICE": "baker", "QINGYIN_CONCURRENCY": "1", "QINGYIN_QUEUE_SIZE": "0", "QINGYIN_UI": "false",
           "QINGYIN_CACHE_ITEMS": "0", "QINGYIN_CACHE_DIR": "off", "QINGYIN_THREADS": "1"}
    pools = {"baker": {"replica_cpus": 1}, "yunxi": {"replica_cpus": 0.25}}  # no "*": other voices are refused
    serve.run(ray_serve_app({"env": env, "voices": pools, "ingress_cpus": 0.25}), name="qingyin", route_prefix="/",
              blocking=False)
    try:
        deployments = set(serve.status().applications["qingyin"].deployments)
        assert deployments == {"qingyin", "voice-baker", "voice-yunxi"}, deployments
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            wait_healthy(client)
            health = client.get("/healthz").json()
            assert health["voices"] == ["baker", "yunxi"]
            for voice in ("baker", "yunxi"):
                reply = client.post("/v1/tts", json={"text": "你好。", "voice": voice})
                assert reply.status_code == 200 and reply.headers["content-type"] == "audio/wav", reply.text
                assert len(reply.content) > 1000
            streamed = client.post("/v1/tts", json={"text": "你好。再见。", "voice": "yunxi", "stream": True})
            assert streamed.status_code == 200 and len(streamed.content) > 1000
            refused = client.post("/v1/tts", json={"text": "你好。", "voice": "xiaobei"})
            assert refused.status_code == 400 and refused.json()["error"]["param"] == "voice"
            bad = client.post("/v1/tts", json={"text": "你好。", "voice": "baker", "speed": 99})
            assert bad.status_code == 400 and "speed" in bad.json()["error"]["message"]

            long_text = "今天天气不错，我们一起去公园散步吧。" * 6

            def speak(_: int) -> httpx.Response:
                return client.post("/v1/tts", json={"text": long_text, "voice": "baker"})

            with ThreadPoolExecutor(6) as pool:
                replies = list(pool.map(speak, range(6)))
        statuses = sorted(r.status_code for r in replies)
        assert 200 in statuses and 429 in statuses, statuses
        assert set(statuses) <= {200, 429}
        assert all(int(r.headers["Retry-After"]) >= 1 for r in replies if r.status_code == 429)

        # what `qingyin serve --engine ray` does on SIGTERM: refuse new work with 503, as the plain server does
        assert serve.get_deployment_handle("qingyin", app_name="qingyin").drain.remote(30).result(timeout_s=60) == 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            assert client.get("/healthz").status_code == 503
            refused = client.post("/v1/tts", json={"text": "你好。", "voice": "baker"})
            assert refused.status_code == 503 and "shutting down" in refused.json()["error"]["message"]
    finally:
        serve.delete("qingyin")


def test_the_documented_serve_config_is_valid() -> None:
    import yaml
    from ray.serve.schema import ServeDeploySchema

    from qingyin.server.ray_serve import ray_serve_app

    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "deploy" / "ray-serve.yaml").read_text())
    ServeDeploySchema.model_validate(config)
    application = config["applications"][0]
    assert application["import_path"] == "qingyin.server.ray_serve:ray_serve_app"
    ray_serve_app(application["args"])  # the builder accepts its documented arguments (builds, deploys nothing)
