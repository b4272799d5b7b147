"""What every benchmark in this folder shares: timing, FLOP counting, the machine, the JSON writer.

A figure is the time *and* the work done in it (FLOPs counted by
`torch.utils.flop_counter.FlopCounterMode`, images, bytes), with the rate of that work, so that it
can be checked on another machine: `rates({"images": 8, "flop": 1.2e12}, 3.0)` gives
`{"images_per_s": 2.667, "flop_per_s": 4e11}`.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from scene2img.files import atomic_write_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def pick_device(name: str = "auto") -> torch.device:
    """`auto`: CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def sync(device: torch.device | str = "cpu") -> None:
    """Wait for queued GPU work, so that a clock read after it covers it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_runs(fn: Callable[[], Any], repeats: int, device: torch.device | str = "cpu"
              ) -> list[float]:
    """Seconds of `repeats` calls of `fn` (no warm-up: run one first where it matters)."""
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def count_flops(fn: Callable[[], Any]) -> tuple[Any, int]:
    """`fn()`'s result and the FLOPs of its matmuls and convolutions, forward and backward, as
    `FlopCounterMode` counts them (a multiply-add is 2 FLOPs; elementwise work is not counted)."""
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return out, int(counter.get_total_flops())


def rates(work: dict[str, float], seconds: float) -> dict[str, float]:
    """Each amount of work per second: `{"images": 8}` -> `{"images_per_s": ...}`."""
    return {f"{k}_per_s": round_sig(v / seconds) for k, v in work.items()}


def timing(times: list[float]) -> dict[str, Any]:
    """The best of `times` (what the rates use: the least disturbed run) and all of them."""
    return {"seconds_best": round_sig(min(times)), "seconds_all": [round_sig(t) for t in times]}


def machine(device: torch.device | str = "cpu") -> dict[str, Any]:
    """What the figures depend on: processor, cores, threads, torch, GPU, and the load average
    (other processes on the machine lower every rate)."""
    info = {"cpu": _cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def commit() -> str | None:
    """The git commit the figures were measured at, with `+dirty` for uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        sha = git("rev-parse", "HEAD")
        return sha + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def write_result(path: Path, figures: dict[str, Any], device: torch.device | str = "cpu") -> Path:
    """Write `figures` with the commit, the UTC time and the machine beside them (atomically)."""
    record = {**figures, "commit": commit(),
              "time_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "machine": machine(device)}
    atomic_write_json(path, record)
    print(f"wrote {path}")
    return path


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def round_sig(x: float) -> float:
    """Four significant figures: enough for a rate, short enough to read."""
    return float(f"{x:.4g}")
