"""Annotation-level filtering, split assignment and vocabulary building, per source.

The defaults (in `params.yaml`) are the published ones: sg2im's for Visual Genome, sg2im /
LostGAN's for COCO-Stuff. Every filter counts what it drops in a `DropCounts`, and those counts
go into the manifest; if nothing is left, the error says which filters removed what.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scene2img.config import PreprocessParams
from scene2img.data.drops import DropCounts
from scene2img.data.processed import SPLITS
from scene2img.data.records import RawScene
from scene2img.data.relations import GEOMETRIC_PREDICATES
from scene2img.data.sources._io import load_json
from scene2img.data.vocab import IMAGE_OBJECT, IN_IMAGE, Vocab, counted_names, with_reserved
from scene2img.errors import DataError, EmptyDatasetError

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# shared object surgery


def keep_objects(scene: RawScene, keep: list[bool]) -> None:
    """Drop objects where `keep` is False, renumbering relationships; drops their relationships."""
    new_pos = np.cumsum(keep) - 1
    scene.objects = [o for o, k in zip(scene.objects, keep, strict=True) if k]
    scene.relationships = [
        type(r)(int(new_pos[r.subject]), r.predicate, int(new_pos[r.object]))
        for r in scene.relationships
        if keep[r.subject] and keep[r.object]
    ]


def drop_objects_where(
    scene: RawScene, predicate: Callable, reason: str, drops: DropCounts
) -> None:
    keep = [not predicate(o) for o in scene.objects]
    dropped = len(keep) - sum(keep)
    if dropped:
        drops.add(reason, dropped)
        keep_objects(scene, keep)


def clip_boxes(scene: RawScene, drops: DropCounts) -> None:
    """Clip boxes to the image; drop those with no area left (less than one pixel a side)."""
    keep = []
    for obj in scene.objects:
        x0, y0, w, h = obj.box
        x1, y1 = min(x0 + w, scene.width), min(y0 + h, scene.height)
        x0, y0 = max(x0, 0.0), max(y0, 0.0)
        ok = (x1 - x0) >= 1 and (y1 - y0) >= 1
        if ok and (x0, y0, x1 - x0, y1 - y0) != tuple(obj.box):
            drops.add("object: box clipped to the image (kept)")
            # A label-map mask is in box coordinates: crop it with the box.
            if obj.mask is not None:
                mh, mw = obj.mask.shape
                ox0, oy0, ow, oh = obj.box
                c0 = int(round((x0 - ox0) / ow * mw))
                r0 = int(round((y0 - oy0) / oh * mh))
                c1 = max(c0 + 1, int(round((x1 - ox0) / ow * mw)))
                r1 = max(r0 + 1, int(round((y1 - oy0) / oh * mh)))
                obj.mask = obj.mask[r0:r1, c0:c1]
            obj.box = (x0, y0, x1 - x0, y1 - y0)
        keep.append(ok)
    dropped = len(keep) - sum(keep)
    if dropped:
        drops.add("object: degenerate box (no area inside the image)", dropped)
        keep_objects(scene, keep)


def count_filter(
    scenes: list[RawScene], count: Callable[[RawScene], int], lo: int, hi: int, what: str,
    drops: DropCounts,
) -> list[RawScene]:
    kept = []
    for s in scenes:
        n = count(s)
        if n < lo:
            drops.add(f"image: fewer than {lo} {what}")
        elif n > hi:
            drops.add(f"image: more than {hi} {what}")
        else:
            kept.append(s)
    return kept


# --------------------------------------------------------------------------------------------
# splits


def assign_splits(
    scenes: list[RawScene], source: str, params: PreprocessParams, drops: DropCounts
) -> None:
    """Set `scene.split` for every scene; scenes the split file does not name get `None`.

    Visual Genome: an id file like sg2im's `vg_splits.json`, or a seeded split by fractions.
    COCO-Stuff / ADE20K: the source's own train/test, with `val_size` images (seeded) moved
    from train to val (sg2im: COCO 2017 val is the test set; val comes out of train).
    """
    rng = np.random.default_rng(params.seed)
    if source == "vg":
        if params.vg.split_file:
            _splits_from_file(scenes, Path(params.vg.split_file), drops)
        else:
            fractions = params.vg.split_fractions
            if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
                raise DataError(
                    f"preprocess.vg.split_fractions={fractions}: need three non-negative "
                    "fractions (train, val, test) that sum to 1"
                )
            order = rng.permutation(len(scenes))
            bounds = np.cumsum(fractions)[:2] * len(scenes)
            for rank, i in enumerate(order):
                scenes[i].split = SPLITS[int(np.searchsorted(bounds, rank, side="right"))]
        return
    val_size = params.coco_stuff.val_size if source == "coco-stuff" else params.ade20k.val_size
    train = [s for s in scenes if s.split == "train"]
    if train and val_size >= len(train):
        raise DataError(
            f"{source}: val_size={val_size} but train has only {len(train)} images; "
            "lower preprocess.<source>.val_size"
        )
    for i in rng.permutation(len(train))[:val_size]:
        train[i].split = "val"


def _splits_from_file(scenes: list[RawScene], path: Path, drops: DropCounts) -> None:
    data = load_json(path, "split file")
    if not isinstance(data, dict) or not set(data) <= set(SPLITS):
        raise DataError(f"{path}: expected {{'train': [ids], 'val': [ids], 'test': [ids]}}")
    split_of: dict[str, str] = {}
    for split, ids in data.items():
        for image_id in ids:
            split_of[str(image_id)] = split
    known = {s.image_id for s in scenes}
    unknown = len(set(split_of) - known)
    if unknown:
        drops.add("split file: ids not in the dataset", unknown)
        log.warning("%s names %d image ids that are not in the dataset", path, unknown)
    if known and not (known & set(split_of)):
        raise DataError(
            f"{path}: none of its {len(split_of)} image ids is in the dataset "
            f"(e.g. dataset has {sorted(known)[:3]}); is it the split file for this dataset?"
        )
    for s in scenes:
        s.split = split_of.get(s.image_id)
    drops.add("image: not named by the split file", sum(s.split is None for s in scenes))


# --------------------------------------------------------------------------------------------
# per source


def filter_visual_genome(
    scenes: list[RawScene], params: PreprocessParams, drops: DropCounts
) -> tuple[list[RawScene], Vocab]:
    """sg2im's preprocess_vg: vocabulary from train counts, then object and image filters."""
    p = params.vg
    scenes = [s for s in scenes if s.split is not None]
    kept = []
    for s in scenes:
        if min(s.width, s.height) < p.min_image_side:
            drops.add(f"image: a side shorter than min_image_side={p.min_image_side}")
        else:
            kept.append(s)
    scenes = kept
    for s in scenes:
        clip_boxes(s, drops)

    train = [s for s in scenes if s.split == "train"]
    obj_counts = Counter(o.name for s in train for o in s.objects)
    attr_counts = Counter(a for s in train for o in s.objects for a in o.attributes)
    objects = counted_names(obj_counts, p.min_object_instances)
    attributes = counted_names(attr_counts, p.min_attribute_instances)
    obj_set, attr_set = set(objects), set(attributes)

    for s in scenes:
        drop_objects_where(s, lambda o: o.name not in obj_set,
                           "object: name not in vocabulary (min_object_instances)", drops)
        drop_objects_where(s, lambda o: o.box[2] < p.min_object_size or o.box[3] < p.min_object_size,
                           f"object: smaller than min_object_size={p.min_object_size}px", drops)
        for o in s.objects:
            kept_attrs = [a for a in o.attributes if a in attr_set]
            drops.add("attribute: not in vocabulary (min_attribute_instances)",
                      len(o.attributes) - len(kept_attrs))
            o.attributes = kept_attrs

    pred_counts = Counter(r.predicate for s in scenes if s.split == "train" for r in s.relationships)
    preds = counted_names(pred_counts, p.min_relationship_instances)
    pred_set = set(preds)
    for s in scenes:
        n = len(s.relationships)
        s.relationships = [r for r in s.relationships if r.predicate in pred_set]
        drops.add("relationship: predicate not in vocabulary (min_relationship_instances)",
                  n - len(s.relationships))

    scenes = count_filter(scenes, lambda s: len(s.objects), p.min_objects_per_image,
                          p.max_objects_per_image, "objects", drops)
    scenes = count_filter(scenes, lambda s: len(s.relationships), p.min_relationships_per_image,
                          p.max_relationships_per_image, "relationships", drops)
    for s in scenes:
        budget = p.max_attributes_per_image
        for o in s.objects:
            take = o.attributes[: max(budget, 0)]
            drops.add("attribute: over max_attributes_per_image", len(o.attributes) - len(take))
            o.attributes = take
            budget -= len(take)

    vocab = Vocab(
        object_idx_to_name=with_reserved(IMAGE_OBJECT, objects),
        pred_idx_to_name=with_reserved(IN_IMAGE, preds),
        attribute_idx_to_name=attributes,
    )
    return scenes, vocab


