"""BachGAN's retrieval score as its code computes it: a plain loop over the bank, per query and
per foreground class, at full resolution (the reference for `scene2img.models.retrieval`, in the
tests and in `benchmarks/retrieval.py`, where it is the loop being sped up)."""

from __future__ import annotations

import numpy as np


def box_masks(objects, boxes, foreground, size: int) -> dict[int, np.ndarray]:
    """{class: [S, S] bool union of its boxes} for the query's foreground boxes; a box covers
    columns round(x S) .. round((x + w) S) - 1, at least one, clipped (rows alike)."""
    out: dict[int, np.ndarray] = {}
    for c, (x, y, w, h) in zip(objects, boxes, strict=True):
        c = int(c)
        if c not in foreground:
            continue
        x0, y0 = round(float(x) * size), round(float(y) * size)
        x1 = max(round(float(x + w) * size), x0 + 1)
        y1 = max(round(float(y + h) * size), y0 + 1)
        mask = out.setdefault(c, np.zeros((size, size), bool))
        mask[max(y0, 0):min(y1, size), max(x0, 0):min(x1, size)] = True
    return out


def brute_force_scores(objects, boxes, segmaps: np.ndarray, foreground) -> np.ndarray:
    """[N] scores of one query (objects [O], boxes [O, 4]) against every map in segmaps
    [N, S, S]: sum of intersections over sum of unions, over the query's classes."""
    masks = box_masks(objects, boxes, set(foreground), segmaps.shape[-1])
    scores = np.zeros(len(segmaps))
    for n, segmap in enumerate(segmaps):
        inter = union = 0
        for c, mask in masks.items():
            label = segmap == c
            i = int((mask & label).sum())
            inter += i
            union += int(mask.sum()) + int(label.sum()) - i
        scores[n] = inter / union if union else 0.0
    return scores
