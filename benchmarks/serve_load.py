"""Load test of `squeezekit serve` against `squeezekit predict FOLDER`, on the same real photos, in one run.

A real server (`squeezekit serve`, the default model: the pretrained v1.1 in its fastest verified form)
runs on 127.0.0.1 in its own process. Clients (1, 8 and 32 concurrent, each a thread with its own
connection) send the shared ImageNet sample photos, with 10 % bad uploads mixed in (random bytes,
truncated JPEGs, empty bodies). Measured: good images/s, p50/p99 latency, the status of every
response (bad uploads must get 4xx, good ones 200: zero 5xx, zero lost), the server's peak memory
(VmHWM), and the same photos through `squeezekit predict FOLDER` as one process (its images/s is the
reference of the ratio) and through the runtime in-process, one photo at a time (the reference of the
latency goal). Bounded: every client count sends --requests requests.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/serve_load.py [--photos 200] [--requests 400]

Writes benchmarks/results/serve_load.{json,md}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _results import write_results


def _photos(count: int) -> list[Path]:
    from squeezekit._resources import data_dir

    root = data_dir()
    if root is None or not (root / "imagenet" / "sample-1000").is_dir():
        sys.exit("set SQUEEZEKIT_DATA_DIR to the shared data folder (imagenet/sample-1000)")
    return sorted((root / "imagenet" / "sample-1000").iterdir())[:count]


def _bad_uploads(photos: list[Path], seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    bad = []
    for photo in photos[:10]:
        data = photo.read_bytes()
        bad += [data[: len(data) // 3], bytes(rng.getrandbits(8) for _ in range(2000)), b""]
    return bad


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _start_server(env) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "squeezekit", "serve", "--port", "0", "--max-batch", "8",
                             "--max-wait-ms", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if not line.startswith("serving"):
        proc.kill()
        sys.exit(f"the server did not start: {line}{proc.stderr.read()}")
    return proc, int(line.rsplit(":", 1)[1].split("/")[0])


def _peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _connection(port: int) -> http.client.HTTPConnection:
    """A keep-alive connection with TCP_NODELAY, as curl and browsers use: http.client sends the headers
    and the body in two writes, and without it Nagle's algorithm meets the server's delayed ACK (40 ms)."""
    import socket

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _load(port: int, clients: int, requests: list[tuple[bytes, bool]]) -> dict:
    """Send ``requests`` (body, is_good) from ``clients`` threads; every response is accounted for."""
    lock = threading.Lock()
    queue = list(enumerate(requests))
    outcomes: list[tuple[bool, int, float]] = []

    def client():
        connection = _connection(port)
        while True:
            with lock:
                if not queue:
                    break
                _, (body, good) = queue.pop()
            start = time.perf_counter()
            try:
                connection.request("POST", "/predictions/squeezenet1_1", body=body,
                                   headers={"Content-Type": "application/octet-stream"})
                response = connection.getresponse()
                payload = response.read()
                status = response.status
                if status == 200 and not json.loads(payload)["predictions"]:
                    status = -2  # an empty answer counts as lost
            except (OSError, http.client.HTTPException):
                status = -1  # lost: no response
                connection.close()
                connection = _connection(port)
            with lock:
                outcomes.append((good, status, time.perf_counter() - start))
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    good = [(status, seconds) for is_good, status, seconds in outcomes if is_good]
    bad = [status for is_good, status, _ in outcomes if not is_good]
    latencies = [seconds for status, seconds in good if status == 200]
    return {
        "clients": clients, "requests": len(requests), "answered": len(outcomes),
        "good_ok": sum(status == 200 for status, _ in good), "good_failed": sum(status != 200 for status, _ in good),
        "bad_4xx": sum(400 <= status < 500 for status in bad), "bad_other": sum(not 400 <= status < 500 for status in bad),
        "server_errors_5xx": sum(500 <= status < 600 for _, status, _ in outcomes),
        "lost": sum(status < 0 for _, status, _ in outcomes) + len(requests) - len(outcomes),
        "images_per_second": len(latencies) / wall, "wall_seconds": wall,
        "p50_ms": 1000 * _percentile(latencies, 50), "p99_ms": 1000 * _percentile(latencies, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--requests", type=int, default=400, help="requests per client count (10 %% bad)")
    args = parser.parse_args()
    photos = _photos(args.photos)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    from squeezekit.runtime import Classifier

    classifier = Classifier.load("squeezenet1_1")  # builds (or finds) the same artefact the server uses
    singles = []
    for photo in photos[:50]:
        start = time.perf_counter()
        list(classifier.classify([photo], top_k=5))
        singles.append(time.perf_counter() - start)
    in_process_ms = 1000 * statistics.median(singles)

    with tempfile.TemporaryDirectory() as folder:
        for photo in photos:
            shutil.copy(photo, folder)
        start = time.perf_counter()
        predicted = subprocess.run([sys.executable, "-m", "squeezekit", "predict", folder, "--json"],
                                   capture_output=True, text=True, env=env)
        predict_wall = time.perf_counter() - start
    assert predicted.returncode == 0, predicted.stderr
    predict_rate = len(photos) / predict_wall

    rng = random.Random(1)
    good = [p.read_bytes() for p in photos]
    bad = _bad_uploads(photos)
    proc, port = _start_server(env)
    runs = []
    try:
        for clients in (1, 8, 32):
            requests = [(rng.choice(bad), False) if rng.random() < 0.1 else (rng.choice(good), True)
                        for _ in range(args.requests)]
            _load(port, clients, requests[:20])  # warm-up
            run = _load(port, clients, requests)
            run["ratio_to_predict"] = run["images_per_second"] / predict_rate
            runs.append(run)
            print(json.dumps(run), flush=True)
        peak = _peak_memory_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    report = {"photos": len(photos), "cores": os.cpu_count(), "in_process_one_photo_ms": in_process_ms,
              "predict_folder": {"images_per_second": predict_rate, "wall_seconds": predict_wall},
              "server_peak_memory_mb": peak, "runs": runs,
              "command": "SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/serve_load.py"}
    lines = ["| clients | images/s | ratio to `predict FOLDER` | p50 ms | p99 ms | 5xx | lost | bad uploads answered 4xx |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        bad_total = run["bad_4xx"] + run["bad_other"]
        lines.append(f"| {run['clients']} | {run['images_per_second']:.1f} | {run['ratio_to_predict']:.2f} | "
                     f"{run['p50_ms']:.1f} | {run['p99_ms']:.1f} | {run['server_errors_5xx']} | {run['lost']} | "
                     f"{run['bad_4xx']} of {bad_total} |")
    lines += ["", f"`squeezekit predict FOLDER` ({len(photos)} photos, one process, start-up included): "
              f"{predict_rate:.1f} images/s. In-process, one photo: {in_process_ms:.1f} ms (median of 50). "
              f"Server peak memory: {peak:.0f} MB. {os.cpu_count()} cores."]
    markdown = "\n".join(lines) + "\n"
    write_results("serve_load", report, markdown)


if __name__ == "__main__":
    main()
