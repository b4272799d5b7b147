"""Writer for Visual Genome 1.4: image_data/objects/attributes/relationships.json, the alias
files, VG_100K[_2]/ images and vg_splits.json, with the real files' quirks injected at small rates
(`_Quirks`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from scene2img.config import ToyworldParams
from scene2img.data.toyworld._io import encode_jpeg, mask_box, write_file, write_json
from scene2img.data.toyworld.classes import PART_SYNSETS, STUFF, THINGS
from scene2img.data.toyworld.drawing import Box
from scene2img.data.toyworld.scene import Scene, Thing, overlap_ratio

_VG_OBJECT_ALIASES = {
    "car": ("automobile", "auto"),
    "plane": ("airplane", "aeroplane"),
    "person": ("persons", "human"),
    "ball": ("sports ball",),
    "boat": ("sailboat", "boats"),
    "bench": ("benches",),
    "bus": ("buses",),
    "house": ("houses",),
    "tree": ("trees",),
    "mountain": ("mountains",),
    "wheel": ("wheels",),
    "window": ("windows",),
}
_VG_PREDICATE_ALIASES = {
    "left of": ("to the left of",),
    "right of": ("to the right of",),
    "in front of": ("infront of", "in front"),
    "near": ("close to", "nearby"),
    "below": ("beneath", "underneath"),
    "has": ("has a",),
}
_VG_PREDICATE_SYNSETS = {
    "on": "along.r.01",
    "standing on": "stand.v.01",
    "parked on": "park.v.01",
    "in": "in.r.01",
    "has": "have.v.01",
    "near": "near.r.01",
    "above": "above.r.01",
    "below": "below.r.01",
    "left of": "left.r.01",
    "right of": "right.r.01",
    "in front of": "in_front_of.r.01",
    "behind": "behind.r.01",
}
_VG_QUIRK_RATES = {
    "name_key": 0.04,  # an object with "name" (a string) instead of "names"
    "case": 0.04,  # "  Car ": case and surrounding spaces
    "alias": 0.05,  # a name from object_alias.txt instead of the canonical one
    "pred_case": 0.04,  # "Left Of "
    "pred_alias": 0.05,  # "to the left of"
    "attr_case": 0.03,  # "White " (the real vocabulary even has "white " as its own attribute)
    "missing": 0.04,  # a part only in relationships.json, not in objects.json
}


class _Quirks:
    """Real-file quirks at small rates, decided by their own seeded stream.

    Each quirk also fires on its first chance, so even a tiny generation contains every kind.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.fired: dict[str, int] = dict.fromkeys(_VG_QUIRK_RATES, 0)

    def __call__(self, name: str) -> bool:
        hit = bool(self.rng.random() < _VG_QUIRK_RATES[name]) or not self.fired[name]
        self.fired[name] += hit
        return hit

    def recase(self, text: str) -> str:
        styles = (text.capitalize(), text.title(), text.upper())
        pads = (" ", "  ", "")
        styled = styles[int(self.rng.integers(len(styles)))]
        return pads[int(self.rng.integers(2))] + styled + pads[int(self.rng.integers(3))] + " "


@dataclass
class _VGObject:
    object_id: int
    name: str  # as written (quirks applied)
    synset: str
    box: Box
    attributes: list[str] = field(default_factory=list)
    listed: bool = True  # in objects.json (False: only inside relationships, a real VG quirk)

    def as_dict(self, name_key: str = "names") -> dict[str, Any]:
        x, y, w, h = self.box
        d: dict[str, Any] = {
            "object_id": self.object_id,
            "x": x,
            "y": y,
            "w": w,
            "h": h,
            "synsets": [self.synset],
        }
        d[name_key] = self.name if name_key == "name" else [self.name]
        return d


