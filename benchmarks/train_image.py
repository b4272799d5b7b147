"""Image-GAN training throughput: one G+D iteration of LostGAN-v2 at 64 and 128 px on this CPU.

For each size, the plain eager fp32 model (contiguous tensors, foreach Adam) against the optimised
one (channels-last, fused Adam, bf16 autocast; `--compile` adds torch.compile of G and D), at the
full LostGAN-v2 widths (ch 64), batch 8, 8 objects per image, COCO-Stuff's 184 classes and
predicted masks. One iteration is `LayoutGANLoss.step`: one G forward, the D update on real and
fake, the G update through a frozen D (as LostGAN's train.py, which takes 20.6 s per iteration,
0.39 images/s, on this machine at 128 px).

Prints images per second side by side with the ratio and writes them, with the load average
(other processes share these cores), to `benchmarks/results/train_image.json`.

    .venv/bin/python benchmarks/train_image.py [--sizes 64 128] [--iters 3] [--compile]

On a shared machine prefer `OMP_NUM_THREADS=1`: two OpenMP threads slow down several-fold whenever
another process takes one of the two cores. `--compile` is off by default: the data-dependent
object counts (boolean indexing) break the graphs, and compiling costs about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from scene2img.models.discriminator import LostGANDiscriminator
from scene2img.models.gan_loss import LayoutGANLoss
from scene2img.models.generator import LostGANGenerator

HERE = Path(__file__).resolve().parent
REFERENCE_IMAGES_PER_S = 0.39  # LostGAN-v2 reference code, 128 px, batch 8, 8 objects, this CPU
GOAL_IMAGES_PER_S = 0.6
NUM_CLASSES = 184  # COCO-Stuff


def make_batch(size: int, batch: int, objects: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(batch, objects, 2, generator=g) * 0.6
    wh = torch.rand(batch, objects, 2, generator=g) * 0.35 + 0.05
    return {
        "image": torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
        "objects": torch.randint(1, NUM_CLASSES, (batch, objects), generator=g),
        "boxes": torch.cat([xy, wh], dim=-1),
        "obj_valid": torch.ones(batch, objects, dtype=torch.bool),
        "attributes": torch.zeros(batch, objects, 0),
        "masks": torch.zeros(batch, objects, 16, 16),
        "has_masks": torch.zeros(batch, dtype=torch.bool),
    }


def run(size: int, optimised: bool, batch: int, objects: int, iters: int, ch: int,
        compile_: bool) -> dict:
    torch.manual_seed(0)
    G = LostGANGenerator(NUM_CLASSES, 0, size, ch=ch)
    D = LostGANDiscriminator(NUM_CLASSES, 0, size, ch=ch)
    data = make_batch(size, batch, objects)
    if optimised:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        data["image"] = data["image"].contiguous(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.999), fused=optimised or None)
    opt_d = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.0, 0.999), fused=optimised or None)
    loss = LayoutGANLoss(G, D)
    if optimised and compile_:
        loss.G, loss.D = torch.compile(G), torch.compile(D)
        loss.G.sample_latents = G.sample_latents
    rng = torch.Generator().manual_seed(0)
    times = []
    for i in range(iters + 1):  # the first iteration warms up (and compiles)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=optimised):
            stats = loss.step(data, opt_g, opt_d, rng)
        times.append(time.perf_counter() - t0)
        print(f"  {size} px {'optimised' if optimised else 'eager fp32'} iteration {i}: "
              f"{times[-1]:.2f} s  d_loss {float(stats['d_loss']):.3f}", flush=True)
    best = min(times[1:])
    return {"seconds_per_iteration": round(best, 3),
            "seconds_all": [round(t, 3) for t in times],
            "images_per_s": round(batch / best, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--objects", type=int, default=8)
    ap.add_argument("--ch", type=int, default=64, help="base width (LostGAN-v2: 64)")
    ap.add_argument("--iters", type=int, default=2, help="timed iterations (best of), after one "
                    "warm-up")
    ap.add_argument("--compile", action="store_true", help="torch.compile G and D (optimised)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "train_image.json")
    args = ap.parse_args()

    load_before = os.getloadavg()
    results = {}
    for size in args.sizes:
        eager = run(size, False, args.batch, args.objects, args.iters, args.ch, False)
        fast = run(size, True, args.batch, args.objects, args.iters, args.ch, args.compile)
        results[f"{size}px"] = {"eager_fp32": eager, "optimised": fast,
                                "ratio": round(fast["images_per_s"] / eager["images_per_s"], 2)}
    figures = {
        "benchmark": "train_image",
        "model": f"LostGAN-v2 generator + LostGAN discriminator, ch {args.ch}, {NUM_CLASSES} "
                 "classes, predicted masks",
        "batch": args.batch,
        "objects_per_image": args.objects,
        "optimised": "channels_last + fused Adam + bf16 autocast"
                     + (" + torch.compile" if args.compile else ""),
        "results": results,
        "reference_lostgan_v2_128px_images_per_s": REFERENCE_IMAGES_PER_S,
        "goal_128px_images_per_s": GOAL_IMAGES_PER_S,
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")

    print(f"\n{'size':>6} {'eager fp32 img/s':>17} {'optimised img/s':>16} {'ratio':>6}")
    for key, r in results.items():
        print(f"{key:>6} {r['eager_fp32']['images_per_s']:>17.3f} "
              f"{r['optimised']['images_per_s']:>16.3f} {r['ratio']:>6.2f}")
    if "128px" in results:
        got = results["128px"]["optimised"]["images_per_s"]
        print(f"128 px optimised: {got:.3f} images/s vs LostGAN-v2 reference "
              f"{REFERENCE_IMAGES_PER_S} (goal {GOAL_IMAGES_PER_S}): x{got / REFERENCE_IMAGES_PER_S:.2f}")
    print(f"load average before/after: {load_before} / {os.getloadavg()}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
