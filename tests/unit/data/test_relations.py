from __future__ import annotations

import numpy as np
import pytest

from scene2img.data.relations import (
    geometric_predicate,
    image_rng,
    object_centres,
    synthesize_relationships,
)


def _box(x0, y0, x1, y1):
    return np.array([x0, y0, x1 - x0, y1 - y0], np.float64)


@pytest.mark.parametrize(
    ("subj", "obj", "expected"),
    [
        (_box(0.0, 0.0, 1.0, 1.0), _box(0.4, 0.4, 0.6, 0.6), "surrounding"),
        (_box(0.4, 0.4, 0.6, 0.6), _box(0.0, 0.0, 1.0, 1.0), "inside"),
        (_box(0.0, 0.4, 0.2, 0.6), _box(0.7, 0.4, 0.9, 0.6), "left of"),
        (_box(0.7, 0.4, 0.9, 0.6), _box(0.0, 0.4, 0.2, 0.6), "right of"),
        (_box(0.4, 0.0, 0.6, 0.2), _box(0.4, 0.7, 0.6, 0.9), "above"),  # y grows downwards
        (_box(0.4, 0.7, 0.6, 0.9), _box(0.4, 0.0, 0.6, 0.2), "below"),
    ],
)
def test_sg2im_rule(subj, obj, expected) -> None:
    centres = object_centres(np.stack([subj, obj]), None)
    assert geometric_predicate(subj, obj, centres[0] - centres[1]) == expected


def test_mask_centroid_moves_the_centre() -> None:
    boxes = np.array([[0.0, 0.0, 1.0, 1.0]])
    mask = np.zeros((1, 16, 16), np.uint8)
    mask[0, :, 12:] = 1  # only the right quarter
    (cx, cy), = object_centres(boxes.copy(), mask)
    # sg2im's grid: the 16 columns span the box edge to edge (linspace(x0, x1, 16))
    assert cx == pytest.approx(np.mean([12, 13, 14, 15]) / 15) and cy == pytest.approx(0.5)
    mask[:] = 0  # empty: the box centre
    assert object_centres(boxes.copy(), mask).tolist() == [[0.5, 0.5]]


def test_synthesized_triples_are_seeded_by_image_not_order() -> None:
    rng = np.random.default_rng(0)
    boxes = rng.uniform(0, 0.5, (5, 4))
    a = synthesize_relationships(boxes, None, image_rng(0, "img1"))
    b = synthesize_relationships(boxes, None, image_rng(0, "img1"))
    c = synthesize_relationships(boxes, None, image_rng(1, "img1"))
    assert a == b and a != c
    assert len(a) == 5  # one per object
    assert all(s != o and 0 <= s < 5 and 0 <= o < 5 for s, _, o in a)
    assert synthesize_relationships(boxes[:1], None, image_rng(0, "x")) == []
