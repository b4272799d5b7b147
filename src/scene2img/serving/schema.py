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

Every input is checked before any work, against the limits of `params.yaml: serve` (bytes,
nesting, objects, relationships, attributes, name lengths): a JSON object is measured as strictly
as JSON text, and measuring stops as soon as a limit is passed, so a refusal costs little whatever
the input's size. Errors are `SceneGraphError`s that name the file or record and the field.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scene2img.data.vocab import IMAGE_OBJECT, IN_IMAGE, Vocab
from scene2img.errors import SceneGraphError

if TYPE_CHECKING:
    from scene2img.config import ServeParams

SCHEMA_VERSION = 1
FORMAT_DEPTH = 4  # graph -> objects -> object -> box / attributes
MAX_SEED = 2**63 - 1  # seeds are non-negative signed 64-bit integers (the served model's `long`)
_EXACT_FLOAT = 2**53  # integers above this may have been rounded on their way through a float


@functools.lru_cache(maxsize=1)
def default_limits() -> ServeParams:
    """`params.yaml: serve`, for callers that were given no limits."""
    from scene2img.config import load_params

    return load_params().serve


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

    def sha256(self) -> str:
        """Hash of the canonical JSON: the same graph however it was spelled in its file."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def show(value: Any, limit: int = 40) -> str:
    """`repr` of a user's value, cut short: error messages stay one short line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _closest(name: str, known: list[str]) -> str:
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    return f"; closest: {', '.join(repr(n) for n in near)}" if near else ""


# --------------------------------------------------------------------------------------------
# JSON in: text, files, objects


def load_json_text(
    text: str | bytes,  # JSON text, as received
    where: str,  # named in error messages
    max_bytes: int,  # refused before parsing when larger
    what: str = "scene graph",  # what the text should hold, for messages
) -> Any:
    """Parse JSON text after checking its size; every failure is one `SceneGraphError` line."""
    if isinstance(text, str):
        size = len(text) if len(text) > max_bytes else len(text.encode("utf-8", "surrogatepass"))
    else:
        size = len(text)
    if size > max_bytes:
        raise SceneGraphError(f"{where}: {size} bytes, more than the {max_bytes} bytes accepted "
                              f"for one {what}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SceneGraphError(f"{where}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                                  f"at position {exc.start}); save it as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SceneGraphError(f"{where}: malformed JSON at line {exc.lineno} column {exc.colno}: "
                              f"{exc.msg}") from None
    except RecursionError:
        raise SceneGraphError(f"{where}: JSON nested too deeply; a {what} needs a few levels") \
            from None
    except ValueError as exc:  # e.g. an integer literal of thousands of digits
        raise SceneGraphError(f"{where}: not acceptable JSON ({exc})") from None


def read_json_file(
    path: str | Path,
    max_bytes: int,  # refused before reading when larger
    what: str = "scene graph",  # what the file should hold, for messages
    missing: str = "",  # appended when the file does not exist (what writes one)
) -> Any:
    """Read and parse a JSON file; a folder, a missing, unreadable, oversized, non-UTF-8, deeply
    nested or malformed file is one `SceneGraphError` line naming it."""
    path = Path(path)
    try:
        if path.is_dir():
            raise SceneGraphError(f"{path}: a folder, not a {what} file")
        if not path.exists():
            raise SceneGraphError(f"{path}: file not found{missing}")
        if not path.is_file():
            raise SceneGraphError(f"{path}: not a regular file; give a {what} JSON file")
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise SceneGraphError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise SceneGraphError(f"{path}: more than the {max_bytes} bytes accepted for one {what}")
    return load_json_text(data, str(path), max_bytes, what)


def _path_text(path: tuple) -> str:
    keys = []
    while path:
        path, key = path
        keys.append(f"[{key}]" if isinstance(key, int) else f".{show(key, 24).strip(chr(39))}")
    return "".join(reversed(keys)).lstrip(".")


