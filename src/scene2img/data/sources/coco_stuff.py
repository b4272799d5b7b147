"""Readers for COCO-Stuff 2017, in its two published forms.

**JSON form** (`preprocess.coco_stuff.form: json`), as COCO and COCO-Stuff ship it. Under `raw_dir`:

- `annotations/instances_{split}2017.json`: the COCO thing annotations (categories 1-90);
- `annotations/stuff_{split}2017.json`: the COCO-Stuff stuff annotations (categories 92-182, one
  annotation per stuff class per image, plus 183 "other");
- `{split}2017/{file_name}`: the images (not opened here).

Both files are standard COCO: `images: [{id, file_name, width, height}]`, `annotations: [{id,
image_id, category_id, bbox: [x, y, w, h], segmentation, iscrowd}]`, `categories: [{id, name}]`.
A segmentation is a polygon list (`[[x0, y0, x1, y1, ...], ...]`), an uncompressed RLE (`{size:
[h, w], counts: [int, ...]}`, used for crowds) or a compressed RLE (`counts` a string, as the stuff
annotations are). Segmentations are kept as they are in `RawObject.segmentation`;
`decode_segmentation` turns one into a boolean mask when the image stage needs it.

**Label-map form** (`form: labelmap`), as NVlabs/SPADE ships COCO-Stuff. Under `raw_dir`:

- `{split}_img/*.jpg`: the images (not opened here);
- `{split}_label/*.png`: uint8 "stuffthingmaps", pixel = COCO-Stuff class id - 1, 255 = unlabeled;
- `{split}_inst/*.png`: the label map with every thing instance painted over it with its index
  0..n-1 (see `_instances` for how instances are told apart from label values);
- `labels.txt`: the class table, `id: name` lines (0 = unlabeled, 1-91 things, 92-182 stuff).

Objects from a label map: every thing instance separately, and every stuff class as one object
(its whole region, as COCO-Stuff's stuff annotations are one per class per image). Their masks are
given cropped to their tight boxes (`RawObject.mask`).

Both readers: `split` is "train" or "val" (the source's folders); the scenes get `split="train"`
for train2017 and `split="test"` for val2017 (the val split is carved out of train later). Names
are the class table's; nothing is filtered by size or count here (`data/filters.py` does that).
Everything skipped is counted in `drops`, with reasons starting "object:" or "image:".
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from scene2img.data.drops import DropCounts
from scene2img.data.records import RawObject, RawScene
from scene2img.data.sources._io import load_json, read_label_png, require_dir
from scene2img.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
SCENE_SPLIT = {"train": "train", "val": "test"}  # val2017 is the test split; val comes from train
OTHER_ID = 183  # COCO-Stuff's "other": a catch-all stuff class, excluded by default
THING_IDS = range(1, 92)  # COCO thing category ids (1-91); 92-182 are stuff
UNLABELED = 255  # label-map pixel value for unlabeled pixels

DROP_CROWD = "object: crowd annotation (drop_crowd)"
DROP_OTHER = "object: class 183 'other' (include_other is false)"
DROP_UNKNOWN_CATEGORY = "object: unknown category id"
DROP_UNKNOWN_IMAGE = "object: unknown image id"
DROP_MALFORMED = "object: malformed annotation"
DROP_UNKNOWN_LABEL = "object: unknown class id in label map"
DROP_UNLABELED_INSTANCE = "object: thing instance over no thing label"
DROP_MISSING_MAP = "image: missing label map"
DROP_UNREADABLE_MAP = "image: unreadable label map"
DROP_MISMATCHED_MAPS = "image: label and instance maps differ in size"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"COCO-Stuff split {split!r} is not one of {list(SPLITS)}")


def _image_id(stem: str) -> str:
    # "000000017914" -> "17914": the same id the JSON form gives the same image.
    return str(int(stem)) if stem.isdigit() else stem


# --------------------------------------------------------------------------------------------
# JSON form


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as a `(height, width)` bool
    mask. Raises `DataError` for a shape that is none of these, or an RLE of another size."""
    from pycocotools import mask as mask_utils  # only the image stage decodes

    try:
        if isinstance(segmentation, list):
            # Polygons with fewer than 3 points are degenerate (pycocotools rejects them).
            polys = [p for p in segmentation
                     if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
            if not polys:
                return np.zeros((height, width), dtype=bool)
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
        elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
            size = [int(v) for v in segmentation["size"]]
            if size != [height, width]:
                raise DataError(
                    f"RLE segmentation of size {size} for an image of {height}x{width}; "
                    "the annotation does not belong to this image"
                )
            counts = segmentation["counts"]
            if isinstance(counts, list):  # uncompressed (crowd) RLE
                rle = mask_utils.frPyObjects(segmentation, height, width)
            elif isinstance(counts, str | bytes):  # compressed RLE
                rle = {"size": size, "counts": counts.encode() if isinstance(counts, str) else counts}
            else:
                raise TypeError(f"RLE counts of type {type(counts).__name__}")
        else:
            raise TypeError(f"segmentation of type {type(segmentation).__name__}")
        with warnings.catch_warnings():
            # pycocotools' Cython decoder trips a harmless NumPy 2 deprecation on every call.
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    except DataError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise DataError(
            f"unreadable COCO segmentation ({exc}); expected polygons or an RLE dict with "
            "'size' and 'counts'"
        ) from None


def _categories(data: Any, path: Path) -> dict[int, str]:
    cats = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(cats, list):
        raise DataError(f"{path}: no 'categories' list; is this a COCO annotation file?")
    try:
        return {int(c["id"]): str(c["name"]).strip() for c in cats}
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: a category lacks an integer 'id' or a 'name'") from None


def _list_field(data: Any, key: str, path: Path) -> list[Any]:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        raise DataError(f"{path}: no '{key}' list; is this a COCO annotation file?")
    return value


def read_coco_stuff_json(
    raw_dir: Path,
    split: str,
    include_other: bool,
    drop_crowd: bool,
    drops: DropCounts,
    class_table: dict[int, str] | None = None,
) -> Iterator[RawScene]:
    """Yield one scene per image of `{split}2017`: thing annotations first, then stuff, each in
    file order. Images are yielded in the order of the images tables (instances, then any images
    only the stuff file lists). Images without annotations are yielded with no objects.

    If `class_table` is given, it is filled with the merged categories (id -> name), without
    "other" unless `include_other`.
    """
    _check_split(split)
    raw_dir = Path(raw_dir)
    ann_dir = require_dir(raw_dir / "annotations", "COCO-Stuff annotations/ folder")
    scene_split = SCENE_SPLIT[split]
    images: dict[int, RawScene] = {}
    categories: dict[int, str] = {}
    for kind in ("instances", "stuff"):
        path = ann_dir / f"{kind}_{split}2017.json"
        data = load_json(path, f"COCO-Stuff {kind} annotations for {split}2017")
        categories.update(_categories(data, path))
        for img in _list_field(data, "images", path):
            try:
                image_id, file_name = int(img["id"]), str(img["file_name"])
                width, height = int(img["width"]), int(img["height"])
            except (KeyError, TypeError, ValueError):
                raise DataError(
                    f"{path}: image entry {img!r:.200} lacks an integer id, file_name, width "
                    "or height"
                ) from None
            if image_id not in images:
                images[image_id] = RawScene(
                    image_id=str(image_id),
                    image_path=raw_dir / f"{split}2017" / file_name,
                    width=width, height=height, split=scene_split,
                )
        n_malformed = drops[DROP_MALFORMED]
        for ann in _list_field(data, "annotations", path):
            obj, image_id = _annotation(ann, categories, include_other, drop_crowd, drops)
            if obj is None:
                continue
            scene = images.get(image_id)
            if scene is None:
                drops.add(DROP_UNKNOWN_IMAGE)
                continue
            scene.objects.append(obj)
        if drops[DROP_MALFORMED] > n_malformed:
            log.warning("%s: %d malformed annotation(s) skipped (no usable bbox, image_id or "
                        "category_id)", path, drops[DROP_MALFORMED] - n_malformed)
        del data  # the stuff file is large: free the instances file first
    if class_table is not None:
        class_table.clear()
        class_table.update({k: v for k, v in sorted(categories.items())
                            if include_other or k != OTHER_ID})
    log.info("COCO-Stuff %s2017: %d images, %d objects", split, len(images),
             sum(len(s.objects) for s in images.values()))
    yield from images.values()


def _annotation(
    ann: Any, categories: dict[int, str], include_other: bool, drop_crowd: bool,
    drops: DropCounts,
) -> tuple[RawObject | None, int]:
    try:
        image_id, category_id = int(ann["image_id"]), int(ann["category_id"])
        x, y, w, h = (float(v) for v in ann["bbox"])
    except (KeyError, TypeError, ValueError):
        drops.add(DROP_MALFORMED)
        return None, -1
    if category_id == OTHER_ID and not include_other:
        drops.add(DROP_OTHER)
        return None, image_id
    name = categories.get(category_id)
    if name is None:
        drops.add(DROP_UNKNOWN_CATEGORY)
        return None, image_id
    iscrowd = bool(ann.get("iscrowd", 0))
    if iscrowd and drop_crowd:
        drops.add(DROP_CROWD)
        return None, image_id
    return RawObject(
        name=name, box=(x, y, w, h), segmentation=ann.get("segmentation"),
        source_id=ann.get("id"), iscrowd=iscrowd,
    ), image_id


# --------------------------------------------------------------------------------------------
# label-map form

_LABEL_LINE = re.compile(r"^\s*(\d+)\s*:\s*(.+?)\s*$")


def load_labels(path: Path) -> dict[int, str]:
    """Parse COCO-Stuff's `labels.txt` (`id: name` per line) into {class id: name}, without 0
    ("unlabeled", which is not a class)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (COCO-Stuff labels.txt); check --raw points at "
                        "the dataset") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text at byte {exc.start}; is this labels.txt?") from None
    labels: dict[int, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LABEL_LINE.match(line)
        if not match:
            raise DataError(f"{path}:{lineno}: expected 'id: name', got {line!r}")
        labels[int(match[1])] = match[2]
    labels.pop(0, None)
    if not labels:
        raise DataError(f"{path}: no classes; expected 'id: name' lines")
    return labels


def read_coco_stuff_labelmap(
    raw_dir: Path,
    split: str,
    labels: dict[int, str],
    drops: DropCounts,
    include_other: bool = False,
) -> Iterator[RawScene]:
    """Yield one scene per `{split}_img/*.jpg` (sorted by name), objects read from the matching
    label and instance maps: thing instances in index order, then stuff classes by class id.

    `labels` is `load_labels(raw_dir / "labels.txt")`. Pixels of class 183 "other" (not in
    labels.txt) are named "other" when `include_other`, else counted as dropped.
    """
    _check_split(split)
    raw_dir = Path(raw_dir)
    img_dir = require_dir(raw_dir / f"{split}_img", f"COCO-Stuff {split} images")
    label_dir = require_dir(raw_dir / f"{split}_label", f"COCO-Stuff {split} label maps")
    inst_dir = require_dir(raw_dir / f"{split}_inst", f"COCO-Stuff {split} instance maps")
    names = dict(labels)
    if include_other:
        names.setdefault(OTHER_ID, "other")
    n = 0
    for image_path in sorted(img_dir.glob("*.jpg")):
        label_path = label_dir / f"{image_path.stem}.png"
        inst_path = inst_dir / f"{image_path.stem}.png"
        if not (label_path.is_file() and inst_path.is_file()):
            drops.add(DROP_MISSING_MAP)
            log.debug("%s: no %s or %s", image_path, label_path, inst_path)
            continue
        label_map, inst_map = _read_map(label_path), _read_map(inst_path)
        if label_map is None or inst_map is None:
            drops.add(DROP_UNREADABLE_MAP)
            continue
        if label_map.shape != inst_map.shape:
            drops.add(DROP_MISMATCHED_MAPS)
            log.warning("%s and %s differ in size", label_path, inst_path)
            continue
        height, width = label_map.shape
        scene = RawScene(image_id=_image_id(image_path.stem), image_path=image_path,
                         width=width, height=height, split=SCENE_SPLIT[split])
        scene.objects = (_instances(label_map, inst_map, names, include_other, drops)
                         + _stuff(label_map, names, include_other, drops))
        n += 1
        yield scene
    log.info("COCO-Stuff %s label maps: %d images", split, n)


def _read_map(path: Path) -> np.ndarray | None:
    """A single-channel uint8 PNG as a 2-D array; None (logged) if it is unreadable."""
    return read_label_png(path, "label map")


def _box(sl: tuple[slice, slice]) -> tuple[float, float, float, float]:
    ys, xs = sl
    return float(xs.start), float(ys.start), float(xs.stop - xs.start), float(ys.stop - ys.start)


def _class_name(class_id: int, names: dict[int, str], include_other: bool,
                drops: DropCounts) -> str | None:
    name = names.get(class_id)
    if name is None:
        drops.add(DROP_OTHER if class_id == OTHER_ID and not include_other
                  else DROP_UNKNOWN_LABEL)
    return name


def _instances(label_map: np.ndarray, inst_map: np.ndarray, names: dict[int, str],
               include_other: bool, drops: DropCounts) -> list[RawObject]:
    """Thing instances from an instance map painted over its label map.

    Facts of SPADE's convention (checked on the shipped sample): the instance map equals the label
    map except where instance k's (COCO polygon) mask was painted with the value k. So a pixel with
    inst != label belongs to instance inst ("painted"); a pixel with inst == label is either
    unpainted, or painted by an instance whose index happens to equal the label value there
    ("coincident"). Instance polygons and label-map regions disagree at their borders, so stray
    unpainted thing pixels are scattered over the image: counting every inst == k pixel as
    instance k would stretch its box over the whole image.

    Hence, for instance k: its painted pixels vote for its class (their thing labels). Coincident
    pixels are used only when they form one region with the painted ones (8-connected): that is
    an instance whose class label is k itself (e.g. instance 0 a person, label 0), whose body is
    invisible and whose painted pixels are only its border spill over stuff. That region wins if
    it is larger than the top painted vote.
    """
    painted = inst_map != label_map
    if not painted.any():
        return []
    n_inst = int(inst_map[painted].max()) + 1
    # inst + 1 as labels for find_objects: slices[k] bounds the painted pixels of instance k.
    inst_plus = np.where(painted, inst_map.astype(np.int32) + 1, 0)
    slices = ndimage.find_objects(inst_plus, max_label=n_inst)
    eight = np.ones((3, 3), dtype=bool)
    objects: list[RawObject] = []
    for k in range(n_inst):
        sl = slices[k]
        painted_k = inst_plus == k + 1 if sl is not None else None
        votes = (np.bincount(label_map[painted_k], minlength=256)[: len(THING_IDS)]
                 if painted_k is not None else np.zeros(len(THING_IDS), dtype=np.int64))
        top = int(votes.argmax())
        region = None
        if k < len(THING_IDS) and painted_k is not None:
            coincident = (~painted) & (label_map == k)
            if coincident.any():
                lab, _ = ndimage.label(painted_k | coincident, structure=eight)
                keep = np.unique(lab[painted_k])
                region = np.isin(lab, keep[keep > 0])
                if int(np.count_nonzero(region & coincident)) <= int(votes[top]):
                    region = None
        if region is not None:
            class_id, mask = k + 1, region
        elif painted_k is not None and votes[top] > 0:
            class_id, mask = top + 1, painted_k
        else:
            # A fully hidden instance, or one whose polygon covers only stuff/unlabeled pixels.
            if painted_k is not None:
                drops.add(DROP_UNLABELED_INSTANCE)
            continue
        name = _class_name(class_id, names, include_other, drops)
        if name is None:
            continue
        box_sl = ndimage.find_objects(mask.astype(np.uint8))[0]
        objects.append(RawObject(name=name, box=_box(box_sl), mask=mask[box_sl].copy(),
                                 source_id=k))
    return objects


def _stuff(label_map: np.ndarray, names: dict[int, str], include_other: bool,
           drops: DropCounts) -> list[RawObject]:
    """One object per stuff class present (class ids above the things, excluding unlabeled)."""
    class_ids = label_map.astype(np.int32) + 1  # 256 = unlabeled
    slices = ndimage.find_objects(class_ids)
    objects: list[RawObject] = []
    for class_id in range(len(THING_IDS) + 1, UNLABELED + 1):
        sl = slices[class_id - 1] if class_id <= len(slices) else None
        if sl is None:
            continue
        name = _class_name(class_id, names, include_other, drops)
        if name is None:
            continue
        objects.append(RawObject(name=name, box=_box(sl), mask=class_ids[sl] == class_id,
                                 source_id=class_id))
    return objects
