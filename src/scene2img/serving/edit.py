"""Iterative edits that keep the rest of the picture.

An edit takes the `state` of a previous generation (its graph, image latent, and per-object
latents, boxes and attributes) and a list of operations:

    [{"op": "add", "object": {"name": "car", "attributes": ["red"]},
      "relationships": [{"predicate": "left of", "object": 0}]},     # the new object is subject
     {"op": "remove", "index": 2},
     {"op": "set_attributes", "index": 0, "attributes": ["blue"]},
     {"op": "add_relationship", "subject": 1, "predicate": "above", "object": 0},
     {"op": "remove_relationship", "subject": 1, "object": 0},   # optional "predicate"
     {"op": "set_box", "index": 1, "box": [0.1, 0.5, 0.3, 0.2]},  # pin its place
     {"op": "replace", "index": 1, "name": "bus"}]                # another class, same place

Untouched objects keep their latent and box, the image keeps its latent, so they stay as they
were; an added object gets a fresh latent (seeded) and the layout model's box. A replaced object
keeps its latent, box and attributes; a moved or resized one (`set_box`) keeps its latent.

A state file is checked before any work: its checksum (a hand-edited or truncated file is
refused), the model that wrote it, and every latent and box (`SceneToImage.check_state`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from scene2img.errors import SceneGraphError
from scene2img.serving.pipeline import STATE_CHECKSUM, Generation, SceneToImage, state_digest
from scene2img.serving.schema import MAX_SEED, check_box, read_json_file, show

OPERATIONS = ("add", "remove", "set_attributes", "add_relationship", "remove_relationship",
              "set_box", "replace")


def load_state(path: str | Path, model: SceneToImage) -> dict[str, Any]:
    """Read a state file written by `generate` / `edit --state-out` and check it fits `model`."""
    state = read_json_file(path, model.limits.max_state_bytes, "generation state",
                           missing="; `scene2img generate --state-out` writes one")
    if isinstance(state, dict) and STATE_CHECKSUM in state \
            and state[STATE_CHECKSUM] != state_digest(state):
        raise SceneGraphError(f"{path}: changed since scene2img wrote it (checksum mismatch); "
                              "change a generation with `scene2img edit --ops`, not by hand, or "
                              "generate again")
    state = model.check_state(state, where=str(path))
    if STATE_CHECKSUM not in state:
        raise SceneGraphError(f"{path}: no checksum; not written by `scene2img generate` / `edit`")
    return state


def _index(op: dict, key: str, n: int, where: str) -> int:
    i = op.get(key)
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n:
        raise SceneGraphError(f"{where}.{key}: {show(i)} is not an object position (0..{n - 1})")
    return i


def apply_edits(model: SceneToImage, state: dict[str, Any], ops: list[dict[str, Any]],
                where: str = "ops") -> tuple[dict, dict]:
    """The edited graph (JSON) and what to keep per object, for `SceneToImage.generate`."""
    if not isinstance(ops, list):
        raise SceneGraphError(f"{where}: expected a list of operations")
    graph = copy.deepcopy(state["graph"])
    kept: list[dict | None] = [dict(o) for o in state["objects"]]
    for k, op in enumerate(ops):
        at = f"{where}[{k}]"
        if not isinstance(op, dict) or "op" not in op:
            raise SceneGraphError(f"{at}: expected {{'op': {'|'.join(OPERATIONS)}, ...}}")
        objs, rels, n = graph["objects"], graph["relationships"], len(graph["objects"])
        kind = op["op"]
        if kind == "add":
            if not isinstance(op.get("object"), dict):
                raise SceneGraphError(f"{at}.object: expected {{'name': CLASS, ...}}")
            objs.append(dict(op["object"]))
            kept.append(None)
            if not isinstance(op.get("relationships", []), list):
                raise SceneGraphError(f"{at}.relationships: expected a list")
            for r in op.get("relationships", []):
                if not isinstance(r, dict):
                    raise SceneGraphError(f"{at}.relationships: expected objects")
                rels.append({"subject": r.get("subject", n), "predicate": r.get("predicate"),
                             "object": r.get("object", n)})
        elif kind == "remove":
            i = _index(op, "index", n, at)
            del objs[i]
            del kept[i]
            # relationships to the removed object go; later positions move down by one
            graph["relationships"] = [
                {**r, "subject": r["subject"] - (r["subject"] > i),
                 "object": r["object"] - (r["object"] > i)}
                for r in rels if i not in (r["subject"], r["object"])]
        elif kind == "set_attributes":
            i = _index(op, "index", n, at)
            objs[i]["attributes"] = op.get("attributes")
            if kept[i] is not None:
                kept[i] = {**kept[i], "attributes": None}
        elif kind == "add_relationship":
            rels.append({"subject": _index(op, "subject", n, at), "predicate": op.get("predicate"),
                         "object": _index(op, "object", n, at)})
        elif kind == "remove_relationship":
            s, o, p = _index(op, "subject", n, at), _index(op, "object", n, at), op.get("predicate")
            graph["relationships"] = [r for r in rels if not (
                r["subject"] == s and r["object"] == o and p in (None, r["predicate"]))]
        elif kind == "set_box":
            i = _index(op, "index", n, at)
            objs[i]["box"] = list(check_box(op.get("box"), f"{at}.box"))
        elif kind == "replace":
            i = _index(op, "index", n, at)
            if not isinstance(op.get("name"), str):
                raise SceneGraphError(f"{at}.name: expected a class name")
            objs[i]["name"] = op["name"]  # checked against the vocabulary with the edited graph
        else:
            raise SceneGraphError(f"{at}.op: unknown operation {show(kind)}; use "
                                  f"{', '.join(OPERATIONS)}")
    return graph, {"z_img": state["z_img"], "objects": kept}


def edit(model: SceneToImage, state: dict[str, Any], ops: list[dict[str, Any]],
         where: str = "ops") -> Generation:
    """Apply `ops` to the generation `state` and regenerate, keeping what was not edited."""
    state = model.check_state(state)
    graph_json, keep = apply_edits(model, state, ops, where)
    graph = model.parse(graph_json, where=f"{where} (edited graph)")
    step = state["step"] + 1
    generation = model.generate(graph, seed=(state["seed"] + step) % (MAX_SEED + 1), keep=keep)
    generation.state["step"] = step
    generation.state["seed"] = state["seed"]
    return generation


def outside_box_change(
    before: Generation,
    after: Generation,
    box: tuple[float, float, float, float],  # normalised x, y, w, h of the edited object
) -> float:
    """Mean absolute pixel change (0-255) outside `box`: how much an edit disturbed the rest."""
    import numpy as np

    s = before.image.shape[0]
    outside = np.ones((s, s), bool)
    x, y, w, h = box
    outside[int(np.floor(y * s)): int(np.ceil((y + h) * s)),
            int(np.floor(x * s)): int(np.ceil((x + w) * s))] = False
    diff = np.abs(before.image.astype(np.float64) - after.image.astype(np.float64))
    return float(diff[outside].mean())


def edit_locality(model: SceneToImage, graph_json: dict, index: int, attributes: list[str],
                  seed: int = 0) -> dict[str, float]:
    """Change object `index`'s attributes; compare the change outside its box with that of a
    fresh sample (another seed) of the edited graph. Returns both figures (0-255 scale)."""
    graph = model.parse(graph_json)
    before = model.generate(graph, seed=seed)
    after = edit(model, before.state, [{"op": "set_attributes", "index": index,
                                        "attributes": attributes}])
    fresh = model.generate(model.parse(after.graph.to_json()), seed=seed + 1000)
    box = tuple(before.boxes[index])
    return {"edit": outside_box_change(before, after, box),
            "fresh_sample": outside_box_change(before, fresh, box)}
