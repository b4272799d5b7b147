"""Preprocessing throughput: a toy-world Visual Genome of 640 x 480 JPEGs -> 128 px shards.

Prints the work (images in and written, bytes read: the raw folder's JPEGs and annotations, bytes
written: the shards) with its rates (images/s, bytes/s; the whole `preprocess` call: annotation
pass + pixel pass) and peak memory, and writes them to `benchmarks/results/preprocess.json` (or
`--out`). The raw toy world is generated
once into `benchmarks/.cache/` and reused.

    .venv/bin/python benchmarks/preprocess.py [--images 2000] [--workers 0]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
from pathlib import Path
from typing import Any

from _measure import RESULTS, rates, time_runs, timing, write_result

from scene2img.config import load_params
from scene2img.data.toyworld import generate_toyworld
from scene2img.stages.preprocess import preprocess

HERE = Path(__file__).resolve().parent


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(images: int = 2000,  # raw toy-world scenes
            image_size: int = 128,  # output side
            workers: int = 0,  # 0: one per core
            repeats: int = 3,  # timed runs (best of)
            ) -> dict[str, Any]:
    """Time the whole `preprocess` call on a cached raw toy world, with its work and rates."""
    params = load_params(experiment="toyworld", overrides=[
        f"toyworld.images={images}", "toyworld.width=640", "toyworld.height=480",
        f"preprocess.image_size={image_size}", f"preprocess.workers={workers}",
    ])
    raw = HERE / ".cache" / f"toyworld-vg-{images}"
    if not raw.exists():
        print(f"generating {images} toy-world images into {raw} (once)")
        generate_toyworld("vg", raw, params.toyworld)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "processed"
        results = []

        def once() -> None:
            shutil.rmtree(out, ignore_errors=True)
            results.append(preprocess(raw, out, params.preprocess, progress=False))

        times = time_runs(once, repeats)
        written_bytes = folder_bytes(out)
    written = sum(results[-1].counts.values())
    work = {"images": written, "bytes_read": folder_bytes(raw), "bytes_written": written_bytes}
    return {
        "benchmark": "preprocess",
        "source": "toyworld-vg 640x480 JPEG",
        "images_in": images,
        "images_written": written,
        "image_size": image_size,
        "workers": workers or os.cpu_count(),
        **work,
        **timing(times),
        **rates(work, min(times)),
        "peak_rss_mb_main": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mb_worker":
            round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=0, help="0: one per core")
    ap.add_argument("--repeats", type=int, default=3, help="best of N runs")
    ap.add_argument("--out", type=Path, default=RESULTS / "preprocess.json")
    args = ap.parse_args(argv)
    figures = measure(args.images, args.image_size, args.workers, args.repeats)
    for k, v in figures.items():
        print(f"{k:>22}: {v}")
    write_result(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
