from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scene2img.config import load_params
from scene2img.data import filters
from scene2img.data.drops import DropCounts
from scene2img.data.records import RawObject, RawRelationship, RawScene
from scene2img.errors import DataError, EmptyDatasetError


def scene(image_id, objs, rels=(), split="train", size=(400, 300)) -> RawScene:
    return RawScene(
        image_id=str(image_id), image_path=Path(f"{image_id}.jpg"), width=size[0], height=size[1],
        objects=[RawObject(n, b, list(a)) for n, b, *a in objs],
        relationships=[RawRelationship(*r) for r in rels], split=split,
    )


def vg_params(**vg):
    overrides = [f"preprocess.vg.{k}={v}" for k, v in vg.items()]
    return load_params(overrides=overrides).preprocess


BIG = (0, 0, 50, 50)


def test_clip_keeps_partly_outside_boxes_and_drops_degenerate() -> None:
    s = scene(1, [("a", (-10, -10, 60, 60)), ("b", (390, 10, 50, 20)), ("c", (500, 10, 5, 5)),
                  ("d", (10, 10, 0, 10))], rels=[(0, "near", 2), (0, "near", 1)])
    drops = DropCounts()
    filters.clip_boxes(s, drops)
    assert [o.name for o in s.objects] == ["a", "b"]
    assert s.objects[0].box == (0.0, 0.0, 50.0, 50.0)
    assert s.objects[1].box == (390, 10, 10, 20)
    assert drops["object: degenerate box (no area inside the image)"] == 2
    assert drops["object: box clipped to the image (kept)"] == 2
    # the relationship to the dropped object went with it; the other was renumbered
    assert [(r.subject, r.object) for r in s.relationships] == [(0, 1)]


def test_clip_crops_a_box_coordinate_mask_with_the_box() -> None:
    s = scene(1, [("a", (-20, 0, 40, 10))])
    mask = np.zeros((10, 40), bool)
    mask[:, 30:] = True
    s.objects[0].mask = mask
    filters.clip_boxes(s, DropCounts())
    assert s.objects[0].mask.shape == (10, 20) and s.objects[0].mask[:, 10:].all()


def test_visual_genome_vocab_thresholds_come_from_train_only() -> None:
    scenes = [scene(i, [("man", BIG, "tall"), ("tree", BIG, "green"), ("dog", BIG)],
                    rels=[(0, "near", 1), (2, "on", 1)]) for i in range(3)]
    # "cat" is frequent only in test: it must not enter the vocabulary.
    scenes += [scene(10 + i, [("cat", BIG), ("man", BIG), ("tree", BIG)], rels=[(0, "near", 1)],
                     split="test") for i in range(5)]
    p = vg_params(min_object_instances=3, min_attribute_instances=3,
                  min_relationship_instances=3, min_object_size=10, split_fractions=[1, 0, 0])
    drops = DropCounts()
    kept, vocab = filters.filter_visual_genome(scenes, p, drops)
    assert vocab.object_idx_to_name[0] == "__image__"
    assert set(vocab.object_idx_to_name[1:]) == {"man", "tree", "dog"}
    assert vocab.pred_idx_to_name == ["__in_image__", "near", "on"]
    assert vocab.attribute_idx_to_name == ["green", "tall"]
    assert drops["object: name not in vocabulary (min_object_instances)"] == 5
    assert len(kept) == 3  # test images lost "cat" and now have 2 objects < 3
    assert drops["image: fewer than 3 objects"] == 5


def test_visual_genome_object_size_image_side_and_count_filters() -> None:
    objs = [("man", BIG), ("man", (0, 0, 31, 100)), ("man", BIG), ("man", BIG)]
    scenes = [scene(1, objs, rels=[(0, "near", 2)]),
              scene(2, objs, rels=[(0, "near", 2)], size=(199, 400)),
              scene(3, objs, rels=[])]  # no relationship: dropped (min 1)
    p = vg_params(min_object_instances=1, min_attribute_instances=1,
                  min_relationship_instances=1, max_objects_per_image=3)
    drops = DropCounts()
    kept, _ = filters.filter_visual_genome(scenes, p, drops)
    assert [s.image_id for s in kept] == ["1"]
    assert drops["image: a side shorter than min_image_side=200"] == 1
    assert drops["object: smaller than min_object_size=32px"] == 2
    assert drops["image: fewer than 1 relationships"] == 1
    assert [(r.subject, r.object) for r in kept[0].relationships] == [(0, 1)]


