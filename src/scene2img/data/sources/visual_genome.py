"""Reader for Visual Genome 1.4 as it ships.

Layout under `raw_dir`:

- `image_data.json`: `[{image_id, url, width, height, coco_id, flickr_id}, ...]`; its order is the
  order in which scenes are yielded. (VG 1.0/1.2 name the id `id`; both are accepted.)
- `objects.json`: `[{image_id, objects: [{object_id, x, y, w, h, names: [...], synsets}]}]`.
- `attributes.json`: `[{image_id, attributes: [{object_id, x, y, w, h, names, attributes}]}]`;
  merged into the objects by `object_id`.
- `relationships.json`: `[{image_id, relationships: [{relationship_id, predicate,
  subject: {object_id, x, y, w, h, name | names}, object: {...}}]}]`.
- `object_alias.txt`, `relationship_alias.txt` (optional): one alias group per line, comma
  separated; every name on a line maps to the first name on that line (as sg2im's
  `preprocess_vg` does; the mapping is applied once, not transitively).
- `VG_100K/{image_id}.jpg` or `VG_100K_2/{image_id}.jpg`: the images (only their existence is
  checked here; the image stage opens them and counts the missing ones).

Names, attributes and predicates are normalised: lowercased, stripped, inner whitespace collapsed
to one space; names and predicates are then aliased (attributes have no alias file). Nothing is
filtered by size, count or vocabulary here: `data/filters.py` does that for every source.

Quirks of the real files, and what happens to them (each drop is counted in `DropCounts`):

- objects with `name` (a string) instead of `names` (a list) are read; objects with neither, or
  with no non-empty name, are dropped;
- a relationship endpoint whose `object_id` is not in objects.json is taken from the relationship's
  own subject/object dict (it carries a box and a name) and appended to the scene's objects; if
  that dict lacks a usable box or name, the relationship is dropped;
- a repeated `object_id` within an image keeps its first object;
- images in objects/attributes/relationships.json but not in image_data.json are dropped;
  attributes of unknown object ids are dropped;
- an image listed twice in objects/attributes/relationships.json has its entries concatenated;
  listed twice in image_data.json, the first wins.

Damage: a missing file, malformed JSON or a wrongly shaped image-level entry (no `image_id`, no
`objects` list, no `width`) raises `DataError` naming the file, the image and the field. Damage to a
single object, attribute or relationship (e.g. an object without `x`) is counted and skipped, and
the first case of each kind is logged with its file and image.

`drops` is complete once the returned iterator is exhausted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from scene2img.data.drops import DropCounts
from scene2img.data.records import RawObject, RawRelationship, RawScene
from scene2img.data.sources._io import load_json, require_dir
from scene2img.errors import DataError

log = logging.getLogger(__name__)

IMAGE_DATA = "image_data.json"
OBJECTS = "objects.json"
ATTRIBUTES = "attributes.json"
RELATIONSHIPS = "relationships.json"
OBJECT_ALIAS = "object_alias.txt"
RELATIONSHIP_ALIAS = "relationship_alias.txt"
REQUIRED_FILES = (IMAGE_DATA, OBJECTS, ATTRIBUTES, RELATIONSHIPS)
IMAGE_DIRS = ("VG_100K", "VG_100K_2")

_BOX_FIELDS = ("x", "y", "w", "h")
_DOWNLOAD_HINT = (
    "download Visual Genome 1.4 (image_data.json, objects.json, attributes.json, "
    "relationships.json, the alias files and the VG_100K/VG_100K_2 images) and unzip it there"
)


def normalise(text: str) -> str:
    """Lowercase, strip, and collapse inner runs of whitespace to one space."""
    return " ".join(text.lower().split())


def load_alias_file(path: Path) -> dict[str, str]:
    """Read a VG alias file: each comma-separated name on a line maps to the line's first name.

    Names are normalised like the data they apply to; empty entries and blank lines are skipped.
    A name on several lines maps to the first name of its last line (sg2im's dict semantics).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: alias file not found; check the path or leave it out") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text at byte {exc.start}; is this an alias file?"
        ) from None
    aliases: dict[str, str] = {}
    for line in text.splitlines():
        names = [n for n in (normalise(part) for part in line.split(",")) if n]
        for name in names:
            aliases[name] = names[0]
    return aliases


