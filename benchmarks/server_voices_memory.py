"""Server memory as voices load: resident memory of a `qingyin serve` process after each of the nine voices spoke.

    .venv/bin/python -m benchmarks.server_voices_memory [--port 8765] [--backend onnx]

Starts the server (ONNX backend, the background gate off, no cache), asks each catalogued voice for one
sentence in catalog order, and prints the process's resident memory (VmRSS) and peak (VmHWM) after each, and
what the model pool says each model added when it loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

from qingyin.voices.registry import VOICES


def status_mb(pid: int) -> dict[str, float]:
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--backend", default="onnx")
    args = parser.parse_args()
    env = dict(os.environ, QINGYIN_BACKGROUND_GATE="false", QINGYIN_UI="false", QINGYIN_CACHE_ITEMS="0",
               QINGYIN_CACHE_DIR="off", QINGYIN_LOG_LEVEL="warning")
    server = subprocess.Popen([sys.executable, "-m", "qingyin.cli", "serve", "--port", str(args.port),
                               "--backend", args.backend], env=env)
    base = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(1)
        print(f"| after | VmRSS MB | VmHWM MB |\n|---|---|---|\n| start (baker loaded, warmed up) | "
              f"{status_mb(server.pid)['VmRSS']:.0f} | {status_mb(server.pid)['VmHWM']:.0f} |")
        for voice in VOICES:
            body = json.dumps({"text": "你好，欢迎使用轻音。", "voice": voice}).encode()
            request = urllib.request.Request(f"{base}/v1/tts", body, {"content-type": "application/json"})
            urllib.request.urlopen(request, timeout=300).read()
            memory = status_mb(server.pid)
            print(f"| {voice} | {memory['VmRSS']:.0f} | {memory['VmHWM']:.0f} |", flush=True)
        voices = json.loads(urllib.request.urlopen(f"{base}/v1/voices", timeout=30).read())
        print("loaded variants:", {v["name"]: v["variant"] for v in voices["voices"]})
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
