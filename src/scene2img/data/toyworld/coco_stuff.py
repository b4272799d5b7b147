"""Writer for COCO-Stuff 2017, both forms: the JSON annotations (annotations/instances_ and
stuff_*.json with polygons and RLE, train2017/, val2017/) and SPADE's label maps
({train,val}_{img,label,inst}/, labels.txt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage

from scene2img.config import ToyworldParams
from scene2img.data.toyworld._io import encode_jpeg, encode_png, write_file, write_json
from scene2img.data.toyworld.classes import (
    COCO_OTHER,
    COCO_STUFF_NAMES,
    COCO_STUFF_SUPER,
    COCO_THING_SUPER,
    STUFF,
    THINGS,
)
from scene2img.data.toyworld.scene import Scene


def _coco_categories() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The thing categories of instances_*.json and the stuff ones (+ "other") of stuff_*.json."""
    name_to_id = {n: i for i, n in enumerate(COCO_STUFF_NAMES)}
    things = [
        {"id": name_to_id[n], "name": n, "supercategory": sup}
        for sup, names in COCO_THING_SUPER.items()
        for n in names
    ]
    stuff = [
        {"id": name_to_id[n], "name": n, "supercategory": sup}
        for sup, names in COCO_STUFF_SUPER.items()
        for n in names.split()
    ]
    stuff.append({"id": COCO_OTHER, "name": "other", "supercategory": "other"})
    return sorted(things, key=lambda c: c["id"]), sorted(stuff, key=lambda c: c["id"])