def read_visual_genome(raw_dir: Path, drops: DropCounts) -> Iterator[RawScene]:
    """Yield one `RawScene` per image of image_data.json, in that file's order.

    Required files are checked at once (a `DataError` names the first missing one); the JSON is
    loaded when iteration starts. Reasons for dropped items are added to `drops`.
    """
    raw_dir = require_dir(Path(raw_dir), "the Visual Genome 1.4 root")
    for name in REQUIRED_FILES:
        if not (raw_dir / name).is_file():
            raise DataError(
                f"{raw_dir / name}: required Visual Genome file missing; {_DOWNLOAD_HINT}"
            )
    return _read(raw_dir, drops)


# --------------------------------------------------------------------------------------------
# internals


class _Damage:
    """Counts drops, and logs the first case of each reason with where it happened."""

    def __init__(self, drops: DropCounts) -> None:
        self.drops = drops
        self._seen: set[str] = set()

    def add(self, reason: str, where: str = "", n: int = 1) -> None:
        if n <= 0:
            return
        self.drops.add(reason, n)
        if where and reason not in self._seen:
            self._seen.add(reason)
            log.warning("%s: %s (further cases are only counted)", where, reason)


def _read(raw_dir: Path, drops: DropCounts) -> Iterator[RawScene]:
    damage = _Damage(drops)
    obj_aliases = _optional_aliases(raw_dir / OBJECT_ALIAS)
    pred_aliases = _optional_aliases(raw_dir / RELATIONSHIP_ALIAS)

    log.info("reading %s", raw_dir / IMAGE_DATA)
    images = _read_image_data(raw_dir / IMAGE_DATA, damage)
    # Each big list is indexed by image id and then released: the dicts hold the only copy.
    log.info("reading %s", raw_dir / OBJECTS)
    objects_by_image = _index_by_image(raw_dir / OBJECTS, "objects", images, damage)
    log.info("reading %s", raw_dir / ATTRIBUTES)
    attributes_by_image = _index_by_image(raw_dir / ATTRIBUTES, "attributes", images, damage)
    log.info("reading %s", raw_dir / RELATIONSHIPS)
    rels_by_image = _index_by_image(raw_dir / RELATIONSHIPS, "relationships", images, damage)
    present = _list_images(raw_dir)

    for image_id, (width, height) in images.items():
        scene = RawScene(
            image_id=image_id,
            image_path=_image_path(raw_dir, image_id, present),
            width=width,
            height=height,
        )
        # pop: memory falls as scenes are yielded
        id_to_pos = _add_objects(scene, objects_by_image.pop(image_id, ()), obj_aliases, damage)
        _add_relationships(
            scene, rels_by_image.pop(image_id, ()), id_to_pos, obj_aliases, pred_aliases, damage
        )
        _merge_attributes(scene, attributes_by_image.pop(image_id, ()), id_to_pos, damage)
        yield scene


def _optional_aliases(path: Path) -> dict[str, str]:
    if not path.is_file():
        log.warning("%s not found: names are used without aliasing", path)
        return {}
    return load_alias_file(path)


def _image_key(value: Any, where: str) -> str:
    # JSON ids are ints; accept digit strings too, so keys agree across files.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise DataError(f"{where}: image_id is {value!r}, expected an integer; is the file corrupt?")


def _as_list(data: Any, path: Path) -> list[Any]:
    if not isinstance(data, list):
        raise DataError(
            f"{path}: expected a JSON list of per-image entries, got {type(data).__name__}; "
            "is this the Visual Genome 1.4 file?"
        )
    return data


