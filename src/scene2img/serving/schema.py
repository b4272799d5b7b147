"""The scene-graph JSON format (version 1), shared by `scene2img generate`, the edit state and
the served MLflow model, and its validation.

    {
      "version": 1,
      "objects": [
        {"name": "car", "attributes": ["red"]},
        {"name": "tree", "box": [0.6, 0.3, 0.3, 0.5]},
        {"name": "sky"}
      ],
      "relationships": [
        {"subject": 0, "predicate": "left of", "object": 1},
        {"subject": 2, "predicate": "above", "object": 0}
      ]
    }

`objects[i].name` is a class of the model's vocabulary; `attributes` (optional) are attribute
names (objects without them get attributes sampled from the training set's per-class statistics);
`box` (optional) pins the object's place as normalised `[x, y, w, h]`; relationships refer to
objects by position. The `__image__` object and its `__in_image__` triples are added by the
model, not written by users.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from scene2img.data.vocab import IMAGE_OBJECT, IN_IMAGE, Vocab
from scene2img.errors import SceneGraphError

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 64 * 1024  # one scene graph; a larger request is refused before parsing


@dataclass
class SceneObject:
    name: str
    attributes: list[str] | None = None  # None: sample from per-class statistics
    box: tuple[float, float, float, float] | None = None  # pinned normalised x, y, w, h


@dataclass
class SceneGraph:
    objects: list[SceneObject]
    relationships: list[tuple[int, str, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        objs = []
        for o in self.objects:
            d: dict[str, Any] = {"name": o.name}
            if o.attributes is not None:
                d["attributes"] = list(o.attributes)
            if o.box is not None:
                d["box"] = list(o.box)
            objs.append(d)
        rels = [{"subject": s, "predicate": p, "object": o} for s, p, o in self.relationships]
        return {"version": SCHEMA_VERSION, "objects": objs, "relationships": rels}


def _closest(name: str, known: list[str]) -> str:
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    return f"; closest: {', '.join(repr(n) for n in near)}" if near else ""


def parse_scene_graph(
    data: str | bytes | dict[str, Any],  # JSON text or the parsed object
    vocab: Vocab,  # the model's vocabulary
    max_objects: int,  # the model's maximum, __image__ included
    where: str = "scene graph",  # named in error messages (a file, "request 3", ...)
) -> SceneGraph:
    """Parse and validate one scene graph; errors name the field and say what is known."""
    if isinstance(data, (str, bytes)):
        if len(data) > MAX_PAYLOAD_BYTES:
            raise SceneGraphError(f"{where}: {len(data)} bytes, more than the "
                                  f"{MAX_PAYLOAD_BYTES} accepted for one scene graph")
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SceneGraphError(f"{where}: malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SceneGraphError(f"{where}: expected a JSON object with 'objects', got "
                              f"{type(data).__name__}")
    version = data.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise SceneGraphError(f"{where}: version {version!r} not supported (this is version "
                              f"{SCHEMA_VERSION})")
    unknown_keys = set(data) - {"version", "objects", "relationships"}
    if unknown_keys:
        raise SceneGraphError(f"{where}: unknown field(s) {sorted(unknown_keys)}; expected "
                              "version, objects, relationships")
    raw_objects = data.get("objects")
    if not isinstance(raw_objects, list) or not raw_objects:
        raise SceneGraphError(f"{where}: 'objects' must be a non-empty list of objects")
    if len(raw_objects) + 1 > max_objects:
        raise SceneGraphError(f"{where}: {len(raw_objects)} objects, the model takes at most "
                              f"{max_objects - 1}")
    obj_names = [n for n in vocab.object_name_to_idx if n != IMAGE_OBJECT]
    attr_names = list(vocab.attribute_name_to_idx)
    objects = []
    for i, raw in enumerate(raw_objects):
        at = f"{where}: objects[{i}]"
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise SceneGraphError(f"{at}: expected {{'name': CLASS, ...}}")
        extra = set(raw) - {"name", "attributes", "box"}
        if extra:
            raise SceneGraphError(f"{at}: unknown field(s) {sorted(extra)}")
        name = raw["name"].strip().lower()
        if name not in vocab.object_name_to_idx or name == IMAGE_OBJECT:
            raise SceneGraphError(f"{at}: unknown class {raw['name']!r}{_closest(name, obj_names)}")
        attrs = raw.get("attributes")
        if attrs is not None:
            if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
                raise SceneGraphError(f"{at}.attributes: expected a list of attribute names")
            attrs = [a.strip().lower() for a in attrs]
            for a in attrs:
                if a not in vocab.attribute_name_to_idx:
                    known = _closest(a, attr_names) if attr_names else \
                        "; this model has no attributes"
                    raise SceneGraphError(f"{at}.attributes: unknown attribute {a!r}{known}")
        box = raw.get("box")
        if box is not None:
            if (not isinstance(box, list) or len(box) != 4
                    or not all(isinstance(v, (int, float)) for v in box)):
                raise SceneGraphError(f"{at}.box: expected [x, y, w, h] numbers in [0, 1]")
            x, y, w, h = (float(v) for v in box)
            if not (0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1):
                raise SceneGraphError(f"{at}.box: {box} is outside the unit square or empty")
            box = (x, y, w, h)
        objects.append(SceneObject(name, attrs, box))

    raw_rels = data.get("relationships", [])
    if not isinstance(raw_rels, list):
        raise SceneGraphError(f"{where}: 'relationships' must be a list")
    preds = [p for p in vocab.pred_name_to_idx if p != IN_IMAGE]
    relationships = []
    for i, raw in enumerate(raw_rels):
        at = f"{where}: relationships[{i}]"
        if not isinstance(raw, dict) or set(raw) != {"subject", "predicate", "object"}:
            raise SceneGraphError(f"{at}: expected {{'subject': i, 'predicate': P, 'object': j}}")
        s, p, o = raw["subject"], raw["predicate"], raw["object"]
        for key, pos in (("subject", s), ("object", o)):
            if not isinstance(pos, int) or isinstance(pos, bool) or not 0 <= pos < len(objects):
                raise SceneGraphError(f"{at}.{key}: {pos!r} is not an object position "
                                      f"(0..{len(objects) - 1})")
        if not isinstance(p, str) or p.strip().lower() not in vocab.pred_name_to_idx \
                or p.strip().lower() == IN_IMAGE:
            raise SceneGraphError(f"{at}.predicate: unknown predicate {p!r}"
                                  f"{_closest(str(p).strip().lower(), preds)}")
        relationships.append((s, p.strip().lower(), o))
    return SceneGraph(objects, relationships)
