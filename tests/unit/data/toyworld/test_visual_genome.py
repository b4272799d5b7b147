"""The toy world in the Visual Genome 1.4 format: layout, relations that hold in the picture, a
graph that determines the composition, painted attributes and the real files' quirks."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from PIL import Image

from scene2img.data.toyworld import PALETTE, THINGS
from tests.unit.data.toyworld.conftest import (
    PARAMS,
    SHARED,
    colour_fraction,
    load,
    norm,
    read_aliases,
)


def test_vg_layout_and_consistency(generated: dict) -> None:
    root, counts = generated["vg"]
    image_data = load(root / "image_data.json")
    sizes = {d["image_id"]: (d["width"], d["height"]) for d in image_data}
    assert len(sizes) == 12
    folders = set()
    for d in image_data:
        assert set(d) == {"image_id", "url", "width", "height", "coco_id", "flickr_id"}
        assert d["coco_id"] is None and d["flickr_id"] is None
        folder = d["url"].split("/")[-2]
        folders.add(folder)
        with Image.open(root / folder / f"{d['image_id']}.jpg") as im:
            assert im.format == "JPEG" and im.size == (d["width"], d["height"])
    assert folders == {"VG_100K", "VG_100K_2"}

    splits = load(root / "vg_splits.json")
    assert list(splits) == ["train", "test", "val"]  # the real file's key order
    assert sorted(sum(splits.values(), [])) == sorted(sizes)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [6, 3, 3]

    listed: dict[int, dict] = {}
    for entry in load(root / "objects.json"):
        w, h = sizes[entry["image_id"]]
        for o in entry["objects"]:
            assert o["object_id"] not in listed
            listed[o["object_id"]] = o
            assert o["x"] >= 0 and o["y"] >= 0 and o["w"] > 0 and o["h"] > 0
            assert o["x"] + o["w"] <= w and o["y"] + o["h"] <= h
            assert ("names" in o) != ("name" in o) and o["synsets"]
    for entry in load(root / "attributes.json"):
        assert entry["image_id"] in sizes
        for a in entry["attributes"]:
            assert a["object_id"] in listed and a["names"]
            assert "attributes" not in a or a["attributes"]
    n_rel = 0
    for entry in load(root / "relationships.json"):
        assert entry["image_id"] in sizes
        for r in entry["relationships"]:
            n_rel += 1
            assert r["predicate"].strip() and r["synsets"]
            for end in (r["subject"], r["object"]):
                assert isinstance(end["name"], str) and end["w"] > 0 and end["h"] > 0
                if end["object_id"] in listed:
                    o = listed[end["object_id"]]
                    assert [o[k] for k in "xywh"] == [end[k] for k in "xywh"]
    assert n_rel == counts["relationships"] > 0


def test_vg_relationships_hold_in_the_picture(generated: dict) -> None:
    root, _ = generated["vg"]
    pred_alias = read_aliases(root / "relationship_alias.txt")
    checked = set()
    for entry in load(root / "relationships.json"):
        for r in entry["relationships"]:
            pred = norm(r["predicate"])
            pred = pred_alias.get(pred, pred)
            s, o = r["subject"], r["object"]
            sx1, sy1, ox1, oy1 = s["x"] + s["w"], s["y"] + s["h"], o["x"] + o["w"], o["y"] + o["h"]
            inter = min(sx1, ox1) > max(s["x"], o["x"]) and min(sy1, oy1) > max(s["y"], o["y"])
            # centres: "sky above grass" holds although a wavy horizon makes their boxes overlap
            scx, scy, ocx, ocy = (
                s["x"] + s["w"] / 2,
                s["y"] + s["h"] / 2,
                o["x"] + o["w"] / 2,
                o["y"] + o["h"] / 2,
            )
            holds = {
                "left of": scx < ocx and s["x"] < o["x"],
                "right of": scx > ocx and s["x"] > o["x"],
                "above": scy < ocy and s["y"] < o["y"],
                "below": scy > ocy and s["y"] > o["y"],
                "in front of": inter,
                "behind": inter,
                "near": True,
                "has": o["x"] >= s["x"] - 2
                and o["y"] >= s["y"] - 2
                and ox1 <= sx1 + 2
                and oy1 <= sy1 + 2,
                # standing on / in a stuff region: the bottom edge lies inside its box
                "on": o["y"] <= sy1 <= oy1 + 1,
                "standing on": o["y"] <= sy1 <= oy1 + 1,
                "parked on": o["y"] <= sy1 <= oy1 + 1,
                "in": inter,
            }
            assert holds[pred], (entry["image_id"], r)
            checked.add(pred)
    assert {"left of", "right of", "on", "has", "in"} <= checked


def test_vg_graph_determines_the_composition(generated: dict) -> None:
    """Each ground band holds a row of things, evenly spaced, whose order the graph states."""
    root, _ = generated["vg"]
    obj_alias = read_aliases(root / "object_alias.txt")
    pred_alias = read_aliases(root / "relationship_alias.txt")
    grounded = {c.vg for name, c in THINGS.items() if name != "airplane"}
    width = PARAMS.width
    rows_checked = 0
    for entry in load(root / "relationships.json"):
        support: dict[int, int] = {}  # thing -> the stuff object it stands on / floats in
        boxes: dict[int, dict] = {}
        order: set[tuple[int, int]] = set()  # (left, right) pairs the graph states
        for r in entry["relationships"]:
            pred = pred_alias.get(norm(r["predicate"]), norm(r["predicate"]))
            s, o = r["subject"], r["object"]
            name = obj_alias.get(norm(s["name"]), norm(s["name"]))
            if name in grounded and pred in ("on", "standing on", "parked on", "in"):
                assert s["object_id"] not in support, (entry["image_id"], r)
                support[s["object_id"]] = o["object_id"]
                boxes[s["object_id"]] = s
            if pred == "left of":
                order.add((s["object_id"], o["object_id"]))
            if pred == "right of":
                order.add((o["object_id"], s["object_id"]))
        for band in set(support.values()):
            row = sorted((boxes[t] for t in support if support[t] == band), key=lambda b: b["x"])
            for a, b in pairwise(row):
                assert (a["object_id"], b["object_id"]) in order, (entry["image_id"], a, b)
            for k, b in enumerate(row):
                centre = b["x"] + b["w"] / 2
                at_edge = b["x"] == 0 or b["x"] + b["w"] == width
                assert at_edge or abs(centre - (k + 0.5) / len(row) * width) <= 0.015 * width + 1
            rows_checked += 1
    assert rows_checked >= 12


def test_vg_colour_attributes_are_painted(generated: dict) -> None:
    root, _ = generated["vg"]
    thing_names = {c.vg for c in THINGS.values()}
    aliases = read_aliases(root / "object_alias.txt")
    fractions, wrong = [], []
    palette = list(PALETTE)
    for entry in load(root / "attributes.json"):
        image = np.asarray(
            Image.open(root / "VG_100K" / f"{entry['image_id']}.jpg")
            if (root / "VG_100K" / f"{entry['image_id']}.jpg").exists()
            else Image.open(root / "VG_100K_2" / f"{entry['image_id']}.jpg")
        )
        for a in entry["attributes"]:
            name = aliases.get(norm(a["names"][0]), norm(a["names"][0]))
            colours = [c for c in map(norm, a.get("attributes", [])) if c in PALETTE]
            if name in thing_names and colours:
                box = (a["x"], a["y"], a["w"], a["h"])
                fractions.append(colour_fraction(image, box, colours[0]))
                other = palette[(palette.index(colours[0]) + 3) % len(palette)]
                wrong.append(colour_fraction(image, box, other))
    assert len(fractions) >= 20
    # the main part covers a good part of the box; occlusion may hide some of it
    assert np.mean(np.array(fractions) >= 0.15) >= 0.9, sorted(fractions)[:10]
    assert np.median(fractions) >= 0.3
    # and it is the named colour that is painted, not just any colour
    assert np.mean(fractions) > 3 * np.mean(wrong)


def test_vg_size_attributes_match_the_boxes(generated: dict) -> None:
    root, _ = generated["vg"]
    aliases = read_aliases(root / "object_alias.txt")
    heights: dict[tuple[str, str], list[int]] = {}
    for entry in load(root / "attributes.json"):
        for a in entry["attributes"]:
            name = aliases.get(norm(a["names"][0]), norm(a["names"][0]))
            for size in {"small", "large"} & set(map(norm, a.get("attributes", []))):
                heights.setdefault((name, size), []).append(a["h"])
    compared = 0
    for (name, size), hs in heights.items():
        if size == "large" and (name, "small") in heights:
            assert min(hs) >= max(heights[(name, "small")]) * 0.9, name
            compared += 1
    assert compared >= 2


def test_vg_quirks_are_present(generated: dict) -> None:
    root, counts = generated["vg"]
    obj_alias = read_aliases(root / "object_alias.txt")
    pred_alias = read_aliases(root / "relationship_alias.txt")
    # the alias convention: every name on a line maps to the first, a VG vocabulary name
    assert obj_alias["automobile"] == "car" and pred_alias["to the left of"] == "left of"
    objects = [o for e in load(root / "objects.json") for o in e["objects"]]
    names = [o["name"] if "name" in o else o["names"][0] for o in objects]
    assert any("name" in o and isinstance(o["name"], str) for o in objects)
    assert any(n != n.strip() and n.strip() != n.strip().lower() for n in names)
    assert any(norm(n) in obj_alias and obj_alias[norm(n)] != norm(n) for n in names)
    assert any(min(o["w"], o["h"]) < 32 for o in objects)
    listed = {o["object_id"] for o in objects}
    rels = [r for e in load(root / "relationships.json") for r in e["relationships"]]
    preds = [r["predicate"] for r in rels]
    assert any(p != p.strip() and p.strip() != p.strip().lower() for p in preds)
    assert any(pred_alias.get(norm(p), norm(p)) != norm(p) for p in preds)
    missing = [e for r in rels for e in (r["subject"], r["object"]) if e["object_id"] not in listed]
    assert missing and all(e["name"] and e["w"] > 0 for e in missing)
    if (SHARED / "visual_genome" / "vocab_sg2im_attrlostgan.json").exists():
        vocab = load(SHARED / "visual_genome" / "vocab_sg2im_attrlostgan.json")
        canonical = {obj_alias.get(norm(n), norm(n)) for n in names}
        assert canonical <= set(vocab["object_name_to_idx"])
    assert all(v >= 1 for k, v in counts.items() if k.startswith("quirk_"))
