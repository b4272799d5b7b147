"""Evaluation throughput: images per second through feature extraction at 128 px.

Runs uint8 128 x 128 images through a backbone (resize to 299, InceptionV3: pool features and
logits), in batches, and times it; also times one FID `compute()` on 2048-d features (torchmetrics'
eigvals of a 2048 x 2048 matrix, paid twice per evaluation: FID and SceneFID).
`random-inception` has the same architecture, hence the same cost, as the real FID network, so
the figure holds without the weights file. Prints the figures and merges them, under the device
name (`cpu`, `cuda`), into `benchmarks/results/evaluate.json`.

    .venv/bin/python benchmarks/evaluate.py [--images 256] [--batch-size 32] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from scene2img.evaluation.backbones import build_backbone
from scene2img.evaluation.metrics import make_fid
from scene2img.files import atomic_write_json

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256, help="images per timed run")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--backbone", default="random-inception", help="random-inception | inception")
    ap.add_argument("--weights", default=None, help="inception: the weights file")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--repeats", type=int, default=3, help="best of N runs")
    args = ap.parse_args()

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    net = build_backbone(args.backbone, weights=args.weights, seed=0).to(device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, args.image_size, args.image_size),
                           generator=g, dtype=torch.uint8)
    batches = [b.to(device) for b in images.split(args.batch_size)]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    net(batches[0])  # warm-up (cuDNN autotuning, allocator)
    sync()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for b in batches:
            net(b)
        sync()
        times.append(time.perf_counter() - t0)
    best = min(times)

    feats = torch.randn(4096, 2048, generator=g, dtype=torch.float64)
    fid = make_fid(2048).to(device)
    fid.update(feats[:2048].to(device), real=True)
    fid.update(feats[2048:].to(device) * 1.1, real=False)
    sync()
    t0 = time.perf_counter()
    fid.compute()
    sync()
    fid_seconds = time.perf_counter() - t0

    figures = {
        "benchmark": "evaluate: feature extraction",
        "backbone": args.backbone,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "images": args.images,
        "seconds_best": round(best, 3),
        "seconds_all": [round(t, 3) for t in times],
        "images_per_second": round(args.images / best, 1),
        "fid_compute_seconds_2048d": round(fid_seconds, 2),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else (platform.processor() or platform.machine()),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews figures
        "torch": torch.__version__,
    }
    out = HERE / "results" / "evaluate.json"
    out.parent.mkdir(exist_ok=True)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged[device.type] = figures
    atomic_write_json(out, merged)
    for k, v in figures.items():
        print(f"{k:>26}: {v}")
    print(f"wrote {out} [{device.type}]")


if __name__ == "__main__":
    main()
