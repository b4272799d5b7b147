"""Test oracle: sg2im's Visual Genome preprocessing, restated in plain Python.

Written from a reading of google/sg2im `scripts/preprocess_vg.py` (its functions `main`,
`remove_small_images`, `load_aliases`, `create_object_vocab`, `create_attribute_vocab`,
`filter_objects`, `create_rel_vocab` and `encode_graphs`), not copied from it, and independent of
scene2img's code: it reads the raw files the way sg2im does and says which images each split
keeps, with which objects, relationships and attributes, and the vocabulary.

The one liberty: sg2im counts an object's names (and a record's attributes) through a Python set,
whose iteration order varies between runs; here they are taken in list order. Inputs on which
sg2im crashes (an object without `names`, an image of the split file missing from a file) are not
inputs this oracle accepts either.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# sg2im's argparse defaults
DEFAULTS = {
    "min_image_size": 200,
    "min_object_instances": 2000,
    "min_attribute_instances": 2000,
    "min_object_size": 32,
    "min_objects_per_image": 3,
    "max_objects_per_image": 30,
    "max_attributes_per_image": 30,
    "min_relationship_instances": 500,
    "min_relationships_per_image": 1,
    "max_relationships_per_image": 30,
}


@dataclass
class KeptImage:
    image_id: int
    objects: list[str]  # names, one per node
    boxes: list[list[float]]  # as annotated: x, y, w, h in pixels
    relationships: list[tuple[int, str, int]]  # (subject node, predicate, object node)
    attributes: list[list[str]]  # per node, in the order sg2im writes them


def _load(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def _alias_table(path: Path) -> dict[str, str]:
    """Every comma-separated entry of a line (stripped) stands for the line's first entry."""
    table: dict[str, str] = {}
    with open(path) as f:
        for line in f:
            entries = [entry.strip() for entry in line.split(",")]
            for entry in entries:
                table[entry] = entries[0]
    return table


def _frequent(counter: Counter, minimum: int) -> list[str]:
    return [name for name, n in counter.most_common() if n >= minimum]


