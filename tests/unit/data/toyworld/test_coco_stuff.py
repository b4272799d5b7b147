"""The toy world in the COCO-Stuff 2017 format: the JSON annotations and SPADE's label maps,
checked with pycocotools."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from scene2img.data.toyworld import STUFF, THINGS, mask_to_polygons
from tests.unit.data.toyworld.conftest import SHARED, load

# pycocotools' decode trips a numpy 2 deprecation inside the library itself
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


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
        inst = load(root / "annotations" / f"instances_{split}.json")
        stuff = load(root / "annotations" / f"stuff_{split}.json")
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
        inst = load(root / "annotations" / f"instances_{split}2017.json")
        stuff = load(root / "annotations" / f"stuff_{split}2017.json")
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


def test_polygons_cover_a_mask_with_a_hole_and_drop_specks() -> None:
    mask = np.zeros((40, 50), bool)
    mask[5:35, 5:45] = True
    mask[15:25, 15:30] = False  # a hole: a COCO polygon cannot have one, so the part is cut
    mask[38, 48] = True  # a speck under min_pixels
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 2 and all(len(p) >= 6 and len(p) % 2 == 0 for p in polygons)
    decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, 40, 50)))
    body = mask.copy()
    body[38, 48] = False
    iou = (decoded.astype(bool) & body).sum() / (decoded.astype(bool) | body).sum()
    assert iou > 0.9, iou
    assert not decoded[18:22, 18:27].any()  # the hole stays empty
    assert mask_to_polygons(np.zeros((8, 8), bool)) == []
