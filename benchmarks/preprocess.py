"""Preprocessing throughput: a toy-world Visual Genome of 640 x 480 JPEGs -> 128 px shards.

Prints images per second (annotation pass + pixel pass, the whole `preprocess` call) and peak
memory, and writes them to `benchmarks/results/preprocess.json`. The raw toy world is generated
once into `benchmarks/.cache/` and reused.

    .venv/bin/python benchmarks/preprocess.py [--images 2000] [--workers 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from scene2img.config import load_params
from scene2img.data.toyworld import generate_toyworld
from scene2img.stages.preprocess import preprocess

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=0, help="0: one per core")
    ap.add_argument("--repeats", type=int, default=3, help="best of N runs")
    args = ap.parse_args()

    params = load_params(experiment="toyworld", overrides=[
        f"toyworld.images={args.images}", "toyworld.width=640", "toyworld.height=480",
        f"preprocess.image_size={args.image_size}", f"preprocess.workers={args.workers}",
    ])
    raw = HERE / ".cache" / f"toyworld-vg-{args.images}"
    if not raw.exists():
        print(f"generating {args.images} toy-world images into {raw} (once)")
        generate_toyworld("vg", raw, params.toyworld)

    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            out = Path(tmp) / "processed"
            t0 = time.perf_counter()
            result = preprocess(raw, out, params.preprocess, progress=False)
            times.append(time.perf_counter() - t0)
            shutil.rmtree(out)
    images = sum(result.counts.values())
    best = min(times)
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures = {
        "benchmark": "preprocess",
        "source": "toyworld-vg 640x480 JPEG",
        "images_in": args.images,
        "images_written": images,
        "image_size": args.image_size,
        "workers": args.workers or os.cpu_count(),
        "seconds_best": round(best, 3),
        "seconds_all": [round(t, 3) for t in times],
        "images_per_second": round(images / best, 1),
        "peak_rss_mb_main": round(peak_self, 1),
        "peak_rss_mb_worker": round(peak_child, 1),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }
    out = HERE / "results" / "preprocess.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    for k, v in figures.items():
        print(f"{k:>22}: {v}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
