"""Redraw docs/images/upscale_strip.jpg: generated | bicubic | ours (RDN), one row per scene, at
the upscaled size (the generated image shown with its pixels replicated).

From a model with an upscaler (a folder or a registered `models:/` URI), scene graphs given as
sentences:

    MLFLOW_TRACKING_URI=sqlite:///$PWD/mlflow.db .venv/bin/python docs/images/upscale_strip.py \
        --model models:/scene2img@champion --text "a red car left of a tree" --text "a bus on a road"

or from the exported generator and upscaler, on the first layouts of the test split, with the
real image of each layout (resized from the raw file, as preprocess resizes) as a fourth column:

    .venv/bin/python docs/images/upscale_strip.py --image-model models/image/image_model.pt \
        --upscaler-model models/upscaler/upscaler_model.pt --data data/processed/toyworld-vg \
        --raw data/raw/toyworld-vg -e toyworld --rows 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from scene2img.config import load_params
from scene2img.data.superres import bicubic_upscale
from scene2img.errors import ConfigError

HERE = Path(__file__).resolve().parent
LABEL = 18  # px of caption above each column


def _bicubic(image: np.ndarray, scale: int) -> np.ndarray:
    """[S, S, 3] uint8 -> [sS, sS, 3] uint8, the baseline as the upscaler's tests compute it."""
    lr = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    return (bicubic_upscale(lr, scale)[0] * 255).round().byte().permute(1, 2, 0).numpy()


def _from_model(args: argparse.Namespace) -> tuple[list[list[np.ndarray]], list[str]]:
    from scene2img.serving.loading import load_scene_to_image
    from scene2img.serving.text import parse_text

    model = load_scene_to_image(args.model)
    f = model.upscale_factor
    if f is None:
        raise ConfigError(f"--model {args.model}: this model has no upscaler; register it with "
                          "--upscaler-model")
    rows = []
    for k, text in enumerate(args.text or ["a red car left of a tree", "a bus on a road"]):
        scene = model.parse(parse_text(text, model.vocab).to_json(), where=f"--text {text!r}")
        small = model.generate(scene, seed=args.seed + k)
        rows.append([small.image, _bicubic(small.image, f), model.upscaled(small, f).image])
    s = rows[0][0].shape[0]
    return rows, [f"generated {s} px", f"bicubic {f * s}", f"ours (RDN x{f}) {f * s}"]


def _from_files(args: argparse.Namespace) -> tuple[list[list[np.ndarray]], list[str]]:
    from scene2img.stages.train_upscaler import generated_pairs
    from scene2img.training.export import load_upscaler

    net, config = load_upscaler(args.upscaler_model)
    f = config["scale"]
    params = load_params(experiment=args.experiment, overrides=[
        f"train_upscaler.scale={f}", f"train_upscaler.seed={args.seed}"])
    pairs = generated_pairs(args.image_model, args.data, args.raw, "test", params)

    def hwc(t: torch.Tensor) -> np.ndarray:
        return t.permute(1, 2, 0).numpy()

    rows = []
    for i in range(min(args.rows, len(pairs))):
        lr = pairs.lr[i]  # [3, S, S] uint8: the image as generated (and served)
        with torch.no_grad():
            sr = net(lr[None].float() / 255).clamp(0, 1)[0]  # [3, fS, fS]
        rows.append([hwc(lr), _bicubic(hwc(lr), f), hwc((sr * 255).round().byte()),
                     hwc(pairs.hr[i])])
    s = rows[0][0].shape[0]
    return rows, [f"generated {s} px", f"bicubic {f * s}", f"ours (RDN x{f}) {f * s}",
                  f"real image of the layout {f * s}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder or models:/ URI with an upscaler")
    ap.add_argument("--text", action="append", help="a scene, as a sentence (repeatable)")
    ap.add_argument("--image-model", type=Path, help="image_model.pt (with --upscaler-model)")
    ap.add_argument("--upscaler-model", type=Path, help="upscaler_model.pt")
    ap.add_argument("--data", help="the processed dataset: its test layouts")
    ap.add_argument("--raw", type=Path, help="the raw dataset it was made from")
    ap.add_argument("--experiment", "-e", default=None, help="params experiment (e.g. toyworld)")
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "upscale_strip.jpg")
    args = ap.parse_args()
    files = (args.image_model, args.upscaler_model, args.data, args.raw)
    given = [x is not None for x in files]
    if (args.model is not None and any(given)) or (args.model is None and not all(given)):
        ap.error("give --model, or all of --image-model, --upscaler-model, --data and --raw")
    rows, labels = _from_model(args) if args.model else _from_files(args)

    side = max(r.shape[0] for row in rows for r in row)  # the upscaled size
    strip = Image.new("RGB", (side * len(labels), LABEL + side * len(rows)), "white")
    draw = ImageDraw.Draw(strip)
    for c, label in enumerate(labels):
        draw.text((c * side + 4, 3), label, fill="black")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            # the generated image: pixels replicated up to the panel, not smoothed
            panel = Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST)
            strip.paste(panel, (c * side, LABEL + r * side))
    strip.save(args.out, quality=85)  # JPEG: noisy toy pictures are 5x larger as PNG
    print(f"wrote {args.out} ({strip.width} x {strip.height})")


if __name__ == "__main__":
    main()