def filter_coco_stuff(
    scenes: list[RawScene], params: PreprocessParams, class_table: dict[int, str],
    drops: DropCounts,
) -> tuple[list[RawScene], Vocab]:
    """sg2im / LostGAN COCO-Stuff: min object area fraction, 3-8 objects per image."""
    from scene2img.data.vocab import fixed_object_table

    p = params.coco_stuff
    names = set(class_table.values())
    for s in scenes:
        clip_boxes(s, drops)
        drop_objects_where(s, lambda o: o.name not in names, "object: class not in the class table",
                           drops)
        area = float(s.width * s.height)
        drop_objects_where(s, lambda o, area=area: o.box[2] * o.box[3] / area < p.min_object_size,
                           f"object: smaller than min_object_size={p.min_object_size} of the image",
                           drops)
    scenes = count_filter(scenes, lambda s: len(s.objects), p.min_objects_per_image,
                          p.max_objects_per_image, "objects", drops)
    vocab = Vocab(fixed_object_table(class_table), [IN_IMAGE, *GEOMETRIC_PREDICATES], [])
    return scenes, vocab


def filter_ade20k(
    scenes: list[RawScene], params: PreprocessParams, class_table: dict[int, str],
    drops: DropCounts,
) -> tuple[list[RawScene], Vocab]:
    """Connected-region objects; optionally only salient (non-background) ones, as BachGAN."""
    from scene2img.data.vocab import fixed_object_table

    p = params.ade20k
    background = set(p.background_classes)
    unknown = background - set(class_table.values())
    if unknown:
        raise DataError(
            f"preprocess.ade20k.background_classes names classes not in objectInfo150: "
            f"{sorted(unknown)}"
        )
    for s in scenes:
        clip_boxes(s, drops)
        if p.salient_only:
            drop_objects_where(s, lambda o: o.name in background,
                               "object: background class (salient_only)", drops)
    scenes = count_filter(scenes, lambda s: len(s.objects), p.min_objects_per_image,
                          p.max_objects_per_image, "objects", drops)
    vocab = Vocab(fixed_object_table(class_table), [IN_IMAGE, *GEOMETRIC_PREDICATES], [])
    return scenes, vocab


def require_nonempty(scenes: list[RawScene], drops: DropCounts, source: str) -> None:
    """Stop with the drop counts when filtering left no training images."""
    if any(s.split == "train" for s in scenes):
        return
    top = sorted(drops.as_dict().items(), key=lambda kv: -kv[1])[:8]
    detail = "; ".join(f"{reason}: {n}" for reason, n in top) or "no input scenes at all"
    raise EmptyDatasetError(
        f"{source}: filtering left no training images. Dropped: {detail}. "
        "Relax the matching preprocess parameters (see params.yaml) or check --raw."
    )
