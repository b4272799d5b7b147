"""Redraw docs/images/generate_edit_text.png: generation, two edits and --text, with layouts.

    MLFLOW_TRACKING_URI=sqlite:///$PWD/mlflow.db .venv/bin/python docs/images/generate_edit_text.py \
        --model models:/scene2img@champion

Runs the README's `scene2img generate` / `edit` commands on docs/examples/ and puts the pictures
side by side, each captioned with what made it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
TEXT = "a red car left of a tree, sky above grass"
PANEL = 192  # px per picture


def scene2img(*args: str) -> None:
    cli = Path(sys.executable).with_name("scene2img")
    subprocess.run([str(cli), *args], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="model folder or models:/ URI")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--out", type=Path, default=HERE / "generate_edit_text.png")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        model = ["--model", args.model]
        scene2img("generate", *model, "--graph", str(EXAMPLES / "scene.json"), "--seed", args.seed,
                  "--out", f"{t}/gen.png", "--layout-out", f"{t}/gen_layout.png",
                  "--state-out", f"{t}/state.json")
        for name in ("colour", "add"):  # each edit starts from the same generation
            shutil.copy(t / "state.json", t / f"state_{name}.json")
            scene2img("edit", *model, "--state", f"{t}/state_{name}.json",
                      "--ops", str(EXAMPLES / f"ops_{name}.json"), "--out", f"{t}/{name}.png",
                      "--layout-out", f"{t}/{name}_layout.png")
        scene2img("generate", *model, "--text", TEXT, "--seed", args.seed, "--out", f"{t}/text.png",
                  "--layout-out", f"{t}/text_layout.png")
        panels = [("gen.png", "scene.json"), ("gen_layout.png", "its layout"),
                  ("colour.png", "edit: car blue"), ("add.png", "edit: + red person"),
                  ("add_layout.png", "layout after"), ("text.png", "--text"),
                  ("text_layout.png", "text layout")]
        sheet = Image.new("RGB", (PANEL * len(panels), PANEL + 22), "white")
        draw = ImageDraw.Draw(sheet)
        for k, (file, caption) in enumerate(panels):
            with Image.open(t / file) as im:
                sheet.paste(im.convert("RGB").resize((PANEL, PANEL), Image.NEAREST), (k * PANEL, 0))
            draw.text((k * PANEL + 4, PANEL + 5), caption, fill="black")
        sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