def _rle_uncompressed(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE (crowd annotations): column-major run lengths, zeros first."""
    flat = mask.ravel(order="F").astype(np.int8)
    starts = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], starts, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def _rle_compressed(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": rle["counts"].decode("ascii"), "size": [int(s) for s in rle["size"]]}


_TURNS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # E, S, W, N with y down: each is a right turn


def _outline(component: np.ndarray) -> np.ndarray:
    """Outer boundary of a 4-connected pixel set, as pixel-corner vertices (clockwise)."""
    m = np.pad(component, 1)
    ys, xs = np.nonzero(m)
    x0, y0 = int(xs[0]), int(ys[0])  # top row, leftmost: only pixel (y0, x0) touches this corner
    x, y, d = x0, y0, 0
    verts = [(x0, y0)]
    while True:
        dx, dy = _TURNS[d]
        x, y = x + dx, y + dy
        if (x, y) == (x0, y0):
            break
        # the two pixels ahead of the corner (x, y): keep the component on the right-hand side
        rx, ry, lx, ly = -dy, dx, dy, -dx
        right = m[y + (dy + ry - 1) // 2, x + (dx + rx - 1) // 2]
        left = m[y + (dy + ly - 1) // 2, x + (dx + lx - 1) // 2]
        new = (d + 1) % 4 if not right else (d - 1) % 4 if left else d
        if new != d:
            verts.append((x, y))
            d = new
    return np.array(verts, np.float64) - 1.0  # undo the padding


def _simplify(pts: np.ndarray, eps: float) -> np.ndarray:
    """Douglas-Peucker on a closed polygon (staircase edges become slanted lines, as in COCO)."""
    closed = np.vstack([pts, pts[:1]])
    keep = np.zeros(len(closed), bool)
    keep[[0, -1]] = True
    far = int(np.argmax(np.hypot(*(closed - closed[0]).T)))
    keep[far] = True
    stack = [(0, far), (far, len(closed) - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = closed[i], closed[j]
        seg = closed[i + 1 : j]
        ab = b - a
        norm = float(np.hypot(*ab))
        if norm == 0:
            dist = np.hypot(*(seg - a).T)
        else:
            dist = np.abs(ab[0] * (seg[:, 1] - a[1]) - ab[1] * (seg[:, 0] - a[0])) / norm
        k = int(np.argmax(dist))
        if dist[k] > eps:
            keep[i + 1 + k] = True
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return closed[keep][:-1]


def _hole_free(mask: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
    """4-connected parts of a mask, cut across their holes (a polygon cannot have a hole).

    Returns (part, row offset, column offset) triples.
    """
    labels, _ = ndimage.label(mask)
    out = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        comp = labels[sl] == k
        holes = ndimage.binary_fill_holes(comp) & ~comp
        if not holes.any():
            out.append((comp, sl[0].start, sl[1].start))
            continue
        rows = np.flatnonzero(holes.any(axis=1))
        cut = int(rows[len(rows) // 2])  # through a hole: both halves have one hole fewer
        top, bottom = comp.copy(), comp.copy()
        top[cut:] = False
        bottom[:cut] = False
        for half in (top, bottom):
            out += [(p, r + sl[0].start, c + sl[1].start) for p, r, c in _hole_free(half)]
    return out


def mask_to_polygons(mask: np.ndarray, min_pixels: int = 4) -> list[list[float]]:
    """COCO polygons of a boolean mask: one per 4-connected, hole-free part."""
    polygons = []
    for part, row, col in _hole_free(mask):
        if part.sum() < min_pixels:
            continue
        pts = _simplify(_outline(part), 0.7) + [col, row]
        if len(pts) >= 3:
            polygons.append([round(float(v), 2) for v in pts.ravel()])
    return polygons


class CocoWriter:
    """Writes both forms: the JSON annotations and SPADE's label maps."""

    def __init__(self, root: Path, params: ToyworldParams) -> None:
        self.root = root
        self.rng = np.random.default_rng([params.seed, 0xC0C0])
        self.things_cats, self.stuff_cats = _coco_categories()
        self.images: dict[str, list[dict[str, Any]]] = {"train2017": [], "val2017": []}
        self.instances: dict[str, list[dict[str, Any]]] = {"train2017": [], "val2017": []}
        self.stuffs: dict[str, list[dict[str, Any]]] = {"train2017": [], "val2017": []}
        self.next_instance = 1
        self.next_stuff = 10_000_000  # stuff annotation ids are kept apart from the instance ids
        self.n_crowd = 0

    def add(self, index: int, split: str, scene: Scene) -> None:
        image_id = index + 1
        coco_split = "val2017" if split == "test" else "train2017"  # COCO has no test labels
        label_split = coco_split[:-4]  # SPADE's train_* / val_*
        file_name = f"{image_id:012d}.jpg"
        height, width = scene.owner.shape
        jpeg = encode_jpeg(scene.image)
        write_file(self.root / coco_split / file_name, jpeg)
        write_file(self.root / f"{label_split}_img" / file_name, jpeg)
        self.images[coco_split].append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": width,
                "height": height,
                "license": 1,
                "date_captured": "2017-01-01 00:00:00",
                "flickr_url": "",
                "coco_url": f"http://images.cocodataset.org/{coco_split}/{file_name}",
            }
        )

        layer_cls = scene.layer_classes()
        lut = np.full(256, 255, np.uint8)  # unannotated layers stay 255
        for layer, (name, is_thing) in layer_cls.items():
            lut[layer] = (THINGS if is_thing else STUFF)[name].coco - 1
        label = lut[scene.owner]
        inst = label.copy()
        other = np.zeros(label.shape, bool)
        n_inst = 0
        for t in scene.things:
            cat = THINGS[t.cls].coco
            if cat > 91:  # house and tree are stuff in COCO-Stuff
                continue
            mask = scene.owner == t.layer
            ann = self._thing_annotation(image_id, cat, mask)
            if ann is None:
                continue
            # SPADE's instance maps: the n-th instance's pixels hold n, over the label map
            inst[mask] = n_inst
            n_inst += 1
            self.instances[coco_split].append(ann)
            other |= mask
        for cat in sorted({int(v) + 1 for v in np.unique(label) if v != 255 and v >= 91}):
            self.stuffs[coco_split].append(self._stuff_annotation(image_id, cat, label == cat - 1))
        if other.any():
            self.stuffs[coco_split].append(self._stuff_annotation(image_id, COCO_OTHER, other))
        stem = file_name[:-4]
        write_file(self.root / f"{label_split}_label" / f"{stem}.png", encode_png(label))
        write_file(self.root / f"{label_split}_inst" / f"{stem}.png", encode_png(inst))

    def _thing_annotation(self, image_id: int, cat: int, mask: np.ndarray) -> dict | None:
        if mask.sum() < 6:  # hidden behind nearer objects
            return None
        h, w = mask.shape
        crowd = self.rng.random() < 0.04 or self.n_crowd == 0
        if crowd:  # crowd regions are stored as uncompressed RLE, as in the real files
            seg: Any = _rle_uncompressed(mask)
            rle = mask_utils.frPyObjects(seg, h, w)
            self.n_crowd += 1
        else:
            seg = mask_to_polygons(mask)
            if not seg:
                return None
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        ann = {
            "id": self.next_instance,
            "image_id": image_id,
            "category_id": cat,
            "segmentation": seg,
            "area": float(mask_utils.area(rle)),
            "bbox": [round(float(v), 2) for v in mask_utils.toBbox(rle)],
            "iscrowd": int(crowd),
        }
        self.next_instance += 1
        return ann

    def _stuff_annotation(self, image_id: int, cat: int, mask: np.ndarray) -> dict[str, Any]:
        seg = _rle_compressed(mask)
        rle = {"counts": seg["counts"].encode("ascii"), "size": seg["size"]}
        ann = {
            "id": self.next_stuff,
            "image_id": image_id,
            "category_id": cat,
            "segmentation": seg,
            "area": float(mask_utils.area(rle)),
            "bbox": [float(v) for v in mask_utils.toBbox(rle)],
            "iscrowd": 0,
        }
        self.next_stuff += 1
        return ann

    def finish(self) -> dict[str, int]:
        info = {
            "description": "scene2img toy world, in the COCO-Stuff 2017 format",
            "url": "",
            "version": "1.0",
            "year": 2017,
            "contributor": "scene2img",
            "date_created": "2017/09/01",
        }
        licenses = [
            {"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}
        ]
        for split in ("train2017", "val2017"):
            for prefix, anns, cats in (
                ("instances", self.instances, self.things_cats),
                ("stuff", self.stuffs, self.stuff_cats),
            ):
                write_json(
                    self.root / "annotations" / f"{prefix}_{split}.json",
                    {
                        "info": info,
                        "licenses": licenses,
                        "images": self.images[split],
                        "annotations": anns[split],
                        "categories": cats,
                    },
                )
        write_file(
            self.root / "labels.txt",
            "".join(f"{i}: {n}\n" for i, n in enumerate(COCO_STUFF_NAMES)),
        )
        return {
            "train2017": len(self.images["train2017"]),
            "val2017": len(self.images["val2017"]),
            "thing_annotations": sum(len(v) for v in self.instances.values()),
            "stuff_annotations": sum(len(v) for v in self.stuffs.values()),
            "crowd_annotations": self.n_crowd,
        }
