"""Tests for the Visual Genome 1.4 reader, on small hand-written fixtures in the shipped format."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scene2img.data.drops import DropCounts
from scene2img.data.records import RawScene
from scene2img.data.sources.visual_genome import load_alias_file, read_visual_genome
from scene2img.errors import DataError
from tests.conftest import SHARED_DATA

REAL_VOCAB = SHARED_DATA / "visual_genome" / "vocab_sg2im_attrlostgan.json"


# --------------------------------------------------------------------------------------------
# fixture helpers


def obj(object_id: int, name: Any = "man", box=(10, 20, 30, 40), key: str = "names") -> dict:
    d: dict[str, Any] = {"object_id": object_id, "synsets": []}
    d.update(zip(("x", "y", "w", "h"), box, strict=True))
    if key == "names":
        d["names"] = name if isinstance(name, list) else [name]
    elif key == "name":
        d["name"] = name
    return d


def rel(rid: int, predicate: Any, subject: dict, object_: dict) -> dict:
    return {"relationship_id": rid, "predicate": predicate, "subject": subject, "object": object_}


def write_vg(
    root: Path,
    images: list[tuple[int, int, int]],  # (image_id, width, height)
    objects: dict[int, list[Any]] | None = None,
    attributes: dict[int, list[Any]] | None = None,
    relationships: dict[int, list[Any]] | None = None,
    object_alias: str | None = None,
    relationship_alias: str | None = None,
    jpegs: dict[int, str] | None = None,  # image_id -> "VG_100K" | "VG_100K_2"
) -> Path:
    """Write a tiny Visual Genome 1.4 tree under `root` and return it."""
    root.mkdir(parents=True, exist_ok=True)

    def dump(name: str, data: Any) -> None:
        (root / name).write_text(json.dumps(data))

    dump(
        "image_data.json",
        [
            {
                "image_id": i,
                "url": f"https://x/{i}.jpg",
                "width": w,
                "height": h,
                "coco_id": None,
                "flickr_id": None,
            }
            for i, w, h in images
        ],
    )
    dump("objects.json", [{"image_id": i, "objects": v} for i, v in (objects or {}).items()])
    dump(
        "attributes.json", [{"image_id": i, "attributes": v} for i, v in (attributes or {}).items()]
    )
    dump(
        "relationships.json",
        [{"image_id": i, "relationships": v} for i, v in (relationships or {}).items()],
    )
    if object_alias is not None:
        (root / "object_alias.txt").write_text(object_alias)
    if relationship_alias is not None:
        (root / "relationship_alias.txt").write_text(relationship_alias)
    for image_id, sub in (jpegs or {}).items():
        (root / sub).mkdir(exist_ok=True)
        Image.new("RGB", (4, 3), (200, 10, 10)).save(root / sub / f"{image_id}.jpg")
    return root


def read(root: Path, normalise_names: bool = False) -> tuple[list[RawScene], DropCounts]:
    drops = DropCounts()
    return list(read_visual_genome(root, drops, normalise_names)), drops


def names(scene: RawScene) -> list[str]:
    return [o.name for o in scene.objects]


def triples(scene: RawScene) -> list[tuple[str, str, str]]:
    n = names(scene)
    return [(n[r.subject], r.predicate, n[r.object]) for r in scene.relationships]


# --------------------------------------------------------------------------------------------
# basic shape


def test_scenes_follow_image_data_order_with_sizes_and_paths(tmp_path: Path) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(7, 800, 600), (3, 500, 333), (12, 640, 480)],
        objects={3: [obj(1, "tree")], 7: [obj(2, "man")]},  # 12 has no entry at all
        jpegs={7: "VG_100K", 3: "VG_100K_2"},
    )
    scenes, drops = read(root)
    assert [s.image_id for s in scenes] == ["7", "3", "12"]
    assert [(s.width, s.height) for s in scenes] == [(800, 600), (500, 333), (640, 480)]
    assert all(s.split is None for s in scenes)
    assert scenes[0].image_path == root / "VG_100K" / "7.jpg"
    assert scenes[1].image_path == root / "VG_100K_2" / "3.jpg"
    # missing image: still yielded, pointing at VG_100K (the image stage counts it)
    assert scenes[2].image_path == root / "VG_100K" / "12.jpg"
    assert scenes[2].objects == [] and scenes[2].relationships == []
    o = scenes[0].objects[0]
    assert o.box == (10.0, 20.0, 30.0, 40.0) and all(isinstance(v, float) for v in o.box)
    assert o.source_id == 2 and o.attributes == [] and o.mask is None
    assert drops.as_dict() == {}


def test_required_files_are_checked_when_called(tmp_path: Path) -> None:
    root = write_vg(tmp_path / "vg", images=[(1, 10, 10)])
    (root / "relationships.json").unlink()
    with pytest.raises(DataError, match=r"relationships\.json.*missing.*download"):
        read_visual_genome(root, DropCounts())  # before iterating


def test_missing_root_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="directory not found"):
        read_visual_genome(tmp_path / "nope", DropCounts())


# --------------------------------------------------------------------------------------------
# names and aliases


def test_names_are_read_as_written_by_default_and_normalised_on_request(tmp_path: Path) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100)],
        objects={
            1: [
                obj(1, ["  Tall   MAN ", "person"]),  # every name kept, the first is `name`
                obj(2, "Tree", key="name"),  # `name` string instead of `names`
                obj(3, key="none"),  # neither
                obj(4, []),  # empty list
                obj(5, ["   ", "dog"]),
                obj(6, [""]),  # sg2im counts even an empty name
            ]
        },
    )
    (scene,), drops = read(root)
    assert [o.names for o in scene.objects] == [
        ["  Tall   MAN ", "person"], ["Tree"], ["   ", "dog"], [""]]
    assert names(scene) == ["  Tall   MAN ", "Tree", "   ", ""]
    assert drops.as_dict() == {"object: no name in objects.json": 2}

    (scene,), drops = read(root, normalise_names=True)
    assert [o.names for o in scene.objects] == [["tall man", "person"], ["tree"], ["dog"]]
    assert [o.source_id for o in scene.objects] == [1, 2, 5]
    assert drops.as_dict() == {"object: no name in objects.json": 3}


def test_load_alias_file_as_sg2im_and_normalised(tmp_path: Path) -> None:
    path = tmp_path / "object_alias.txt"
    path.write_text("Man,men , gentleman\n\nT-Shirt,tshirt,tee shirt\nsurfboard,,surf  board\n")
    # sg2im: entries stripped only; a blank line and an empty entry map "" too
    assert load_alias_file(path, normalise_names=False) == {
        "Man": "Man",
        "men": "Man",
        "gentleman": "Man",
        "": "surfboard",
        "T-Shirt": "T-Shirt",
        "tshirt": "T-Shirt",
        "tee shirt": "T-Shirt",
        "surfboard": "surfboard",
        "surf  board": "surfboard",
    }
    assert load_alias_file(path) == {
        "man": "man",
        "men": "man",
        "gentleman": "man",
        "t-shirt": "t-shirt",
        "tshirt": "t-shirt",
        "tee shirt": "t-shirt",
        "surfboard": "surfboard",
        "surf board": "surfboard",
    }
    with pytest.raises(DataError, match="alias file not found"):
        load_alias_file(tmp_path / "missing.txt")


def test_aliases_apply_to_objects_endpoints_and_predicates(tmp_path: Path) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100)],
        objects={1: [obj(1, ["Men", "men"]), obj(2, "tshirt")]},
        relationships={
            1: [
                rel(1, "Is Wearing ", obj(1), obj(2)),
                # endpoint 3 not in objects.json: its name is aliased too
                rel(2, "next  to", obj(1), obj(3, "gentleman")),
            ]
        },
        object_alias="man,men,gentleman\nt-shirt,tshirt\n",
        relationship_alias="wearing,is wearing,wears a\nnext to, next  to\n",
    )
    (scene,), _ = read(root)
    # names as written ("Men" is not "men"); predicates lowercased and stripped, then aliased
    assert [o.names for o in scene.objects] == [["Men", "man"], ["t-shirt"], ["man"]]
    assert [r.predicate for r in scene.relationships] == ["wearing", "next to"]
    assert [r.raw_predicate for r in scene.relationships] == ["Is Wearing ", "next  to"]

    (scene,), _ = read(root, normalise_names=True)
    assert [o.names for o in scene.objects] == [["man", "man"], ["t-shirt"], ["man"]]
    assert triples(scene) == [("man", "wearing", "t-shirt"), ("man", "next to", "man")]


def test_missing_alias_files_warn_and_do_not_alias(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100)],
        objects={1: [obj(1, "men"), obj(2, "dog")]},
        relationships={1: [rel(1, "Wears A", obj(1), obj(2))]},
    )
    with caplog.at_level(logging.WARNING, logger="scene2img.data.sources.visual_genome"):
        (scene,), _ = read(root)
    assert triples(scene) == [("men", "wears a", "dog")]
    assert "object_alias.txt not found" in caplog.text
    assert "relationship_alias.txt not found" in caplog.text


# --------------------------------------------------------------------------------------------
# attributes


def test_attributes_last_record_wins_and_every_record_is_counted(tmp_path: Path) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100), (2, 100, 100)],
        objects={1: [obj(1, "car"), obj(2, "tree"), obj(3, "sky"), obj(4, "bus")]},
        attributes={
            1: [
                {**obj(1, "car"), "attributes": ["Red", "parked", "red ", "parked"]},
                {**obj(2, "tree")},  # no `attributes` key: nothing, and not counted
                {**obj(1, "car"), "attributes": ["white ", "old"]},  # same object: last wins
                {**obj(3, "sky"), "attributes": [5, "blue"]},
                {**obj(4, "bus"), "attributes": ["yellow"]},
                {**obj(4, "bus")},  # a last record without attributes clears them (sg2im)
                {**obj(99, "ghost"), "attributes": ["white", "tall"]},  # unknown id: counted
            ],
            2: [{**obj(5, "dog"), "attributes": ["brown"]}],  # image 2 has no objects
        },
    )
    (s1, s2), drops = read(root)
    assert [o.attributes for o in s1.objects] == [["white ", "old"], [], ["blue"], []]
    # each record once per distinct attribute, as written
    assert s1.annotated_attributes == [
        ["Red", "parked", "red "], ["white ", "old"], ["blue"], ["yellow"], ["white", "tall"]]
    assert s2.objects == [] and s2.annotated_attributes == [["brown"]]
    assert drops.as_dict() == {
        "attribute: empty or not a string": 1,
        "attribute: object_id not in objects.json": 3,
    }
    (s1, _), _ = read(root, normalise_names=True)
    assert s1.annotated_attributes[0] == ["red", "parked"]
    assert s1.objects[0].attributes == ["white", "old"]


def test_attributes_reach_objects_taken_from_relationships(tmp_path: Path) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100)],
        objects={1: [obj(1, "man")]},
        relationships={1: [rel(1, "on", obj(1), obj(2, "horse"))]},
        attributes={1: [{**obj(2, "horse"), "attributes": ["brown"]}]},
    )
    (scene,), drops = read(root)
    assert [(o.name, o.attributes, o.from_relationship) for o in scene.objects] == [
        ("man", [], False), ("horse", ["brown"], True)]
    assert drops.as_dict() == {"object: relationship endpoint not in objects.json": 1}


# --------------------------------------------------------------------------------------------
# relationships


def test_relationship_positions_and_missing_endpoints(tmp_path: Path) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100)],
        objects={1: [obj(10, "man"), obj(11, "horse"), obj(12, "hat")]},
        relationships={
            1: [
                rel(1, "riding", obj(10), obj(11)),
                rel(2, "wearing", obj(10), obj(12)),
                # 20 is missing from objects.json: built from here, with its own box, and marked
                rel(3, "on", obj(20, "saddle", box=(1, 2, 3, 4), key="name"), obj(11)),
                rel(4, "under", obj(20, "saddle"), obj(10)),  # reuses the added object
                # 21 missing and without a name / 22 missing and without a box: dropped
                rel(5, "near", obj(21, key="none"), obj(10)),
                rel(6, "near", obj(10), {"object_id": 22, "name": "dog"}),
                rel(7, "near", {"name": "cat", "x": 1, "y": 1, "w": 1, "h": 1}, obj(10)),
                rel(8, "  ", obj(10), obj(11)),  # sg2im keeps an empty predicate ("")
                rel(9, None, obj(10), obj(11)),
                "not a relationship",
                rel(10, "near", "not an object", obj(10)),
            ]
        },
    )
    (scene,), drops = read(root)
    assert names(scene) == ["man", "horse", "hat", "saddle"]
    assert [o.from_relationship for o in scene.objects] == [False, False, False, True]
    assert scene.objects[3].box == (1.0, 2.0, 3.0, 4.0) and scene.objects[3].source_id == 20
    assert [(r.subject, r.predicate, r.object) for r in scene.relationships] == [
        (0, "riding", 1),
        (0, "wearing", 2),
        (3, "on", 1),
        (3, "under", 0),
        (0, "", 1),
    ]
    assert drops.as_dict() == {
        "object: relationship endpoint not in objects.json": 1,
        "relationship: endpoint not in objects.json nor usable in relationships.json": 2,
        "relationship: endpoint without object_id": 2,
        "relationship: malformed entry in relationships.json": 1,
        "relationship: predicate missing or not a string": 1,
    }


def test_dropped_relationship_adds_no_object(tmp_path: Path) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100)],
        objects={1: []},
        # subject usable, object unusable: the relationship is dropped, the subject not added
        relationships={1: [rel(1, "on", obj(5, "cup"), obj(6, key="none"))]},
    )
    (scene,), drops = read(root)
    assert scene.objects == [] and scene.relationships == []
    assert drops["object: relationship endpoint not in objects.json"] == 0


def test_self_relationship_on_a_new_object_adds_it_once(tmp_path: Path) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100)],
        relationships={1: [rel(1, "has", obj(5, "cup"), obj(5, "cup"))]},
    )
    (scene,), drops = read(root)
    assert names(scene) == ["cup"]
    assert [(r.subject, r.object) for r in scene.relationships] == [(0, 0)]
    assert drops["object: relationship endpoint not in objects.json"] == 1


def test_real_vocabulary_predicates_are_normalised(tmp_path: Path) -> None:
    assert REAL_VOCAB.is_file(), f"{REAL_VOCAB} missing: the shared reference data is required"
    vocab = json.loads(REAL_VOCAB.read_text())
    preds = [
        p
        for p in ("next to", "in front of", "on top of", "on side of", "attached to")
        if p in vocab["pred_name_to_idx"]
    ]
    objs = [n for n in vocab["object_idx_to_name"][1:6]]
    attrs = vocab["attribute_idx_to_name"][:3]
    assert len(preds) >= 3 and len(objs) == 5
    # the real vocabulary keeps attributes as written: "white" and "white " are two
    assert {"white", "white ", "black", "black "} <= set(vocab["attribute_name_to_idx"])
    # sg2im lowercases and strips predicates (inner spaces stay); names stay as written
    messy = [" " + p.upper() + " " for p in preds]
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 500, 400)],
        objects={1: [obj(i, [" " + n.title(), n]) for i, n in enumerate(objs)]},
        attributes={1: [{**obj(0), "attributes": [a.upper() for a in attrs] + attrs}]},
        relationships={1: [rel(i, p, obj(i % 5), obj((i + 1) % 5)) for i, p in enumerate(messy)]},
    )
    (scene,), drops = read(root)
    assert [o.names[1] for o in scene.objects] == objs
    assert all(o.name not in vocab["object_name_to_idx"] for o in scene.objects)
    assert [r.predicate for r in scene.relationships] == preds
    assert scene.objects[0].attributes == [a.upper() for a in attrs] + attrs
    assert all(r.predicate in vocab["pred_name_to_idx"] for r in scene.relationships)
    assert drops.as_dict() == {}


# --------------------------------------------------------------------------------------------
# duplicates and unknown images


def test_repeated_object_ids_are_kept_and_relationships_use_the_last(tmp_path: Path) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100)],
        objects={1: [obj(1, "man"), obj(2, "dog"), obj(1, "woman", box=(0, 0, 1, 1))]},
        relationships={1: [rel(1, "with", obj(1), obj(2))]},
        attributes={1: [{**obj(1), "attributes": ["tall"]}]},
    )
    (scene,), drops = read(root)
    assert names(scene) == ["man", "dog", "woman"]
    assert [o.attributes for o in scene.objects] == [["tall"], [], ["tall"]]
    assert [(r.subject, r.object) for r in scene.relationships] == [(2, 1)]
    assert drops.as_dict() == {"object: object_id repeated within an image in objects.json": 1}


def test_images_unknown_to_image_data_are_counted(tmp_path: Path) -> None:
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100)],
        objects={1: [obj(1)], 2: [obj(2)], 3: [obj(3)]},
        attributes={4: [{**obj(4), "attributes": ["red"]}]},
        relationships={2: [rel(1, "on", obj(2), obj(2))]},
    )
    scenes, drops = read(root)
    assert [s.image_id for s in scenes] == ["1"]
    assert drops.as_dict() == {
        "image: in attributes.json but not in image_data.json": 1,
        "image: in objects.json but not in image_data.json": 2,
        "image: in relationships.json but not in image_data.json": 1,
    }


def test_duplicate_image_entries_keep_the_last_as_sg2im(tmp_path: Path) -> None:
    root = write_vg(tmp_path / "vg", images=[(1, 100, 100), (2, 300, 300)])
    data = json.loads((root / "image_data.json").read_text())
    (root / "image_data.json").write_text(json.dumps(data + [dict(data[0], width=500)]))
    (root / "objects.json").write_text(
        json.dumps(
            [{"image_id": 1, "objects": [obj(1, "a")]}, {"image_id": 2, "objects": []},
             {"image_id": 1, "objects": [obj(2, "b")]}]
        )
    )
    s1, s2 = read(root)[0]
    assert (s1.image_id, s1.width) == ("1", 500)  # first position, last size (sg2im's dict)
    assert names(s1) == ["b"] and s1.file_order == {"objects.json": 2}
    assert s2.file_order == {"objects.json": 1}
    assert read(root)[1].as_dict() == {
        "image: listed again in image_data.json (the last entry is used)": 1,
        "image: listed again in objects.json (the last entry is used)": 1,
    }


# --------------------------------------------------------------------------------------------
# damage


def test_truncated_json_names_file_and_position(tmp_path: Path) -> None:
    root = write_vg(tmp_path / "vg", images=[(1, 100, 100)], objects={1: [obj(1), obj(2)]})
    text = (root / "objects.json").read_text()
    (root / "objects.json").write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"objects\.json: malformed JSON at line 1, column \d+"):
        read(root)


def test_wrong_top_level_shape(tmp_path: Path) -> None:
    root = write_vg(tmp_path / "vg", images=[(1, 100, 100)])
    (root / "attributes.json").write_text(json.dumps({"image_id": 1, "attributes": []}))
    with pytest.raises(DataError, match=r"attributes\.json: expected a JSON list"):
        read(root)


@pytest.mark.parametrize(
    ("file", "entry", "pattern"),
    [
        ("objects.json", {"image_id": 1}, r"objects\.json: image 1: field 'objects' is missing"),
        (
            "relationships.json",
            {"image_id": 1, "relationships": {}},
            r"relationships\.json: image 1: field 'relationships' is dict",
        ),
        ("objects.json", {"objects": []}, r"objects\.json: entry 0 has no image_id"),
        ("objects.json", {"image_id": [1], "objects": []}, r"objects\.json: entry 0: image_id"),
        ("objects.json", 17, r"objects\.json: entry 0 is int"),
        (
            "image_data.json",
            {"image_id": 1, "width": 100},
            r"image_data\.json: image 1: field 'height'",
        ),
        (
            "image_data.json",
            {"image_id": 1, "width": "100", "height": 5},
            r"image_data\.json: image 1: field 'width'",
        ),
    ],
)
def test_wrongly_shaped_image_entries_raise(
    tmp_path: Path, file: str, entry: Any, pattern: str
) -> None:
    root = write_vg(tmp_path / "vg", images=[(1, 100, 100)])
    (root / file).write_text(json.dumps([entry]))
    with pytest.raises(DataError, match=pattern):
        read(root)


def test_damaged_objects_are_counted_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    no_x = obj(2, "dog")
    del no_x["x"]
    root = write_vg(
        tmp_path / "vg",
        images=[(1, 100, 100)],
        objects={
            1: [
                obj(1, "man"),
                no_x,
                obj(3, "cat", box=(1, "2", 3, 4)),
                obj(4, "cup", box=(1, 2, None, 4)),
                {"x": 1, "y": 1, "w": 1, "h": 1, "names": ["nameless id"]},
                ["not", "an", "object"],
                obj(5, "tree", box=(-5, 0, 0, 2000)),  # odd but numeric: filters decide
            ]
        },
    )
    with caplog.at_level(logging.WARNING, logger="scene2img.data.sources.visual_genome"):
        (scene,), drops = read(root)
    assert names(scene) == ["man", "tree"]
    assert drops.as_dict() == {
        "object: bad box in objects.json": 3,
        "object: malformed entry in objects.json": 1,
        "object: no object_id in objects.json": 1,
    }
    # the first case of each kind says where it was
    assert "objects.json: image 1: object: bad box in objects.json" in caplog.text
    assert caplog.text.count("bad box") == 1
