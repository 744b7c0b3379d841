"""Soak test: mixed traffic against a real `qingyin serve` for many minutes, the server's resources every minute.

    .venv/bin/python -m benchmarks.soak --minutes 30 --clients 6 [--idle-every 5] --json soak.json

Starts `qingyin serve` (defaults: cache on, no UI) and keeps `--clients` clients busy with a random mix of every
route: POST/GET /v1/tts (wav, mp3, emotions, two voices), streams (some read whole, some dropped after the
first chunk: a cancellation), the OpenAI route, POST /v1/tts/reference with a recording, /v1/frontend, /v1/voices,
voice samples, /healthz, /metrics, and WebSocket sessions (some closed mid-stream); about 10 % of requests are
bad input (empty or lone-surrogate text, broken JSON and SSML, unknown voices, NaN and absurd values, a
too-long text, an upload that is not audio). Every 5 s the server process's RSS, its children's (the background
quality gate, when it runs) apart; every minute: the lowest, highest and last RSS of the server in that minute,
open file descriptors and threads, and the answers by status.

Idle checkpoints: every `--idle-every` minutes (5), and once more at the end, the clients finish what they are
doing and wait; once the server has nothing in progress (/metrics: qingyin_queue_depth 0) and IDLE_SETTLE_S more
seconds have passed, its RSS is read ("idle RSS", what it holds between requests: the server hands freed memory
back when it goes idle) with the bytes its audio cache holds in memory (qingyin_cache_memory_bytes: at most 256
entries and 64 MiB); then the traffic resumes. A loaded server's lowest RSS in a minute depends on how often it was
idle, so such samples say more about the traffic than about a leak.

Verdict ("flat"): no 5xx and no transport error; the idle RSS less the cache's bytes grows from the checkpoint at
the half to the one at the end by less than max(5 %, 20 MiB); open files and threads end no higher than the
highest count of the first half plus a small margin (pools start lazily).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import random
import sys
import time
import wave
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from benchmarks import load_test

VOICES = ("baker", "yunxi")
FD_MARGIN, THREAD_MARGIN = 8, 8
BAD_SHARE = 0.10


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)  # "200", "400", ..., "ws-done", "ws-error", "dropped"
    by_kind: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # 5xx and transport errors, first few

    def note(self, kind: str, status: str) -> None:
        self.statuses[status] += 1
        self.by_kind[kind] += 1
        if (status.startswith("5") or status.startswith("error")) and len(self.failures) < 20:
            self.failures.append(f"{kind}: {status}")


def reference_wav(seconds: float = 3.0, rate: int = 16000) -> bytes:
    """A voiced-sounding recording (a gliding harmonic tone with syllable-like bursts) for the reference route."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 180 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = (np.sin(2 * np.pi * 4 * t) > -0.3).astype(float)
    audio = (0.3 * voice * envelope / 2).astype(np.float32)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(rate)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
    return buffer.getvalue()


def bad_requests(long_text: str) -> list[tuple[str, dict]]:
    """(kind, httpx request kwargs) for bad input; every one must get a 4xx."""
    return [
        ("bad:empty", {"json": {"text": "  "}}),
        ("bad:surrogate", {"content": b'{"text": "\\ud800\\ud800"}', "headers": {"content-type": "application/json"}}),
        ("bad:json", {"content": b'{"text": ', "headers": {"content-type": "application/json"}}),
        ("bad:ssml", {"json": {"ssml": "<speak><prosody rate='fast'>你好</speak>"}}),
        ("bad:voice", {"json": {"text": "你好。", "voice": "../../etc/passwd"}}),
        ("bad:nan", {"content": b'{"text": "\\u4f60\\u597d", "speed": NaN}',
                     "headers": {"content-type": "application/json"}}),
        ("bad:absurd", {"json": {"text": "你好。", "speed": 1e308, "sample_rate": 10**9}}),
        ("bad:emotion", {"json": {"text": "你好。", "emotion": "joy"}}),
        ("bad:too-long", {"json": {"text": long_text}}),
        ("bad:control", {"json": {"text": "\x00\x01\u202e\u200d"}}),
    ]


