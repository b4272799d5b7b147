"""Annotation-level filtering, split assignment and vocabulary building, per source.

The defaults (in `params.yaml`) are the published ones: sg2im's for Visual Genome, sg2im /
LostGAN's for COCO-Stuff. Every filter counts what it drops in a `DropCounts`, and those counts
go into the manifest; if nothing is left, the error says which filters removed what.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from scene2img.config import ClassSplitParams, PreprocessParams, VGParams
from scene2img.data.drops import DropCounts
from scene2img.data.processed import SPLITS
from scene2img.data.records import RawScene
from scene2img.data.relations import GEOMETRIC_PREDICATES
from scene2img.data.sources._io import load_json
from scene2img.data.sources.visual_genome import ATTRIBUTES as VG_ATTRIBUTES
from scene2img.data.sources.visual_genome import OBJECTS as VG_OBJECTS
from scene2img.data.sources.visual_genome import RELATIONSHIPS as VG_RELATIONSHIPS
from scene2img.data.vocab import IMAGE_OBJECT, IN_IMAGE, Vocab, with_reserved
from scene2img.errors import DataError, EmptyDatasetError

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# shared object surgery


def keep_objects(scene: RawScene, keep: list[bool]) -> None:
    """Drop objects where `keep` is False, renumbering relationships; drops their relationships."""
    new_pos = np.cumsum(keep) - 1
    scene.objects = [o for o, k in zip(scene.objects, keep, strict=True) if k]
    scene.relationships = [
        replace(r, subject=int(new_pos[r.subject]), object=int(new_pos[r.object]))
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
    """Assign the file's splits and order `scenes` as the file lists them (sg2im's record order)."""
    data = load_json(path, "split file")
    if not isinstance(data, dict) or not set(data) <= set(SPLITS) or not all(
            isinstance(ids, list) for ids in data.values()):
        raise DataError(f"{path}: expected {{'train': [ids], 'val': [ids], 'test': [ids]}}")
    split_of: dict[str, str] = {}
    position: dict[str, int] = {}
    for split, ids in data.items():
        for image_id in ids:
            key = str(image_id)
            if split_of.get(key, split) != split:
                raise DataError(f"{path}: image {key} is listed in both {split_of[key]!r} and "
                                f"{split!r}; a split file must not share images between splits")
            if key in split_of:
                drops.add("split file: id listed twice in its split")
                continue
            split_of[key] = split
            position[key] = len(position)
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
    scenes.sort(key=lambda s: position.get(s.image_id, len(position)))


# --------------------------------------------------------------------------------------------
# per source


def filter_visual_genome(
    scenes: list[RawScene], params: PreprocessParams, drops: DropCounts
) -> tuple[list[RawScene], Vocab]:
    """Keep what sg2im's `scripts/preprocess_vg.py` keeps, in its order of operations.

    1. images: a side shorter than `min_image_side` (image_data.json's size);
    2. vocabularies from the train images left: an object name counts once per object that
       carries it (every name of every object in objects.json, whatever its size), an attribute
       once per attributes.json record; kept at `min_*_instances`, most frequent first, ties in
       file order;
    3. objects: the first of an object's names that is in the vocabulary; the annotated box's
       sides at least `min_object_size` (no clipping); sg2im keeps one record per `object_id`
       (the last occurrence that passes) and makes a node of every occurrence of a kept id;
    4. predicate vocabulary: train relationships whose two endpoints survived step 3 (before any
       image is dropped for its counts), kept at `min_relationship_instances`, in order of first
       appearance; train predicates are lowercased, stripped and aliased, val/test predicates are
       looked up as written (`normalise_eval_predicates` fixes that);
    5. images: `min/max_objects_per_image`, then relationships with a vocabulary predicate between
       two kept objects, `min/max_relationships_per_image`;
    6. attributes in the vocabulary, at most `max_attributes_per_image` per object (sg2im's name).

    Options that depart from sg2im (all off by default) are in `params.yaml` (`preprocess.vg`).
    """
    p = params.vg
    scenes = [s for s in scenes if s.split is not None]
    kept = []
    for s in scenes:
        if min(s.width, s.height) < p.min_image_side:
            drops.add(f"image: a side shorter than min_image_side={p.min_image_side}")
        else:
            kept.append(s)
    scenes = kept

    train = [s for s in scenes if s.split == "train"]
    objects = _frequent(_object_name_counts(train), p.min_object_instances)
    attributes = _frequent(_attribute_counts(train), p.min_attribute_instances)
    obj_set, attr_set = set(objects), set(attributes)
    for s in scenes:
        _vg_objects(s, obj_set, p, drops)

    pred_counts: dict[str, int] = {}
    for s in _in_file_order(train, VG_RELATIONSHIPS):
        for r in s.relationships:
            pred_counts[r.predicate] = pred_counts.get(r.predicate, 0) + 1
    preds = [name for name, n in pred_counts.items() if n >= p.min_relationship_instances]
    pred_set = set(preds)
    for s in scenes:
        _vg_relationships(s, pred_set, p.normalise_eval_predicates, drops)

    scenes = count_filter(scenes, lambda s: len(s.objects), p.min_objects_per_image,
                          p.max_objects_per_image, "objects", drops)
    scenes = count_filter(scenes, lambda s: len(s.relationships), p.min_relationships_per_image,
                          p.max_relationships_per_image, "relationships", drops)
    for s in scenes:
        for o in s.objects:
            known = [a for a in o.attributes if a in attr_set]
            take = known[: p.max_attributes_per_image]
            drops.add("attribute: not in vocabulary (min_attribute_instances)",
                      len(o.attributes) - len(known))
            drops.add("attribute: over max_attributes_per_image (per object)",
                      len(known) - len(take))
            o.attributes = list(dict.fromkeys(take))  # multi-hot: a repeat adds nothing

    vocab = Vocab(
        object_idx_to_name=with_reserved(IMAGE_OBJECT, objects),
        pred_idx_to_name=with_reserved(IN_IMAGE, preds),
        attribute_idx_to_name=attributes,
    )
    return scenes, vocab


def _in_file_order(scenes: list[RawScene], file: str) -> list[RawScene]:
    return sorted(scenes, key=lambda s: s.file_order.get(file, len(scenes)))


def _frequent(counts: dict[str, int], min_count: int) -> list[str]:
    """Names counted at least `min_count` times, most frequent first, ties in first-seen order
    (`collections.Counter.most_common`, as sg2im)."""
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: ties keep insertion order
    return [name for name, n in ranked if n >= min_count]


def _object_name_counts(train: list[RawScene]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for s in _in_file_order(train, VG_OBJECTS):
        for o in s.objects:
            if not o.from_relationship:  # only objects.json feeds sg2im's vocabulary
                counts.update(dict.fromkeys(o.names or [o.name]).keys())
    return counts


def _attribute_counts(train: list[RawScene]) -> dict[str, int]:
    """Once per attribute record (a scene built without records: once per object)."""
    counts: Counter[str] = Counter()
    for s in _in_file_order(train, VG_ATTRIBUTES):
        records = s.annotated_attributes or [o.attributes for o in s.objects]
        for record in records:
            counts.update(dict.fromkeys(record).keys())
    return counts


def _vg_objects(s: RawScene, vocab: set[str], p: VGParams, drops: DropCounts) -> None:
    """Step 3 for one image: endpoints, vocabulary name and annotated size, per object id."""
    if not p.keep_relationship_endpoints:
        ends = [o.from_relationship for o in s.objects]
        if any(ends):
            drops.add("relationship: an endpoint is not in objects.json "
                      "(keep_relationship_endpoints=false)",
                      sum(ends[r.subject] or ends[r.object] for r in s.relationships))
            keep_objects(s, [not e for e in ends])

    small = f"object: smaller than min_object_size={p.min_object_size}px"
    unnamed = "object: no name in the vocabulary (min_object_instances)"
    ids = [o.source_id if o.source_id is not None else ("#", i) for i, o in enumerate(s.objects)]
    verdicts: list[str] = []  # "" = passes, else the drop reason
    chosen: dict = {}  # object id -> (position, vocabulary name) of its last passing occurrence
    for i, o in enumerate(s.objects):
        name = next((n for n in o.names or [o.name] if n in vocab), None)
        if name is None:
            verdicts.append(unnamed)
        elif o.box[2] < p.min_object_size or o.box[3] < p.min_object_size:
            verdicts.append(small)
        else:
            verdicts.append("")
            chosen[ids[i]] = (i, name)
    last = {key: i for i, key in enumerate(ids)}
    keep = []
    for i, o in enumerate(s.objects):
        if ids[i] not in chosen:
            drops.add(verdicts[i])
            keep.append(False)
        elif p.dedupe_object_ids and last[ids[i]] != i:
            drops.add("object: object_id repeated within the image (dedupe_object_ids)")
            keep.append(False)
        else:
            j, name = chosen[ids[i]]
            o.name, o.box = name, s.objects[j].box
            keep.append(True)
    if not all(keep):
        keep_objects(s, keep)
    if p.clip_boxes:
        clip_boxes(s, drops)


def _vg_relationships(s: RawScene, preds: set[str], normalise_eval: bool,
                      drops: DropCounts) -> None:
    """Step 5's relationship filter: predicates in the vocabulary (val/test ones as written)."""
    as_written = s.split != "train" and not normalise_eval
    kept = []
    for r in s.relationships:
        key = r.raw_predicate if as_written and r.raw_predicate is not None else r.predicate
        if key in preds:
            kept.append(replace(r, predicate=key))
        elif as_written and r.predicate in preds:
            drops.add("relationship: val/test predicate not in the vocabulary as written "
                      "(normalise_eval_predicates=false)")
        else:
            drops.add("relationship: predicate not in vocabulary (min_relationship_instances)")
    s.relationships = kept


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
    """Connected-region objects; with `salient_only`, only foreground ones (BachGAN): the
    background classes of `preprocess.ade20k.class_split` are dropped."""
    from scene2img.data.vocab import fixed_object_table

    p = params.ade20k
    _, background_ids = class_split(class_table, p.class_split, "preprocess.ade20k.class_split")
    background = {class_table[i] for i in background_ids}
    for s in scenes:
        clip_boxes(s, drops)
        if p.salient_only:
            drop_objects_where(s, lambda o: o.name in background,
                               "object: background class (salient_only)", drops)
    scenes = count_filter(scenes, lambda s: len(s.objects), p.min_objects_per_image,
                          p.max_objects_per_image, "objects", drops)
    vocab = Vocab(fixed_object_table(class_table), [IN_IMAGE, *GEOMETRIC_PREDICATES], [])
    return scenes, vocab


def class_split(
    class_table: dict[int, str],  # {id: name}, e.g. ADE20K's objectInfo150
    split: ClassSplitParams,  # the named background list
    where: str = "class_split",  # named in errors
) -> tuple[list[int], list[int]]:
    """(foreground ids, background ids), each ascending, of a fixed class table under a named
    split. The ids are the vocabulary's object indices (`fixed_object_table`: index = id).

    Example:
        >>> class_split({1: "wall", 2: "car"}, ClassSplitParams("demo-v1", ["wall"]))
        ([2], [1])
    """
    if not split.name.strip():
        raise DataError(f"{where}.name is empty: name the list (e.g. my-split-v1), so that "
                        "datasets record which split they used")
    repeated = sorted(n for n, k in Counter(split.background).items() if k > 1)
    if repeated:
        raise DataError(f"{where}.background lists {repeated} more than once; list each once")
    ids = {name: idx for idx, name in class_table.items()}
    unknown = sorted(set(split.background) - set(ids))
    if unknown:
        raise DataError(f"{where}.background names classes not in the class table "
                        f"(objectInfo150): {unknown}; use the first name of each class's Name")
    background = sorted(ids[n] for n in split.background)
    foreground = sorted(set(class_table) - set(background))
    return foreground, background


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