def sg2im_preprocess_vg(
    root: Path, splits: dict[str, list[int]], **args: int
) -> tuple[dict, dict[str, list[KeptImage]]]:
    """(vocab as sg2im writes it, kept images per split in the split file's order)."""
    a = {**DEFAULTS, **args}
    sizes = {}
    for image in _load(root / "image_data.json"):
        sizes[image["image_id"]] = (image["width"], image["height"])

    # images: the split file's, without those with a side under min_image_size
    splits = {name: [i for i in ids if min(sizes[i]) >= a["min_image_size"]]
              for name, ids in splits.items()}
    train = set(splits["train"])
    anywhere = {i for ids in splits.values() for i in ids}
    object_alias = _alias_table(root / "object_alias.txt")
    predicate_alias = _alias_table(root / "relationship_alias.txt")

    # object vocabulary: each name an object of a train image carries counts once for it
    objects_file = _load(root / "objects.json")
    name_counter: Counter = Counter()
    for entry in objects_file:
        if entry["image_id"] in train:
            for obj in entry["objects"]:
                aliased = [object_alias.get(n, n) for n in obj["names"]]
                name_counter.update(list(dict.fromkeys(aliased)))
    object_names = ["__image__", *_frequent(name_counter, a["min_object_instances"])]
    object_index = {name: i for i, name in enumerate(object_names)}

    # attribute vocabulary: each attribute record of a train image counts its attributes once
    attributes_file = _load(root / "attributes.json")
    attribute_counter: Counter = Counter()
    for entry in attributes_file:
        if entry["image_id"] in train:
            for record in entry["attributes"]:
                if "attributes" in record:
                    attribute_counter.update(list(dict.fromkeys(record["attributes"])))
    attribute_names = _frequent(attribute_counter, a["min_attribute_instances"])
    attribute_index = {name: i for i, name in enumerate(attribute_names)}

    # objects: one record per object_id, from the first of its names in the vocabulary, if its
    # annotated box is large enough; a later passing object with the same id replaces it
    kept_object: dict[int, tuple[str, list[float]]] = {}
    for entry in objects_file:
        if entry["image_id"] not in anywhere:
            continue
        for obj in entry["objects"]:
            name = None
            for n in obj["names"]:
                if object_alias.get(n, n) in object_index:
                    name = object_alias.get(n, n)
                    break
            big = obj["w"] >= a["min_object_size"] and obj["h"] >= a["min_object_size"]
            if name is not None and big:
                kept_object[obj["object_id"]] = (name, [obj["x"], obj["y"], obj["w"], obj["h"]])

    # predicate vocabulary: train relationships between two kept objects, in first-seen order;
    # only these get their predicate cleaned (in place, as sg2im does)
    relationships_file = _load(root / "relationships.json")
    predicate_counts: dict[str, int] = {}
    for entry in relationships_file:
        if entry["image_id"] not in train:
            continue
        for rel in entry["relationships"]:
            if (rel["subject"]["object_id"] in kept_object
                    and rel["object"]["object_id"] in kept_object):
                cleaned = rel["predicate"].lower().strip()
                cleaned = predicate_alias.get(cleaned, cleaned)
                rel["predicate"] = cleaned
                predicate_counts[cleaned] = predicate_counts.get(cleaned, 0) + 1
    predicate_names = ["__in_image__"] + [
        p for p, n in predicate_counts.items() if n >= a["min_relationship_instances"]]
    predicate_index = {name: i for i, name in enumerate(predicate_names)}

    # the graphs, from each file's (last) entry for the image
    objects_of = {e["image_id"]: e["objects"] for e in objects_file}
    relationships_of = {e["image_id"]: e["relationships"] for e in relationships_file}
    attributes_of = {e["image_id"]: e["attributes"] for e in attributes_file}
    kept: dict[str, list[KeptImage]] = {}
    for split, ids in splits.items():
        kept[split] = []
        for image_id in ids:
            nodes: list[int] = []
            node_of: dict[int, int] = {}
            for obj in objects_of[image_id]:
                if obj["object_id"] in kept_object:
                    node_of[obj["object_id"]] = len(nodes)
                    nodes.append(obj["object_id"])
            if not a["min_objects_per_image"] <= len(nodes) <= a["max_objects_per_image"]:
                continue
            edges = []
            for rel in relationships_of[image_id]:
                s, o = rel["subject"]["object_id"], rel["object"]["object_id"]
                if rel["predicate"] in predicate_index and s in node_of and o in node_of:
                    edges.append((node_of[s], rel["predicate"], node_of[o]))
            if not (a["min_relationships_per_image"] <= len(edges)
                    <= a["max_relationships_per_image"]):
                continue
            tags: dict[int, list[str] | None] = {}
            for record in attributes_of[image_id]:
                tags[record["object_id"]] = record.get("attributes")
            node_attributes = []
            for oid in nodes:
                chosen: list[str] = []
                for tag in tags.get(oid) or []:
                    if tag in attribute_index:
                        chosen.append(tag)
                    if len(chosen) >= a["max_attributes_per_image"]:
                        break
                node_attributes.append(chosen)
            kept[split].append(KeptImage(
                image_id=image_id,
                objects=[kept_object[oid][0] for oid in nodes],
                boxes=[kept_object[oid][1] for oid in nodes],
                relationships=edges,
                attributes=node_attributes,
            ))

    vocab = {
        "object_idx_to_name": object_names,
        "object_name_to_idx": object_index,
        "pred_idx_to_name": predicate_names,
        "pred_name_to_idx": predicate_index,
        "attribute_idx_to_name": attribute_names,
        "attribute_name_to_idx": attribute_index,
    }
    return vocab, kept
