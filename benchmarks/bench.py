"""`make bench`: the benchmarks that need no trained model, in one run, into one results file.

Runs `peak.py` (this machine's reference rates), `preprocess.py`, `train_layout.py`,
`train_image.py` and `evaluate.py` with the settings of a preset, in this order and in this
process, and writes `benchmarks/results/bench.json`: the commit, the time, the machine (with its
load average before and after), each benchmark's settings and figures, and, for each figure in
FLOP/s, its share of this machine's peak at the dtype it runs in (`share_of_peak`).

    make bench                  # the quick preset: a few minutes on 2 quiet CPU cores
    make bench BENCH=full       # the scripts' own defaults (the README's settings)
    .venv/bin/python benchmarks/bench.py --preset tiny --out /tmp/bench.json   # seconds
    .venv/bin/python benchmarks/bench.py --table    # the README's table from bench.json

The benchmarks that score a trained model (edit_locality, mask_iou, object_head, serve_load,
train_image_toy) are run by hand on that model; see each script. Peak RSS in `preprocess` is the
process's peak so far, which in this run includes what ran before it (only `peak`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # `_measure` for the scripts, as when they run on their own

from _measure import RESULTS, write_result  # noqa: E402

# Each preset: the command-line arguments of each script, in the order they run.
PRESETS: dict[str, dict[str, list[str]]] = {
    "tiny": {  # the test's: seconds, figures meaningless
        "peak": ["--matmul", "64", "--batch", "1", "--channels", "8", "--spatial", "8",
                 "--repeats", "1"],
        "preprocess": ["--images", "10", "--image-size", "32", "--workers", "1", "--repeats", "1"],
        "train_layout": ["--images", "20", "--steps", "1", "--batch-size", "4",
                         "--configs", "toyworld"],
        "train_image": ["--sizes", "64", "--ch", "2", "--batch", "2", "--objects", "1",
                        "--classes", "4", "--iters", "1"],
        "evaluate": ["--images", "1", "--batch-size", "1", "--image-size", "32", "--repeats", "1",
                     "--fid-dim", "16"],
    },
    "quick": {  # `make bench`: the paper's layout widths, LostGAN-v2 at half width and batch 4
        "peak": ["--matmul", "1024", "--repeats", "5"],
        "preprocess": ["--images", "300", "--repeats", "2"],
        "train_layout": ["--images", "120", "--steps", "3"],
        "train_image": ["--sizes", "64", "--ch", "32", "--batch", "4", "--iters", "1"],
        "evaluate": ["--images", "8", "--batch-size", "8", "--repeats", "1"],
    },
    "full": {  # the scripts' defaults
        "peak": ["--matmul", "2048"],
        "preprocess": [],
        "train_layout": [],
        "train_image": [],
        "evaluate": [],
    },
}


def load_script(name: str) -> ModuleType:
    """`benchmarks/<name>.py` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def share(flop_per_s: float, peak: dict[str, float], dtype: str) -> float:
    """`flop_per_s` as a fraction of the peak at `dtype`."""
    return round(flop_per_s / peak[dtype], 4)


def add_shares(figures: dict[str, dict[str, Any]]) -> None:
    """Give every FLOP/s figure of the training and evaluation benchmarks its share of the peak."""
    peak = figures["peak"]["peak_flop_per_s"]
    if "train_layout" in figures:
        for config in figures["train_layout"]["configs"]:
            row = figures["train_layout"][config]
            for kind in ("model_step", "fit"):
                row[kind]["share_of_peak"] = share(row[kind]["flop_per_s"], peak, row["dtype"])
    if "train_image" in figures:
        for size in figures["train_image"]["results"].values():
            for run in (size["eager_fp32"], size["optimised"]):
                run["share_of_peak"] = share(run["flop_per_s"], peak, run["dtype"])
    if "evaluate" in figures:
        e = figures["evaluate"]
        e["share_of_peak"] = share(e["flop_per_s"], peak, e["dtype"])