class VGWriter:
    """Objects (stuff, things and their parts), their attributes, and relationships that hold in
    the picture: each thing's support, its neighbours in its row, and a few more geometric pairs."""

    def __init__(self, root: Path, params: ToyworldParams) -> None:
        self.root = root
        self.n_images = params.images
        self.seed = params.seed
        self.quirks = _Quirks(np.random.default_rng([params.seed, 0x56_47]))  # "VG"
        self.image_data: list[dict[str, Any]] = []
        self.objects: list[dict[str, Any]] = []
        self.attributes: list[dict[str, Any]] = []
        self.relationships: list[dict[str, Any]] = []
        self.splits: dict[str, list[int]] = {"train": [], "val": [], "test": []}
        self.next_object = 1
        self.next_relationship = 1
        self.n_objects = 0
        self.n_relationships = 0

    def add(self, index: int, split: str, scene: Scene) -> None:
        image_id = index + 1
        # like VG_100K_2, the later part of the id range lives in a second folder
        folder = "VG_100K_2" if index >= math.ceil(self.n_images * 0.75) else "VG_100K"
        write_file(self.root / folder / f"{image_id}.jpg", encode_jpeg(scene.image))
        height, width = scene.owner.shape
        self.image_data.append(
            {
                "image_id": image_id,
                "width": width,
                "height": height,
                "coco_id": None,
                "flickr_id": None,
                "url": f"https://cs.stanford.edu/people/rak248/{folder}/{image_id}.jpg",
            }
        )
        self.splits[split].append(image_id)

        # relation choices come from their own stream, so the drawing is the same in every format
        rng = np.random.default_rng([self.seed, index, 0x56_47])
        stuff_objs = self._stuff_objects(scene, rng)
        thing_objs = [
            self._new(THINGS[t.cls].vg, THINGS[t.cls].synset, t.box, self._thing_attributes(t, rng))
            for t in scene.things
        ]
        triples: list[tuple[_VGObject, str, _VGObject]] = []
        part_objs: list[_VGObject] = []
        for t, obj in zip(scene.things, thing_objs, strict=True):
            if t.support in stuff_objs:
                triples.append((obj, self._support_predicate(t, rng), stuff_objs[t.support]))
            if rng.random() < 0.6:
                for name, box in t.parts:
                    part = self._new(name, PART_SYNSETS[name], box, [])
                    part.listed = not self.quirks("missing")
                    part_objs.append(part)
                    triples.append((obj, "has", part))
        triples += self._row_order(scene, thing_objs, rng)
        triples += self._pair_relations(scene, thing_objs, rng)
        if "sky" in stuff_objs and rng.random() < 0.3:
            ground = next((o for n, o in stuff_objs.items() if n not in ("sky", "mountain")), None)
            if ground is not None:
                triples.append((stuff_objs["sky"], "above", ground))

        all_objs = [*stuff_objs.values(), *thing_objs, *part_objs]
        listed = [o for o in all_objs if o.listed]
        self.objects.append(
            {
                "image_id": image_id,
                "objects": [
                    o.as_dict("name" if self.quirks("name_key") else "names") for o in listed
                ],
            }
        )
        self.attributes.append(
            {
                "image_id": image_id,
                "attributes": [
                    {**o.as_dict(), **({"attributes": o.attributes} if o.attributes else {})}
                    for o in listed
                ],
            }
        )
        self.relationships.append(
            {
                "image_id": image_id,
                "relationships": [self._relationship(s, p, o) for s, p, o in triples],
            }
        )
        self.n_objects += len(all_objs)
        self.n_relationships += len(triples)

    def _new(self, name: str, synset: str, box: Box, attributes: list[str]) -> _VGObject:
        if name in _VG_OBJECT_ALIASES and self.quirks("alias"):
            options = _VG_OBJECT_ALIASES[name]
            name = options[int(self.quirks.rng.integers(len(options)))]
        if self.quirks("case"):
            name = self.quirks.recase(name)
        obj = _VGObject(self.next_object, name, synset, box, attributes)
        self.next_object += 1
        return obj

    def _stuff_objects(self, scene: Scene, rng: np.random.Generator) -> dict[str, _VGObject]:
        attrs = {"sky": "blue", "grass": "green", "sea": "blue", "sand": "tan", "road": "gray"}
        out = {}
        for name, layer in scene.stuff.items():
            box = mask_box(scene.owner == layer)
            if box is None:
                continue
            a = [attrs[name]] if name in attrs and rng.random() < 0.5 else []
            out[name] = self._new(STUFF[name].vg, STUFF[name].synset, box, a)
        return out

    def _thing_attributes(self, t: Thing, rng: np.random.Generator) -> list[str]:
        colour = self.quirks.recase(t.colour) if self.quirks("attr_case") else t.colour
        return [colour, t.size] if rng.random() < 0.7 else [colour]

    @staticmethod
    def _support_predicate(t: Thing, rng: np.random.Generator) -> str:
        if t.support in ("sea", "sky"):
            return "in"
        if t.cls == "person" and rng.random() < 0.3:
            return "standing on"
        if t.cls in ("car", "bus") and t.support == "road" and rng.random() < 0.3:
            return "parked on"
        return "on"

    @staticmethod
    def _row_order(
        scene: Scene, objs: list[_VGObject], rng: np.random.Generator
    ) -> list[tuple[_VGObject, str, _VGObject]]:
        """Neighbours in a row, left to right: "a left of b" or, as often, "b right of a"."""
        out = []
        for band in dict.fromkeys(t.support for t in scene.things if t.support != "sky"):
            row = sorted((k for k, t in enumerate(scene.things) if t.support == band),
                         key=lambda k: scene.things[k].box[0])
            for a, b in pairwise(row):
                out.append((objs[a], "left of", objs[b]) if rng.random() < 0.5
                           else (objs[b], "right of", objs[a]))
        return out

    @staticmethod
    def _pair_relations(
        scene: Scene, objs: list[_VGObject], rng: np.random.Generator
    ) -> list[tuple[_VGObject, str, _VGObject]]:
        """Geometric relations between a few more pairs of objects, each true in the picture."""
        pairs = [(i, j) for i in range(len(objs)) for j in range(len(objs)) if i < j]
        rng.shuffle(pairs)
        out = []
        width = scene.owner.shape[1]
        for i, j in pairs[:2]:
            if rng.random() < 0.5:
                i, j = j, i
            a, b = scene.things[i].box, scene.things[j].box
            if overlap_ratio(a, b) > 0.03:
                # things are drawn in list order: the later one is nearer and hides the other
                pred = "in front of" if i > j else "behind"
            elif a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0]:
                gap = max(b[0] - (a[0] + a[2]), a[0] - (b[0] + b[2]))
                if gap < 0.06 * width and rng.random() < 0.4:
                    pred = "near"
                else:
                    pred = "left of" if a[0] + a[2] <= b[0] else "right of"
            elif a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]:
                pred = "above" if a[1] + a[3] <= b[1] else "below"
            else:
                pred = "near"  # boxes touch without overlapping much
            out.append((objs[i], pred, objs[j]))
        return out

    def _relationship(self, s: _VGObject, pred: str, o: _VGObject) -> dict[str, Any]:
        synset = _VG_PREDICATE_SYNSETS[pred]
        if pred in _VG_PREDICATE_ALIASES and self.quirks("pred_alias"):
            options = _VG_PREDICATE_ALIASES[pred]
            pred = options[int(self.quirks.rng.integers(len(options)))]
        if self.quirks("pred_case"):
            pred = self.quirks.recase(pred)
        rel = {
            "relationship_id": self.next_relationship,
            "predicate": pred,
            "synsets": [synset],
            # real VG writes the endpoints with "name" (a string)
            "subject": s.as_dict("name"),
            "object": o.as_dict("name"),
        }
        self.next_relationship += 1
        return rel

    def finish(self) -> dict[str, int]:
        write_json(self.root / "image_data.json", self.image_data)
        write_json(self.root / "objects.json", self.objects)
        write_json(self.root / "attributes.json", self.attributes)
        write_json(self.root / "relationships.json", self.relationships)
        # keys in the real file's order: train, test, val
        splits = {k: self.splits[k] for k in ("train", "test", "val")}
        write_file(self.root / "vg_splits.json", json.dumps(splits))
        write_file(
            self.root / "object_alias.txt",
            "".join(",".join((k, *v)) + "\n" for k, v in _VG_OBJECT_ALIASES.items()),
        )
        write_file(
            self.root / "relationship_alias.txt",
            "".join(",".join((k, *v)) + "\n" for k, v in _VG_PREDICATE_ALIASES.items()),
        )
        return {
            "vg_objects": self.n_objects,
            "relationships": self.n_relationships,
            **{f"quirk_{k}": v for k, v in self.quirks.fired.items()},
        }
