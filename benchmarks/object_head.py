"""The two object discriminators side by side on the toy world: LostGAN's ROIAlign on the shared
image trunk (`train_image.d.object_head=roi`, the published recipe) and our crop head (`crop`).

For each head, trains the image GAN with the `toyworld` recipe (or `--experiment`) on one processed
toy-world dataset through the `train_image` stage, then measures on its test split:

    colour agreement   (VG-format data: colour attributes) `evaluation.colour_agreement`
    mask IoU           (COCO-Stuff-format data: masks) `evaluation.mask_agreement`, with the
                       box-filling mask's IoU beside it
    s / iteration      one D and one G update at the recipe's batch size (the stage's throughput,
                       first iteration excluded)

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
import json
import os
from pathlib import Path

import torch

from scene2img.config import load_params
from scene2img.data.dataset import SceneGraphDataset
from scene2img.evaluation.colour_agreement import colour_agreement
from scene2img.evaluation.mask_agreement import regressed_mask_iou
from scene2img.stages.train_image import load_generator, train_image

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
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
           "batch_size": params.train_image.batch_size,
           "s_per_iteration": params.train_image.batch_size / result.metrics["train_images_per_s"]}
    if vocab.num_attributes:
        row["colour"] = colour_agreement(dataset, vocab, G)
    if bool(dataset[0]["has_masks"]):
        row["masks"] = regressed_mask_iou(dataset, G)
    return row


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
    ap.add_argument("--table", action="store_true", help="print the README table and stop")
    args = ap.parse_args()
    if args.table:
        table()
        return
    if not (args.data and args.name):
        ap.error("--data and --name are required (or --table)")
    rows = []
    for head in args.heads:
        row = run(args.data, head, args.experiment, args.iterations,
                  args.work / args.name, args.split)
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {"name": args.name, "data": args.data, "experiment": args.experiment,
              "threads": torch.get_num_threads(), "load_average": os.getloadavg(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"object_head_{args.name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    table()


if __name__ == "__main__":
    main()
