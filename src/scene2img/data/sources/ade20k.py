"""Reader for ADE20K SceneParsing (ADEChallengeData2016), as the MIT benchmark ships it.

Layout under `raw_dir`:

- `ADEChallengeData2016/images/{training,validation}/*.jpg`: the images (not opened here);
- `ADEChallengeData2016/annotations/{training,validation}/*.png`: one uint8 per pixel, 0 = "other"
  (not a class), 1..150 = `Idx` in the class table; same size as the image;
- the class table `objectInfo150`: found as `.txt` or `.csv` in `ADEChallengeData2016/` or in
  `raw_dir/` itself. The `.txt` is tab separated, the `.csv` comma separated; both have the header
  `Idx Ratio Train Val Name`, and `Name` lists synonyms ("building, edifice" in the .txt,
  "building;edifice" in the .csv): the first synonym is the class name.

Objects are the connected regions (8-connected) of each class, in class order and then in raster
order of their first pixel; regions smaller than `min_region_area` pixels are dropped and counted.
Masks are given cropped to their tight boxes (`RawObject.mask`). Scenes get `split="train"` for
`training` and `"test"` for `validation` (the val split is carved out of training later). With
`segmap_size` S > 0 each scene also carries its whole annotation resized to S x S with nearest
neighbour (`RawScene.segmap`: every class, small regions included, 0 = other), which the record
stores for BachGAN's memory bank.
Background/salient filtering and count filters are not done here (`data/filters.py`).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from scene2img.data.drops import DropCounts
from scene2img.data.records import RawObject, RawScene
from scene2img.data.sources._io import read_label_png, require_dir
from scene2img.errors import DataError

log = logging.getLogger(__name__)

ROOT = "ADEChallengeData2016"
SPLITS = {"training": "train", "validation": "test"}
OBJECT_INFO_NAMES = ("objectInfo150.txt", "objectInfo150.csv")

DROP_SMALL = "object: region smaller than min_region_area"
DROP_UNKNOWN_CLASS = "object: unknown class id in annotation"
DROP_MISSING_ANNOTATION = "image: missing annotation"
DROP_UNREADABLE_ANNOTATION = "image: unreadable annotation"

_EIGHT = np.ones((3, 3), dtype=bool)


def find_object_info(raw_dir: Path) -> Path:
    """The class table's path: the first of objectInfo150.{txt,csv} in ADEChallengeData2016/,
    then in `raw_dir`."""
    raw_dir = Path(raw_dir)
    candidates = [d / name for d in (raw_dir / ROOT, raw_dir) for name in OBJECT_INFO_NAMES]
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(
        f"ADE20K class table not found; looked for {', '.join(map(str, candidates))}. Put "
        "objectInfo150.txt (or the benchmark's objectInfo150.csv) in one of those places"
    )


def load_object_info(path: Path) -> dict[int, str]:
    """Parse objectInfo150 (.txt tab separated, or .csv) into {Idx: first name of Name}."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (ADE20K objectInfo150); check --raw points at "
                        "the dataset") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text at byte {exc.start}; is this objectInfo150?") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: empty; expected the objectInfo150 class table")
    delimiter = "\t" if "\t" in lines[0] else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [h.strip().lower() for h in rows[0]]
    if "idx" not in header or "name" not in header:
        raise DataError(f"{path}:1: expected a header with Idx and Name columns, got {lines[0]!r}")
    i_idx, i_name = header.index("idx"), header.index("name")
    table: dict[int, str] = {}
    for lineno, row in enumerate(rows[1:], 2):
        try:
            idx = int(row[i_idx])
            name = re.split(r"[,;]", row[i_name])[0].strip()
        except (IndexError, ValueError):
            raise DataError(f"{path}:{lineno}: expected Idx and Name fields, got {row!r}") from None
        if not name:
            raise DataError(f"{path}:{lineno}: class {idx} has an empty name")
        table[idx] = name
    return table


