"""Redraw docs/images/dialog_strip.png: the README's ten-turn dialog, run twice with
`scene2img dialog --script`, checked to give identical pictures, drawn as a strip of frames
with each turn under its picture.

    MLFLOW_TRACKING_URI=sqlite:///$PWD/mlflow.db .venv/bin/python docs/images/dialog_strip.py \
        --model models:/scene2img@champion
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parent / "examples" / "dialog_turns.txt"
PANEL = 128  # px per picture


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="model folder or models:/ URI")
    ap.add_argument("--out", type=Path, default=HERE / "dialog_strip.png")
    args = ap.parse_args()
    cli = str(Path(sys.executable).with_name("scene2img"))
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for name in ("a", "b"):
            folder = Path(tmp) / name
            out = subprocess.run([cli, "dialog", "--model", args.model, "--script", str(SCRIPT),
                                  "--session", str(folder)], check=True, capture_output=True,
                                 text=True).stdout
            runs.append((folder, out.splitlines()))
        (a, lines), (b, _) = runs
        frames = sorted(a.glob("[0-9][0-9][0-9].png"))
        same = all(f.read_bytes() == (b / f.name).read_bytes() for f in frames)
        print("\n".join(lines))
        print(f"replayed twice: {len(frames)} pictures, identical: {same}")
        if not same:
            sys.exit("the two runs differ: not reproducible")
        turns = [t for t in SCRIPT.read_text().splitlines() if t and not t.startswith("#")]
        cap = 64
        strip = Image.new("RGB", (PANEL * len(frames), PANEL + cap), "white")
        draw = ImageDraw.Draw(strip)
        for k, (frame, turn) in enumerate(zip(frames, turns, strict=True)):
            strip.paste(Image.open(frame).convert("RGB").resize((PANEL, PANEL), Image.NEAREST),
                        (k * PANEL, 0))
            text = "\n".join(textwrap.wrap(f"{k + 1}. {turn}", 20))
            draw.multiline_text((k * PANEL + 4, PANEL + 4), text, fill="black", spacing=2)
        strip.save(args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