def run(preset: str, out: Path, work: Path) -> dict[str, Any]:
    """Run the preset's scripts (each writing its own file under `work`), then `out`."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    figures: dict[str, Any] = {}
    wall = {}
    for name, argv in PRESETS[preset].items():
        print(f"== {name} {' '.join(argv)}", flush=True)
        t0 = time.perf_counter()
        figures[name] = load_script(name).main([*argv, "--out", str(work / f"{name}.json")])
        wall[name] = round(time.perf_counter() - t0, 1)
    add_shares(figures)
    record = {"benchmark": "bench", "preset": preset, "settings": PRESETS[preset],
              "load_average_before": load_before,
              "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "wall_seconds": wall, "benchmarks": figures}
    write_result(out, record)
    summary(figures)
    return record


def summary(figures: dict[str, Any]) -> None:
    """The headline figures, one line each."""
    peak = figures["peak"]["peak_flop_per_s"]
    print(f"\npeak: fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s")
    p = figures["preprocess"]
    print(f"preprocess: {p['images_per_s']} images/s, {p['bytes_read_per_s'] / 1e6:.1f} MB/s read")
    for config in figures["train_layout"]["configs"]:
        r = figures["train_layout"][config]
        print(f"train_layout {config}: {r['fit_steps_per_second']} steps/s (fit), "
              f"{r['model_step']['flop_per_s'] / 1e9:.1f} GFLOP/s, "
              f"{100 * r['model_step']['share_of_peak']:.0f}% of fp32 peak (model step)")
    for size, r in figures["train_image"]["results"].items():
        for kind in ("eager_fp32", "optimised"):
            x = r[kind]
            print(f"train_image {size} {kind}: {x['images_per_s']} images/s, "
                  f"{x['flop_per_s'] / 1e9:.1f} GFLOP/s, {100 * x['share_of_peak']:.0f}% of "
                  f"{x['dtype']} peak")
    e = figures["evaluate"]
    print(f"evaluate: {e['images_per_s']} images/s, {e['flop_per_s'] / 1e9:.1f} GFLOP/s, "
          f"{100 * e['share_of_peak']:.0f}% of fp32 peak")


def table(record: dict[str, Any]) -> str:
    """The README's table of a results file: one row per figure, with its work, rate and share."""
    b, g = record["benchmarks"], 1e9
    peak = b["peak"]
    rows = [f"| `peak.py` {op} {dtype}, {peak[f'{op}_{dtype}']['shape']} | "
            f"{peak[f'{op}_{dtype}']['flop'] / g:.3g} GFLOP | "
            f"**{peak[f'{op}_{dtype}']['flop_per_s'] / g:.1f} GFLOP/s** | - |"
            for dtype in ("fp32", "bf16") for op in ("matmul", "conv3x3")]
    p = b["preprocess"]
    rows.append(f"| `preprocess.py` {p['images_in']} toy-world VG 640 x 480 JPEGs -> "
                f"{p['image_size']} px, {p['workers']} workers | {p['images_written']} images, "
                f"{p['bytes_read'] / 1e6:.1f} MB read, {p['bytes_written'] / 1e6:.1f} MB written | "
                f"**{p['images_per_s']} images/s**, {p['bytes_read_per_s'] / 1e6:.1f} MB/s read | - |")
    t = b["train_layout"]
    for config in t["configs"]:
        r = t[config]
        for kind, label, steps in (("model_step", "training step", "model_steps_per_second"),
                                   ("fit", "`Trainer.fit`", "fit_steps_per_second")):
            rows.append(f"| `train_layout.py` {config} widths, batch {t['batch_size']}, {label} | "
                        f"{r['flop_per_step'] / g:.1f} GFLOP, {r['images_per_step']} scenes per "
                        f"step | **{r[steps]} steps/s**, {r[kind]['flop_per_s'] / g:.2f} GFLOP/s | "
                        f"{100 * r[kind]['share_of_peak']:.1f}% of fp32 |")
    ti = b["train_image"]
    for size, r in ti["results"].items():
        for kind in ("eager_fp32", "optimised"):
            x = r[kind]
            rows.append(f"| `train_image.py` {size} {kind.replace('_', ' ')}, batch {ti['batch']}, "
                        f"{ti['objects_per_image']} objects, one G+D iteration | "
                        f"{x['flop_per_iteration'] / g:.1f} GFLOP, {x['images_per_iteration']} "
                        f"images | **{x['images_per_s']} images/s**, "
                        f"{x['flop_per_s'] / g:.2f} GFLOP/s | "
                        f"{100 * x['share_of_peak']:.1f}% of {x['dtype']} |")
    e = b["evaluate"]
    rows.append(f"| `evaluate.py` {e['backbone']} at {e['image_size']} px (resized to 299), batch "
                f"{e['batch_size']} | {e['images']} images, {e['flop_per_image'] / g:.1f} GFLOP "
                f"per image | **{e['images_per_s']} images/s**, {e['flop_per_s'] / g:.2f} GFLOP/s | "
                f"{100 * e['share_of_peak']:.1f}% of fp32 |")
    head = ("| benchmark | work | rate | share of peak |\n| --- | --- | --- | --- |")
    return "\n".join([head, *rows])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--out", type=Path, default=RESULTS / "bench.json")
    ap.add_argument("--table", action="store_true",
                    help="print the README's table from the results file `--out` and stop")
    args = ap.parse_args(argv)
    if args.table:
        record = json.loads(args.out.read_text())
        print(table(record))
        return record
    with tempfile.TemporaryDirectory() as work:  # the scripts' own files: all is in `out`
        return run(args.preset, args.out, Path(work))


if __name__ == "__main__":
    main()
