"""COCO-Stuff readers: the label-map form on the shipped real sample, the JSON form on fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from scene2img.data.drops import DropCounts
from scene2img.data.sources import coco_stuff as cs
from scene2img.data.sources.coco_stuff import (
    decode_segmentation,
    load_labels,
    read_coco_stuff_json,
    read_coco_stuff_labelmap,
)
from scene2img.errors import DataError
from tests.conftest import SHARED_DATA

SAMPLE = SHARED_DATA / "coco_stuff_sample"


# --------------------------------------------------------------------------------------------
# label-map form, real sample


@pytest.fixture(scope="module")
def sample() -> Path:
    assert (SAMPLE / "labels.txt").is_file(), (
        f"the COCO-Stuff reference sample is missing at {SAMPLE.resolve()}; it ships in "
        "../shared/data/ next to the project (see shared/data/README.md)"
    )
    return SAMPLE


@pytest.fixture(scope="module")
def labels(sample: Path) -> dict[int, str]:
    return load_labels(sample / "labels.txt")


@pytest.fixture(scope="module")
def scenes(sample: Path, labels: dict[int, str]) -> dict[str, list]:
    out = {}
    for split in ("train", "val"):
        drops = DropCounts()
        out[split] = list(read_coco_stuff_labelmap(sample, split, labels, drops))
        # The only thing the sample makes the reader skip: an instance painted only over
        # unlabeled/stuff pixels (000000138805, instance 8, 6 pixels).
        assert set(drops.as_dict()) <= {cs.DROP_UNLABELED_INSTANCE}, drops.as_dict()
    return out


def _maps(sample: Path, split: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(Image.open(sample / f"{split}_label" / f"{stem}.png")),
            np.asarray(Image.open(sample / f"{split}_inst" / f"{stem}.png")))


def test_load_labels(labels: dict[int, str]) -> None:
    assert len(labels) == 182 and 0 not in labels
    assert labels[1] == "person" and labels[91] == "hair brush"
    assert labels[92] == "banner" and labels[182] == "wood"
    assert labels[10] == "traffic light"


def test_load_labels_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_labels(tmp_path / "labels.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("0: unlabeled\n1 person\n")
    with pytest.raises(DataError, match=r"bad.txt:2: expected 'id: name'"):
        load_labels(bad)


def test_labelmap_scenes(sample: Path, scenes: dict[str, list], labels: dict[int, str]) -> None:
    assert len(scenes["train"]) == 13 and len(scenes["val"]) == 8
    assert {s.split for s in scenes["train"]} == {"train"}
    assert {s.split for s in scenes["val"]} == {"test"}
    ids = {s.image_id for s in scenes["val"]}
    assert "139" in ids  # 000000000139.jpg: the COCO id, as the JSON form gives it
    names = set(labels.values())
    for split, split_scenes in scenes.items():
        for s in split_scenes:
            assert s.image_path == sample / f"{split}_img" / f"{int(s.image_id):012d}.jpg"
            label_map, _ = _maps(sample, split, s.image_path.stem)
            assert (s.height, s.width) == label_map.shape
            with Image.open(s.image_path) as im:
                assert im.size == (s.width, s.height)
            assert s.objects, s.image_id
            for o in s.objects:
                assert o.name in names
                x, y, w, h = o.box
                assert x >= 0 and y >= 0 and w > 0 and h > 0
                assert x + w <= s.width and y + h <= s.height
                assert o.mask is not None and o.mask.dtype == bool
                assert o.mask.shape == (h, w)
                # the box is the mask's tight box
                assert o.mask[0].any() and o.mask[-1].any()
                assert o.mask[:, 0].any() and o.mask[:, -1].any()
                assert o.segmentation is None


def test_labelmap_stuff_is_one_object_per_class(sample: Path, scenes: dict[str, list],
                                                labels: dict[int, str]) -> None:
    for split, split_scenes in scenes.items():
        for s in split_scenes:
            label_map, _ = _maps(sample, split, s.image_path.stem)
            stuff = [o for o in s.objects if o.source_id is not None and o.source_id > 91
                     and o.name == labels.get(o.source_id)]
            present = {int(v) + 1 for v in np.unique(label_map) if 91 <= v < 255}
            assert sorted(o.source_id for o in stuff) == sorted(present)
            for o in stuff:
                x, y, w, h = (int(v) for v in o.box)
                full = label_map == o.source_id - 1
                assert int(o.mask.sum()) == int(full.sum())  # the whole class region
                assert np.array_equal(full[y:y + h, x:x + w], o.mask)


def test_labelmap_thing_instances_are_separate(sample: Path, scenes: dict[str, list]) -> None:
    by_id = {s.image_id: s for split_scenes in scenes.values() for s in split_scenes}
    # 000000284465 (train): people playing with umbrellas and balls.
    names = [o.name for o in by_id["284465"].objects]
    assert names.count("person") == 8
    assert names.count("umbrella") == 3 and names.count("sports ball") == 3
    # 000000001584 (val): a bus stop with many people and three buses.
    names = [o.name for o in by_id["1584"].objects]
    assert names.count("person") >= 10 and names.count("bus") == 3


def test_labelmap_instances_follow_the_inst_map(sample: Path, scenes: dict[str, list]) -> None:
    """Every instance pixel carries its index in the inst map, instances do not overlap, and
    scattered border pixels do not stretch boxes."""
    for split, split_scenes in scenes.items():
        for s in split_scenes:
            _, inst_map = _maps(sample, split, s.image_path.stem)
            cover = np.zeros(inst_map.shape, dtype=np.int32)
            things = [o for o in s.objects if o.source_id is not None and o.source_id <= 91]
            assert things, s.image_id  # every image in the sample has thing instances
            for o in things:
                x, y, w, h = (int(v) for v in o.box)
                assert (inst_map[y:y + h, x:x + w][o.mask] == o.source_id).all()
                cover[y:y + h, x:x + w] += o.mask
            assert cover.max() <= 1


def test_labelmap_index_equal_to_label_value(sample: Path, scenes: dict[str, list]) -> None:
    """000000029286: instance 0 is a person (label 0), so its body is unchanged in the inst map;
    it must still be one large person, not a sliver of border pixels."""
    s = next(s for s in scenes["train"] if s.image_id == "29286")
    persons = sorted((o for o in s.objects if o.name == "person"), key=lambda o: -o.mask.sum())
    assert len(persons) == 3
    assert persons[0].source_id == 0 and persons[0].mask.sum() > 100_000
    # 000000350505: instance 7 is a small car on the right; truck-border pixels elsewhere that
    # also read 7 in the inst map (label 7 = truck) must neither join it nor rename it.
    s = next(s for s in scenes["train"] if s.image_id == "350505")
    car7 = next(o for o in s.objects if o.source_id == 7)
    assert car7.name == "car" and car7.box[0] >= 600 and car7.box[2] < 20


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8), mode="L").save(path)


def _tiny_labelmap(root: Path, stem: str = "000000000001") -> None:
    """Two persons over sky: instance 0 (label value 0, so invisible but for its border spill
    over the sky) and instance 1; a patch of 'other' (182) and an unknown value (200)."""
    label = np.full((20, 30), 156, dtype=np.uint8)  # 157 = sky-other
    label[2:10, 2:8] = 0  # person A
    label[5:15, 20:26] = 0  # person B
    label[17:19, 0:3] = 182  # class 183 "other"
    label[17:19, 27:30] = 200  # not in labels.txt
    inst = label.copy()
    inst[1, 2:8] = 0  # instance 0's polygon spills one row over the sky
    inst[5:15, 20:26] = 1  # instance 1 painted over its person label
    inst[16, 20:26] = 1  # ... and over one row of sky below
    for sub, arr in (("train_label", label), ("train_inst", inst)):
        _write_png(root / sub / f"{stem}.png", arr)
    (root / "train_img").mkdir(parents=True, exist_ok=True)
    (root / "train_img" / f"{stem}.jpg").write_bytes(b"")  # never opened


LABELS = {1: "person", 157: "sky-other"}


def test_labelmap_tiny(tmp_path: Path) -> None:
    _tiny_labelmap(tmp_path)
    drops = DropCounts()
    [scene] = read_coco_stuff_labelmap(tmp_path, "train", LABELS, drops)
    assert (scene.image_id, scene.width, scene.height, scene.split) == ("1", 30, 20, "train")
    a, b, sky = scene.objects
    assert (a.name, a.box, a.mask.shape) == ("person", (2.0, 1.0, 6.0, 9.0), (9, 6))
    assert a.mask.all()
    assert (b.name, b.box, int(b.mask.sum())) == ("person", (20.0, 5.0, 6.0, 12.0), 66)
    assert sky.name == "sky-other" and sky.box == (0.0, 0.0, 30.0, 20.0)
    assert drops.as_dict() == {cs.DROP_OTHER: 1, cs.DROP_UNKNOWN_LABEL: 1}

    drops = DropCounts()
    [scene] = read_coco_stuff_labelmap(tmp_path, "train", LABELS, drops, include_other=True)
    assert [o.name for o in scene.objects] == ["person", "person", "sky-other", "other"]
    assert scene.objects[-1].box == (0.0, 17.0, 3.0, 2.0)
    assert drops.as_dict() == {cs.DROP_UNKNOWN_LABEL: 1}


def test_labelmap_skips_missing_and_corrupt_maps(tmp_path: Path) -> None:
    _tiny_labelmap(tmp_path, "000000000001")
    _tiny_labelmap(tmp_path, "000000000002")
    _tiny_labelmap(tmp_path, "000000000003")
    (tmp_path / "train_inst" / "000000000002.png").unlink()
    corrupt = tmp_path / "train_label" / "000000000003.png"
    corrupt.write_bytes(corrupt.read_bytes()[:40])  # truncated PNG
    drops = DropCounts()
    scenes = list(read_coco_stuff_labelmap(tmp_path, "train", LABELS, drops))
    assert [s.image_id for s in scenes] == ["1"]
    assert drops[cs.DROP_MISSING_MAP] == 1 and drops[cs.DROP_UNREADABLE_MAP] == 1


def test_labelmap_missing_folder(tmp_path: Path) -> None:
    _tiny_labelmap(tmp_path)
    with pytest.raises(DataError, match=r"val_img: directory not found"):
        list(read_coco_stuff_labelmap(tmp_path, "val", LABELS, DropCounts()))
    with pytest.raises(DataError, match="split 'test'"):
        list(read_coco_stuff_labelmap(tmp_path, "test", LABELS, DropCounts()))


# --------------------------------------------------------------------------------------------
# JSON form

H, W = 12, 15


def _rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def _uncompressed(m: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""
    flat = m.ravel(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0, *counts]
    return {"size": [H, W], "counts": counts}


def _compressed(m: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


POLY = [[2, 3, 10, 3, 10, 8, 2, 8]]  # covers x 2..9, y 3..7
CROWD = _rect(0, 2, 0, 4)
SKY = _rect(8, 12, 0, 15)


def _coco(tmp_path: Path, split: str = "val") -> Path:
    images = [
        {"id": 1, "file_name": "000000000001.jpg", "width": W, "height": H},
        {"id": 2, "file_name": "000000000002.jpg", "width": 30, "height": 20},
    ]
    instances = {
        "images": images,
        "categories": [{"id": 1, "name": "person"}, {"id": 17, "name": "cat"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [2, 3, 8, 5],
             "segmentation": POLY, "iscrowd": 0, "area": 40},
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 2],
             "segmentation": _uncompressed(CROWD), "iscrowd": 1, "area": 8},
            {"id": 12, "image_id": 1, "category_id": 999, "bbox": [0, 0, 1, 1],
             "segmentation": POLY, "iscrowd": 0},
            {"id": 13, "image_id": 77, "category_id": 17, "bbox": [0, 0, 1, 1],
             "segmentation": POLY, "iscrowd": 0},
            {"id": 14, "image_id": 2, "category_id": 17, "bbox": [1, 1, 5, 5],
             "segmentation": [[1, 1, 6, 1, 6, 6, 1, 6]], "iscrowd": 0},
        ],
    }
    stuff = {
        "images": images,
        "categories": [{"id": 157, "name": "sky-other"}, {"id": 183, "name": "other"}],
        "annotations": [
            {"id": 20, "image_id": 1, "category_id": 157, "bbox": [0, 8, 15, 4],
             "segmentation": _compressed(SKY), "iscrowd": 0},
            {"id": 21, "image_id": 1, "category_id": 183, "bbox": [0, 0, 15, 8],
             "segmentation": _compressed(~SKY), "iscrowd": 0},
        ],
    }
    ann = tmp_path / "annotations"
    ann.mkdir(exist_ok=True)
    (ann / f"instances_{split}2017.json").write_text(json.dumps(instances))
    (ann / f"stuff_{split}2017.json").write_text(json.dumps(stuff))
    return tmp_path


def test_json_reader(tmp_path: Path) -> None:
    raw = _coco(tmp_path)
    drops = DropCounts()
    table: dict[int, str] = {}
    scenes = list(read_coco_stuff_json(raw, "val", include_other=False, drop_crowd=True,
                                       drops=drops, class_table=table))
    assert [s.image_id for s in scenes] == ["1", "2"]
    one, two = scenes
    assert (one.width, one.height, one.split) == (W, H, "test")
    assert one.image_path == raw / "val2017" / "000000000001.jpg"
    assert [(o.name, o.box, o.source_id) for o in one.objects] == [
        ("person", (2.0, 3.0, 8.0, 5.0), 10), ("sky-other", (0.0, 8.0, 15.0, 4.0), 20),
    ]
    assert all(o.mask is None for o in one.objects)
    assert [o.name for o in two.objects] == ["cat"]
    assert drops.as_dict() == {
        cs.DROP_CROWD: 1, cs.DROP_OTHER: 1,
        cs.DROP_UNKNOWN_CATEGORY: 1, cs.DROP_UNKNOWN_IMAGE: 1,
    }
    assert table == {1: "person", 17: "cat", 157: "sky-other"}


def test_json_reader_keeps_crowd_and_other(tmp_path: Path) -> None:
    raw = _coco(tmp_path, split="train")
    drops = DropCounts()
    one = next(read_coco_stuff_json(raw, "train", include_other=True, drop_crowd=False,
                                    drops=drops))
    assert one.split == "train"
    assert [(o.name, o.iscrowd) for o in one.objects] == [
        ("person", False), ("person", True), ("sky-other", False), ("other", False),
    ]
    assert drops.as_dict() == {cs.DROP_UNKNOWN_CATEGORY: 1, cs.DROP_UNKNOWN_IMAGE: 1}
    # every segmentation form decodes to the mask it was made from
    person, crowd, sky, other = (decode_segmentation(o.segmentation, H, W) for o in one.objects)
    assert np.array_equal(person, _rect(3, 8, 2, 10))
    assert np.array_equal(crowd, CROWD)
    assert np.array_equal(sky, SKY)
    assert np.array_equal(other, ~SKY)


def test_decode_segmentation_forms() -> None:
    m = _rect(1, 5, 4, 9)
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))  # counts as bytes
    assert np.array_equal(decode_segmentation(rle, H, W), m)
    assert np.array_equal(decode_segmentation(_compressed(m), H, W), m)
    assert np.array_equal(decode_segmentation(_uncompressed(m), H, W), m)
    two = decode_segmentation([[0, 0, 2, 0, 2, 2, 0, 2], [10, 10, 12, 10, 12, 12, 10, 12]], H, W)
    assert np.array_equal(two, _rect(0, 2, 0, 2) | _rect(10, 12, 10, 12))
    assert decode_segmentation([[1, 1, 2, 2]], H, W).sum() == 0  # degenerate polygon
    with pytest.raises(DataError, match=r"RLE segmentation of size \[12, 15\]"):
        decode_segmentation(_compressed(m), 20, 30)
    with pytest.raises(DataError, match="unreadable COCO segmentation"):
        decode_segmentation("not a segmentation", H, W)


def test_json_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"annotations: directory not found"):
        list(read_coco_stuff_json(tmp_path, "val", False, True, DropCounts()))
    raw = _coco(tmp_path)
    stuff = raw / "annotations" / "stuff_val2017.json"
    text = stuff.read_text()
    stuff.write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"stuff_val2017.json: malformed JSON at line 1, column"):
        list(read_coco_stuff_json(raw, "val", False, True, DropCounts()))
    stuff.unlink()
    with pytest.raises(DataError, match=r"stuff_val2017.json: file not found"):
        list(read_coco_stuff_json(raw, "val", False, True, DropCounts()))
    stuff.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="no 'categories' list"):
        list(read_coco_stuff_json(raw, "val", False, True, DropCounts()))
    with pytest.raises(DataError, match="split 'test'"):
        list(read_coco_stuff_json(raw, "test", False, True, DropCounts()))


def test_json_malformed_annotation_is_counted(tmp_path: Path) -> None:
    raw = _coco(tmp_path)
    path = raw / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    del data["annotations"][0]["bbox"]
    path.write_text(json.dumps(data))
    drops = DropCounts()
    one = next(read_coco_stuff_json(raw, "val", False, True, drops))
    assert [o.name for o in one.objects] == ["sky-other"]
    assert drops[cs.DROP_MALFORMED] == 1
