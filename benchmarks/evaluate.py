"""Evaluation throughput: images per second through feature extraction at 128 px.

Runs uint8 128 x 128 images through a backbone (resize to 299, InceptionV3: pool features and
logits), in batches, and times it; also times one FID `compute()` on 2048-d features (torchmetrics'
eigvals of a 2048 x 2048 matrix, paid twice per evaluation: FID and SceneFID).
`random-inception` has the same architecture, hence the same cost, as the real FID network, so
the figure holds without the weights file. Beside the time, the work: images, and the backbone's
FLOPs per image (its convolutions and matmuls, counted by `FlopCounterMode` on the warm-up batch),
with their rates (images/s, FLOP/s). The FID `compute()` is timed only: its cost is an eigenvalue
problem, which the counter does not count. Prints the figures and writes them to
`benchmarks/results/evaluate_<device>.json` (`cpu`, `cuda`; or `--out`).

    .venv/bin/python benchmarks/evaluate.py [--images 256] [--batch-size 32] [--device auto]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from _measure import RESULTS, count_flops, pick_device, rates, sync, time_runs, timing, write_result

from scene2img.evaluation.backbones import build_backbone
from scene2img.evaluation.metrics import make_fid


def measure(images: int = 256,  # per timed run
            image_size: int = 128,  # generated images' side (resized to 299 by the backbone)
            batch_size: int = 32,
            backbone: str = "random-inception",  # random-inception | inception
            weights: str | None = None,  # inception: the weights file
            device: str = "auto",  # auto | cpu | cuda
            repeats: int = 3,  # timed runs (best of)
            fid_dim: int = 2048,  # feature size of the timed FID compute
            ) -> dict[str, Any]:
    """Feature extraction's time, FLOPs and rates, and one FID `compute()`'s time."""
    dev = pick_device(device)
    net = build_backbone(backbone, weights=weights, seed=0).to(dev)
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (images, 3, image_size, image_size), generator=g,
                           dtype=torch.uint8)
    batches = [b.to(dev) for b in pixels.split(batch_size)]

    def extract() -> None:
        for b in batches:
            net(b)

    with torch.no_grad():
        _, warm_flop = count_flops(lambda: net(batches[0]))  # warm-up (cuDNN autotuning, allocator)
        sync(dev)
        times = time_runs(extract, repeats, dev)
    flop_per_image = warm_flop // len(batches[0])

    feats = torch.randn(2 * fid_dim, fid_dim, generator=g, dtype=torch.float64)
    fid = make_fid(fid_dim).to(dev)
    fid.update(feats[:fid_dim].to(dev), real=True)
    fid.update(feats[fid_dim:].to(dev) * 1.1, real=False)
    fid_seconds = time_runs(fid.compute, 1, dev)[0]

    work = {"images": images, "flop": flop_per_image * images}
    return {
        "benchmark": "evaluate: feature extraction",
        "backbone": backbone,
        "device": dev.type,
        "image_size": image_size,
        "batch_size": batch_size,
        "images": images,
        "flop_per_image": flop_per_image,
        **timing(times),
        **rates(work, min(times)),
        "dtype": "fp32",
        f"fid_compute_seconds_{fid_dim}d": round(fid_seconds, 3),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256, help="images per timed run")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--backbone", default="random-inception", help="random-inception | inception")
    ap.add_argument("--weights", default=None, help="inception: the weights file")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--repeats", type=int, default=3, help="best of N runs")
    ap.add_argument("--fid-dim", type=int, default=2048, help="feature size of the timed FID")
    ap.add_argument("--out", type=Path, default=None,
                    help="default: benchmarks/results/evaluate_<device>.json")
    args = ap.parse_args(argv)
    figures = measure(args.images, args.image_size, args.batch_size, args.backbone, args.weights,
                      args.device, args.repeats, args.fid_dim)
    for k, v in figures.items():
        print(f"{k:>26}: {v}")
    dev = pick_device(args.device)
    write_result(args.out or RESULTS / f"evaluate_{dev.type}.json", figures, dev)
    return figures


if __name__ == "__main__":
    main()
