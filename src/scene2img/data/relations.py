"""Geometric relationships for sources without annotated ones (COCO-Stuff, ADE20K), as sg2im.

For every object, one other object is picked at random; the pair is ordered at random; the
predicate comes from box containment (`surrounding` / `inside`) or else from the angle between
the two objects' centres (mask centroids where there are masks): `left of`, `above`,
`right of`, `below`. The `__image__` object, last, gets an `__in_image__` triple from every
other object.

sg2im's COCO dataset draws these afresh every time it loads an image (`sg2im/data/coco.py`),
so training sees new graphs each epoch. Here preprocessing stores one draw per image (seeded by
the image id), which val/test use as they are, and the training dataset draws again with
`geometric_triples` (`data.resample_relations`; see `data/dataset.py`).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

GEOMETRIC_PREDICATES = ["left of", "right of", "above", "below", "inside", "surrounding"]
IN_IMAGE = "__in_image__"


def object_centres(boxes: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
    """[O, 2] centres in normalised image coordinates: mask centroid, else box centre.

    boxes: [O, 4] normalised (x, y, w, h); masks: [O, M, M] in box coordinates, or None.
    As sg2im, the M mask pixels of a row are spread from the box's left edge to its right edge
    (`linspace(x0, x1, M)`), and an empty mask falls back to the box centre.
    """
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    if masks is None:
        return centres
    m = masks.shape[-1]
    grid = np.linspace(0.0, 1.0, m)  # pixel positions in [0, 1] box coordinates
    for i, mask in enumerate(masks):
        total = mask.sum()
        if total > 0:
            cy = (mask.sum(axis=1) * grid).sum() / total
            cx = (mask.sum(axis=0) * grid).sum() / total
            centres[i] = boxes[i, :2] + boxes[i, 2:] * np.array([cx, cy])
    return centres


def geometric_predicate(subj_box: np.ndarray, obj_box: np.ndarray, d: np.ndarray) -> str:
    """The sg2im rule for one ordered pair; `d` = subject centre - object centre."""
    sx0, sy0, sw, sh = subj_box
    ox0, oy0, ow, oh = obj_box
    sx1, sy1, ox1, oy1 = sx0 + sw, sy0 + sh, ox0 + ow, oy0 + oh
    if sx0 < ox0 and sx1 > ox1 and sy0 < oy0 and sy1 > oy1:
        return "surrounding"
    if sx0 > ox0 and sx1 < ox1 and sy0 > oy0 and sy1 < oy1:
        return "inside"
    theta = math.atan2(d[1], d[0])  # image y grows downwards
    if theta >= 3 * math.pi / 4 or theta <= -3 * math.pi / 4:
        return "left of"
    if -3 * math.pi / 4 <= theta < -math.pi / 4:
        return "above"
    if -math.pi / 4 <= theta < math.pi / 4:
        return "right of"
    return "below"


def image_rng(seed: int, image_id: str) -> np.random.Generator:
    """A generator that depends only on the seed and the image, not on processing order."""
    return np.random.default_rng([seed, zlib.crc32(image_id.encode())])


def synthesize_relationships(
    boxes: np.ndarray,  # [O, 4] normalised (x, y, w, h) of the real objects
    masks: np.ndarray | None,  # [O, M, M] box-coordinate masks, or None
    rng: np.random.Generator,
) -> list[tuple[int, str, int]]:
    """sg2im's random geometric triples among the real objects, positions into `boxes`.

    The `__in_image__` triples are added by the caller once the image object is appended.
    """
    n = len(boxes)
    if n < 2:
        return []
    centres = object_centres(boxes.astype(np.float64), masks)
    triples = []
    for cur in range(n):
        other = int(rng.integers(n - 1))
        other += other >= cur  # uniform over the other objects
        s, o = (cur, other) if rng.random() > 0.5 else (other, cur)
        triples.append((s, geometric_predicate(boxes[s], boxes[o], centres[s] - centres[o]), o))
    return triples


def geometric_triples(
    boxes: np.ndarray,  # [O, 4] normalised (x, y, w, h) of the real objects
    masks: np.ndarray | None,  # [O, M, M] box-coordinate masks, or None
    rng: np.random.Generator,
    pred_to_idx: dict[str, int],  # the vocabulary's predicate indices
) -> list[tuple[int, int, int]]:
    """One image's whole graph as sg2im builds it: random geometric triples among the real objects
    (positions 0..O-1), then `__in_image__` from each to the `__image__` object at position O."""
    named = synthesize_relationships(boxes, masks, rng)
    triples = [(s, pred_to_idx[p], o) for s, p, o in named]
    return triples + in_image_triples(len(boxes), pred_to_idx)


def in_image_triples(n: int, pred_to_idx: dict[str, int]) -> list[tuple[int, int, int]]:
    """`(i, __in_image__, n)` for the n real objects; `__image__` is object n (sg2im)."""
    return [(i, pred_to_idx[IN_IMAGE], n) for i in range(n)]


# Horizontal flip: left/right predicates swap; the rest are symmetric under a mirror.
FLIP_PREDICATES = {"left of": "right of", "right of": "left of"}
