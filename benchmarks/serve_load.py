"""What hostile requests cost a real `mlflow models serve` (issue 18): for each kind, the answer,
wall time and server CPU of one refusal; then the latency of good requests idle, while a client
sends the bad requests in turn (at --rate per second, and back to back), and right after.

    .venv/bin/python benchmarks/serve_load.py --model MODEL [--requests 10] [--rate 5]

MODEL is a model folder (layout_model.pt, image_model.pt, attribute_stats.json; served as the
pyfunc `register` would log) or a `models:/` URI (with MLFLOW_TRACKING_URI set). The kinds of bad
request: `huge-object` (the issue's 4.8 MB scene graph as a JSON object), `huge-text`
(the same as a JSON string), `many-records` (17 good scene graphs), `deep` (nesting 5,000 levels
inside the scene graph's text), `batch` (16 scene graphs of 100 KB each), `under-1mb` (14 of
70 KB: about the largest body a 1 MB cap in front of the server lets through). Each refusal's
work is its body's bytes, with the rate at which the server refuses them (bytes/s). Prints the
figures and writes benchmarks/results/serve_load.json (or `--out`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _measure import RESULTS, rates, write_result

from scene2img.serving.loadtest import (
    ModelServer,
    latency_under_refused_load,
    post,
    refusal_costs,
)
from scene2img.serving.pipeline import SceneToImage
from scene2img.serving.pyfunc import save_pyfunc


def bodies(names: list[str]) -> tuple[bytes, dict[str, bytes]]:
    """A good request (one scene graph of the model's first classes) and the bad ones."""
    graph = {"objects": [{"name": n} for n in names[:3]],
             "relationships": [{"subject": 0, "predicate": "left of", "object": 1}]}
    rels = [{"subject": 0, "predicate": "left of", "object": 0}]
    huge = {"objects": [names[0]], "relationships": rels * 90_000}  # 4.8 MB as JSON
    big = {"objects": [names[0]], "relationships": rels * 2_000}  # 100 KB
    over = {"objects": [names[0]], "relationships": rels * 1_300}  # 70 KB: just over the limit
    records = {
        "huge-object": [{"scene_graph": huge}],
        "huge-text": [{"scene_graph": json.dumps(huge)}],
        "many-records": [{"scene_graph": graph}] * 17,
        "deep": [{"scene_graph": '{"objects": ' + "[" * 5000 + "]" * 5000 + "}"}],
        "batch": [{"scene_graph": big}] * 16,
        "under-1mb": [{"scene_graph": over}] * 14,  # what a 1 MB cap in front lets through
    }
    good = json.dumps({"dataframe_records": [{"scene_graph": graph, "seed": 1}]}).encode()
    return good, {k: json.dumps({"dataframe_records": v}).encode() for k, v in records.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--requests", type=int, default=10, help="good requests per phase and round")
    ap.add_argument("--rounds", type=int, default=3, help="idle, loaded, after: how many times")
    ap.add_argument("--rate", type=float, default=5.0, help="bad requests per second")
    ap.add_argument("--out", type=Path, default=RESULTS / "serve_load.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = args.model
        if Path(uri).is_dir():
            uri = str(save_pyfunc(uri, Path(tmp) / "pyfunc"))
            names = SceneToImage.from_dir(args.model).vocab.object_idx_to_name[1:]
        else:
            from scene2img.serving.loading import load_scene_to_image

            names = load_scene_to_image(uri).vocab.object_idx_to_name[1:]
        good, bad = bodies(names)
        with ModelServer(uri, Path(tmp) / "serve.log") as server:
            post(f"{server.url}/invocations", good)  # warm-up
            costs = refusal_costs(server, bad)
            for kind, cost in costs.items():
                cost.update(rates({"bytes": cost["bytes"]}, cost["wall_s"]))
                print(f"{kind:>13}: {json.dumps(cost)}")
            latency = {}
            for name, rate in ((f"{args.rate:g}/s", args.rate), ("back to back", None)):
                latency[name] = latency_under_refused_load(
                    f"{server.url}/invocations", good, list(bad.values()), args.requests, 1,
                    args.rounds, rate)
                print(f"{name:>13}: {json.dumps(latency[name])}")
    figures = {"benchmark": "serve_load", "model": args.model, "refusals": costs,
               "latency_while_refusing": latency}
    write_result(args.out, figures)


if __name__ == "__main__":
    main()
