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


def vg_scene(image_id, objs, rels=(), split="train", size=(400, 300)) -> RawScene:
    """Objects as `(names, box, attributes)` with ids 1.., or `(id, names, box, attributes)`."""
    objects = []
    for k, o in enumerate(objs):
        oid, names, box, attrs = o if len(o) == 4 else (k + 1, *o)
        names = [names] if isinstance(names, str) else names
        objects.append(RawObject(names[0], box, list(attrs), source_id=oid, names=names))
    return RawScene(str(image_id), Path(f"{image_id}.jpg"), size[0], size[1], objects=objects,
                    relationships=[RawRelationship(s, p, o, raw_predicate=raw)
                                   for s, p, o, raw in (r if len(r) == 4 else (*r, r[1])
                                                        for r in rels)],
                    split=split, annotated_attributes=[list(o[-1]) for o in objs])


LOW = {"min_object_instances": 1, "min_attribute_instances": 1, "min_relationship_instances": 1}


def test_visual_genome_vocab_thresholds_come_from_train_only_in_sg2im_order() -> None:
    scenes = [vg_scene(i, [("man", BIG, ["tall"]), ("tree", BIG, ["green"]), ("dog", BIG, [])],
                       rels=[(0, "on", 1), (2, "near", 1)]) for i in range(3)]
    scenes.append(vg_scene(5, [("tree", BIG, ["green"]), ("tree", BIG, []), ("man", BIG, [])],
                           rels=[(0, "near", 1)]))
    # "cat" is frequent only in test: it must not enter the vocabulary.
    scenes += [vg_scene(10 + i, [("cat", BIG, []), ("man", BIG, []), ("tree", BIG, [])],
                        rels=[(0, "near", 1)], split="test") for i in range(5)]
    p = vg_params(min_object_instances=3, min_attribute_instances=3,
                  min_relationship_instances=3, min_object_size=10)
    drops = DropCounts()
    kept, vocab = filters.filter_visual_genome(scenes, p, drops)
    # objects: most frequent first, ties in first-seen order (Counter.most_common)
    assert vocab.object_idx_to_name == ["__image__", "tree", "man", "dog"]
    # predicates: first-seen order, not frequency (sg2im iterates its dict)
    assert vocab.pred_idx_to_name == ["__in_image__", "on", "near"]
    assert vocab.attribute_idx_to_name == ["green", "tall"]
    assert drops["object: no name in the vocabulary (min_object_instances)"] == 5
    assert [s.image_id for s in kept] == ["0", "1", "2", "5"]  # test images lost "cat": 2 < 3
    assert drops["image: fewer than 3 objects"] == 5


def test_visual_genome_object_size_image_side_and_count_filters() -> None:
    objs = [("man", BIG, []), ("man", (0, 0, 31, 100), []), ("man", BIG, []), ("man", BIG, [])]
    scenes = [vg_scene(1, objs, rels=[(0, "near", 2)]),
              vg_scene(2, objs, rels=[(0, "near", 2)], size=(199, 400)),
              vg_scene(3, objs, rels=[])]  # no relationship: dropped (min 1)
    p = vg_params(**LOW, max_objects_per_image=3)
    drops = DropCounts()
    kept, _ = filters.filter_visual_genome(scenes, p, drops)
    assert [s.image_id for s in kept] == ["1"]
    assert drops["image: a side shorter than min_image_side=200"] == 1
    assert drops["object: smaller than min_object_size=32px"] == 2
    assert drops["image: fewer than 1 relationships"] == 1
    assert [(r.subject, r.object) for r in kept[0].relationships] == [(0, 1)]


