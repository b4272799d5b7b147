"""Did the image GAN learn its masks? Regressed masks against the data's, on a split with masks.

Scores an exported image model (`scene2img train-image -e toyworld_coco ...`) with
`scene2img.evaluation.mask_agreement.regressed_mask_iou`: the mean IoU of its regressed masks
with the ground-truth masks, beside the IoU of a box-filling mask (the object as its box) and of
an untrained generator of the same shape; optionally saves a figure (real | ground-truth masks |
regressed masks | generated) for the README.

    .venv/bin/python benchmarks/mask_iou.py --model models/coco/image_model.pt \\
        --data data/processed/toyworld-coco [--split test] [--figure docs/images/masks.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _measure import RESULTS, write_result
from PIL import Image
from torch.utils.data import DataLoader

from scene2img.data.dataset import SceneGraphDataset
from scene2img.evaluation.mask_agreement import regressed_mask_iou
from scene2img.models.boxes import real_objects
from scene2img.training.export import generator_from_config, load_generator
from scene2img.training.image_module import image_grid, paint_layout

HERE = Path(__file__).resolve().parent


def figure(G: torch.nn.Module, dataset: SceneGraphDataset, num_classes: int, n: int) -> Image.Image:
    """Rows: examples; columns: real | ground-truth masks | regressed masks | generated."""
    batch = next(iter(DataLoader(dataset, batch_size=n)))
    b, o = batch["objects"].shape
    z_img, z_obj = G.sample_latents(b, o, torch.Generator().manual_seed(0), device="cpu")
    with torch.no_grad():
        style = G.style(batch["objects"], batch["attributes"], z_obj)
        regressed = G.mask_regress(style, real_objects(batch["objects"], batch["obj_valid"]))
        fake = G(batch["objects"], batch["boxes"], batch["obj_valid"], batch["attributes"],
                 z_img, z_obj)
    size = fake.shape[-1]
    ours = {**batch, "masks": (regressed >= 0.5).float()}
    grid = image_grid([batch["image"], paint_layout(batch, size, num_classes),
                       paint_layout(ours, size, num_classes), fake])
    picture = Image.fromarray(grid)
    return picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--figure", type=Path, default=None, help="PNG for the README")
    ap.add_argument("--figure-images", type=int, default=6)
    ap.add_argument("--out", type=Path, default=RESULTS / "mask_iou.json")
    args = ap.parse_args()

    G, vocab, config = load_generator(args.model)
    dataset = SceneGraphDataset(args.data, args.split, config["max_objects"], vocab=vocab)
    torch.manual_seed(0)
    untrained = generator_from_config(config).train()
    metrics_file = args.model.parent / "metrics.json"
    trained = regressed_mask_iou(dataset, G)
    figures = {
        "model": str(args.model), "data": str(args.data), "split": args.split,
        "masks": config.get("masks"),
        "iterations": json.loads(metrics_file.read_text()).get("iterations")
        if metrics_file.is_file() else None,
        "regressed_mask_iou": trained["mask_iou"],
        "box_mask_iou": trained["box_iou"],
        "untrained_mask_iou": regressed_mask_iou(dataset, untrained)["mask_iou"],
        "objects": trained["objects"],
        "per_class": {vocab.object_idx_to_name[c]: v for c, v in trained["per_class"].items()},
    }
    print(f"{args.split}: {figures['objects']} objects with masks, {figures['iterations']} "
          f"iterations")
    print(f"  regressed masks  IoU {figures['regressed_mask_iou']:.3f}")
    print(f"  box-filling mask IoU {figures['box_mask_iou']:.3f}")
    print(f"  untrained G      IoU {figures['untrained_mask_iou']:.3f}")
    for name, v in sorted(figures["per_class"].items(), key=lambda kv: -kv[1]["objects"]):
        print(f"    {name:>12}: {v['mask_iou']:.3f} vs box {v['box_iou']:.3f} "
              f"({v['objects']} objects)")
    if args.figure:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        figure(G, dataset, vocab.num_objects, args.figure_images).save(args.figure)
        print(f"wrote {args.figure}")
    write_result(args.out, figures)


if __name__ == "__main__":
    main()