class Traffic:
    def __init__(self, url: str, sentences: list[str], seed: int):
        self.url, self.sentences = url, sentences
        self.random = random.Random(seed)
        self.tally = Tally()
        self.reference = reference_wav()
        self.long_text = "好" * 6000

    def text(self) -> str:
        return self.random.choice(self.sentences)

    async def one(self, client: httpx.AsyncClient) -> None:
        pick = self.random.random()
        if pick < BAD_SHARE:
            kind, kwargs = self.random.choice(bad_requests(self.long_text))
            await self._post(client, kind, "/v1/tts", **kwargs)
            return
        choice = self.random.choice(["tts", "tts", "mp3", "get", "stream", "drop", "openai", "reference",
                                     "frontend", "info", "ws", "ws-drop"])
        voice = self.random.choice(VOICES)
        if choice == "tts":
            emotion = self.random.choice(["neutral", "happy", "sad", "angry"])
            await self._post(client, choice, "/v1/tts", json={"text": self.text(), "voice": voice, "emotion": emotion})
        elif choice == "mp3":
            await self._post(client, choice, "/v1/tts", json={"text": self.text(), "voice": voice, "format": "mp3"})
        elif choice == "get":
            reply = await client.get("/v1/tts", params={"text": self.text(), "voice": voice})
            self.tally.note(choice, str(reply.status_code))
        elif choice in ("stream", "drop"):
            await self._stream(client, choice, voice)
        elif choice == "openai":
            await self._post(client, choice, "/v1/audio/speech", json={
                "model": "tts-1", "input": self.text(), "voice": voice, "instructions": "请用开心的语气"})
        elif choice == "reference":
            reply = await client.post("/v1/tts/reference", data={"text": self.text(), "voice": voice},
                                      files={"reference": ("ref.wav", self.reference, "audio/wav")})
            self.tally.note(choice, str(reply.status_code))
        elif choice == "frontend":
            await self._post(client, choice, "/v1/frontend", json={"text": self.text()})
        elif choice == "info":
            path = self.random.choice(["/v1/voices", "/healthz", "/metrics", f"/v1/voices/{voice}/sample"])
            reply = await client.get(path)
            self.tally.note(choice, str(reply.status_code))
        else:
            await self._websocket(choice, voice)

    async def _post(self, client: httpx.AsyncClient, kind: str, path: str, **kwargs: object) -> None:
        reply = await client.post(path, **kwargs)
        self.tally.note(kind, str(reply.status_code))

    async def _stream(self, client: httpx.AsyncClient, kind: str, voice: str) -> None:
        text = "".join(self.text() for _ in range(4))
        async with client.stream("POST", "/v1/tts", json={"text": text, "voice": voice, "stream": True,
                                                           "format": "pcm"}) as reply:
            if reply.status_code != 200 or kind == "stream":
                await reply.aread()
                self.tally.note(kind, str(reply.status_code))
                return
            async for _ in reply.aiter_bytes():
                break  # the client goes away after the first chunk
            self.tally.note(kind, "dropped")

    async def _websocket(self, kind: str, voice: str) -> None:
        import websockets

        ws_url = self.url.replace("http://", "ws://") + "/v1/tts/ws"
        async with websockets.connect(ws_url, max_size=None, open_timeout=30) as socket:
            for _ in range(2):
                await socket.send(json.dumps({"text": self.text(), "voice": voice}))
                while True:
                    message = await asyncio.wait_for(socket.recv(), 120)
                    if isinstance(message, bytes):
                        if kind == "ws-drop":  # closed mid-stream
                            self.tally.note(kind, "dropped")
                            return
                        continue
                    event = json.loads(message)
                    if event["type"] in ("done", "error"):
                        self.tally.note(kind, f"ws-{event['type']}")
                        break


SAMPLE_S = 5.0  # RSS sampling period
IDLE_EVERY_MIN = 5.0  # minutes between idle checkpoints (--idle-every)
IDLE_SETTLE_S = 3.0  # seconds the server is left idle before its RSS is read


def _status(pid: int, field: str) -> int:
    """A number from /proc/PID/status (kB for the memory fields)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith(f"{field}:"))


def server_rss_mib(pid: int) -> float:
    return _status(pid, "VmRSS") / 1024


def resources(pid: int) -> dict[str, float]:
    """The server's RSS (MiB, its own process; its children apart), open file descriptors and threads."""
    files = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    own = server_rss_mib(pid)
    children = (load_test.rss_bytes(pid) or 0) / load_test.MIB - own
    return {"rss_mib": round(own, 1), "children_rss_mib": round(max(children, 0.0), 1), "open_files": files,
            "threads": _status(pid, "Threads")}


def verdict(samples: list[dict[str, float]], checkpoints: list[dict[str, float]], tally: Tally) -> dict[str, object]:
    half = len(samples) // 2
    last = samples[-1]
    first_half = samples[: half + 1]
    middle = max(c["minute"] for c in checkpoints) / 2
    at_half = min(checkpoints, key=lambda c: abs(c["minute"] - middle))
    at_end = checkpoints[-1]
    held_at_half, held_at_end = (c["idle_rss_mib"] - c["cache_mib"] for c in (at_half, at_end))
    rss_ok, growth, allowed = load_test.memory_verdict(held_at_half * load_test.MIB, held_at_end * load_test.MIB)
    files_ok = last["open_files"] <= max(s["open_files"] for s in first_half) + FD_MARGIN
    threads_ok = last["threads"] <= max(s["threads"] for s in first_half) + THREAD_MARGIN
    server_errors = sum(n for status, n in tally.statuses.items() if status.startswith("5"))
    transport = sum(n for status, n in tally.statuses.items() if status.startswith("error"))
    return {"flat": rss_ok and files_ok and threads_ok,
            "idle_rss_at_half_mib": at_half["idle_rss_mib"], "idle_rss_at_end_mib": at_end["idle_rss_mib"],
            "cache_at_half_mib": at_half["cache_mib"], "cache_at_end_mib": at_end["cache_mib"],
            "held_growth_second_half_mib": round(growth / load_test.MIB, 1),
            "rss_allowed_mib": round(allowed / load_test.MIB, 1), "open_files_ok": files_ok,
            "threads_ok": threads_ok, "server_errors": server_errors, "transport_errors": transport,
            "passed": rss_ok and files_ok and threads_ok and server_errors == 0 and transport == 0}