def test_object_size_is_the_annotated_box_and_boxes_are_not_clipped() -> None:
    # 40 px wide as annotated, 20 px inside the image: sg2im keeps it, unclipped
    s = vg_scene(1, [("man", (-20, 0, 40, 40), []), ("man", BIG, []), ("man", (390, 0, 40, 40), [])],
                 rels=[(0, "near", 1)])
    kept, _ = filters.filter_visual_genome([s], vg_params(**LOW), DropCounts())
    assert [o.box for o in kept[0].objects] == [(-20, 0, 40, 40), BIG, (390, 0, 40, 40)]
    # clip_boxes: clipped after the size filter; boxes with no area inside are dropped
    s = vg_scene(1, [("man", (-20, 0, 40, 40), []), ("man", BIG, []), ("man", (400, 0, 40, 40), [])],
                 rels=[(0, "near", 1)])
    drops = DropCounts()
    kept, _ = filters.filter_visual_genome([s], vg_params(**LOW, clip_boxes="true",
                                                         min_objects_per_image=1), drops)
    assert [o.box for o in kept[0].objects] == [(0.0, 0.0, 20.0, 40.0), BIG]
    assert drops["object: degenerate box (no area inside the image)"] == 1


def test_an_object_takes_the_first_of_its_names_in_the_vocabulary() -> None:
    many = [vg_scene(i, [("shirt", BIG, []), ("man", BIG, []), ("man", BIG, [])],
                     rels=[(0, "on", 1)]) for i in range(3)]
    # "tshirt" is counted once (too rare); the object becomes a "shirt"; a repeated name counts once
    odd = vg_scene(9, [(["tshirt", "shirt", "shirt"], BIG, []), ("man", BIG, []),
                       (["Man", "guy"], BIG, []), ("man", BIG, [])], rels=[(0, "on", 1)])
    kept, vocab = filters.filter_visual_genome(
        [*many, odd], vg_params(min_object_instances=3, min_attribute_instances=1,
                                min_relationship_instances=1), DropCounts())
    assert vocab.object_idx_to_name == ["__image__", "man", "shirt"]
    assert kept[-1].image_id == "9"
    assert [o.name for o in kept[-1].objects] == ["shirt", "man", "man"]  # "Man"/"guy": none


def test_attributes_are_capped_per_object() -> None:
    s = vg_scene(1, [("man", BIG, ["a", "b", "c", "a"]), ("man", BIG, ["c"]),
                     ("man", BIG, ["d", "zz"])], rels=[(0, "near", 1)])
    s.annotated_attributes.append(["zz"])  # twice counted: zz is in the vocabulary ...
    p = vg_params(min_object_instances=1, min_attribute_instances=2, min_relationship_instances=1,
                  max_attributes_per_image=2)
    drops = DropCounts()
    (kept,), vocab = filters.filter_visual_genome([s], p, drops)
    assert vocab.attribute_idx_to_name == ["c", "zz"]
    assert [o.attributes for o in kept.objects] == [["c"], ["c"], ["zz"]]
    s = vg_scene(1, [("man", BIG, ["a", "b", "c", "a", "b"]), ("man", BIG, ["c", "b"]),
                     ("man", BIG, [])], rels=[(0, "near", 1)])
    (kept,), _ = filters.filter_visual_genome([s], vg_params(**LOW, max_attributes_per_image=2),
                                              drops)
    # the cap counts in-vocabulary attributes as written (a repeat too), per object
    assert [o.attributes for o in kept.objects] == [["a", "b"], ["c", "b"], []]
    assert drops["attribute: over max_attributes_per_image (per object)"] == 3


def test_relationship_endpoints_missing_from_objects_json() -> None:
    def one() -> RawScene:
        s = vg_scene(1, [("man", BIG, []), ("horse", BIG, []), ("man", BIG, []),
                         ("saddle", BIG, [])], rels=[(0, "on", 1), (3, "on", 1), (3, "near", 0)])
        s.objects[3].from_relationship = True  # only in relationships.json
        return s

    drops = DropCounts()
    (kept,), vocab = filters.filter_visual_genome([one()], vg_params(**LOW), drops)
    assert [o.name for o in kept.objects] == ["man", "horse", "man"]
    assert [(r.subject, r.object) for r in kept.relationships] == [(0, 1)]
    assert "saddle" not in vocab.object_name_to_idx  # never counted toward the vocabulary
    assert drops["relationship: an endpoint is not in objects.json "
                 "(keep_relationship_endpoints=false)"] == 2
    (kept,), vocab = filters.filter_visual_genome(
        [one()], vg_params(**LOW, keep_relationship_endpoints="true"), DropCounts())
    # kept as an object, but the vocabulary is still objects.json's: "saddle" is not in it
    assert [o.name for o in kept.objects] == ["man", "horse", "man"]
    s = one()
    s.objects[0].names = s.objects[0].names + ["saddle"]
    (kept,), vocab = filters.filter_visual_genome(
        [s], vg_params(**LOW, keep_relationship_endpoints="true"), DropCounts())
    assert [o.name for o in kept.objects] == ["man", "horse", "man", "saddle"]
    assert len(kept.relationships) == 3


