"""The served model under hostile load: start `mlflow models serve` on loopback, then measure
what refusing a bad request costs the server, and how fast good requests are answered when idle,
while another client keeps sending requests that must be refused, and right after.

Used by tests/integration/test_serving_load.py (a bound checked in `make test`) and
benchmarks/serve_load.py (the figures).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from scene2img.errors import ModelError
from scene2img.tracking.stack import free_port


class ModelServer:
    """`mlflow models serve -m MODEL_URI` on 127.0.0.1 with one worker, as a context manager.
    `env` adds to the environment (e.g. MLFLOW_TRACKING_URI for a `models:/` URI)."""

    def __init__(self, model_uri: str, log_file: str | Path, env: dict[str, str] | None = None,
                 timeout_s: float = 180.0) -> None:
        self.model_uri, self.log_file, self.timeout_s = model_uri, Path(log_file), timeout_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # `mlflow models serve` execs uvicorn from PATH: the venv's bin first, as after `activate`
        bin_dir = str(Path(sys.executable).parent)
        self.env = {**os.environ, **(env or {}),
                    "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ModelServer:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m",
                 self.model_uri, "--env-manager", "local", "--host", "127.0.0.1",
                 "-p", str(self.port), "-w", "1"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + self.timeout_s
        while not self._ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_file.read_text(errors="replace")[-2000:]
                raise ModelError(f"`mlflow models serve -m {self.model_uri}` did not come up "
                                 f"in {self.timeout_s:.0f} s; log {self.log_file}:\n{tail}")
            time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as r:  # noqa: S310
                return r.status == 200
        except OSError:
            return False

    def usage(self) -> tuple[float, float]:
        """CPU seconds used so far and resident memory now (MB), summed over the server's
        processes (Linux /proc): what a request costs the server, not the client."""
        tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
        cpu = rss = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if self.proc is not None and int(fields[2]) == self.proc.pid:  # process group
                cpu += (int(fields[11]) + int(fields[12])) / tick
                rss += int(fields[21]) * page / 2**20
        return cpu, rss

    def stop(self) -> None:
        """SIGTERM to the server's process group (uvicorn and its worker), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def post(url: str, body: bytes, timeout_s: float = 120.0) -> tuple[int, dict[str, Any], float]:
    """POST a JSON body to `url`: (HTTP status, the JSON answer or {}, seconds)."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:  # noqa: S310 (loopback)
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    seconds = time.perf_counter() - started
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        answer = {"message": raw[:200].decode(errors="replace")}
    return status, answer if isinstance(answer, dict) else {"answer": answer}, seconds


def refusal_costs(
    server: ModelServer,
    bodies: dict[str, bytes],  # name -> a request the model must refuse
    repeats: int = 3,
) -> dict[str, dict[str, Any]]:
    """Per kind of bad request: the answer, the wall time and the server CPU seconds of one
    refusal (medians of `repeats`), the server's CPU in the second after the last one (work left
    running for a refused request would show there) and its memory."""
    costs = {}
    for name, body in bodies.items():
        walls, cpus, statuses = [], [], Counter()
        for _ in range(repeats):
            cpu_before, _ = server.usage()
            status, _, wall = post(f"{server.url}/invocations", body)
            statuses[status] += 1
            walls.append(wall)
            cpus.append(server.usage()[0] - cpu_before)
        cpu_before, _ = server.usage()
        time.sleep(1.0)
        cpu_after, rss = server.usage()
        costs[name] = {"bytes": len(body), "statuses": dict(statuses),
                       "wall_s": round(statistics.median(walls), 4),
                       "server_cpu_s": round(statistics.median(cpus), 4),
                       "server_cpu_s_in_next_second": round(cpu_after - cpu_before, 4),
                       "server_rss_mb": round(rss, 1)}
    return costs


def latency_under_refused_load(
    url: str,  # the server's /invocations
    good: bytes,  # a request the model answers
    bad: bytes | list[bytes],  # requests it must refuse (sent in turn)
    requests: int = 8,  # good requests timed per phase and round
    attackers: int = 1,  # clients sending bad requests during a loaded phase
    rounds: int = 3,  # idle and loaded phases alternate, so background noise hits both
    rate_per_s: float | None = None,  # each attacker's requests per second; None: back to back
) -> dict[str, Any]:
    """Median latency of `good` when idle, while `attackers` clients send `bad` (at `rate_per_s`
    each, or without pause), and right after they stop (the three phases in turn, `rounds` times); with what the bad
    requests got and how long their refusals took."""
    bad = [bad] if isinstance(bad, bytes) else bad
    post(url, good)  # warm-up: first-call costs are not latency
    timings: dict[str, list[float]] = {"idle": [], "loaded": [], "after": []}
    good_statuses: Counter = Counter()
    bad_statuses: Counter = Counter()
    bad_seconds: list[float] = []

    def timed(phase: str) -> None:
        for _ in range(requests):
            status, _, s = post(url, good)
            good_statuses[status] += 1
            timings[phase].append(s)

    def attack(stop: threading.Event) -> None:
        k = 0
        while not stop.is_set():
            status, _, s = post(url, bad[k % len(bad)])
            bad_statuses[status] += 1
            bad_seconds.append(s)
            k += 1
            if rate_per_s:
                stop.wait(max(0.0, 1 / rate_per_s - s))

    for _ in range(rounds):
        timed("idle")
        stop = threading.Event()
        threads = [threading.Thread(target=attack, args=(stop,), daemon=True)
                   for _ in range(attackers)]
        for t in threads:
            t.start()
        time.sleep(0.2)  # the attack under way before the first timed request
        try:
            timed("loaded")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=300)
        timed("after")  # right after the attack: nothing left computing for it
    medians = {phase: statistics.median(t) for phase, t in timings.items()}
    return {
        "good_requests_per_phase": requests, "rounds": rounds, "attackers": attackers,
        "rate_per_s": rate_per_s,
        "good_bytes": len(good), "bad_bytes_max": max(len(b) for b in bad),
        **{f"{phase}_median_s": round(m, 4) for phase, m in medians.items()},
        "loaded_over_idle": round(medians["loaded"] / medians["idle"], 2),
        "after_over_idle": round(medians["after"] / medians["idle"], 2),
        "good_statuses": dict(good_statuses),
        "bad_requests": sum(bad_statuses.values()),
        "bad_statuses": dict(bad_statuses),
        "bad_median_s": round(statistics.median(bad_seconds), 4) if bad_seconds else None,
    }