def _read_image_data(path: Path, damage: _Damage) -> dict[str, tuple[int, int]]:
    images: dict[str, tuple[int, int]] = {}
    for i, entry in enumerate(_as_list(load_json(path, "Visual Genome image metadata"), path)):
        if not isinstance(entry, dict):
            raise DataError(f"{path}: entry {i} is {type(entry).__name__}, expected an object")
        raw_id = entry.get("image_id", entry.get("id"))
        if raw_id is None:
            raise DataError(f"{path}: entry {i} has no image_id; is the file corrupt?")
        key = _image_key(raw_id, f"{path}: entry {i}")
        size = []
        for field_name in ("width", "height"):
            value = entry.get(field_name)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise DataError(
                    f"{path}: image {key}: field {field_name!r} is {value!r}, expected a positive "
                    "integer; is the file corrupt?"
                )
            size.append(value)
        if key in images:
            damage.add("image: duplicate in image_data.json", f"{path}: image {key}")
            continue
        images[key] = (size[0], size[1])
    return images


def _index_by_image(
    path: Path, field_name: str, images: dict[str, tuple[int, int]], damage: _Damage
) -> dict[str, list[list[Any]]]:
    """Map image id -> the per-image item lists of `field_name` (usually one list)."""
    index: dict[str, list[list[Any]]] = {}
    for i, entry in enumerate(_as_list(load_json(path, f"Visual Genome {field_name}"), path)):
        if not isinstance(entry, dict):
            raise DataError(f"{path}: entry {i} is {type(entry).__name__}, expected an object")
        raw_id = entry.get("image_id", entry.get("id"))
        if raw_id is None:
            raise DataError(f"{path}: entry {i} has no image_id; is the file corrupt?")
        key = _image_key(raw_id, f"{path}: entry {i}")
        items = entry.get(field_name)
        if not isinstance(items, list):
            raise DataError(
                f"{path}: image {key}: field {field_name!r} is "
                f"{'missing' if items is None else type(items).__name__}, expected a list; "
                "is the file corrupt?"
            )
        if key not in images:
            damage.add(f"image: in {path.name} but not in image_data.json", f"{path}: image {key}")
            continue
        index.setdefault(key, []).append(items)
    return index


def _list_images(raw_dir: Path) -> dict[str, set[str]]:
    # One directory listing instead of ~100k stat calls (slow on network file systems).
    present: dict[str, set[str]] = {}
    for sub in IMAGE_DIRS:
        folder = raw_dir / sub
        if folder.is_dir():
            with os.scandir(folder) as it:
                present[sub] = {e.name for e in it}
    if not present:
        log.warning(
            "%s: neither %s found; every image will be missing", raw_dir, " nor ".join(IMAGE_DIRS)
        )
    return present


def _image_path(raw_dir: Path, image_id: str, present: dict[str, set[str]]) -> Path:
    name = f"{image_id}.jpg"
    for sub in IMAGE_DIRS:
        if name in present.get(sub, ()):
            return raw_dir / sub / name
    return raw_dir / IMAGE_DIRS[0] / name


def _chain(groups: Iterable[list[Any]]) -> Iterator[Any]:
    for group in groups:
        yield from group


def _parse_object(d: Any, aliases: dict[str, str]) -> tuple[RawObject | None, str]:
    """Build a `RawObject` from a VG object dict; on damage return `(None, problem)`."""
    if not isinstance(d, dict):
        return None, "malformed entry"
    object_id = d.get("object_id")
    if not _valid_id(object_id):
        return None, "no object_id"
    box = []
    for key in _BOX_FIELDS:
        value = d.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None, "bad box"
        box.append(float(value))
    names = d.get("names")
    if names is None:
        names = d.get("name")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list):
        return None, "no name"
    # the first name that survives normalisation (a leading "" must not erase the object)
    name = next((normalise(n) for n in names if isinstance(n, str) and normalise(n)), "")
    if not name:
        return None, "no name"
    name = aliases.get(name, name)
    return RawObject(name=name, box=(box[0], box[1], box[2], box[3]), source_id=object_id), ""


