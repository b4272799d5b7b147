"""The two object discriminators side by side on the toy world: LostGAN's ROIAlign on the shared
image trunk (`train_image.d.object_head=roi`, the published recipe) and our crop head (`crop`).

For each head, trains the image GAN with the `toyworld` recipe (or `--experiment`) on one processed
toy-world dataset through the `train_image` stage, then measures on its test split:

    colour agreement   (VG-format data: colour attributes) `evaluation.colour_agreement`
    mask IoU           (COCO-Stuff-format data: masks) `evaluation.mask_agreement`, with the
                       box-filling mask's IoU beside it
    s / iteration      one D and one G update (`LayoutGANLoss.step`) at the recipe's widths and
                       batch size on one training batch, the heads timed in turn (ABAB...) so
                       that both see the same load; the median of `--timing-iters` each; with
                       its work (FLOPs counted by `FlopCounterMode`, images) and their rates

and writes them to `benchmarks/results/object_head_<name>.json`. `--table` prints the README table
from every such file.

    .venv/bin/python benchmarks/object_head.py --data data/processed/toyworld-vg --name vg
    .venv/bin/python benchmarks/object_head.py --data data/processed/toyworld-coco --name coco \\
        --experiment toyworld_coco
    .venv/bin/python benchmarks/object_head.py --table

On a shared machine prefer `OMP_NUM_THREADS=1`, and read the times as ratios within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from functools import partial
from pathlib import Path

import torch
from _measure import RESULTS, count_flops, rates, write_result
from torch.utils.data import DataLoader

from scene2img.config import load_params
from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.processed import load_vocab
from scene2img.evaluation.colour_agreement import colour_agreement
from scene2img.evaluation.mask_agreement import regressed_mask_iou
from scene2img.models.builders import build_discriminator, build_generator
from scene2img.models.gan_loss import LayoutGANLoss
from scene2img.stages.train_image import train_image
from scene2img.training.export import load_generator

HERE = Path(__file__).resolve().parent
HEADS = ("roi", "crop")


def run(data: str, head: str, experiment: str, iterations: int | None, out: Path,
        split: str) -> dict:
    overrides = [f"train_image.d.object_head={head}", f"tracking.uri=sqlite:///{out}/mlflow.db",
                 "trainer.accelerator=cpu"]
    if iterations:
        overrides.append(f"train_image.max_steps={iterations}")
    params = load_params(experiment=experiment, overrides=overrides)
    result = train_image(data, out / head, params, progress=False)
    G, vocab, config = load_generator(result.model_path)
    dataset = SceneGraphDataset(data, split, config["max_objects"], vocab=vocab)
    row = {"head": head, "iterations": result.metrics["iterations"],
           "batch_size": params.train_image.batch_size}
    if vocab.num_attributes:
        row["colour"] = colour_agreement(dataset, vocab, G)
    if bool(dataset[0]["has_masks"]):
        row["masks"] = regressed_mask_iou(dataset, G)
    return row


def timing(data: str, experiment: str, iters: int) -> dict[str, dict[str, float]]:
    """Per head: the median seconds of `LayoutGANLoss.step`, timed in turn on one batch, its
    FLOPs (counted on the warm-up step) and images, and their rates."""
    params = load_params(experiment=experiment).train_image
    vocab = load_vocab(data)
    dataset = SceneGraphDataset(data, "train", load_params(experiment=experiment).data.max_objects,
                                vocab=vocab)
    batch = next(iter(DataLoader(dataset, batch_size=params.batch_size)))
    size = int(batch["image"].shape[-1])
    steps, flops = {}, {}
    for head in HEADS:
        torch.manual_seed(0)
        G = build_generator(params.generator, vocab.num_objects, vocab.num_attributes, size,
                            params.g)
        D = build_discriminator(vocab.num_objects, vocab.num_attributes, size,
                                dataclasses.replace(params.d, object_head=head))
        opts = (torch.optim.Adam(G.parameters(), params.lr_g, betas=tuple(params.betas)),
                torch.optim.Adam(D.parameters(), params.lr_d, betas=tuple(params.betas)))
        loss = LayoutGANLoss(G, D, params.w_image, params.w_object, params.w_attribute)
        rng = torch.Generator().manual_seed(0)
        _, flops[head] = count_flops(partial(loss.step, batch, *opts, rng))  # also a warm-up
        steps[head] = (loss, opts, rng)
    times: dict[str, list[float]] = {head: [] for head in HEADS}
    for _ in range(iters):
        for head, (loss, opts, rng) in steps.items():
            t0 = time.perf_counter()
            loss.step(batch, *opts, rng)
            times[head].append(time.perf_counter() - t0)
    images = int(batch["image"].shape[0])
    result = {}
    for head, t in times.items():
        seconds = statistics.median(t)
        result[head] = {"s_per_iteration": seconds, "flop_per_iteration": flops[head],
                        "images_per_iteration": images,
                        **rates({"flop": flops[head], "images": images}, seconds)}
    return result


def table() -> None:
    rows = []
    for path in sorted(RESULTS.glob("object_head_*.json")):
        report = json.loads(path.read_text())
        for row in report["rows"]:
            colour = row.get("colour", {}).get("colour_accuracy")
            masks = row.get("masks", {})
            rows.append(
                f"| {report['name']} | {row['head']} | {row['iterations']} | "
                + (f"{colour:.3f}" if colour is not None else "-") + " | "
                + (f"{masks['mask_iou']:.3f} (box {masks['box_iou']:.3f})" if masks else "-")
                + f" | {row['s_per_iteration']:.2f} |")
    print("| data | object head | iterations | colour accuracy | mask IoU | s / iteration |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="processed toy-world dataset")
    ap.add_argument("--name", help="results/object_head_<name>.json")
    ap.add_argument("--experiment", default="toyworld")
    ap.add_argument("--iterations", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    ap.add_argument("--split", default="test")
    ap.add_argument("--work", type=Path, default=HERE / ".cache" / "object_head")
    ap.add_argument("--timing-iters", type=int, default=10)
    ap.add_argument("--table", action="store_true", help="print the README table and stop")
    ap.add_argument("--timing-only", action="store_true",
                    help="time both heads, update s_per_iteration in results/object_head_<name>"
                         ".json and stop")
    args = ap.parse_args()
    if args.table:
        table()
        return
    if args.timing_only:
        out = RESULTS / f"object_head_{args.name}.json"
        report = json.loads(out.read_text())
        seconds = timing(args.data, args.experiment, args.timing_iters)
        for row in report["rows"]:
            row.update(seconds[row["head"]])
        report["timing_load_average"] = os.getloadavg()
        write_result(out, report)
        print(f"s / iteration: {seconds}")
        table()
        return
    if not (args.data and args.name):
        ap.error("--data and --name are required (or --table)")
    seconds = timing(args.data, args.experiment, args.timing_iters)
    print(f"s / iteration: {seconds}", flush=True)
    rows = []
    for head in args.heads:
        row = run(args.data, head, args.experiment, args.iterations,
                  args.work / args.name, args.split)
        row.update(seconds[head])
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {"name": args.name, "data": args.data, "experiment": args.experiment,
              "threads": torch.get_num_threads(), "load_average": os.getloadavg(), "rows": rows}
    write_result(RESULTS / f"object_head_{args.name}.json", report)
    table()


if __name__ == "__main__":
    main()
