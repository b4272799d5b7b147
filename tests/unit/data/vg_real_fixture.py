"""A small Visual Genome 1.4 tree in the real files' format, with real VG names and their quirks.

Image ids are real ones, taken in order from each split of the shared `vg_splits.json`; object,
attribute and predicate names come from the shared sg2im vocabulary (weighted so that the common
ones pass the count thresholds and the tail does not), plus real VG names that are not in it.
Quirks, at rates high enough for a hundred images to show each many times:

- object names as written in VG: "Man", "man ", " man"; alias forms ("men", "tshirt"); several
  names with a non-vocabulary one first (["guy", "man"]); names not in the vocabulary; `synsets`
  and `merged_object_ids` fields;
- boxes under 32 px on a side, partly outside the image, or wholly outside it;
- an object_id listed twice in an image (a second, different box); the same annotation twice
  under two ids;
- attribute records: as-written variants ("White", "white "), repeats, records without
  `attributes`, a record for an object that objects.json lacks, the same object twice;
- relationships: predicates in any case and spacing ("ON", "next  to ", "Next To"), alias forms,
  endpoints missing from objects.json (with `name` or `names`), self-relationships, repeats;
- alias files with padded entries and a blank line;
- images that fail each of sg2im's filters (`CRAFTED`, by intent).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.conftest import SHARED_DATA

REAL_VOCAB = SHARED_DATA / "visual_genome" / "vocab_sg2im_attrlostgan.json"
REAL_SPLITS = SHARED_DATA / "visual_genome" / "vg_splits.json"

# Real VG names outside sg2im's vocabulary
RARE_NAMES = ["guy", "gentleman", "frisbee thrower", "scaffolding", "graffiti", "jeans", "shorts",
              "bicycle", "airplane", "persons", "kid", "lamp post", "tail light", "tennis court"]
OBJECT_ALIAS = (
    "man,men ,gentlemen\n"
    "shirt, t-shirt,tshirt , tee shirt\n"
    "\n"
    "pant,pants\n"
    "leaf,leaves\n"
    "tree,trees\n"
)
PREDICATE_ALIAS = (
    "on,upon , onto\n"
    "next to,next too, nextto\n"
    "on top of,ontop of,on-top of\n"
    "in front of, infront of,in-front of\n"
    "wearing,is wearing,wearing a\n"
)
# alias forms written in the data, by canonical name
OBJECT_ALIAS_FORMS = {"man": ["men ", "gentlemen"], "shirt": ["tshirt", "t-shirt"],
                      "pant": ["pants"], "leaf": ["leaves"], "tree": ["trees"]}
PREDICATE_ALIAS_FORMS = {"on": ["upon", "onto"], "next to": ["next too", "nextto"], "on top of": ["ontop of"],
                         "in front of": ["infront of"], "wearing": ["is wearing", "wearing a"]}

# sg2im's defaults, with count thresholds scaled to a hundred-odd images
THRESHOLDS = {"min_object_instances": 12, "min_attribute_instances": 10,
              "min_relationship_instances": 5}

# crafted images (split, intent): the image id is the next real id of that split
CRAFTED = [
    ("train", "small image"),
    ("train", "too few objects"),
    ("train", "too many objects"),
    ("train", "no relationship left"),
    ("train", "too many relationships"),
    ("train", "endpoints only in relationships.json"),
    ("val", "predicates only in capitals"),
    ("test", "predicates only in alias forms"),
    ("train", "three objects through a repeated id"),
    ("train", "boxes partly outside the image"),
    ("test", "predicates as written in the vocabulary"),
]


def _recase(name: str, rng: np.random.Generator) -> str:
    forms = [name.title(), name.upper(), name + " ", " " + name, name.capitalize()]
    return forms[int(rng.integers(len(forms)))]


class _Writer:
    def __init__(self, rng: np.random.Generator) -> None:
        vocab = json.loads(REAL_VOCAB.read_text())
        self.rng = rng
        self.objects = vocab["object_idx_to_name"][1:61]
        self.attributes = [a for a in vocab["attribute_idx_to_name"][:30]]
        self.predicates = vocab["pred_idx_to_name"][1:]
        self.next_object = 1_058_500
        self.next_rel = 3_186_000

    def zipf(self, names: list[str], power: float = 1.1) -> str:
        w = 1.0 / (np.arange(len(names)) + 1.0) ** power
        return names[int(self.rng.choice(len(names), p=w / w.sum()))]

    def object_names(self) -> list[str]:
        r = self.rng.random()
        name = self.zipf(self.objects)
        if r < 0.06:
            return [_recase(name, self.rng)]
        if r < 0.10 and name in OBJECT_ALIAS_FORMS:
            return [str(self.rng.choice(OBJECT_ALIAS_FORMS[name]))]
        if r < 0.14:
            return [str(self.rng.choice(RARE_NAMES)), name]  # the vocabulary name second
        if r < 0.16:
            return [str(self.rng.choice(RARE_NAMES))]
        if r < 0.19:
            return [name, self.zipf(self.objects)]
        return [name]

    def box(self, width: int, height: int) -> list[int]:
        r = self.rng.random()
        w = int(self.rng.integers(8, width // 2))
        h = int(self.rng.integers(8, height // 2))
        if r < 0.15:
            w = int(self.rng.integers(5, 32))  # too narrow
        x = int(self.rng.integers(0, width - w + 1))
        y = int(self.rng.integers(0, height - h + 1))
        if r > 0.95:
            x = -int(self.rng.integers(1, w))  # partly outside, left
        elif r > 0.92:
            y = height - h // 3  # partly outside, below
        elif r > 0.91:
            x = width + 5  # wholly outside
        return [x, y, w, h]

    def obj(self, names: list[str], box: list[int], oid: int | None = None) -> dict[str, Any]:
        if oid is None:
            oid, self.next_object = self.next_object, self.next_object + 1
        d: dict[str, Any] = {"object_id": oid, "x": box[0], "y": box[1], "w": box[2],
                             "h": box[3], "names": names,
                             "synsets": [f"{names[-1].strip().lower().replace(' ', '_')}.n.01"]}
        if self.rng.random() < 0.05:
            d["merged_object_ids"] = [oid + 7_000_000]
        return d

    def endpoint(self, d: dict[str, Any]) -> dict[str, Any]:
        """A relationship endpoint: the object's box and one name, as `name` or `names`."""
        e = {k: d[k] for k in ("object_id", "x", "y", "w", "h", "synsets")}
        if self.rng.random() < 0.8:
            e["name"] = d["names"][0]
        else:
            e["names"] = d["names"][:1]
        return e

    def predicate(self) -> str:
        p = self.zipf(self.predicates, 1.4)
        r = self.rng.random()
        if r < 0.08:
            return _recase(p, self.rng)
        if r < 0.11:
            return p.replace(" ", "  ") if " " in p else p + "  "
        if r < 0.16 and p in PREDICATE_ALIAS_FORMS:
            return str(self.rng.choice(PREDICATE_ALIAS_FORMS[p]))
        return p

    def attributes_for(self) -> list[str]:
        out = []
        for _ in range(int(self.rng.integers(1, 4))):
            a = self.zipf(self.attributes)
            out.append(_recase(a, self.rng) if self.rng.random() < 0.03 else a)
        if self.rng.random() < 0.05:
            out.append(out[0])  # a repeat
        return out

    def relationship(self, s: dict, p: str, o: dict) -> dict[str, Any]:
        rid, self.next_rel = self.next_rel, self.next_rel + 1
        return {"relationship_id": rid, "predicate": p, "synsets": ["along.r.01"],
                "subject": self.endpoint(s), "object": self.endpoint(o)}


