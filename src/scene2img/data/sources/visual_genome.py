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

Text is read as sg2im's `scripts/preprocess_vg.py` reads it unless `normalise_names` is set:

- object names and attributes as written (sg2im neither lowercases nor strips them: "Man" and
  "white " are names of their own), object names then aliased; alias entries are stripped;
- predicates lowercased and stripped, then aliased (`RawRelationship.predicate`), with the text as
  written kept in `raw_predicate` (sg2im looks val/test predicates up as written);
- `normalise_names=True`: names, attributes and predicates lowercased, stripped and inner
  whitespace collapsed (alias entries too) before aliasing.

Nothing is filtered by size, count or vocabulary here: `data/filters.py` does that for every source.
Every object keeps all its names (`RawObject.names`): the filter picks the first in the vocabulary.

Quirks of the real files, and what happens to them (each is counted in `DropCounts`):

- objects with `name` (a string) instead of `names` (a list) are read; objects with no name at
  all are dropped;
- an `object_id` listed twice within an image gives two objects, as in sg2im (the filter decides,
  see `preprocess.vg.dedupe_object_ids`); relationships point at its last occurrence;
- a relationship endpoint whose `object_id` is not in the image's objects.json entry is built from
  the relationship's own subject/object record (it carries a box and a name), marked
  `from_relationship`, and counted; sg2im drops such relationships, and so does the filter unless
  `preprocess.vg.keep_relationship_endpoints` is set. An endpoint record without a usable box or
  name drops its relationship here;
- an object's attributes are those of the last attributes.json record with its `object_id` (as
  sg2im); every record's list also goes into `RawScene.annotated_attributes`, which the attribute
  vocabulary counts (sg2im counts the records, whichever object they describe);
- images in objects/attributes/relationships.json but not in image_data.json are dropped;
- an image listed twice in a file: its last entry is used, as sg2im (which still counts the
  earlier entries of objects/attributes/relationships.json toward the vocabulary; VG 1.4 lists
  every image once).

Damage: a missing file, malformed JSON or a wrongly shaped image-level entry (no `image_id`, no
`objects` list, no `width`) raises `DataError` naming the file, the image and the field. Damage to a
single object, attribute or relationship (e.g. an object without `x`, where sg2im would crash) is
counted and skipped, and the first case of each kind is logged with its file and image.

`drops` is complete once the returned iterator is exhausted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
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


def sg2im_predicate(text: str) -> str:
    """A predicate as sg2im's `preprocess_vg` cleans train predicates: lowercased and stripped."""
    return text.lower().strip()


def load_alias_file(path: Path, normalise_names: bool = True) -> dict[str, str]:
    """Read a VG alias file: each comma-separated name on a line maps to the line's first name.

    `normalise_names=False` reads it exactly as sg2im does: entries stripped (not lowercased),
    empty entries kept. `True`: entries normalised like the data they apply to, empty entries and
    blank lines skipped. A name on several lines maps to the first name of its last line (sg2im's
    dict semantics).
    """
    path = Path(path)
    clean = normalise if normalise_names else str.strip
    aliases: dict[str, str] = {}
    try:
        # Universal newlines, line by line: the lines sg2im's `for line in f` sees.
        with open(path, encoding="utf-8") as f:
            for line in f:
                names = [clean(part) for part in line.split(",")]
                if normalise_names:
                    names = [n for n in names if n]
                for name in names:
                    aliases[name] = names[0]
    except FileNotFoundError:
        raise DataError(f"{path}: alias file not found; check the path or leave it out") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text at byte {exc.start}; is this an alias file?"
        ) from None
    return aliases


def read_visual_genome(
    raw_dir: Path,
    drops: DropCounts,
    normalise_names: bool = False,  # True: lowercase/strip/collapse names (not sg2im)
) -> Iterator[RawScene]:
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
    return _read(raw_dir, drops, _Text(raw_dir, normalise_names))


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