def _add_objects(
    scene: RawScene, groups: Iterable[list[Any]], aliases: dict[str, str], damage: _Damage
) -> dict[Any, int]:
    id_to_pos: dict[Any, int] = {}
    where = f"{OBJECTS}: image {scene.image_id}"
    for d in _chain(groups):
        obj, problem = _parse_object(d, aliases)
        if obj is None:
            damage.add(f"object: {problem} in {OBJECTS}", where)
            continue
        if obj.source_id in id_to_pos:
            damage.add(f"object: duplicate object_id in {OBJECTS}", where)
            continue
        id_to_pos[obj.source_id] = len(scene.objects)
        scene.objects.append(obj)
    return id_to_pos


def _add_relationships(
    scene: RawScene,
    groups: Iterable[list[Any]],
    id_to_pos: dict[Any, int],
    obj_aliases: dict[str, str],
    pred_aliases: dict[str, str],
    damage: _Damage,
) -> None:
    where = f"{RELATIONSHIPS}: image {scene.image_id}"
    for rel in _chain(groups):
        if not isinstance(rel, dict):
            damage.add(f"relationship: malformed entry in {RELATIONSHIPS}", where)
            continue
        predicate = rel.get("predicate")
        predicate = normalise(predicate) if isinstance(predicate, str) else ""
        if not predicate:
            damage.add("relationship: no predicate", where)
            continue
        predicate = pred_aliases.get(predicate, predicate)

        # Resolve both endpoints before adding any object, so a dropped relationship adds nothing.
        ends: list[int | RawObject] = []
        problem = ""
        for role in ("subject", "object"):
            d = rel.get(role)
            oid = d.get("object_id") if isinstance(d, dict) else None
            if not _valid_id(oid):
                problem = "relationship: endpoint without object_id"
                break
            if oid in id_to_pos:
                ends.append(id_to_pos[oid])
                continue
            obj, _ = _parse_object(d, obj_aliases)
            if obj is None:
                problem = (
                    "relationship: endpoint not in objects.json nor usable in relationships.json"
                )
                break
            ends.append(obj)
        if problem:
            damage.add(problem, where)
            continue

        positions = []
        for end in ends:
            if isinstance(end, RawObject):
                if end.source_id in id_to_pos:  # subject and object are the same new object
                    positions.append(id_to_pos[end.source_id])
                    continue
                id_to_pos[end.source_id] = len(scene.objects)
                scene.objects.append(end)
                damage.add("object: taken from relationships.json", where)
                positions.append(id_to_pos[end.source_id])
            else:
                positions.append(end)
        scene.relationships.append(RawRelationship(positions[0], predicate, positions[1]))


def _merge_attributes(
    scene: RawScene, groups: Iterable[list[Any]], id_to_pos: dict[Any, int], damage: _Damage
) -> None:
    where = f"{ATTRIBUTES}: image {scene.image_id}"
    for d in _chain(groups):
        if not isinstance(d, dict):
            damage.add(f"attribute: malformed entry in {ATTRIBUTES}", where)
            continue
        attrs = d.get("attributes")  # missing on objects without attributes
        if attrs is None:
            continue
        if isinstance(attrs, str):
            attrs = [attrs]
        if not isinstance(attrs, list):
            damage.add(f"attribute: malformed entry in {ATTRIBUTES}", where)
            continue
        oid = d.get("object_id")
        pos = id_to_pos.get(oid) if _valid_id(oid) else None
        if pos is None:
            damage.add("attribute: object_id not in objects.json", where, len(attrs))
            continue
        target = scene.objects[pos].attributes
        for attr in attrs:
            value = normalise(attr) if isinstance(attr, str) else ""
            if not value:
                damage.add("attribute: empty or not a string", where)
            elif value not in target:  # a handful per object: a list scan is fine
                target.append(value)


def _valid_id(value: Any) -> bool:
    """VG object ids are ints; strings are tolerated, anything else is damage."""
    return isinstance(value, int | str) and not isinstance(value, bool) and value != ""