def test_val_and_test_predicates_are_looked_up_as_written_unless_normalised() -> None:
    def scenes():
        rels = [(0, "on", 1, "ON "), (0, "near", 1, "near"), (0, "on", 1, "on")]
        return [vg_scene(1, [("man", BIG, [])] * 3, rels=rels),
                vg_scene(2, [("man", BIG, [])] * 3, rels=rels[:1], split="val"),
                vg_scene(3, [("man", BIG, [])] * 3, rels=rels, split="test")]

    drops = DropCounts()
    kept, _ = filters.filter_visual_genome(scenes(), vg_params(**LOW), drops)
    assert [s.image_id for s in kept] == ["1", "3"]  # val's only relationship reads "ON "
    assert [r.predicate for r in kept[1].relationships] == ["near", "on"]
    assert drops["relationship: val/test predicate not in the vocabulary as written "
                 "(normalise_eval_predicates=false)"] == 2
    kept, _ = filters.filter_visual_genome(
        scenes(), vg_params(**LOW, normalise_eval_predicates="true"), DropCounts())
    assert [s.image_id for s in kept] == ["1", "2", "3"]
    assert [r.predicate for r in kept[2].relationships] == ["on", "near", "on"]


def test_a_repeated_object_id_is_one_record_and_a_node_per_occurrence() -> None:
    def one() -> RawScene:
        # id 7 twice: the first occurrence is too small, the second passes and gives its box
        return vg_scene(1, [(7, "man", (0, 0, 10, 10), []), (8, "dog", BIG, []),
                            (7, ["guy", "man"], (5, 5, 40, 40), []), (9, "dog", BIG, [])],
                        rels=[(2, "near", 1)])

    two = {**LOW, "min_object_instances": 2}  # "man" and "dog" twice, "guy" once
    (kept,), _ = filters.filter_visual_genome([one()], vg_params(**two), DropCounts())
    assert [(o.name, o.box) for o in kept.objects] == [
        ("man", (5, 5, 40, 40)), ("dog", BIG), ("man", (5, 5, 40, 40)), ("dog", BIG)]
    assert [(r.subject, r.object) for r in kept.relationships] == [(2, 1)]
    drops = DropCounts()
    (kept,), _ = filters.filter_visual_genome(
        [one()], vg_params(**two, dedupe_object_ids="true"), drops)
    assert [o.name for o in kept.objects] == ["dog", "man", "dog"]
    assert [(r.subject, r.object) for r in kept.relationships] == [(1, 0)]
    assert drops["object: object_id repeated within the image (dedupe_object_ids)"] == 1


def test_vocabulary_counts_follow_file_order_not_image_order() -> None:
    a = vg_scene(1, [("tree", BIG, []), ("man", BIG, []), ("man", BIG, [])], rels=[(0, "on", 1)])
    b = vg_scene(2, [("dog", BIG, []), ("dog", BIG, []), ("tree", BIG, [])],
                 rels=[(0, "near", 1), (0, "on", 1)])
    a.file_order = {"objects.json": 1, "relationships.json": 0}
    b.file_order = {"objects.json": 0, "relationships.json": 1}
    _, vocab = filters.filter_visual_genome([a, b], vg_params(**LOW), DropCounts())
    assert vocab.object_idx_to_name == ["__image__", "dog", "tree", "man"]
    assert vocab.pred_idx_to_name == ["__in_image__", "on", "near"]


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