class _Text:
    """How names, attributes and predicates are read: as sg2im, or normalised; and aliased."""

    def __init__(self, raw_dir: Path, normalise_names: bool) -> None:
        self.normalised = normalise_names
        self.objects = self._aliases(raw_dir / OBJECT_ALIAS)
        self.predicates = self._aliases(raw_dir / RELATIONSHIP_ALIAS)

    def _aliases(self, path: Path) -> dict[str, str]:
        if not path.is_file():
            log.warning("%s not found: names are used without aliasing", path)
            return {}
        return load_alias_file(path, self.normalised)

    def names(self, values: list[Any]) -> list[str]:
        """An object's names, aliased; sg2im keeps them as written (even empty)."""
        out = []
        for value in values:
            if not isinstance(value, str):
                continue
            if self.normalised:
                value = normalise(value)
                if not value:
                    continue
            out.append(self.objects.get(value, value))
        return out

    def attribute(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        if self.normalised:
            return normalise(value) or None
        return value

    def predicate(self, raw: str) -> str:
        text = normalise(raw) if self.normalised else sg2im_predicate(raw)
        return self.predicates.get(text, text)


def _read(raw_dir: Path, drops: DropCounts, text: _Text) -> Iterator[RawScene]:
    damage = _Damage(drops)
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
        id_to_pos = _add_objects(scene, _entry(scene, objects_by_image, OBJECTS), text, damage)
        _add_relationships(scene, _entry(scene, rels_by_image, RELATIONSHIPS), id_to_pos, text,
                           damage)
        _merge_attributes(scene, _entry(scene, attributes_by_image, ATTRIBUTES), id_to_pos, text,
                          damage)
        yield scene


def _entry(scene: RawScene, index: dict[str, tuple[int, list[Any]]], file: str) -> list[Any]:
    position, items = index.pop(scene.image_id, (None, []))
    if position is not None:
        scene.file_order[file] = position
    return items


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
            # sg2im indexes the file by id: the last entry wins
            damage.add("image: listed again in image_data.json (the last entry is used)",
                       f"{path}: image {key}")
        images[key] = (size[0], size[1])
    return images


def _index_by_image(
    path: Path, field_name: str, images: dict[str, tuple[int, int]], damage: _Damage
) -> dict[str, tuple[int, list[Any]]]:
    """Map image id -> (position of its entry in the file, the entry's `field_name` list).

    An image listed twice keeps its last entry, as sg2im's per-image dicts do.
    """
    index: dict[str, tuple[int, list[Any]]] = {}
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
        if key in index:
            damage.add(f"image: listed again in {path.name} (the last entry is used)",
                       f"{path}: image {key}")
        index[key] = (i, items)
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


def _parse_object(d: Any, text: _Text) -> tuple[RawObject | None, str]:
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
    raw_names = d.get("names")
    if raw_names is None:
        raw_names = d.get("name")
    if isinstance(raw_names, str):
        raw_names = [raw_names]
    names = text.names(raw_names) if isinstance(raw_names, list) else []
    if not names:
        return None, "no name"
    obj = RawObject(name=names[0], box=(box[0], box[1], box[2], box[3]), source_id=object_id,
                    names=names)
    return obj, ""


def _add_objects(
    scene: RawScene, items: list[Any], text: _Text, damage: _Damage
) -> dict[Any, list[int]]:
    """Append the objects; return object_id -> its positions (a repeated id has several)."""
    id_to_pos: dict[Any, list[int]] = {}
    where = f"{OBJECTS}: image {scene.image_id}"
    for d in items:
        obj, problem = _parse_object(d, text)
        if obj is None:
            damage.add(f"object: {problem} in {OBJECTS}", where)
            continue
        if obj.source_id in id_to_pos:
            damage.add(f"object: object_id repeated within an image in {OBJECTS}", where)
        id_to_pos.setdefault(obj.source_id, []).append(len(scene.objects))
        scene.objects.append(obj)
    return id_to_pos


def _add_relationships(
    scene: RawScene,
    items: list[Any],
    id_to_pos: dict[Any, list[int]],
    text: _Text,
    damage: _Damage,
) -> None:
    where = f"{RELATIONSHIPS}: image {scene.image_id}"
    for rel in items:
        if not isinstance(rel, dict):
            damage.add(f"relationship: malformed entry in {RELATIONSHIPS}", where)
            continue
        raw = rel.get("predicate")
        if not isinstance(raw, str):
            damage.add("relationship: predicate missing or not a string", where)
            continue

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
                ends.append(id_to_pos[oid][-1])  # sg2im: the last occurrence of the id
                continue
            obj, _ = _parse_object(d, text)
            if obj is None:
                problem = (
                    "relationship: endpoint not in objects.json nor usable in relationships.json"
                )
                break
            obj.from_relationship = True
            ends.append(obj)
        if problem:
            damage.add(problem, where)
            continue

        positions = []
        for end in ends:
            if isinstance(end, RawObject):
                if end.source_id not in id_to_pos:  # once per id (subject == object: once)
                    id_to_pos[end.source_id] = [len(scene.objects)]
                    scene.objects.append(end)
                    damage.add("object: relationship endpoint not in objects.json", where)
                positions.append(id_to_pos[end.source_id][-1])
            else:
                positions.append(end)
        scene.relationships.append(
            RawRelationship(positions[0], text.predicate(raw), positions[1], raw_predicate=raw)
        )


def _merge_attributes(
    scene: RawScene, items: list[Any], id_to_pos: dict[Any, list[int]], text: _Text,
    damage: _Damage,
) -> None:
    """Each object's attributes: the last record with its object_id (a record without an
    `attributes` list clears them, as sg2im's dict does). Every list also goes into
    `scene.annotated_attributes`, once per attribute (sg2im counts a set per record)."""
    where = f"{ATTRIBUTES}: image {scene.image_id}"
    for d in items:
        if not isinstance(d, dict):
            damage.add(f"attribute: malformed entry in {ATTRIBUTES}", where)
            continue
        attrs = d.get("attributes")  # missing on objects without attributes
        if isinstance(attrs, str):
            attrs = [attrs]
        if attrs is not None and not isinstance(attrs, list):
            damage.add(f"attribute: malformed entry in {ATTRIBUTES}", where)
            continue
        values = []
        for attr in attrs or ():
            value = text.attribute(attr)
            if value is None:
                damage.add("attribute: empty or not a string", where)
            else:
                values.append(value)
        if attrs is not None:
            scene.annotated_attributes.append(list(dict.fromkeys(values)))
        oid = d.get("object_id")
        positions = id_to_pos.get(oid) if _valid_id(oid) else None
        if positions is None:
            damage.add("attribute: object_id not in objects.json", where, len(values))
            continue
        for pos in positions:
            scene.objects[pos].attributes = list(values)


def _valid_id(value: Any) -> bool:
    """VG object ids are ints; strings are tolerated, anything else is damage."""
    return isinstance(value, int | str) and not isinstance(value, bool) and value != ""