def check_json_size(
    value: Any,  # a parsed JSON value (or what pandas made of one)
    where: str,
    max_bytes: int,  # its size as compact JSON
    max_depth: int,  # nested lists / objects
    what: str = "scene graph",
) -> None:
    """Refuse `value` if it would be more than `max_bytes` as JSON or nests deeper than
    `max_depth`. Iterative, and it stops at the first limit passed: the cost is bounded by the
    limits, not by the input."""
    total = 0
    stack: list[tuple[Any, int, tuple]] = [(value, 1, ())]
    while stack:
        v, depth, path = stack.pop()
        if isinstance(v, (dict, list, tuple)):
            if depth > max_depth:
                raise SceneGraphError(f"{where}: {_path_text(path) or 'the value'} nests deeper "
                                      f"than the {max_depth} levels accepted ({what}s need "
                                      f"{FORMAT_DEPTH})")
            total += 2 + len(v)
            if total > max_bytes:
                break
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, item in items:
                if isinstance(v, dict):
                    total += 3 + (len(k) if isinstance(k, str) else 8)
                stack.append((item, depth + 1, (path, k)))
        elif isinstance(v, str):
            total += 2 + (len(v) if len(v) > max_bytes else len(v.encode("utf-8", "surrogatepass")))
        elif isinstance(v, bytes):
            total += len(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            total += v.bit_length() // 3 + 1
        else:  # floats, booleans, null, numpy scalars
            total += 8
        if total > max_bytes:
            break
    if total > max_bytes:
        raise SceneGraphError(f"{where}: more than the {max_bytes} bytes accepted for one {what} "
                              "(measured as JSON)")


# --------------------------------------------------------------------------------------------
# values


def check_box(box: Any, where: str) -> tuple[float, float, float, float]:
    """A normalised `[x, y, w, h]`: four finite numbers (not booleans), x and y in [0, 1], w and
    h in (0, 1]."""
    if (not isinstance(box, (list, tuple)) or len(box) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        raise SceneGraphError(f"{where}: expected [x, y, w, h], four numbers in [0, 1]; got "
                              f"{show(box)}")
    x, y, w, h = (float(v) for v in box)
    if not (all(math.isfinite(v) for v in (x, y, w, h))
            and 0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1):
        raise SceneGraphError(f"{where}: {show(box)} is outside the unit square or empty")
    return x, y, w, h


def check_seed(value: Any, where: str = "seed") -> int | None:
    """An integer seed in [0, 2**63 - 1]; None (or NaN, pandas' missing value) when not given.
    Integral floats are accepted up to 2**53 (pandas turns a column of integers with a missing
    one into floats); above that they may have been rounded, so they are refused."""
    if value is None:
        return None
    if isinstance(value, np.generic):  # what pandas hands over
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not value.is_integer():
            raise SceneGraphError(f"{where}: {show(value)} is not an integer; seeds are integers "
                                  f"from 0 to {MAX_SEED}")
        if abs(value) > _EXACT_FLOAT:
            raise SceneGraphError(f"{where}: {show(value)} arrived as a floating-point number "
                                  "and may have been rounded; send seeds above 2**53 as integers "
                                  "(give every record in the request a seed)")
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SceneGraphError(f"{where}: {show(value)} is not an integer; seeds are integers "
                              f"from 0 to {MAX_SEED}")
    if not 0 <= value <= MAX_SEED:
        raise SceneGraphError(f"{where}: {show(value)} is out of range; seeds are integers from "
                              f"0 to {MAX_SEED} (2**63 - 1)")
    return value


def _name(value: Any, at: str, limits: ServeParams, what: str) -> str:
    if not isinstance(value, str):
        raise SceneGraphError(f"{at}: expected a {what} name, got {show(value)}")
    if len(value) > limits.max_name_chars:
        raise SceneGraphError(f"{at}: a {what} name of {len(value)} characters; names have at "
                              f"most {limits.max_name_chars}")
    return value.strip().lower()


# --------------------------------------------------------------------------------------------
# the scene graph


def parse_scene_graph(
    data: Any,  # JSON text (str or bytes) or the parsed object
    vocab: Vocab,  # the model's vocabulary
    max_objects: int,  # the model's maximum, __image__ included
    where: str = "scene graph",  # named in error messages (a file, "scene_graph[3]", ...)
    limits: ServeParams | None = None,  # default: params.yaml's serve section
) -> SceneGraph:
    """Parse and validate one scene graph; errors name the field and say what is known."""
    limits = limits or default_limits()
    if isinstance(data, (str, bytes)):
        data = load_json_text(data, where, limits.max_graph_bytes)
    check_json_size(data, where, limits.max_graph_bytes, limits.max_depth)
    if not isinstance(data, dict):
        raise SceneGraphError(f"{where}: expected a JSON object with 'objects', got "
                              f"{type(data).__name__}")
    version = data.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise SceneGraphError(f"{where}: version {show(version)} not supported (this is version "
                              f"{SCHEMA_VERSION})")
    unknown_keys = set(data) - {"version", "objects", "relationships"}
    if unknown_keys:
        raise SceneGraphError(f"{where}: unknown field(s) {show(sorted(map(str, unknown_keys)))}; "
                              "expected version, objects, relationships")
    raw_objects = data.get("objects")
    if not isinstance(raw_objects, list) or not raw_objects:
        raise SceneGraphError(f"{where}: 'objects' must be a non-empty list of objects")
    if len(raw_objects) + 1 > max_objects:
        raise SceneGraphError(f"{where}: {len(raw_objects)} objects, the model takes at most "
                              f"{max_objects - 1}")
    raw_rels = data.get("relationships", [])
    if not isinstance(raw_rels, list):
        raise SceneGraphError(f"{where}: 'relationships' must be a list")
    if len(raw_rels) > limits.max_relationships:
        raise SceneGraphError(f"{where}: {len(raw_rels)} relationships, at most "
                              f"{limits.max_relationships} are accepted")

    obj_names = [n for n in vocab.object_name_to_idx if n != IMAGE_OBJECT]
    attr_names = list(vocab.attribute_name_to_idx)
    objects = []
    for i, raw in enumerate(raw_objects):
        at = f"{where}: objects[{i}]"
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict) or "name" not in raw:
            raise SceneGraphError(f"{at}: expected {{'name': CLASS, ...}}")
        extra = set(raw) - {"name", "attributes", "box"}
        if extra:
            raise SceneGraphError(f"{at}: unknown field(s) {show(sorted(map(str, extra)))}")
        name = _name(raw["name"], f"{at}.name", limits, "class")
        if name not in vocab.object_name_to_idx or name == IMAGE_OBJECT:
            raise SceneGraphError(f"{at}: unknown class {show(raw['name'])}"
                                  f"{_closest(name, obj_names)}")
        attrs = raw.get("attributes")
        if attrs is not None:
            if not isinstance(attrs, list):
                raise SceneGraphError(f"{at}.attributes: expected a list of attribute names")
            if len(attrs) > limits.max_attributes:
                raise SceneGraphError(f"{at}.attributes: {len(attrs)} attributes, at most "
                                      f"{limits.max_attributes} are accepted")
            attrs = [_name(a, f"{at}.attributes[{k}]", limits, "attribute")
                     for k, a in enumerate(attrs)]
            for a in attrs:
                if a not in vocab.attribute_name_to_idx:
                    known = _closest(a, attr_names) if attr_names else \
                        "; this model has no attributes"
                    raise SceneGraphError(f"{at}.attributes: unknown attribute {a!r}{known}")
        box = raw.get("box")
        if box is not None:
            box = check_box(box, f"{at}.box")
        objects.append(SceneObject(name, attrs, box))

    preds = [p for p in vocab.pred_name_to_idx if p != IN_IMAGE]
    relationships = []
    for i, raw in enumerate(raw_rels):
        at = f"{where}: relationships[{i}]"
        if not isinstance(raw, dict) or set(raw) != {"subject", "predicate", "object"}:
            raise SceneGraphError(f"{at}: expected {{'subject': i, 'predicate': P, 'object': j}}")
        s, p, o = raw["subject"], raw["predicate"], raw["object"]
        for key, pos in (("subject", s), ("object", o)):
            if not isinstance(pos, int) or isinstance(pos, bool) or not 0 <= pos < len(objects):
                raise SceneGraphError(f"{at}.{key}: {show(pos)} is not an object position "
                                      f"(0..{len(objects) - 1})")
        pred = _name(p, f"{at}.predicate", limits, "predicate")
        if pred not in vocab.pred_name_to_idx or pred == IN_IMAGE:
            raise SceneGraphError(f"{at}.predicate: unknown predicate {show(p)}"
                                  f"{_closest(pred, preds)}")
        relationships.append((s, pred, o))
    return SceneGraph(objects, relationships)