def test_attributes_per_image_are_capped() -> None:
    s = scene(1, [("man", BIG, "a", "b"), ("man", BIG, "c"), ("man", BIG, "d")],
              rels=[(0, "near", 1)])
    p = vg_params(min_object_instances=1, min_attribute_instances=1,
                  min_relationship_instances=1, max_attributes_per_image=2)
    drops = DropCounts()
    (kept,), _ = filters.filter_visual_genome([s], p, drops)
    assert [o.attributes for o in kept.objects] == [["a", "b"], [], []]
    assert drops["attribute: over max_attributes_per_image"] == 2


def test_split_file_assigns_and_counts_unknown_ids(tmp_path: Path) -> None:
    scenes = [scene(i, [], split=None) for i in (1, 2, 3)]
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps({"train": [1, 99], "val": [2], "test": []}))
    p = load_params(overrides=[f"preprocess.vg.split_file={split_file}"]).preprocess
    drops = DropCounts()
    filters.assign_splits(scenes, "vg", p, drops)
    assert [s.split for s in scenes] == ["train", "val", None]
    assert drops["split file: ids not in the dataset"] == 1
    assert drops["image: not named by the split file"] == 1
    split_file.write_text(json.dumps({"train": [1000], "val": [], "test": []}))
    with pytest.raises(DataError, match="none of its 1 image ids is in the dataset"):
        filters.assign_splits(scenes, "vg", p, DropCounts())


def test_seeded_split_is_deterministic_and_follows_fractions() -> None:
    p = load_params().preprocess
    a = [scene(i, [], split=None) for i in range(100)]
    b = [scene(i, [], split=None) for i in range(100)]
    filters.assign_splits(a, "vg", p, DropCounts())
    filters.assign_splits(b, "vg", p, DropCounts())
    assert [s.split for s in a] == [s.split for s in b]
    assert [sum(s.split == k for s in a) for k in filters.SPLITS] == [80, 10, 10]


def test_coco_val_comes_out_of_train() -> None:
    p = load_params(overrides=["preprocess.coco_stuff.val_size=2"]).preprocess
    scenes = [scene(i, [], split="train") for i in range(5)] + [scene(9, [], split="test")]
    filters.assign_splits(scenes, "coco-stuff", p, DropCounts())
    assert [s.split for s in scenes].count("val") == 2 and scenes[-1].split == "test"
    p = load_params(overrides=["preprocess.coco_stuff.val_size=5"]).preprocess
    with pytest.raises(DataError, match="val_size=5 but train has only 5"):
        filters.assign_splits([scene(i, [], split="train") for i in range(5)], "coco-stuff", p,
                              DropCounts())


def test_coco_min_area_and_object_counts() -> None:
    table = {1: "person", 2: "car", 3: "sky"}
    big = (0, 0, 100, 100)  # 1/12 of 400 x 300
    small = (0, 0, 10, 10)
    scenes = [scene(1, [("person", big), ("car", big), ("sky", big), ("car", small)]),
              scene(2, [("person", big), ("car", big)]),
              scene(3, [("person", big)] * 9)]
    drops = DropCounts()
    kept, vocab = filters.filter_coco_stuff(scenes, load_params().preprocess, table, drops)
    assert [s.image_id for s in kept] == ["1"] and len(kept[0].objects) == 3
    assert drops["object: smaller than min_object_size=0.02 of the image"] == 1
    assert drops["image: fewer than 3 objects"] == 1
    assert drops["image: more than 8 objects"] == 1
    assert vocab.object_idx_to_name == ["__image__", "person", "car", "sky"]
    assert vocab.pred_idx_to_name[0] == "__in_image__" and "left of" in vocab.pred_idx_to_name


def test_everything_filtered_away_says_which_filter() -> None:
    scenes = [scene(1, [("person", (0, 0, 1, 1))])]
    drops = DropCounts()
    kept, _ = filters.filter_coco_stuff(scenes, load_params().preprocess, {1: "person"}, drops)
    with pytest.raises(EmptyDatasetError, match=r"object: smaller than min_object_size=0.02"):
        filters.require_nonempty(kept, drops, "coco-stuff")
