"""Does a few minutes of CPU training on the toy world paint objects where and as asked?

Scores an exported image model (`scene2img train-image -e toyworld ...`) on a split of the processed
toy world with `scene2img.evaluation.colour_agreement` (mean colour in each box centre against its
colour attribute), beside an untrained generator of the same shape and the real images, and saves a
grid (layout | real | generated) for the README.

    .venv/bin/python benchmarks/train_image_toy.py --model models/image/image_model.pt \\
        --data data/processed/toyworld-vg [--split test] [--grid docs/images/train_image_grid.png]
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
from scene2img.evaluation.colour_agreement import colour_agreement
from scene2img.training.export import generator_from_config, load_generator
from scene2img.training.image_module import image_grid, paint_layout

HERE = Path(__file__).resolve().parent


class _TrainModeBN(torch.nn.Module):
    """An untrained generator with batch statistics (fresh running stats mean nothing)."""

    def __init__(self, G: torch.nn.Module) -> None:
        super().__init__()
        self.G = G.train()
        self.sample_latents = G.sample_latents

    def forward(self, *args):
        return self.G(*args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--grid", type=Path, default=None, help="PNG: layout | real | generated")
    ap.add_argument("--grid-images", type=int, default=6)
    ap.add_argument("--out", type=Path, default=RESULTS / "train_image_toy.json")
    args = ap.parse_args()

    G, vocab, config = load_generator(args.model)
    dataset = SceneGraphDataset(args.data, args.split, config["max_objects"], vocab=vocab)
    torch.manual_seed(0)
    untrained = _TrainModeBN(generator_from_config(config))
    figures = {
        "model": str(args.model), "split": args.split,
        "iterations": json.loads((args.model.parent / "metrics.json").read_text())
        .get("iterations") if (args.model.parent / "metrics.json").is_file() else None,
        "trained": colour_agreement(dataset, vocab, G),
        "untrained": colour_agreement(dataset, vocab, untrained),
        "real_images": colour_agreement(dataset, vocab, None),
    }
    for name in ("trained", "untrained", "real_images"):
        f = figures[name]
        print(f"{name:>12}: colour accuracy {f['colour_accuracy']:.3f}, mean RGB distance "
              f"{f['colour_distance']:.1f} over {f['objects']} objects")

    if args.grid:
        batch = next(iter(DataLoader(dataset, batch_size=args.grid_images)))
        b, o = batch["objects"].shape
        z = G.sample_latents(b, o, torch.Generator().manual_seed(0), device="cpu")
        with torch.no_grad():
            fake = G(batch["objects"], batch["boxes"], batch["obj_valid"], batch["attributes"], *z)
        size = fake.shape[-1]
        grid = image_grid([paint_layout(batch, size, vocab.num_objects), batch["image"], fake])
        picture = Image.fromarray(grid)  # rows: examples; columns: layout | real | generated
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST).save(args.grid)
        print(f"wrote {args.grid}")
    write_result(args.out, figures)


if __name__ == "__main__":
    main()
