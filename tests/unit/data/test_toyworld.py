"""The toy world in its three raw formats, checked with plain json / PIL / numpy / pycocotools.

The readers in `scene2img.data.sources` are deliberately not used: these tests pin the formats as
the real datasets ship them, so that the readers can be tested against them.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from scene2img.config import ToyworldParams
from scene2img.data import toyworld
from scene2img.data.toyworld import PALETTE, STUFF, THINGS, generate_toyworld
from scene2img.errors import ConfigError, DataError

# pycocotools' decode trips a numpy 2 deprecation inside the library itself
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
PARAMS = ToyworldParams(
    images=12, width=160, height=120, val_fraction=0.25, test_fraction=0.25, seed=3
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, int]]]:
    root = tmp_path_factory.mktemp("toyworld")
    return {
        fmt: (root / fmt, generate_toyworld(fmt, root / fmt, PARAMS)) for fmt in toyworld.FORMATS
    }


def _load(path: Path):
    return json.loads(path.read_text())


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _aliases(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        names = [_norm(n) for n in line.split(",") if n.strip()]
        out.update(dict.fromkeys(names, names[0]))
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _colour_fraction(image: np.ndarray, box, colour: str) -> float:
    x, y, w, h = box
    patch = image[y : y + h, x : x + w].reshape(-1, 3).astype(float)
    return float((np.linalg.norm(patch - PALETTE[colour], axis=1) < 60).mean())


# --------------------------------------------------------------------------------------------
# the output folder


def test_refuses_a_non_empty_out_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        generate_toyworld("vg", out, PARAMS)
    assert (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_writes_into_an_existing_empty_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    small = ToyworldParams(2, 96, 72, 0.0, 0.0, 0)
    counts = generate_toyworld("ade20k", out, small)
    assert counts["images"] == 2 and counts["train"] == 2
    assert (out / "ADEChallengeData2016" / "objectInfo150.txt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = toyworld.make_scene
    calls = []

    def failing(rng, width, height):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(rng, width, height)

    monkeypatch.setattr(toyworld, "make_scene", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_toyworld("coco-stuff", tmp_path / "out", PARAMS)
    assert list(tmp_path.iterdir()) == []


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown toyworld format"):
        generate_toyworld("pascal", tmp_path / "a", PARAMS)
    with pytest.raises(ConfigError, match="sum to less than 1"):
        generate_toyworld("vg", tmp_path / "b", ToyworldParams(4, 160, 120, 0.5, 0.5, 0))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", toyworld.FORMATS)
def test_same_params_give_identical_bytes(fmt: str, generated: dict, tmp_path: Path) -> None:
    root, counts = generated[fmt]
    again = generate_toyworld(fmt, tmp_path / "again", PARAMS)
    assert again == counts
    first, second = _tree(root), _tree(tmp_path / "again")
    assert list(first) == list(second)
    assert [k for k in first if first[k] != second[k]] == []
    other = generate_toyworld(fmt, tmp_path / "other", ToyworldParams(12, 160, 120, 0.25, 0.25, 4))
    assert other["objects"] > 0
    assert _tree(tmp_path / "other") != first


def test_splits_follow_the_fractions(generated: dict) -> None:
    for _, counts in generated.values():
        assert (counts["train"], counts["val"], counts["test"]) == (6, 3, 3)
        assert counts["images"] == 12


# --------------------------------------------------------------------------------------------
# Visual Genome


def test_vg_layout_and_consistency(generated: dict) -> None:
    root, counts = generated["vg"]
    image_data = _load(root / "image_data.json")
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

    splits = _load(root / "vg_splits.json")
    assert list(splits) == ["train", "test", "val"]  # the real file's key order
    assert sorted(sum(splits.values(), [])) == sorted(sizes)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [6, 3, 3]

    listed: dict[int, dict] = {}
    for entry in _load(root / "objects.json"):
        w, h = sizes[entry["image_id"]]
        for o in entry["objects"]:
            assert o["object_id"] not in listed
            listed[o["object_id"]] = o
            assert o["x"] >= 0 and o["y"] >= 0 and o["w"] > 0 and o["h"] > 0
            assert o["x"] + o["w"] <= w and o["y"] + o["h"] <= h
            assert ("names" in o) != ("name" in o) and o["synsets"]
    for entry in _load(root / "attributes.json"):
        assert entry["image_id"] in sizes
        for a in entry["attributes"]:
            assert a["object_id"] in listed and a["names"]
            assert "attributes" not in a or a["attributes"]
    n_rel = 0
    for entry in _load(root / "relationships.json"):
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
    pred_alias = _aliases(root / "relationship_alias.txt")
    checked = set()
    for entry in _load(root / "relationships.json"):
        for r in entry["relationships"]:
            pred = _norm(r["predicate"])
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
    obj_alias = _aliases(root / "object_alias.txt")
    pred_alias = _aliases(root / "relationship_alias.txt")
    grounded = {c.vg for name, c in THINGS.items() if name != "airplane"}
    width = PARAMS.width
    rows_checked = 0
    for entry in _load(root / "relationships.json"):
        support: dict[int, int] = {}  # thing -> the stuff object it stands on / floats in
        boxes: dict[int, dict] = {}
        order: set[tuple[int, int]] = set()  # (left, right) pairs the graph states
        for r in entry["relationships"]:
            pred = pred_alias.get(_norm(r["predicate"]), _norm(r["predicate"]))
            s, o = r["subject"], r["object"]
            name = obj_alias.get(_norm(s["name"]), _norm(s["name"]))
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
    aliases = _aliases(root / "object_alias.txt")
    fractions, wrong = [], []
    palette = list(PALETTE)
    for entry in _load(root / "attributes.json"):
        image = np.asarray(
            Image.open(root / "VG_100K" / f"{entry['image_id']}.jpg")
            if (root / "VG_100K" / f"{entry['image_id']}.jpg").exists()
            else Image.open(root / "VG_100K_2" / f"{entry['image_id']}.jpg")
        )
        for a in entry["attributes"]:
            name = aliases.get(_norm(a["names"][0]), _norm(a["names"][0]))
            colours = [c for c in map(_norm, a.get("attributes", [])) if c in PALETTE]
            if name in thing_names and colours:
                box = (a["x"], a["y"], a["w"], a["h"])
                fractions.append(_colour_fraction(image, box, colours[0]))
                other = palette[(palette.index(colours[0]) + 3) % len(palette)]
                wrong.append(_colour_fraction(image, box, other))
    assert len(fractions) >= 20
    # the main part covers a good part of the box; occlusion may hide some of it
    assert np.mean(np.array(fractions) >= 0.15) >= 0.9, sorted(fractions)[:10]
    assert np.median(fractions) >= 0.3
    # and it is the named colour that is painted, not just any colour
    assert np.mean(fractions) > 3 * np.mean(wrong)


def test_vg_size_attributes_match_the_boxes(generated: dict) -> None:
    root, _ = generated["vg"]
    aliases = _aliases(root / "object_alias.txt")
    heights: dict[tuple[str, str], list[int]] = {}
    for entry in _load(root / "attributes.json"):
        for a in entry["attributes"]:
            name = aliases.get(_norm(a["names"][0]), _norm(a["names"][0]))
            for size in {"small", "large"} & set(map(_norm, a.get("attributes", []))):
                heights.setdefault((name, size), []).append(a["h"])
    compared = 0
    for (name, size), hs in heights.items():
        if size == "large" and (name, "small") in heights:
            assert min(hs) >= max(heights[(name, "small")]) * 0.9, name
            compared += 1
    assert compared >= 2


def test_vg_quirks_are_present(generated: dict) -> None:
    root, counts = generated["vg"]
    obj_alias = _aliases(root / "object_alias.txt")
    pred_alias = _aliases(root / "relationship_alias.txt")
    # the alias convention: every name on a line maps to the first, a VG vocabulary name
    assert obj_alias["automobile"] == "car" and pred_alias["to the left of"] == "left of"
    objects = [o for e in _load(root / "objects.json") for o in e["objects"]]
    names = [o["name"] if "name" in o else o["names"][0] for o in objects]
    assert any("name" in o and isinstance(o["name"], str) for o in objects)
    assert any(n != n.strip() and n.strip() != n.strip().lower() for n in names)
    assert any(_norm(n) in obj_alias and obj_alias[_norm(n)] != _norm(n) for n in names)
    assert any(min(o["w"], o["h"]) < 32 for o in objects)
    listed = {o["object_id"] for o in objects}
    rels = [r for e in _load(root / "relationships.json") for r in e["relationships"]]
    preds = [r["predicate"] for r in rels]
    assert any(p != p.strip() and p.strip() != p.strip().lower() for p in preds)
    assert any(pred_alias.get(_norm(p), _norm(p)) != _norm(p) for p in preds)
    missing = [e for r in rels for e in (r["subject"], r["object"]) if e["object_id"] not in listed]
    assert missing and all(e["name"] and e["w"] > 0 for e in missing)
    if (SHARED / "visual_genome" / "vocab_sg2im_attrlostgan.json").exists():
        vocab = _load(SHARED / "visual_genome" / "vocab_sg2im_attrlostgan.json")
        canonical = {obj_alias.get(_norm(n), _norm(n)) for n in names}
        assert canonical <= set(vocab["object_name_to_idx"])
    assert all(v >= 1 for k, v in counts.items() if k.startswith("quirk_"))


# --------------------------------------------------------------------------------------------
# COCO-Stuff


def _decode(seg, h: int, w: int) -> np.ndarray:
    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg["counts"], list):
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = {"counts": seg["counts"].encode(), "size": seg["size"]}
    return mask_utils.decode(rle).astype(bool)


def test_coco_json_form(generated: dict) -> None:
    root, counts = generated["coco-stuff"]
    kinds = {"polygon": 0, "crowd": 0, "stuff": 0, "other": 0}
    for split, n_images in (("train2017", 9), ("val2017", 3)):
        inst = _load(root / "annotations" / f"instances_{split}.json")
        stuff = _load(root / "annotations" / f"stuff_{split}.json")
        for data in (inst, stuff):
            assert set(data) == {"info", "licenses", "images", "annotations", "categories"}
        images = {im["id"]: im for im in inst["images"]}
        assert len(images) == n_images and inst["images"] == stuff["images"]
        thing_ids = {c["id"] for c in inst["categories"]}
        stuff_ids = {c["id"] for c in stuff["categories"]}
        assert len(thing_ids) == 80 and thing_ids <= set(range(1, 91))
        assert stuff_ids == set(range(92, 184))
        for im in images.values():
            assert im["file_name"] == f"{im['id']:012d}.jpg"
            with Image.open(root / split / im["file_name"]) as pic:
                assert pic.size == (im["width"], im["height"])
        ann_ids = [a["id"] for a in inst["annotations"] + stuff["annotations"]]
        assert len(set(ann_ids)) == len(ann_ids)
        for data, cats in ((inst, thing_ids), (stuff, stuff_ids)):
            for a in data["annotations"]:
                im = images[a["image_id"]]
                assert a["category_id"] in cats
                x, y, w, h = a["bbox"]
                assert x >= 0 and y >= 0 and x + w <= im["width"] and y + h <= im["height"]
                m = _decode(a["segmentation"], im["height"], im["width"])
                ys, xs = np.nonzero(m)
                got = [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
                assert np.allclose(got, a["bbox"], atol=2), (a["bbox"], got)
                assert abs(m.sum() - a["area"]) <= 0.02 * a["area"] + 2
                if data is inst:
                    kinds["crowd" if a["iscrowd"] else "polygon"] += 1
                    assert isinstance(a["segmentation"], list) != bool(a["iscrowd"])
                else:
                    assert a["iscrowd"] == 0 and isinstance(a["segmentation"]["counts"], str)
                    kinds["other" if a["category_id"] == 183 else "stuff"] += 1
    assert all(kinds.values()), kinds
    assert counts["thing_annotations"] == kinds["polygon"] + kinds["crowd"]
    assert counts["train2017"] == 9 and counts["val2017"] == 3


def test_coco_label_maps_agree_with_the_json(generated: dict) -> None:
    root, _ = generated["coco-stuff"]
    if (SHARED / "coco_stuff_sample" / "labels.txt").exists():
        assert (root / "labels.txt").read_bytes() == (
            SHARED / "coco_stuff_sample" / "labels.txt"
        ).read_bytes()
    checked = 0
    for split in ("train", "val"):
        inst = _load(root / "annotations" / f"instances_{split}2017.json")
        stuff = _load(root / "annotations" / f"stuff_{split}2017.json")
        for im in inst["images"]:
            stem = im["file_name"][:-4]
            assert (root / f"{split}_img" / im["file_name"]).read_bytes() == (
                root / f"{split}2017" / im["file_name"]
            ).read_bytes()
            label_png = Image.open(root / f"{split}_label" / f"{stem}.png")
            inst_png = Image.open(root / f"{split}_inst" / f"{stem}.png")
            assert label_png.mode == inst_png.mode == "L"
            label, instances = np.asarray(label_png), np.asarray(inst_png)
            assert label.shape == (im["height"], im["width"]) == instances.shape
            h, w = label.shape
            things = [a for a in inst["annotations"] if a["image_id"] == im["id"]]
            covered = np.zeros(label.shape, bool)
            for k, a in enumerate(things):
                m = _decode(a["segmentation"], h, w)
                # polygons are a slightly smoothed outline of the painted pixels
                assert (label[m] == a["category_id"] - 1).mean() >= 0.9
                assert (instances[m] == k).mean() >= 0.9  # SPADE: instance index over the labels
                covered |= m
            assert (instances[~covered] == label[~covered]).mean() >= 0.97
            for a in (a for a in stuff["annotations"] if a["image_id"] == im["id"]):
                m = _decode(a["segmentation"], h, w)
                if a["category_id"] == 183:  # "other": where the thing classes are
                    assert (label[m] < 91).all()
                else:
                    assert (label[m] == a["category_id"] - 1).all()
                    assert m.sum() == (label == a["category_id"] - 1).sum()
            assert set(np.unique(label)) <= {
                c.coco - 1 for c in (*THINGS.values(), *STUFF.values())
            } | {255}
            checked += 1
    assert checked == 12


# --------------------------------------------------------------------------------------------
# ADE20K


def test_ade20k_layout(generated: dict) -> None:
    root, counts = generated["ade20k"]
    ade = root / "ADEChallengeData2016"
    info = (ade / "objectInfo150.txt").read_text()
    if (SHARED / "ade20k" / "objectInfo150.txt").exists():
        assert info == (SHARED / "ade20k" / "objectInfo150.txt").read_text()
    table = {
        int(line.split("\t")[0]): line.split("\t")[-1].split(",")[0].strip()
        for line in info.splitlines()[1:]
    }
    assert len(table) == 150 and table[THINGS["person"].ade] == "person"
    assert {table[c.ade] for c in STUFF.values()} == {
        "sky",
        "grass",
        "sand",
        "sea",
        "road",
        "mountain",
    }
    lines = (ade / "sceneCategories.txt").read_text().splitlines()
    stems = [line.split()[0] for line in lines]
    assert all(len(line.split()) == 2 for line in lines)
    for folder, prefix, n in (("training", "train", 9), ("validation", "val", 3)):
        names = sorted(p.stem for p in (ade / "images" / folder).glob("*.jpg"))
        assert names == [f"ADE_{prefix}_{i:08d}" for i in range(1, n + 1)]
        assert sorted(p.stem for p in (ade / "annotations" / folder).glob("*.png")) == names
        assert [s for s in stems if s.startswith(f"ADE_{prefix}_")] == names
        for stem in names:
            ann = Image.open(ade / "annotations" / folder / f"{stem}.png")
            with Image.open(ade / "images" / folder / f"{stem}.jpg") as pic:
                assert ann.mode == "L" and ann.size == pic.size
            used = {c.ade for c in (*THINGS.values(), *STUFF.values())} | {0}
            values = set(np.unique(np.asarray(ann)).tolist())
            assert values <= used and THINGS["person"].ade != 0
            assert 3 in values  # sky
    assert (counts["training"], counts["validation"]) == (9, 3)


def test_the_formats_annotate_the_same_scenes(generated: dict) -> None:
    """Same params, same pictures: ADE and COCO-Stuff label maps map onto each other."""
    coco_root, _ = generated["coco-stuff"]
    ade_root, _ = generated["ade20k"]
    ade_to_coco = np.full(256, 255, np.int64)
    for c in (*THINGS.values(), *STUFF.values()):
        ade_to_coco[c.ade] = c.coco - 1
    inst = _load(coco_root / "annotations" / "instances_train2017.json")
    coco_label = np.asarray(
        Image.open(coco_root / "train_label" / (inst["images"][0]["file_name"][:-4] + ".png"))
    )
    ade_label = np.asarray(
        Image.open(
            ade_root
            / "ADEChallengeData2016"
            / "annotations"
            / "training"
            / "ADE_train_00000001.png"
        )
    )
    assert (ade_to_coco[ade_label] == coco_label).all()
