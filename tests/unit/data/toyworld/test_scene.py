"""Scene composition and drawing, one scene at a time: the owner map agrees with the things."""

from __future__ import annotations

import numpy as np
from PIL import Image

from scene2img.data.toyworld import PALETTE, STUFF, THINGS, make_scene
from scene2img.data.toyworld.drawing import DRAWERS, Pen


def _scenes(n: int = 8, width: int = 160, height: int = 120):
    return [make_scene(np.random.default_rng([5, i]), width, height) for i in range(n)]


def test_the_same_stream_gives_the_same_scene() -> None:
    a, b = (make_scene(np.random.default_rng(1), 96, 64) for _ in range(2))
    assert (a.image == b.image).all() and (a.owner == b.owner).all() and a.things == b.things
    c = make_scene(np.random.default_rng(2), 96, 64)
    assert not np.array_equal(a.image, c.image)


def test_owner_map_agrees_with_the_things() -> None:
    for scene in _scenes():
        h, w = scene.owner.shape
        assert scene.image.shape == (h, w, 3) and scene.image.dtype == np.uint8
        assert set(scene.stuff) <= set(STUFF) and scene.stuff["sky"] == 1
        layers = [t.layer for t in scene.things]
        assert len(set(layers)) == len(layers) and min(layers) > max(scene.stuff.values())
        assert set(np.unique(scene.owner)) <= {0, *scene.stuff.values(), *layers}
        bottoms = [t.box[1] + t.box[3] for t in scene.things]
        assert bottoms == sorted(bottoms)  # drawn far to near
        for t in scene.things:
            assert t.cls in THINGS and t.colour in PALETTE and t.size in ("small", "large")
            x, y, bw, bh = t.box
            assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h
            ys, xs = np.nonzero(scene.owner == t.layer)
            if ys.size:  # a thing may be hidden behind nearer ones; what shows is in its box
                assert x <= xs.min() and xs.max() < x + bw and y <= ys.min() and ys.max() < y + bh
            for _, (px, py, pw, ph) in t.parts:
                assert x - 1 <= px and px + pw <= x + bw + 1  # a part's box: within a pixel
                assert y - 1 <= py and py + ph <= y + bh + 1


def test_the_pen_draws_the_same_footprint_twice() -> None:
    for cls, draw in DRAWERS.items():
        for flip in (False, True):
            pic = Image.new("RGB", (60, 40), (0, 0, 0))
            own = Image.new("L", (60, 40), 0)
            parts = draw(Pen(pic, own, (5, 4, 50, 32), 7, flip), (250, 10, 10),
                         np.random.default_rng(0))
            painted = np.asarray(pic).any(axis=2)
            owned = np.asarray(own) == 7
            assert set(np.unique(np.asarray(own))) <= {0, 7}
            assert (painted == owned).mean() > 0.99, cls  # outlines may differ by a pixel
            ys, xs = np.nonzero(owned)
            assert xs.min() >= 5 and xs.max() <= 54 and ys.min() >= 4 and ys.max() <= 35, cls
            assert all(isinstance(name, str) and len(box) == 4 for name, box in parts)
    # flipping mirrors the drawing inside its box: a bar on the left moves to the right
    for flip, columns in ((False, (5, 19)), (True, (40, 54))):
        own = Image.new("L", (60, 40), 0)
        Pen(Image.new("RGB", (60, 40)), own, (5, 4, 50, 32), 1, flip).rect(0, 0, 0.3, 1, (1, 1, 1))
        xs = np.nonzero(np.asarray(own).any(axis=0))[0]
        assert abs(xs.min() - columns[0]) <= 1 and xs.max() == columns[1]  # rounding: 1 px