def read_scene_categories(raw_dir: Path) -> dict[str, str]:
    """`sceneCategories.txt` (`ADE_train_00000001 airport_terminal` per line) as {image id: scene
    category}: the truth for retrieval quality (which scene a layout came from)."""
    path = Path(raw_dir) / ROOT / "sceneCategories.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: not found; ADE20K SceneParsing ships it beside images/ and "
                        "annotations/") from None
    out = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DataError(f"{path}:{lineno}: expected 'image_id scene_category', got {line!r}")
        out[fields[0]] = fields[1]
    return out


def read_ade20k(
    raw_dir: Path,
    split: str,
    min_region_area: int,
    drops: DropCounts,
    object_info: dict[int, str] | None = None,
    segmap_size: int = 0,  # S > 0: the annotation resized to S x S rides along (RawScene.segmap)
) -> Iterator[RawScene]:
    """Yield one scene per `images/{split}/*.jpg` (sorted by name), objects from its annotation.

    `object_info` defaults to `load_object_info(find_object_info(raw_dir))`.
    """
    if split not in SPLITS:
        raise DataError(f"ADE20K split {split!r} is not one of {list(SPLITS)}")
    if segmap_size < 0:
        raise DataError(f"preprocess.ade20k.segmap_size={segmap_size}: give a side in pixels "
                        "(e.g. 64), or 0 to store no label maps")
    raw_dir = Path(raw_dir)
    root = require_dir(raw_dir / ROOT, "ADE20K SceneParsing, unpacked ADEChallengeData2016.zip")
    img_dir = require_dir(root / "images" / split, f"ADE20K {split} images")
    ann_dir = require_dir(root / "annotations" / split, f"ADE20K {split} annotations")
    if object_info is None:
        object_info = load_object_info(find_object_info(raw_dir))
    n = 0
    for image_path in sorted(img_dir.glob("*.jpg")):
        ann_path = ann_dir / f"{image_path.stem}.png"
        if not ann_path.is_file():
            drops.add(DROP_MISSING_ANNOTATION)
            log.debug("%s: no annotation %s", image_path, ann_path)
            continue
        ann = _read_annotation(ann_path)
        if ann is None:
            drops.add(DROP_UNREADABLE_ANNOTATION)
            continue
        height, width = ann.shape
        scene = RawScene(image_id=image_path.stem, image_path=image_path, width=width,
                         height=height, split=SPLITS[split])
        scene.objects = _regions(ann, object_info, min_region_area, drops)
        if segmap_size:
            scene.segmap = resize_label_map(ann, segmap_size)
        n += 1
        yield scene
    log.info("ADE20K %s: %d images", split, n)


def resize_label_map(labels: np.ndarray, size: int) -> np.ndarray:
    """[H, W] uint8 label map -> [size, size] uint8, nearest neighbour (labels never mix)."""
    return np.asarray(Image.fromarray(labels).resize((size, size), Image.Resampling.NEAREST))


def _read_annotation(path: Path) -> np.ndarray | None:
    return read_label_png(path, "annotation")


def _regions(ann: np.ndarray, object_info: dict[int, str], min_region_area: int,
             drops: DropCounts) -> list[RawObject]:
    objects: list[RawObject] = []
    # Label each class only inside its bounding box: far cheaper than whole-image passes.
    for class_id, class_sl in enumerate(ndimage.find_objects(ann), 1):
        if class_sl is None:
            continue
        name = object_info.get(class_id)
        if name is None:
            drops.add(DROP_UNKNOWN_CLASS)
            continue
        y0, x0 = class_sl[0].start, class_sl[1].start
        regions, n = ndimage.label(ann[class_sl] == class_id, structure=_EIGHT)
        areas = np.bincount(regions.ravel(), minlength=n + 1)
        for r, sl in enumerate(ndimage.find_objects(regions), 1):
            if areas[r] < min_region_area:
                drops.add(DROP_SMALL)
                continue
            ys, xs = sl
            box = (float(x0 + xs.start), float(y0 + ys.start),
                   float(xs.stop - xs.start), float(ys.stop - ys.start))
            objects.append(RawObject(name=name, box=box, mask=regions[sl] == r,
                                     source_id=class_id))
    return objects