def _metric(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(f"{name} "))
    return float(line.split()[1])


async def idle_checkpoint(client: httpx.AsyncClient, pid: int, minute: float) -> dict[str, float]:
    """The server's RSS and cache bytes once it has had nothing to do for IDLE_SETTLE_S (clients already waiting)."""
    for _ in range(600):  # a cancelled stream may still be finishing its sentence
        metrics = (await client.get("/metrics")).text
        if _metric(metrics, "qingyin_queue_depth") == 0:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(IDLE_SETTLE_S)
    metrics = (await client.get("/metrics")).text
    point = {"minute": round(minute, 1), "idle_rss_mib": round(server_rss_mib(pid), 1),
             "cache_mib": round(_metric(metrics, "qingyin_cache_memory_bytes") / load_test.MIB, 1),
             "queue_depth": _metric(metrics, "qingyin_queue_depth")}
    print(f"idle at minute {point['minute']}: {point}", file=sys.stderr)
    return point


async def soak(url: str, pid: int, minutes: float, clients: int, seed: int,
               idle_every: float = IDLE_EVERY_MIN) -> dict[str, object]:
    traffic = Traffic(url, load_test.read_sentences(), seed)
    began = time.monotonic()
    stop = began + minutes * 60
    samples = [{"minute": 0, **resources(pid)}]
    checkpoints: list[dict[str, float]] = []
    running = asyncio.Event()
    running.set()
    busy = [0]  # clients with a request out

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            await running.wait()
            busy[0] += 1
            try:
                await traffic.one(client)
            except Exception as error:  # noqa: BLE001  (a transport error is a finding, not a crash of the test)
                traffic.tally.note("transport", f"error:{type(error).__name__}")
            finally:
                busy[0] -= 1

    async def pause_and_measure(client: httpx.AsyncClient) -> None:
        running.clear()
        while busy[0]:
            await asyncio.sleep(0.1)
        checkpoints.append(await idle_checkpoint(client, pid, (time.monotonic() - began) / 60))
        running.set()

    async def sampler(client: httpx.AsyncClient) -> None:
        minute = 0
        window: list[float] = []
        next_idle = began + idle_every * 60
        while time.monotonic() < stop:
            await asyncio.sleep(min(SAMPLE_S, max(0.0, stop - time.monotonic())))
            window.append(server_rss_mib(pid))
            if time.monotonic() >= next_idle and time.monotonic() < stop - min(60.0, idle_every * 30):
                await pause_and_measure(client)
                next_idle += idle_every * 60
            if time.monotonic() - began >= 60.0 * (minute + 1) or time.monotonic() >= stop:
                minute += 1
                samples.append({"minute": minute, **resources(pid), "rss_min_mib": round(min(window), 1),
                                "rss_max_mib": round(max(window), 1),
                                "answers": sum(traffic.tally.statuses.values())})
                window = []
                print(f"minute {minute}: {samples[-1]}", file=sys.stderr)

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        await asyncio.gather(sampler(client), *(client_loop(client) for _ in range(clients)))
        await pause_and_measure(client)  # at the end
    return {"minutes": minutes, "clients": clients, "seed": seed, "samples": samples, "idle": checkpoints,
            "statuses": dict(traffic.tally.statuses), "kinds": dict(traffic.tally.by_kind),
            "failures": traffic.tally.failures, "verdict": verdict(samples, checkpoints, traffic.tally)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--idle-every", type=float, default=IDLE_EVERY_MIN, help="minutes between idle checkpoints")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    port = load_test.free_port()
    command = [sys.executable, "-m", "qingyin.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-ui"]
    with load_test.started_server(command, port) as (url, pid):
        report = asyncio.run(soak(url, pid, args.minutes, args.clients, args.seed, args.idle_every))
    text = json.dumps(report, ensure_ascii=False, indent=1)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("statuses", "failures", "verdict")}, ensure_ascii=False, indent=1))
    with contextlib.suppress(Exception):
        print("\n| minute | server RSS MiB: lowest / highest / last | children MiB | open files | threads | answers |"
              "\n|---|---|---|---|---|---|")
        for s in report["samples"]:
            print(f"| {s['minute']} | {s.get('rss_min_mib', '-')} / {s.get('rss_max_mib', '-')} / {s['rss_mib']} | "
                  f"{s['children_rss_mib']} | {s['open_files']} | {s['threads']} | {s.get('answers', 0)} |")
        print("\n| idle at minute | server RSS MiB | of which audio cache MiB |\n|---|---|---|")
        for c in report["idle"]:
            print(f"| {c['minute']} | {c['idle_rss_mib']} | {c['cache_mib']} |")
    return 0 if report["verdict"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