def _random_image(w: _Writer, width: int, height: int) -> tuple[list, list, list]:
    """objects, attribute records, relationships of one ordinary image."""
    rng = w.rng
    n = int(rng.integers(0, 18)) if rng.random() < 0.9 else int(rng.integers(28, 36))
    objects = [w.obj(w.object_names(), w.box(width, height)) for _ in range(n)]
    if n and rng.random() < 0.15:  # the same object_id again, another box
        again = dict(objects[int(rng.integers(n))])
        again.update(zip("xywh", w.box(width, height), strict=True))
        objects.append(again)
    if n and rng.random() < 0.1:  # the same annotation twice, under a new id
        objects.append(w.obj(list(objects[0]["names"]), [objects[0][k] for k in "xywh"]))
    records = []
    for d in objects:
        rec = {k: d[k] for k in ("object_id", "x", "y", "w", "h", "names", "synsets")}
        if rng.random() < 0.6:
            rec["attributes"] = w.attributes_for()
        records.append(rec)
    if objects and rng.random() < 0.1:  # the same object described again: sg2im keeps the last
        records.append({**records[0], "attributes": w.attributes_for()})
    missing = []  # objects only in relationships.json
    rels = []
    for _ in range(int(rng.integers(1, n + 4))):
        if not objects:
            break
        s = objects[int(rng.integers(len(objects)))]
        o = objects[int(rng.integers(len(objects)))]
        if rng.random() < 0.08:
            o = w.obj([w.zipf(w.objects)], w.box(width, height))
            missing.append(o)
        rels.append(w.relationship(s, w.predicate(), o))
    if rels and rng.random() < 0.1:
        rels.append(dict(rels[0], relationship_id=rels[0]["relationship_id"] + 900_000))
    for o in missing[:1]:
        records.append({k: o[k] for k in ("object_id", "x", "y", "w", "h", "names")}
                       | {"attributes": w.attributes_for()})
    return objects, records, rels