def test_split_file_orders_the_scenes_and_rejects_shared_images(tmp_path: Path) -> None:
    scenes = [scene(i, [], split=None) for i in (1, 2, 3, 4)]
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps({"train": [4, 2, 4], "test": [3], "val": [1]}))
    p = load_params(overrides=[f"preprocess.vg.split_file={split_file}"]).preprocess
    drops = DropCounts()
    filters.assign_splits(scenes, "vg", p, drops)
    # the file's order, as sg2im writes its records
    assert [(s.image_id, s.split) for s in scenes] == [
        ("4", "train"), ("2", "train"), ("3", "test"), ("1", "val")]
    assert drops["split file: id listed twice in its split"] == 1
    split_file.write_text(json.dumps({"train": [1, 2], "val": [2], "test": []}))
    with pytest.raises(DataError, match="image 2 is listed in both 'train' and 'val'"):
        filters.assign_splits(scenes, "vg", p, DropCounts())
    split_file.write_text(json.dumps({"train": 5}))
    with pytest.raises(DataError, match="expected"):
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


# --------------------------------------------------------------------------------------------
# ADE20K: the named foreground / background split (BachGAN's salient-only layouts)


def test_the_configured_class_split_fits_the_real_ade20k_table() -> None:
    from scene2img.data.sources.ade20k import load_object_info
    from tests.conftest import SHARED_DATA

    table = load_object_info(SHARED_DATA / "ade20k" / "objectInfo150.txt")
    split = load_params().preprocess.ade20k.class_split
    foreground, background = filters.class_split(table, split)
    assert split.name and (len(background), len(foreground)) == (35, 115)  # SceneParsing's count
    names = {table[i] for i in background}
    assert {"wall", "building", "sky", "floor", "road"} <= names  # stuff in the ADE20K paper
    assert not {"car", "tree", "sofa", "person"} & names  # objects in the ADE20K paper


def test_the_toy_world_agrees_with_the_split() -> None:
    from scene2img.data.toyworld.classes import ADE_OBJECT_INFO_LINES, STUFF, THINGS

    table = {int(line.split("\t")[0]): line.split("\t")[-1].split(",")[0].strip()
             for line in ADE_OBJECT_INFO_LINES[1:]}
    foreground, background = filters.class_split(table, load_params().preprocess.ade20k.class_split)
    assert {c.ade for c in STUFF.values()} <= set(background)
    assert {c.ade for c in THINGS.values()} <= set(foreground)


def test_a_bad_class_split_is_named() -> None:
    from scene2img.config import ClassSplitParams

    table = {1: "wall", 2: "car"}
    with pytest.raises(DataError, match=r"where.background names classes not in .*\['walls'\]"):
        filters.class_split(table, ClassSplitParams("v1", ["walls"]), "where")
    with pytest.raises(DataError, match=r"where.background lists \['wall'\] more than once"):
        filters.class_split(table, ClassSplitParams("v1", ["wall", "wall"]), "where")
    with pytest.raises(DataError, match=r"where.name is empty"):
        filters.class_split(table, ClassSplitParams(" ", ["wall"]), "where")


def test_salient_only_drops_the_background_classes() -> None:
    params = load_params(overrides=["preprocess.ade20k.salient_only=true",
                                    "preprocess.ade20k.min_objects_per_image=1"]).preprocess
    table = {1: "wall", 5: "tree", 13: "person"}
    params.ade20k.class_split.background = ["wall"]
    objs = [("wall", BIG), ("tree", BIG), ("person", BIG)]
    drops = DropCounts()
    kept, vocab = filters.filter_ade20k([scene(1, objs)], params, table, drops)
    assert [o.name for o in kept[0].objects] == ["tree", "person"]
    assert drops.as_dict()["object: background class (salient_only)"] == 1
    assert vocab.object_name_to_idx["person"] == 13
