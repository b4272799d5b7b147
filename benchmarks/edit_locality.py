"""How much an edit disturbs the rest of the picture: the mean absolute pixel change (0-255)
outside the edited object's box, after changing its colour, against that of a fresh sample.

    .venv/bin/python benchmarks/edit_locality.py --model MODEL [--graph docs/examples/scene.json]

MODEL is a model folder or a models:/ URI (with MLFLOW_TRACKING_URI set). Prints the figures
and writes benchmarks/results/edit_locality.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _measure import RESULTS, write_result

from scene2img.serving.edit import edit_locality
from scene2img.serving.loading import load_scene_to_image

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--graph", type=Path, default=HERE.parent / "docs/examples/scene.json")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", type=Path, default=RESULTS / "edit_locality.json")
    args = ap.parse_args()
    model = load_scene_to_image(args.model)
    graph = json.loads(args.graph.read_text())
    runs = [edit_locality(model, graph, index=0, attributes=["blue"], seed=s)
            for s in range(args.seeds)]
    figures = {"benchmark": "edit_locality", "model": args.model, "seeds": args.seeds,
               "edit_mean_abs_change_outside_box": round(float(np.mean([r["edit"] for r in runs])), 3),
               "fresh_sample_mean_abs_change_outside_box":
                   round(float(np.mean([r["fresh_sample"] for r in runs])), 3)}
    for k, v in figures.items():
        print(f"{k:>42}: {v}")
    write_result(args.out, figures)


if __name__ == "__main__":
    main()