def _crafted_image(w: _Writer, intent: str, width: int, height: int) -> tuple[list, list, list]:
    big = [10, 10, 100, 100]

    def objs(k: int, name: str = "man") -> list[dict]:
        return [w.obj([name], list(big)) for _ in range(k)]

    if intent == "small image":  # fine graph; the image is 199 px high
        o = objs(4)
        return o, [], [w.relationship(o[0], "on", o[1])]
    if intent == "too few objects":
        o = objs(2) + [w.obj(["man"], [0, 0, 31, 100]), w.obj(["gentleman"], big),
                       w.obj(["Man"], big)]
        return o, [], [w.relationship(o[0], "on", o[1])]
    if intent == "too many objects":
        o = objs(31)
        return o, [], [w.relationship(o[0], "on", o[1])]
    if intent == "no relationship left":
        o = objs(4) + [w.obj(["scaffolding pole"], big)]
        return o, [], [w.relationship(o[0], "on", o[4]), w.relationship(o[1], "zzz", o[2])]
    if intent == "too many relationships":
        o = objs(4)
        return o, [], [w.relationship(o[i % 4], "on", o[(i + 1) % 4]) for i in range(31)]
    if intent == "endpoints only in relationships.json":
        o = objs(3)
        ghost = w.obj(["man"], big)
        return o, [], [w.relationship(o[0], "on", ghost), w.relationship(ghost, "on", o[1])]
    if intent == "predicates only in capitals":
        o = objs(3)
        return o, [], [w.relationship(o[0], "ON", o[1]), w.relationship(o[1], " on", o[2])]
    if intent == "predicates only in alias forms":
        o = objs(3)
        return o, [], [w.relationship(o[0], "upon", o[1])]
    if intent == "three objects through a repeated id":
        o = objs(2)
        again = dict(o[0], w=50)
        return o + [again], [], [w.relationship(o[0], "on", o[1])]
    if intent == "boxes partly outside the image":
        o = [w.obj(["man"], [-60, 10, 80, 80]), w.obj(["man"], [width - 20, 0, 60, 60]),
             w.obj(["man"], big)]
        return o, [], [w.relationship(o[0], "on", o[1])]
    if intent == "predicates as written in the vocabulary":
        o = objs(3)
        return o, [], [w.relationship(o[0], "on", o[1])]
    raise ValueError(intent)


def write_fixture(root: Path, seed: int = 0, per_split: tuple[int, int, int] = (80, 20, 20),
                  jpegs: bool = False) -> dict[str, Any]:
    """Write the tree under `root`; return its split file (real ids, real order) and intents."""
    rng = np.random.default_rng(seed)
    w = _Writer(rng)
    real = json.loads(REAL_SPLITS.read_text())
    take = dict(zip(("train", "val", "test"), per_split, strict=True))
    crafted_n = {s: sum(1 for c, _ in CRAFTED if c == s) for s in take}
    ids = {s: list(real[s][: take[s] + crafted_n[s]]) for s in take}
    intents: dict[int, str] = {}
    for split, intent in CRAFTED:
        intents[ids[split].pop()] = intent
    order = sorted({*intents, *(i for v in ids.values() for i in v)})  # VG lists ids ascending
    image_data, objects, attributes, relationships = [], [], [], []
    for image_id in order:
        intent = intents.get(image_id)
        width, height = (800, 600) if rng.random() < 0.5 else (500, 375)
        if intent == "small image":
            width, height = 500, 199
        elif intent is None and rng.random() < 0.05:
            width, height = (150, 500) if rng.random() < 0.5 else (640, 200)  # 200 passes
        folder = "VG_100K" if image_id < 2_400_000 else "VG_100K_2"
        image_data.append({"width": width, "url": f"https://cs.stanford.edu/people/rak248/"
                           f"{folder}/{image_id}.jpg", "height": height, "image_id": image_id,
                           "coco_id": None, "flickr_id": int(rng.integers(10**8, 10**9))})
        if intent is None:
            objs, records, rels = _random_image(w, width, height)
        else:
            objs, records, rels = _crafted_image(w, intent, width, height)
        objects.append({"image_id": image_id, "objects": objs})
        attributes.append({"image_id": image_id, "attributes": records})
        relationships.append({"image_id": image_id, "relationships": rels})
        if jpegs:
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 12), (int(image_id % 255), 90, 30)).save(
                root / folder / f"{image_id}.jpg")
    root.mkdir(parents=True, exist_ok=True)
    for name, data in (("image_data.json", image_data), ("objects.json", objects),
                       ("attributes.json", attributes), ("relationships.json", relationships)):
        (root / name).write_text(json.dumps(data))
    (root / "object_alias.txt").write_text(OBJECT_ALIAS)
    (root / "relationship_alias.txt").write_text(PREDICATE_ALIAS)
    wanted = set(order)
    # the real file restricted to these images, in its own key and id order
    splits = {k: [i for i in v if i in wanted] for k, v in real.items()}
    return {"splits": splits, "intents": intents}
