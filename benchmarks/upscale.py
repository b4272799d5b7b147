"""RDN upscaling throughput, 128 -> 512 px (x4): images per second on this machine, eager fp32
against bf16 autocast and channels-last memory format; and, with `--serving`, the share of the
end-to-end serving time the upscaler takes.

    .venv/bin/python benchmarks/upscale.py [--config paper|toy] [--model upscaler_model.pt]
                                           [--batch 1] [--repeats 3] [--threads N]
                                           [--variants eager_fp32 bf16 ...]
                                           [--serving MODEL_DIR [--requests 5]]

`--config paper` is the published RDN (D=16, C=8, G=64, G0=64, params.yaml), `toy` the CPU one
(configs/experiments/toyworld.yaml); `--model` times an exported upscaler instead. Weights are
random unless a model is given (the time does not depend on them). Prints the figures and writes
benchmarks/results/upscale_<config>.json.

`--serving MODEL_DIR` (a model folder: layout_model.pt, image_model.pt, attribute_stats.json)
adds the upscaler to a copy of it, serves it with a real `mlflow models serve` (one worker, the
pyfunc `register` logs) and times, in the same run, alternating requests for one scene graph
without and with `upscale`: the upscaler's share is (with - without) / with, medians, HTTP, JSON
and the larger PNG included.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from scene2img.config import load_params
from scene2img.training.export import UPSCALER_MODEL_FILE, export_upscaler, load_upscaler
from scene2img.training.upscaler_module import build_rdn

HERE = Path(__file__).resolve().parent
VARIANTS = {  # name: (autocast dtype or None, channels_last)
    "eager_fp32": (None, False),
    "fp32_channels_last": (None, True),
    "bf16": (torch.bfloat16, False),
    "bf16_channels_last": (torch.bfloat16, True),
}


def images_per_second(net: torch.nn.Module, batch: int, size: int, dtype, channels_last: bool,
                      repeats: int) -> float:
    """Best of `repeats` timed forward passes (after one warm-up) of `batch` LR images."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=fmt)
    cast = torch.autocast("cpu", dtype=dtype) if dtype is not None else nullcontext()
    best = float("inf")
    with torch.inference_mode(), cast:
        net(x)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            net(x)
            best = min(best, time.perf_counter() - start)
    return batch / best


def serving_share(
    model_dir: Path,  # layout_model.pt, image_model.pt, attribute_stats.json
    net: torch.nn.Module,  # the RDN to serve with it
    requests: int,  # timed requests of each kind
) -> dict:
    """Seconds per served request without and with `upscale`, and the upscaler's share."""
    from scene2img.serving.loadtest import ModelServer, post
    from scene2img.serving.pipeline import SceneToImage
    from scene2img.serving.pyfunc import save_pyfunc

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        shutil.copytree(model_dir, folder)
        (folder / UPSCALER_MODEL_FILE).unlink(missing_ok=True)
        model = SceneToImage.from_dir(folder)
        export_upscaler(folder / UPSCALER_MODEL_FILE,
                        net.float().to(memory_format=torch.contiguous_format), model.vocab)
        names = model.vocab.object_idx_to_name[1:4]
        graph = {"objects": [{"name": n} for n in names]}
        bodies = {factor: json.dumps({"dataframe_records": [
            {"scene_graph": graph, "seed": 1, **({"upscale": factor} if factor > 1 else {})}]
        }).encode() for factor in (1, net.scale)}
        times: dict[int, list[float]] = {f: [] for f in bodies}
        sizes: dict[int, int] = {}
        with ModelServer(str(save_pyfunc(folder, Path(tmp) / "pyfunc")),
                         Path(tmp) / "serve.log") as server:
            url = f"{server.url}/invocations"
            for body in bodies.values():
                post(url, body)  # warm-up
            for _ in range(requests):
                for factor, body in bodies.items():
                    status, answer, seconds = post(url, body)
                    if status != 200:
                        raise SystemExit(f"upscale {factor}: HTTP {status}: {answer}")
                    sizes[factor] = answer["predictions"][0]["image_size"]
                    times[factor].append(seconds)
    plain, upscaled = (statistics.median(times[f]) for f in bodies)
    return {"model": str(model_dir), "generator_image_size": model.image_size,
            "upscaled_image_size": sizes[net.scale], "requests_each": requests,
            "seconds_without": [round(t, 4) for t in times[1]],
            "seconds_with": [round(t, 4) for t in times[net.scale]],
            "median_s_without": round(plain, 4), "median_s_with": round(upscaled, 4),
            "upscaler_share": round((upscaled - plain) / upscaled, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=["paper", "toy"], default="toy")
    ap.add_argument("--model", type=Path, default=None, help="an exported upscaler_model.pt")
    ap.add_argument("--size", type=int, default=128, help="LR side (512 out at x4)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--serving", type=Path, default=None, metavar="MODEL_DIR",
                    help="also time served requests with and without upscale on this model")
    ap.add_argument("--requests", type=int, default=5, help="--serving: requests of each kind")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        net, config = load_upscaler(args.model)
        name = args.model.stem
    else:
        tp = load_params(experiment="toyworld" if args.config == "toy" else None).train_upscaler
        tp.scale = 4
        net, name = build_rdn(tp).eval(), args.config
        config = {"scale": 4, **vars(tp.rdn)}
    figures: dict = {"benchmark": "upscale", "config": name, "rdn": config,
                     "lr_size": args.size, "sr_size": args.size * config["scale"],
                     "batch": args.batch, "threads": torch.get_num_threads(),
                     "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
                     "note": "shared 2-core machine; best of repeats"}
    for variant in args.variants:
        dtype, cl = VARIANTS[variant]
        figures[f"{variant}_images_per_s"] = round(
            images_per_second(net, args.batch, args.size, dtype, cl, args.repeats), 4)
        print(f"{variant:>20}: {figures[f'{variant}_images_per_s']:.4f} images/s", flush=True)
    if args.serving:
        figures["serving"] = serving_share(args.serving, net, args.requests)
        print(f"{'serving':>20}: {json.dumps(figures['serving'])}", flush=True)
    out = HERE / "results" / f"upscale_{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
