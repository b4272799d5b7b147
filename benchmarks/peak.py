"""This machine's reference rates: fp32 and bf16 matmul and convolution throughput (FLOP/s).

The rates a training benchmark is measured against (its share of the peak of its dtype): a square
matmul of side `--matmul`, and a 3 x 3 convolution, `--channels` in and out, on a batch of
`--batch` feature maps of `--spatial` px (a ResNet stage's shape). FLOPs counted by
`FlopCounterMode` as in every benchmark here; the best of `--repeats` runs after a warm-up. On the
CPU bf16 runs on oneDNN's AVX512-BF16 / AMX kernels where the processor has them; on CUDA on the
tensor cores. Prints the figures and writes `benchmarks/results/peak.json`.

    .venv/bin/python benchmarks/peak.py [--device auto] [--matmul 1024] [--spatial 56]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _measure import RESULTS, count_flops, pick_device, rates, time_runs, timing, write_result

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def measure(op: str, dtype: torch.dtype, device: torch.device, matmul: int, batch: int,
            channels: int, spatial: int, repeats: int) -> dict[str, Any]:
    """FLOPs, times and FLOP/s of one `op` (`matmul` | `conv3x3`) at `dtype`."""
    g = torch.Generator().manual_seed(0)
    if op == "matmul":
        a, b = (torch.randn(matmul, matmul, generator=g).to(device, dtype) for _ in range(2))
        shape = f"{matmul} x {matmul} @ {matmul} x {matmul}"

        def fn():
            return a @ b
    else:
        x = torch.randn(batch, channels, spatial, spatial, generator=g).to(device, dtype)
        w = torch.randn(channels, channels, 3, 3, generator=g).to(device, dtype) * 0.05
        if device.type == "cpu":  # oneDNN's fastest layout on the CPU
            x = x.contiguous(memory_format=torch.channels_last)
        shape = f"[{batch}, {channels}, {spatial}, {spatial}] * [{channels}, {channels}, 3, 3]"

        def fn():
            return F.conv2d(x, w, padding=1)
    with torch.no_grad():
        _, flop = count_flops(fn)  # also the warm-up
        times = time_runs(fn, repeats, device)
    return {"shape": shape, "flop": flop, **timing(times), **rates({"flop": flop}, min(times))}


def run(device: str = "auto",  # auto | cpu | cuda
        matmul: int = 1024,  # matmul side
        batch: int = 8,  # convolution batch
        channels: int = 64,  # convolution channels in and out
        spatial: int = 56,  # convolution feature-map side
        repeats: int = 5,  # timed runs per figure (best of)
        ) -> dict[str, Any]:
    """Figures per `<op>_<dtype>` and the peak FLOP/s per dtype (the best op at that dtype)."""
    dev = pick_device(device)
    figures: dict[str, Any] = {"benchmark": "peak", "device": dev.type}
    for name, dtype in DTYPES.items():
        for op in ("matmul", "conv3x3"):
            r = measure(op, dtype, dev, matmul, batch, channels, spatial, repeats)
            figures[f"{op}_{name}"] = r
            print(f"{op:>8} {name}: {r['flop_per_s'] / 1e9:8.1f} GFLOP/s  ({r['shape']})",
                  flush=True)
    figures["peak_flop_per_s"] = {
        name: max(figures[f"{op}_{name}"]["flop_per_s"] for op in ("matmul", "conv3x3"))
        for name in DTYPES}
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--matmul", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--spatial", type=int, default=56)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS / "peak.json")
    args = ap.parse_args(argv)
    figures = run(args.device, args.matmul, args.batch, args.channels, args.spatial, args.repeats)
    write_result(args.out, figures, pick_device(args.device))
    return figures


if __name__ == "__main__":
    main()
