"""The synthetic "toy world": outdoor scenes written in the raw formats of the real datasets.

Tests and the demo train on it, so it is meant to be learnable and varied: a sky with a gradient, a
wavy horizon over grass, sand, sea or a road (optionally a mountain range), and 2 to 6 drawn
objects (person, car, bus, boat, bench, ball, house, tree; sometimes an airplane) in depth order,
each painted in the colour its attribute names. Classes exist in all three real vocabularies and
are written with each format's own names and ids (see `THINGS` and `STUFF`).

Scenes are composed the way their Visual Genome graphs describe them: each ground band holds a row
of things on a common line, evenly spaced from left to right, and the graph states each thing's
band ("person on grass") and its neighbours in the row ("bench left of person"). So the layout
follows from the graph up to small jitter, which a layout model can learn and a class's mean box
cannot (the airplane, placed at random in the sky, is the exception).

One scene generator, three writers: the same params give the same scenes in every format, and the
formats differ only in how they annotate them:

- "vg": Visual Genome 1.4 (image_data/objects/attributes/relationships.json, alias files,
  VG_100K[_2]/ images, vg_splits.json), with the real files' quirks injected at small rates;
- "coco-stuff": COCO-Stuff 2017, both the JSON form (annotations/instances_ and stuff_*.json,
  train2017/, val2017/) and SPADE's label-map form ({train,val}_{img,label,inst}/, labels.txt);
- "ade20k": ADEChallengeData2016 (images/, annotations/, objectInfo150.txt, sceneCategories.txt).

Every image is drawn twice at once, in colour and as an "owner" map of layer ids, so masks, label
maps and boxes agree with the pixels exactly. Output is deterministic: same params, same bytes.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils
from scipy import ndimage
from tqdm import tqdm

from scene2img.config import ToyworldParams
from scene2img.errors import ConfigError
from scene2img.files import atomic_dir

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "STUFF", "THINGS", "generate_toyworld"]

FORMATS = ("vg", "coco-stuff", "ade20k")
JPEG_QUALITY = 90

Box = tuple[int, int, int, int]  # x, y, w, h in pixels; the object lies in x..x+w-1, y..y+h-1
RGB = tuple[int, int, int]


# --------------------------------------------------------------------------------------------
# classes


@dataclass(frozen=True)
class ToyClass:
    """One toy-world class under its name/id in each format."""

    vg: str  # Visual Genome name (in the sg2im vocabulary)
    synset: str  # VG synset
    coco: int  # COCO-Stuff class id (1-91 things, 92-182 stuff)
    ade: int  # ADE20K SceneParsing Idx (1-150)


THINGS: dict[str, ToyClass] = {
    "person": ToyClass("person", "person.n.01", 1, 13),
    "car": ToyClass("car", "car.n.01", 3, 21),
    "bus": ToyClass("bus", "bus.n.01", 6, 81),
    "boat": ToyClass("boat", "boat.n.01", 9, 77),
    "bench": ToyClass("bench", "bench.n.01", 15, 70),
    "ball": ToyClass("ball", "ball.n.01", 37, 120),  # COCO: "sports ball"
    "airplane": ToyClass("plane", "airplane.n.01", 5, 91),  # VG: "plane"
    "house": ToyClass("house", "house.n.01", 128, 26),  # a stuff class in COCO-Stuff
    "tree": ToyClass("tree", "tree.n.01", 169, 5),  # a stuff class in COCO-Stuff
}
STUFF: dict[str, ToyClass] = {
    "sky": ToyClass("sky", "sky.n.01", 157, 3),  # COCO: "sky-other"
    "grass": ToyClass("grass", "grass.n.01", 124, 10),
    "sand": ToyClass("sand", "sand.n.01", 154, 47),
    "sea": ToyClass("water", "water.n.01", 155, 27),  # VG: "water"
    "road": ToyClass("road", "road.n.01", 149, 7),
    "mountain": ToyClass("mountain", "mountain.n.01", 135, 17),
}
# Parts are annotated in Visual Genome only ("car has wheel").
PART_SYNSETS = {
    "wheel": "wheel.n.01",
    "window": "window.n.01",
    "door": "door.n.01",
    "roof": "roof.n.01",
    "head": "head.n.01",
    "trunk": "trunk.n.01",
}
COCO_OTHER = 183  # COCO-Stuff's "other": the pixels of thing classes, in the stuff files

# Colours from the VG attribute vocabulary, and the RGB each is painted with.
PALETTE: dict[str, RGB] = {
    "white": (238, 238, 238),
    "black": (28, 28, 30),
    "gray": (128, 128, 128),
    "red": (200, 35, 35),
    "green": (45, 150, 55),
    "blue": (40, 70, 200),
    "yellow": (235, 205, 40),
    "orange": (240, 130, 25),
    "brown": (120, 72, 35),
    "pink": (240, 135, 175),
    "purple": (125, 50, 160),
}


@dataclass(frozen=True)
class _Spec:
    """How a thing class is placed and painted."""

    height: float  # box height as a fraction of the image height, at depth scale 1
    aspect: float  # box width / height
    supports: tuple[str, ...]  # stuff it stands on ("on") or floats in ("in")
    colours: tuple[str, ...]
    weight: float = 1.0  # how often it is picked where it fits (rare fits get more)


_SPECS: dict[str, _Spec] = {
    "person": _Spec(
        0.3,
        0.42,
        ("grass", "sand", "road"),
        ("red", "blue", "green", "yellow", "white", "black", "orange", "pink", "purple"),
    ),
    "car": _Spec(
        0.15,
        2.0,
        ("road", "grass", "sand"),
        ("red", "blue", "white", "black", "yellow", "gray", "green", "orange"),
    ),
    "bus": _Spec(0.21, 2.5, ("road",), ("yellow", "red", "blue", "white", "green", "orange"), 4.0),
    "boat": _Spec(0.17, 1.4, ("sea",), ("white", "red", "blue", "yellow", "orange"), 2.0),
    "bench": _Spec(
        0.1, 2.0, ("grass", "sand"), ("brown", "green", "red", "blue", "white", "black")
    ),
    "ball": _Spec(
        0.06, 1.0, ("grass", "sand"), ("red", "yellow", "white", "blue", "orange", "green", "pink")
    ),
    "airplane": _Spec(0.08, 2.8, ("sky",), ("white", "gray", "red", "blue"), 0.6),
    "house": _Spec(
        0.32, 1.15, ("grass", "sand"), ("white", "yellow", "red", "brown", "blue", "gray", "pink")
    ),
    "tree": _Spec(
        0.4, 0.7, ("grass", "sand"), ("green", "green", "green", "yellow", "orange", "red")
    ),
}

# scene type -> ground bands from the horizon down, and its ADE20K scene category
_SCENES: dict[str, tuple[tuple[str, ...], str]] = {
    "meadow": (("grass",), "pasture"),
    "beach": (("sea", "sand"), "beach"),
    "street": (("grass", "road"), "highway"),
    "lake": (("sea", "grass"), "lake_natural"),
    "desert": (("sand",), "desert_sand"),
}

# where things stand (bottom edge, fraction of the image height), by the number of ground bands:
# lines that lie inside their band in every scene (horizon at 0.38-0.48, a second band's edge at
# 35-50% of the way down the rest), so a row's depth follows from the graph alone
_ROW_LINES: dict[int, tuple[float, ...]] = {1: (0.78,), 2: (0.56, 0.86)}

_GLASS: RGB = (150, 190, 215)
_TYRE: RGB = (30, 30, 32)
_SKIN: tuple[RGB, ...] = ((240, 200, 165), (200, 150, 110), (140, 95, 60), (95, 65, 45))


# --------------------------------------------------------------------------------------------
# public entry point


def generate_toyworld(fmt: str, out_dir: Path, params: ToyworldParams) -> dict[str, int]:
    """Write `params.images` synthetic scenes to `out_dir` in raw format `fmt`.

    `fmt` is "vg", "coco-stuff" or "ade20k". The folder is written under a temporary sibling name
    and renamed into place at the end; an existing non-empty `out_dir` is refused (`DataError`).
    Returns counts: images per split, objects drawn, and format-specific annotation counts.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown toyworld format {fmt!r}; expected one of {', '.join(FORMATS)}")
    _check_params(params)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, "the toy world") as tmp:
        log.info("generating %d toy-world scenes (%dx%d) in %s format into %s", params.images,
                 params.width, params.height, fmt, out_dir)
        splits = _assign_splits(params)
        writer = _WRITERS[fmt](tmp, params)
        objects = 0
        for index in tqdm(range(params.images), desc=f"toyworld {fmt}", unit="image"):
            scene = make_scene(
                np.random.default_rng([params.seed, index]), params.width, params.height
            )
            objects += len(scene.things)
            writer.add(index, splits[index], scene)
        counts = writer.finish()
    counts = {
        "images": params.images,
        **{s: splits.count(s) for s in ("train", "val", "test")},
        "objects": objects,
        **counts,
    }
    log.info("toy world written to %s: %s", out_dir, counts)
    return counts


def _check_params(params: ToyworldParams) -> None:
    if params.images < 1:
        raise ConfigError(f"toyworld.images must be at least 1, got {params.images}")
    if params.width < 64 or params.height < 64:
        raise ConfigError(
            f"toyworld.width/height must be at least 64 pixels, got {params.width}x{params.height}"
        )
    fractions = (params.val_fraction, params.test_fraction)
    if min(fractions) < 0 or sum(fractions) >= 1:
        raise ConfigError(
            "toyworld.val_fraction and test_fraction must be >= 0 and sum to less than 1, got "
            f"{params.val_fraction} and {params.test_fraction}"
        )


def _assign_splits(params: ToyworldParams) -> list[str]:
    n = params.images
    n_test = round(n * params.test_fraction)
    n_val = min(round(n * params.val_fraction), n - n_test - 1) if n > n_test else 0
    splits = ["train"] * n
    order = np.random.default_rng(params.seed).permutation(n)
    for k, i in enumerate(order[: n_test + n_val]):
        splits[int(i)] = "test" if k < n_test else "val"
    return splits


# --------------------------------------------------------------------------------------------
# the scene


@dataclass
class Thing:
    """A drawn foreground object."""

    cls: str  # key of THINGS
    box: Box
    colour: str  # key of PALETTE: the colour of its main part
    size: str  # "small" | "large", against the class's typical box height
    support: str  # key of STUFF it stands on or floats in
    layer: int = 0  # its id in `Scene.owner`
    parts: list[tuple[str, Box]] = field(default_factory=list)  # visible parts (VG)


@dataclass
class Scene:
    kind: str  # key of _SCENES
    image: np.ndarray  # H x W x 3 uint8
    owner: np.ndarray  # H x W uint8: layer id per pixel; 0 = unlabeled
    stuff: dict[str, int]  # stuff class -> layer id
    things: list[Thing]  # in drawing (depth) order

    def layer_classes(self) -> dict[int, tuple[str, bool]]:
        """layer id -> (class, is_thing)."""
        out = {layer: (name, False) for name, layer in self.stuff.items()}
        out.update({t.layer: (t.cls, True) for t in self.things})
        return out


def make_scene(rng: np.random.Generator, width: int, height: int) -> Scene:
    """Draw one scene: stuff background, shadows, then the objects from far to near."""
    kind = list(_SCENES)[int(rng.integers(len(_SCENES)))]
    bands = _SCENES[kind][0]
    owner, stuff, horizon = _stuff_layout(rng, bands, width, height)
    image = _paint_stuff(rng, owner, stuff, horizon)
    things = _place_things(rng, owner, stuff, horizon, width, height)
    things.sort(key=lambda t: (t.box[1] + t.box[3], t.box[0]))  # far (small bottom y) first
    for t in things:
        if t.support not in ("sea", "sky"):
            _shadow(image, t.box)
    pic = Image.fromarray(image)
    own = Image.fromarray(owner)
    next_layer = max(stuff.values()) + 1
    for t in things:
        t.layer = next_layer
        next_layer += 1
        pen = _Pen(pic, own, t.box, t.layer, flip=bool(rng.integers(2)))
        colour = _jitter(rng, PALETTE[t.colour], 10)
        t.parts = _DRAWERS[t.cls](pen, colour, rng)
    owner = np.asarray(own).copy()
    for t in things:  # parts hidden behind nearer objects are not annotated
        t.parts = [(name, box) for name, box in t.parts if _visible(owner, box, t.layer) >= 0.5]
    # mild sensor noise over everything, so flat fills are not trivially separable
    noisy = np.asarray(pic, dtype=np.float32) + rng.normal(0.0, 3.0, (height, width, 1))
    return Scene(kind, np.clip(noisy, 0, 255).astype(np.uint8), owner, stuff, things)


def _wave(rng: np.random.Generator, xs: np.ndarray, amplitude: float) -> np.ndarray:
    out = np.zeros(xs.shape, np.float64)
    for k in range(2):
        freq = rng.uniform(1.0, 4.0) * (k + 1) * 2 * math.pi / xs.size
        out += amplitude / (k + 1) * np.sin(freq * xs + rng.uniform(0, 2 * math.pi))
    return out


def _stuff_layout(
    rng: np.random.Generator, bands: tuple[str, ...], width: int, height: int
) -> tuple[np.ndarray, dict[str, int], np.ndarray]:
    """Owner map of the stuff regions; returns it, class -> layer id, and the horizon per column."""
    xs = np.arange(width, dtype=np.float64)
    ys = np.arange(height)[:, None]
    horizon = height * rng.uniform(0.38, 0.48) + _wave(rng, xs, height * 0.025)
    stuff = {"sky": 1}
    owner = np.full((height, width), 1, np.uint8)
    owner[ys >= np.round(horizon)[None, :]] = 2
    stuff[bands[0]] = 2
    if len(bands) > 1:
        frac = rng.uniform(0.35, 0.5)
        edge = horizon + frac * (height - horizon)
        if bands[1] != "road":  # shorelines are wavy, road edges straight
            edge = edge + _wave(rng, xs, height * 0.015)
        else:
            edge = np.full(width, float(np.round(edge.mean())))
        owner[ys >= np.round(edge)[None, :]] = 3
        stuff[bands[1]] = 3
    if rng.random() < 0.45:
        mountain = _mountain_mask(rng, horizon, width, height)
        if mountain.any():
            stuff["mountain"] = max(stuff.values()) + 1
            owner[mountain] = stuff["mountain"]
    if rng.random() < 0.25:
        # a 1-pixel unannotated seam along the horizon, like the gaps annotators leave
        rows = np.round(horizon).astype(int) - 1
        cols = np.arange(width)
        ok = (rows >= 0) & (owner[np.clip(rows, 0, height - 1), cols] == 1)
        owner[rows[ok], cols[ok]] = 0
    return owner, stuff, horizon


def _mountain_mask(
    rng: np.random.Generator, horizon: np.ndarray, width: int, height: int
) -> np.ndarray:
    n_peaks = int(rng.integers(1, 4))
    left = rng.uniform(-0.2, 0.4) * width
    right = left + rng.uniform(0.5, 1.0) * width
    base = float(horizon.max()) + 2
    top = float(horizon.min())
    pts = [(left, base)]
    peaks_x = np.sort(rng.uniform(max(left, 0.05 * width), min(right, 0.95 * width), n_peaks))
    for k, px in enumerate(peaks_x):
        pts.append((float(px), top - rng.uniform(0.08, 0.25) * height))
        if k + 1 < n_peaks:
            mid = (px + peaks_x[k + 1]) / 2
            pts.append((float(mid), top - rng.uniform(0.02, 0.06) * height))
    pts.append((right, base))
    img = Image.new("L", (width, height), 0)
    ImageDraw.Draw(img).polygon(pts, fill=1)
    ys = np.arange(height)[:, None]
    return (np.asarray(img) > 0) & (ys < np.round(horizon)[None, :])


def _paint_stuff(
    rng: np.random.Generator,
    owner: np.ndarray,
    stuff: dict[str, int],
    horizon: np.ndarray,
) -> np.ndarray:
    """Colour the stuff regions: gradients, low-frequency texture and grain."""
    height, width = owner.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    hz = float(horizon.mean())
    depth = np.clip((ys - hz) / max(height - hz, 1.0), 0.0, 1.0)[..., None]
    grain = rng.normal(0.0, 1.0, (height, width, 1)).astype(np.float32)

    def col(base: RGB, spread: int = 12) -> np.ndarray:
        return np.array(_jitter(rng, base, spread), np.float32)

    sky_top, sky_low = col((60, 120, 205)), col((180, 210, 238))
    t = np.clip(ys / max(hz, 1.0), 0.0, 1.0)[..., None]
    textures = {
        "sky": sky_top * (1 - t) + sky_low * t + 1.5 * grain,
        "grass": col((70, 145, 50)) * (0.75 + 0.35 * depth)
        + 10 * grain
        + 8 * (np.sin(xs * 0.07 + ys * 0.02) * np.sin(ys * 0.11))[..., None],
        "sand": col((218, 192, 140)) * (0.9 + 0.12 * depth)
        + 5 * grain
        + 7 * np.sin(ys * 0.35 + 2 * np.sin(xs * 0.03))[..., None],
        "sea": col((30, 85, 160)) * (0.85 + 0.3 * depth)
        + 3 * grain
        + 12 * np.sin(ys * 0.9 + 2.5 * np.sin(xs * 0.05))[..., None],
        "road": col((92, 92, 96), 6) + 7 * grain,
    }
    if "mountain" in stuff:
        region = owner == stuff["mountain"]
        peak = ys[region].min() if region.any() else 0.0
        snow_line = peak + rng.uniform(0.2, 0.45) * (hz - peak)
        rise = np.clip((ys - peak) / max(hz - peak, 1.0), 0.0, 1.0)[..., None]
        rock = col((112, 104, 118)) * (0.85 + 0.25 * rise)
        snow = col((236, 238, 244), 4)
        textures["mountain"] = np.where((ys < snow_line)[..., None], snow, rock) + 4 * grain
    for name, layer in stuff.items():
        region = owner == layer
        image[region] = textures[name][region]
    if 0 in owner:  # the unannotated seam is painted like the sky it cuts
        image[owner == 0] = textures["sky"][owner == 0]
    if "road" in stuff:
        _lane_marks(image, owner == stuff["road"])
    return np.clip(image, 0, 255).astype(np.uint8)


def _lane_marks(image: np.ndarray, road: np.ndarray) -> None:
    rows = np.flatnonzero(road.any(axis=1))
    if rows.size < 8:
        return
    y = int(rows[0] + rows.size * 0.45)
    thick = max(1, rows.size // 30)
    dash = max(8, image.shape[1] // 16)
    for x0 in range(dash // 2, image.shape[1], 2 * dash):
        sl = (slice(y, y + thick), slice(x0, x0 + dash))
        image[sl][road[sl]] = (235, 235, 225)


def _shadow(image: np.ndarray, box: Box) -> None:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h - 1
    rx, ry = w * 0.55, max(2.0, h * 0.06)
    y0, y1 = max(0, int(cy - ry)), min(image.shape[0], int(cy + ry) + 1)
    x0, x1 = max(0, int(cx - rx)), min(image.shape[1], int(cx + rx) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    patch = image[y0:y1, x0:x1]
    patch[inside] = (patch[inside] * 0.65).astype(np.uint8)


def _place_things(
    rng: np.random.Generator,
    owner: np.ndarray,
    stuff: dict[str, int],
    horizon: np.ndarray,
    width: int,
    height: int,
) -> list[Thing]:
    """Compose the things the way the scene graph describes them (2-6, plus maybe an airplane).

    Each ground band holds one row of things standing on a common line (`_ROW_LINES`; their depth,
    so their size, follows from it), spaced evenly from left to right. The graph states each
    thing's band ("on grass") and the left-to-right order within a row, so the layout follows from
    the graph up to small jitter, as a layout model must learn; a class's mean box, blind to the
    graph, does not. An airplane, if any, flies at a random place in the sky. Rows are redrawn
    until no thing hides more than 40% of another.
    """
    bands = [name for name in stuff if name not in ("sky", "mountain")]  # far to near
    lines = _ROW_LINES[len(bands)]
    rows = [(stuff[band], band, line) for band, line in zip(bands, lines, strict=True)]
    for _ in range(20):
        things = []
        for layer, band, line in rows:
            wanted = int(rng.integers(2, 5)) if len(rows) == 1 else int(rng.integers(1, 4))
            things += _compose_row(rng, owner == layer, band, line, wanted, horizon, width)
        if not any(_overlap_ratio(a.box, b.box) > 0.4
                   for i, a in enumerate(things) for b in things[:i]):
            break
    else:  # crowded: the far row alone
        things = _compose_row(rng, owner == rows[0][0], rows[0][1], rows[0][2], 2, horizon, width)
    if rng.random() < 0.2:
        plane = _fly_airplane(rng, horizon, width, owner.shape[0])
        if plane is not None:
            things.append(plane)
    return things


def _compose_row(
    rng: np.random.Generator,
    in_band: np.ndarray,  # H x W bool: the band's pixels
    band: str,
    line: float,  # the row's bottom edge, as a fraction of the image height
    wanted: int,
    horizon: np.ndarray,
    width: int,
) -> list[Thing]:
    """Up to `wanted` things the band supports, standing on `line`, evenly spaced."""
    height = in_band.shape[0]
    candidates = [c for c, spec in _SPECS.items() if band in spec.supports]
    if not candidates:
        return []
    weights = np.array([_SPECS[c].weight for c in candidates])
    weights /= weights.sum()
    classes = [candidates[int(rng.choice(len(candidates), p=weights))] for _ in range(wanted)]
    bottom = round((line + rng.uniform(-0.01, 0.01)) * height)
    hz = float(horizon.mean())
    scale = 0.45 + 1.05 * np.clip((bottom - hz) / max(height - hz, 1.0), 0.0, 1.0)
    sizes = []
    for cls in classes:
        h = max(4, round(_SPECS[cls].height * height * scale * rng.uniform(0.95, 1.05)))
        sizes.append((max(4, round(h * _SPECS[cls].aspect * rng.uniform(0.95, 1.05))), h))
    while len(sizes) > 1 and sum(w for w, _ in sizes) > 0.92 * width:  # the widest that fit
        classes.pop()
        sizes.pop()
    things = []
    for k, (cls, (w, h)) in enumerate(zip(classes, sizes, strict=True)):
        cx = ((k + 0.5) / len(classes) + rng.uniform(-0.015, 0.015)) * width
        x = int(np.clip(round(cx - w / 2), 0, width - w))
        if not in_band[bottom, int(np.clip(x + w // 2, 0, width - 1))]:
            continue  # a wavy shoreline crosses the line here
        spec = _SPECS[cls]
        colour = spec.colours[int(rng.integers(len(spec.colours)))]
        size = "large" if h >= spec.height * height else "small"
        things.append(Thing(cls, (x, max(0, bottom - h + 1), w, min(h, bottom + 1)), colour,
                            size, band))
    return things


def _fly_airplane(
    rng: np.random.Generator, horizon: np.ndarray, width: int, height: int
) -> Thing | None:
    """An airplane anywhere in the clear sky, at a random scale."""
    spec = _SPECS["airplane"]
    h_ref = spec.height * height
    h = max(4, round(h_ref * rng.uniform(0.6, 1.4) * rng.uniform(0.85, 1.15)))
    w = max(4, round(h * spec.aspect * rng.uniform(0.9, 1.1)))
    sky = int(np.round(horizon.min())) - 2  # rows above this are sky in every column
    if w > width or h > sky:
        return None
    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, sky - h + 1))
    colour = spec.colours[int(rng.integers(len(spec.colours)))]
    return Thing("airplane", (x, y, w, h), colour, "large" if h >= h_ref else "small", "sky")


def _overlap_ratio(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / min(a[2] * a[3], b[2] * b[3])


def _visible(owner: np.ndarray, box: Box, layer: int) -> float:
    x, y, w, h = box
    patch = owner[y : y + h, x : x + w]
    return float((patch == layer).mean()) if patch.size else 0.0


def _jitter(rng: np.random.Generator, colour: RGB, spread: int) -> RGB:
    c = np.clip(np.array(colour) + rng.integers(-spread, spread + 1, 3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(int(min(255, c * factor)) for c in colour)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# drawing: one small function per class, in box-relative coordinates (0..1)


class _Pen:
    """Draws each shape twice: in colour on the picture and as the layer id on the owner map."""

    def __init__(self, pic: Image.Image, own: Image.Image, box: Box, layer: int, flip: bool):
        self.rgb = ImageDraw.Draw(pic)
        self.own = ImageDraw.Draw(own)
        self.box = box
        self.layer = layer
        self.flip = flip

    def xy(self, fx: float, fy: float) -> tuple[float, float]:
        x, y, w, h = self.box
        if self.flip:
            fx = 1.0 - fx
        return (x + fx * (w - 1), y + fy * (h - 1))

    def corners(self, fx0: float, fy0: float, fx1: float, fy1: float) -> list[float]:
        (ax, ay), (bx, by) = self.xy(fx0, fy0), self.xy(fx1, fy1)
        return [min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)]

    def polygon(self, pts: list[tuple[float, float]], colour: RGB, outline: RGB | None = None):
        xy = [self.xy(fx, fy) for fx, fy in pts]
        self.rgb.polygon(xy, fill=colour, outline=outline)
        self.own.polygon(xy, fill=self.layer, outline=self.layer if outline else None)

    def rect(self, fx0: float, fy0: float, fx1: float, fy1: float, colour: RGB):
        xy = self.corners(fx0, fy0, fx1, fy1)
        self.rgb.rectangle(xy, fill=colour)
        self.own.rectangle(xy, fill=self.layer)

    def ellipse(self, fx0: float, fy0: float, fx1: float, fy1: float, colour: RGB):
        xy = self.corners(fx0, fy0, fx1, fy1)
        self.rgb.ellipse(xy, fill=colour)
        self.own.ellipse(xy, fill=self.layer)

    def part(self, name: str, fx0: float, fy0: float, fx1: float, fy1: float) -> tuple[str, Box]:
        x0, y0, x1, y1 = self.corners(fx0, fy0, fx1, fy1)
        ix0, iy0 = math.floor(x0), math.floor(y0)
        return name, (ix0, iy0, math.ceil(x1) - ix0 + 1, math.ceil(y1) - iy0 + 1)


Parts = list[tuple[str, Box]]


def _draw_car(pen: _Pen, c: RGB, rng: np.random.Generator) -> Parts:
    pen.polygon(
        [
            (0.0, 0.45),
            (0.2, 0.4),
            (0.3, 0.06),
            (0.72, 0.06),
            (0.84, 0.4),
            (1.0, 0.48),
            (1.0, 0.82),
            (0.0, 0.82),
        ],
        c,
        outline=_shade(c, 0.6),
    )
    pen.polygon([(0.34, 0.13), (0.5, 0.13), (0.5, 0.38), (0.27, 0.38)], _GLASS)
    pen.polygon([(0.54, 0.13), (0.69, 0.13), (0.79, 0.38), (0.54, 0.38)], _GLASS)
    parts = [pen.part("window", 0.27, 0.13, 0.79, 0.38)]
    for fx in (0.13, 0.65):
        pen.ellipse(fx, 0.6, fx + 0.22, 1.0, _TYRE)
        pen.ellipse(fx + 0.06, 0.71, fx + 0.16, 0.89, (170, 170, 175))
        parts.append(pen.part("wheel", fx, 0.6, fx + 0.22, 1.0))
    return parts


def _draw_bus(pen: _Pen, c: RGB, rng: np.random.Generator) -> Parts:
    pen.polygon(
        [(0.0, 0.02), (0.93, 0.02), (1.0, 0.2), (1.0, 0.86), (0.0, 0.86)], c, outline=_shade(c, 0.6)
    )
    n = 4
    for k in range(n):
        fx = 0.05 + k * 0.19
        pen.rect(fx, 0.12, fx + 0.14, 0.42, _GLASS)
    pen.rect(0.83, 0.12, 0.95, 0.78, _shade(_GLASS, 0.8))  # door
    parts = [
        pen.part("window", 0.05, 0.12, 0.05 + (n - 1) * 0.19 + 0.14, 0.42),
        pen.part("door", 0.83, 0.12, 0.95, 0.78),
    ]
    for fx in (0.1, 0.7):
        pen.ellipse(fx, 0.68, fx + 0.16, 1.0, _TYRE)
        parts.append(pen.part("wheel", fx, 0.68, fx + 0.16, 1.0))
    return parts


def _draw_house(pen: _Pen, c: RGB, rng: np.random.Generator) -> Parts:
    roof = [(150, 40, 35), (90, 60, 45), (70, 70, 80)][int(rng.integers(3))]
    pen.rect(0.08, 0.42, 0.92, 1.0, c)
    pen.polygon([(0.0, 0.46), (0.5, 0.0), (1.0, 0.46)], roof, outline=_shade(roof, 0.7))
    pen.rect(0.42, 0.66, 0.58, 1.0, (95, 60, 35))
    parts = [pen.part("roof", 0.0, 0.0, 1.0, 0.46), pen.part("door", 0.42, 0.66, 0.58, 1.0)]
    for fx in (0.16, 0.68):
        pen.rect(fx, 0.55, fx + 0.16, 0.75, _GLASS)
        parts.append(pen.part("window", fx, 0.55, fx + 0.16, 0.75))
    return parts


def _draw_tree(pen: _Pen, c: RGB, rng: np.random.Generator) -> Parts:
    pen.rect(0.42, 0.55, 0.58, 1.0, (105, 70, 40))
    pen.ellipse(0.0, 0.05, 1.0, 0.72, c)
    pen.ellipse(0.15, 0.0, 0.8, 0.45, _shade(c, 1.12))  # a lighter crown
    return [pen.part("trunk", 0.42, 0.6, 0.58, 1.0)]


def _draw_person(pen: _Pen, c: RGB, rng: np.random.Generator) -> Parts:
    skin = _SKIN[int(rng.integers(len(_SKIN)))]
    trousers = [(40, 50, 90), (35, 35, 38), (110, 100, 90)][int(rng.integers(3))]
    pen.rect(0.22, 0.58, 0.47, 1.0, trousers)
    pen.rect(0.53, 0.58, 0.78, 1.0, trousers)
    pen.polygon([(0.14, 0.21), (0.86, 0.21), (0.8, 0.61), (0.2, 0.61)], c)
    pen.rect(0.0, 0.23, 0.15, 0.55, c)
    pen.rect(0.85, 0.23, 1.0, 0.55, c)
    pen.ellipse(0.28, 0.0, 0.72, 0.2, skin)
    pen.rect(0.3, 0.0, 0.7, 0.05, (50, 35, 25))  # hair
    return [pen.part("head", 0.28, 0.0, 0.72, 0.2)]


def _draw_ball(pen: _Pen, c: RGB, rng: np.random.Generator) -> Parts:
    pen.ellipse(0.0, 0.0, 1.0, 1.0, c)
    pen.ellipse(0.22, 0.18, 0.42, 0.36, _shade(c, 1.25))  # highlight
    return []


def _draw_bench(pen: _Pen, c: RGB, rng: np.random.Generator) -> Parts:
    metal = (60, 60, 64)
    pen.rect(0.08, 0.3, 0.14, 1.0, metal)
    pen.rect(0.86, 0.3, 0.92, 1.0, metal)
    pen.rect(0.0, 0.02, 1.0, 0.32, c)
    pen.rect(0.0, 0.45, 1.0, 0.64, c)
    return []


def _draw_boat(pen: _Pen, c: RGB, rng: np.random.Generator) -> Parts:
    pen.rect(0.47, 0.0, 0.51, 0.56, (110, 80, 50))  # mast
    pen.polygon([(0.52, 0.06), (0.52, 0.5), (0.88, 0.5)], (245, 243, 235))  # sail
    pen.polygon([(0.0, 0.52), (1.0, 0.52), (0.84, 1.0), (0.14, 1.0)], c, outline=_shade(c, 0.6))
    return []


def _draw_airplane(pen: _Pen, c: RGB, rng: np.random.Generator) -> Parts:
    pen.polygon([(0.0, 0.0), (0.12, 0.0), (0.24, 0.45), (0.04, 0.45)], c)  # tail fin
    pen.ellipse(0.0, 0.3, 1.0, 0.72, c)
    pen.polygon([(0.38, 0.55), (0.58, 0.55), (0.46, 1.0), (0.38, 1.0)], _shade(c, 0.75))  # wing
    for k in range(6):
        fx = 0.3 + k * 0.08
        pen.ellipse(fx, 0.42, fx + 0.03, 0.5, (40, 50, 70))
    return [pen.part("window", 0.3, 0.42, 0.73, 0.5)]


_DRAWERS = {
    "person": _draw_person,
    "car": _draw_car,
    "bus": _draw_bus,
    "boat": _draw_boat,
    "bench": _draw_bench,
    "ball": _draw_ball,
    "airplane": _draw_airplane,
    "house": _draw_house,
    "tree": _draw_tree,
}


# --------------------------------------------------------------------------------------------
# shared output helpers


class _Writer(Protocol):
    def add(self, index: int, split: str, scene: Scene) -> None: ...

    def finish(self) -> dict[str, int]: ...


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _png(labels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(labels.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)


def _write_json(path: Path, obj: Any) -> None:
    _write(path, json.dumps(obj, sort_keys=True))


def _mask_box(mask: np.ndarray) -> Box | None:
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)


# --------------------------------------------------------------------------------------------
# Visual Genome 1.4


_VG_OBJECT_ALIASES = {
    "car": ("automobile", "auto"),
    "plane": ("airplane", "aeroplane"),
    "person": ("persons", "human"),
    "ball": ("sports ball",),
    "boat": ("sailboat", "boats"),
    "bench": ("benches",),
    "bus": ("buses",),
    "house": ("houses",),
    "tree": ("trees",),
    "mountain": ("mountains",),
    "wheel": ("wheels",),
    "window": ("windows",),
}
_VG_PREDICATE_ALIASES = {
    "left of": ("to the left of",),
    "right of": ("to the right of",),
    "in front of": ("infront of", "in front"),
    "near": ("close to", "nearby"),
    "below": ("beneath", "underneath"),
    "has": ("has a",),
}
_VG_PREDICATE_SYNSETS = {
    "on": "along.r.01",
    "standing on": "stand.v.01",
    "parked on": "park.v.01",
    "in": "in.r.01",
    "has": "have.v.01",
    "near": "near.r.01",
    "above": "above.r.01",
    "below": "below.r.01",
    "left of": "left.r.01",
    "right of": "right.r.01",
    "in front of": "in_front_of.r.01",
    "behind": "behind.r.01",
}
_VG_QUIRK_RATES = {
    "name_key": 0.04,  # an object with "name" (a string) instead of "names"
    "case": 0.04,  # "  Car ": case and surrounding spaces
    "alias": 0.05,  # a name from object_alias.txt instead of the canonical one
    "pred_case": 0.04,  # "Left Of "
    "pred_alias": 0.05,  # "to the left of"
    "attr_case": 0.03,  # "White " (the real vocabulary even has "white " as its own attribute)
    "missing": 0.04,  # a part only in relationships.json, not in objects.json
}


class _Quirks:
    """Real-file quirks at small rates, decided by their own seeded stream.

    Each quirk also fires on its first chance, so even a tiny generation contains every kind.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.fired: dict[str, int] = dict.fromkeys(_VG_QUIRK_RATES, 0)

    def __call__(self, name: str) -> bool:
        hit = bool(self.rng.random() < _VG_QUIRK_RATES[name]) or not self.fired[name]
        self.fired[name] += hit
        return hit

    def recase(self, text: str) -> str:
        styles = (text.capitalize(), text.title(), text.upper())
        pads = (" ", "  ", "")
        styled = styles[int(self.rng.integers(len(styles)))]
        return pads[int(self.rng.integers(2))] + styled + pads[int(self.rng.integers(3))] + " "


@dataclass
class _VGObject:
    object_id: int
    name: str  # as written (quirks applied)
    synset: str
    box: Box
    attributes: list[str] = field(default_factory=list)
    listed: bool = True  # in objects.json (False: only inside relationships, a real VG quirk)

    def as_dict(self, name_key: str = "names") -> dict[str, Any]:
        x, y, w, h = self.box
        d: dict[str, Any] = {
            "object_id": self.object_id,
            "x": x,
            "y": y,
            "w": w,
            "h": h,
            "synsets": [self.synset],
        }
        d[name_key] = self.name if name_key == "name" else [self.name]
        return d


class _VGWriter:
    def __init__(self, root: Path, params: ToyworldParams) -> None:
        self.root = root
        self.n_images = params.images
        self.seed = params.seed
        self.quirks = _Quirks(np.random.default_rng([params.seed, 0x56_47]))  # "VG"
        self.image_data: list[dict[str, Any]] = []
        self.objects: list[dict[str, Any]] = []
        self.attributes: list[dict[str, Any]] = []
        self.relationships: list[dict[str, Any]] = []
        self.splits: dict[str, list[int]] = {"train": [], "val": [], "test": []}
        self.next_object = 1
        self.next_relationship = 1
        self.n_objects = 0
        self.n_relationships = 0

    def add(self, index: int, split: str, scene: Scene) -> None:
        image_id = index + 1
        # like VG_100K_2, the later part of the id range lives in a second folder
        folder = "VG_100K_2" if index >= math.ceil(self.n_images * 0.75) else "VG_100K"
        _write(self.root / folder / f"{image_id}.jpg", _jpeg(scene.image))
        height, width = scene.owner.shape
        self.image_data.append(
            {
                "image_id": image_id,
                "width": width,
                "height": height,
                "coco_id": None,
                "flickr_id": None,
                "url": f"https://cs.stanford.edu/people/rak248/{folder}/{image_id}.jpg",
            }
        )
        self.splits[split].append(image_id)

        # relation choices come from their own stream, so the drawing is the same in every format
        rng = np.random.default_rng([self.seed, index, 0x56_47])
        stuff_objs = self._stuff_objects(scene, rng)
        thing_objs = [
            self._new(THINGS[t.cls].vg, THINGS[t.cls].synset, t.box, self._thing_attributes(t, rng))
            for t in scene.things
        ]
        triples: list[tuple[_VGObject, str, _VGObject]] = []
        part_objs: list[_VGObject] = []
        for t, obj in zip(scene.things, thing_objs, strict=True):
            if t.support in stuff_objs:
                triples.append((obj, self._support_predicate(t, rng), stuff_objs[t.support]))
            if rng.random() < 0.6:
                for name, box in t.parts:
                    part = self._new(name, PART_SYNSETS[name], box, [])
                    part.listed = not self.quirks("missing")
                    part_objs.append(part)
                    triples.append((obj, "has", part))
        triples += self._row_order(scene, thing_objs, rng)
        triples += self._pair_relations(scene, thing_objs, rng)
        if "sky" in stuff_objs and rng.random() < 0.3:
            ground = next((o for n, o in stuff_objs.items() if n not in ("sky", "mountain")), None)
            if ground is not None:
                triples.append((stuff_objs["sky"], "above", ground))

        all_objs = [*stuff_objs.values(), *thing_objs, *part_objs]
        listed = [o for o in all_objs if o.listed]
        self.objects.append(
            {
                "image_id": image_id,
                "objects": [
                    o.as_dict("name" if self.quirks("name_key") else "names") for o in listed
                ],
            }
        )
        self.attributes.append(
            {
                "image_id": image_id,
                "attributes": [
                    {**o.as_dict(), **({"attributes": o.attributes} if o.attributes else {})}
                    for o in listed
                ],
            }
        )
        self.relationships.append(
            {
                "image_id": image_id,
                "relationships": [self._relationship(s, p, o) for s, p, o in triples],
            }
        )
        self.n_objects += len(all_objs)
        self.n_relationships += len(triples)

    def _new(self, name: str, synset: str, box: Box, attributes: list[str]) -> _VGObject:
        if name in _VG_OBJECT_ALIASES and self.quirks("alias"):
            options = _VG_OBJECT_ALIASES[name]
            name = options[int(self.quirks.rng.integers(len(options)))]
        if self.quirks("case"):
            name = self.quirks.recase(name)
        obj = _VGObject(self.next_object, name, synset, box, attributes)
        self.next_object += 1
        return obj

    def _stuff_objects(self, scene: Scene, rng: np.random.Generator) -> dict[str, _VGObject]:
        attrs = {"sky": "blue", "grass": "green", "sea": "blue", "sand": "tan", "road": "gray"}
        out = {}
        for name, layer in scene.stuff.items():
            box = _mask_box(scene.owner == layer)
            if box is None:
                continue
            a = [attrs[name]] if name in attrs and rng.random() < 0.5 else []
            out[name] = self._new(STUFF[name].vg, STUFF[name].synset, box, a)
        return out

    def _thing_attributes(self, t: Thing, rng: np.random.Generator) -> list[str]:
        colour = self.quirks.recase(t.colour) if self.quirks("attr_case") else t.colour
        return [colour, t.size] if rng.random() < 0.7 else [colour]

    @staticmethod
    def _support_predicate(t: Thing, rng: np.random.Generator) -> str:
        if t.support in ("sea", "sky"):
            return "in"
        if t.cls == "person" and rng.random() < 0.3:
            return "standing on"
        if t.cls in ("car", "bus") and t.support == "road" and rng.random() < 0.3:
            return "parked on"
        return "on"

    @staticmethod
    def _row_order(
        scene: Scene, objs: list[_VGObject], rng: np.random.Generator
    ) -> list[tuple[_VGObject, str, _VGObject]]:
        """Neighbours in a row, left to right: "a left of b" or, as often, "b right of a"."""
        out = []
        for band in dict.fromkeys(t.support for t in scene.things if t.support != "sky"):
            row = sorted((k for k, t in enumerate(scene.things) if t.support == band),
                         key=lambda k: scene.things[k].box[0])
            for a, b in pairwise(row):
                out.append((objs[a], "left of", objs[b]) if rng.random() < 0.5
                           else (objs[b], "right of", objs[a]))
        return out

    @staticmethod
    def _pair_relations(
        scene: Scene, objs: list[_VGObject], rng: np.random.Generator
    ) -> list[tuple[_VGObject, str, _VGObject]]:
        """Geometric relations between a few more pairs of objects, each true in the picture."""
        pairs = [(i, j) for i in range(len(objs)) for j in range(len(objs)) if i < j]
        rng.shuffle(pairs)
        out = []
        width = scene.owner.shape[1]
        for i, j in pairs[:2]:
            if rng.random() < 0.5:
                i, j = j, i
            a, b = scene.things[i].box, scene.things[j].box
            if _overlap_ratio(a, b) > 0.03:
                # things are drawn in list order: the later one is nearer and hides the other
                pred = "in front of" if i > j else "behind"
            elif a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0]:
                gap = max(b[0] - (a[0] + a[2]), a[0] - (b[0] + b[2]))
                if gap < 0.06 * width and rng.random() < 0.4:
                    pred = "near"
                else:
                    pred = "left of" if a[0] + a[2] <= b[0] else "right of"
            elif a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]:
                pred = "above" if a[1] + a[3] <= b[1] else "below"
            else:
                pred = "near"  # boxes touch without overlapping much
            out.append((objs[i], pred, objs[j]))
        return out

    def _relationship(self, s: _VGObject, pred: str, o: _VGObject) -> dict[str, Any]:
        synset = _VG_PREDICATE_SYNSETS[pred]
        if pred in _VG_PREDICATE_ALIASES and self.quirks("pred_alias"):
            options = _VG_PREDICATE_ALIASES[pred]
            pred = options[int(self.quirks.rng.integers(len(options)))]
        if self.quirks("pred_case"):
            pred = self.quirks.recase(pred)
        rel = {
            "relationship_id": self.next_relationship,
            "predicate": pred,
            "synsets": [synset],
            # real VG writes the endpoints with "name" (a string)
            "subject": s.as_dict("name"),
            "object": o.as_dict("name"),
        }
        self.next_relationship += 1
        return rel

    def finish(self) -> dict[str, int]:
        _write_json(self.root / "image_data.json", self.image_data)
        _write_json(self.root / "objects.json", self.objects)
        _write_json(self.root / "attributes.json", self.attributes)
        _write_json(self.root / "relationships.json", self.relationships)
        # keys in the real file's order: train, test, val
        splits = {k: self.splits[k] for k in ("train", "test", "val")}
        _write(self.root / "vg_splits.json", json.dumps(splits))
        _write(
            self.root / "object_alias.txt",
            "".join(",".join((k, *v)) + "\n" for k, v in _VG_OBJECT_ALIASES.items()),
        )
        _write(
            self.root / "relationship_alias.txt",
            "".join(",".join((k, *v)) + "\n" for k, v in _VG_PREDICATE_ALIASES.items()),
        )
        return {
            "vg_objects": self.n_objects,
            "relationships": self.n_relationships,
            **{f"quirk_{k}": v for k, v in self.quirks.fired.items()},
        }


# --------------------------------------------------------------------------------------------
# COCO-Stuff 2017


def _coco_name(class_id: int) -> str:
    return _COCO_STUFF_NAMES[class_id]


def _coco_categories() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The thing categories of instances_*.json and the stuff ones (+ "other") of stuff_*.json."""
    name_to_id = {n: i for i, n in enumerate(_COCO_STUFF_NAMES)}
    things = [
        {"id": name_to_id[n], "name": n, "supercategory": sup}
        for sup, names in _COCO_THING_SUPER.items()
        for n in names
    ]
    stuff = [
        {"id": name_to_id[n], "name": n, "supercategory": sup}
        for sup, names in _COCO_STUFF_SUPER.items()
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


class _CocoWriter:
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
        jpeg = _jpeg(scene.image)
        _write(self.root / coco_split / file_name, jpeg)
        _write(self.root / f"{label_split}_img" / file_name, jpeg)
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
        _write(self.root / f"{label_split}_label" / f"{stem}.png", _png(label))
        _write(self.root / f"{label_split}_inst" / f"{stem}.png", _png(inst))

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
                _write_json(
                    self.root / "annotations" / f"{prefix}_{split}.json",
                    {
                        "info": info,
                        "licenses": licenses,
                        "images": self.images[split],
                        "annotations": anns[split],
                        "categories": cats,
                    },
                )
        _write(
            self.root / "labels.txt",
            "".join(f"{i}: {n}\n" for i, n in enumerate(_COCO_STUFF_NAMES)),
        )
        return {
            "train2017": len(self.images["train2017"]),
            "val2017": len(self.images["val2017"]),
            "thing_annotations": sum(len(v) for v in self.instances.values()),
            "stuff_annotations": sum(len(v) for v in self.stuffs.values()),
            "crowd_annotations": self.n_crowd,
        }


# --------------------------------------------------------------------------------------------
# ADE20K SceneParsing (ADEChallengeData2016)


class _AdeWriter:
    def __init__(self, root: Path, params: ToyworldParams) -> None:
        self.root = root / "ADEChallengeData2016"
        self.count = {"training": 0, "validation": 0}
        self.scene_lines: dict[str, list[str]] = {"training": [], "validation": []}

    def add(self, index: int, split: str, scene: Scene) -> None:
        folder = "validation" if split == "test" else "training"  # no public test labels
        self.count[folder] += 1
        stem = f"ADE_{'train' if folder == 'training' else 'val'}_{self.count[folder]:08d}"
        lut = np.zeros(256, np.uint8)  # 0 = "other" (unannotated)
        for layer, (name, is_thing) in scene.layer_classes().items():
            lut[layer] = (THINGS if is_thing else STUFF)[name].ade
        _write(self.root / "images" / folder / f"{stem}.jpg", _jpeg(scene.image))
        _write(self.root / "annotations" / folder / f"{stem}.png", _png(lut[scene.owner]))
        self.scene_lines[folder].append(f"{stem} {_SCENES[scene.kind][1]}\n")

    def finish(self) -> dict[str, int]:
        _write(self.root / "objectInfo150.txt", "\n".join(_ADE_OBJECT_INFO_LINES) + "\n")
        _write(
            self.root / "sceneCategories.txt",
            "".join(self.scene_lines["training"] + self.scene_lines["validation"]),
        )
        return {"training": self.count["training"], "validation": self.count["validation"]}


_WRITERS: dict[str, Callable[[Path, ToyworldParams], _Writer]] = {
    "vg": _VGWriter,
    "coco-stuff": _CocoWriter,
    "ade20k": _AdeWriter,
}


# --------------------------------------------------------------------------------------------
# the real class tables
# fmt: off

_COCO_THING_SUPER: dict[str, tuple[str, ...]] = {
    "person": ("person",),
    "vehicle": ("bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"),
    "outdoor": ("traffic light", "fire hydrant", "stop sign", "parking meter", "bench"),
    "animal": ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
               "giraffe"),
    "accessory": ("backpack", "umbrella", "handbag", "tie", "suitcase"),
    "sports": ("frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
               "baseball glove", "skateboard", "surfboard", "tennis racket"),
    "kitchen": ("bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"),
    "food": ("banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
             "donut", "cake"),
    "furniture": ("chair", "couch", "potted plant", "bed", "dining table", "toilet"),
    "electronic": ("tv", "laptop", "mouse", "remote", "keyboard", "cell phone"),
    "appliance": ("microwave", "oven", "toaster", "sink", "refrigerator"),
    "indoor": ("book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"),
}
_COCO_STUFF_SUPER: dict[str, str] = {
    "textile": "banner blanket cloth clothes curtain mat napkin pillow rug textile-other towel",
    "plant": "branch bush flower grass leaves moss plant-other straw tree",
    "building": "bridge building-other house roof skyscraper tent",
    "furniture-stuff": "cabinet counter cupboard desk-stuff door-stuff furniture-other light "
    "mirror-stuff shelf stairs table",
    "structural": "cage fence net railing structural-other",
    "raw-material": "cardboard metal paper plastic",
    "floor": "carpet floor-marble floor-other floor-stone floor-tile floor-wood",
    "ceiling": "ceiling-other ceiling-tile",
    "sky": "clouds sky-other",
    "ground": "dirt gravel ground-other mud pavement platform playingfield railroad road sand snow",
    "water": "fog river sea water-other waterdrops",
    "food-stuff": "food-other fruit salad vegetable",
    "solid": "hill mountain rock solid-other stone wood",
    "wall": "wall-brick wall-concrete wall-other wall-panel wall-stone wall-tile wall-wood",
    "window": "window-blind window-other",
}

# COCO-Stuff class table (labels.txt): index = class id, 0 = unlabeled.
_COCO_STUFF_NAMES: tuple[str, ...] = (
    "unlabeled", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "hat",
    "backpack", "umbrella", "shoe", "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
    "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window",
    "desk", "toilet", "door", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "blender", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush", "hair brush", "banner", "blanket",
    "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard",
    "curtain", "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble", "floor-other",
    "floor-stone", "floor-tile", "floor-wood", "flower", "fog", "food-other", "fruit",
    "furniture-other", "grass", "gravel", "ground-other", "hill", "house", "leaves", "light",
    "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper",
    "pavement", "pillow", "plant-other", "plastic", "platform", "playingfield", "railing",
    "railroad", "river", "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf",
    "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone", "straw",
    "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable",
    "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile",
    "wall-wood", "water-other", "waterdrops", "window-blind", "window-other", "wood",
)

# ADE20K SceneParsing objectInfo150.txt, line by line as shipped (stray spaces included).
_ADE_OBJECT_INFO_LINES: tuple[str, ...] = (
    "Idx\tRatio\tTrain\tVal\tName",
    "1\t0.1576\t11664\t1172\twall",
    "2\t0.1072\t6046\t612\tbuilding, edifice",
    "3\t0.0878\t8265\t796\tsky",
    "4\t0.0621\t9336\t917\tfloor, flooring",
    "5\t0.0480\t6678\t641\ttree",
    "6\t0.0450\t6604\t643\tceiling",
    "7\t0.0398\t4023\t408\troad, route",
    "8\t0.0231\t1906\t199\tbed ",
    "9\t0.0198\t4688\t460\twindowpane, window ",
    "10\t0.0183\t2423\t225\tgrass",
    "11\t0.0181\t2874\t294\tcabinet",
    "12\t0.0166\t3068\t310\tsidewalk, pavement",
    "13\t0.0160\t5075\t526\tperson, individual, someone, somebody, mortal, soul",
    "14\t0.0151\t1804\t190\tearth, ground",
    "15\t0.0118\t6666\t796\tdoor, double door",
    "16\t0.0110\t4269\t411\ttable",
    "17\t0.0109\t1691\t160\tmountain, mount",
    "18\t0.0104\t3999\t441\tplant, flora, plant life",
    "19\t0.0104\t2149\t217\tcurtain, drape, drapery, mantle, pall",
    "20\t0.0103\t3261\t318\tchair",
    "21\t0.0098\t3164\t306\tcar, auto, automobile, machine, motorcar",
    "22 \t0.0074\t709\t75\twater",
    "23\t0.0067\t3296\t315\tpainting, picture",
    "24 \t0.0065\t1191\t106\tsofa, couch, lounge",
    "25 \t0.0061\t1516\t162\tshelf",
    "26 \t0.0060\t667\t69\thouse",
    "27 \t0.0053\t651\t57\tsea",
    "28\t0.0052\t1847\t224\tmirror",
    "29\t0.0046\t1158\t128\trug, carpet, carpeting",
    "30\t0.0044\t480\t44\tfield",
    "31\t0.0044\t1172\t98\tarmchair",
    "32\t0.0044\t1292\t184\tseat",
    "33\t0.0033\t1386\t138\tfence, fencing",
    "34\t0.0031\t698\t61\tdesk",
    "35\t0.0030\t781\t73\trock, stone",
    "36\t0.0027\t380\t43\twardrobe, closet, press",
    "37\t0.0026\t3089\t302\tlamp",
    "38\t0.0024\t404\t37\tbathtub, bathing tub, bath, tub",
    "39\t0.0024\t804\t99\trailing, rail",
    "40\t0.0023\t1453\t153\tcushion",
    "41\t0.0023\t411\t37\tbase, pedestal, stand",
    "42\t0.0022\t1440\t162\tbox",
    "43\t0.0022\t800\t77\tcolumn, pillar",
    "44\t0.0020\t2650\t298\tsignboard, sign",
    "45\t0.0019\t549\t46\tchest of drawers, chest, bureau, dresser",
    "46\t0.0019\t367\t36\tcounter",
    "47\t0.0018\t311\t30\tsand",
    "48\t0.0018\t1181\t122\tsink",
    "49\t0.0018\t287\t23\tskyscraper",
    "50\t0.0018\t468\t38\tfireplace, hearth, open fireplace",
    "51\t0.0018\t402\t43\trefrigerator, icebox",
    "52\t0.0018\t130\t12\tgrandstand, covered stand",
    "53\t0.0018\t561\t64\tpath",
    "54\t0.0017\t880\t102\tstairs, steps",
    "55\t0.0017\t86\t12\trunway",
    "56\t0.0017\t172\t11\tcase, display case, showcase, vitrine",
    "57\t0.0017\t198\t18\tpool table, billiard table, snooker table",
    "58\t0.0017\t930\t109\tpillow",
    "59\t0.0015\t139\t18\tscreen door, screen",
    "60\t0.0015\t564\t52\tstairway, staircase",
    "61\t0.0015\t320\t26\triver",
    "62\t0.0015\t261\t29\tbridge, span",
    "63\t0.0014\t275\t22\tbookcase",
    "64\t0.0014\t335\t60\tblind, screen",
    "65\t0.0014\t792\t75\tcoffee table, cocktail table",
    "66\t0.0014\t395\t49\ttoilet, can, commode, crapper, pot, potty, stool, throne",
    "67\t0.0014\t1309\t138\tflower",
    "68\t0.0013\t1112\t113\tbook",
    "69\t0.0013\t266\t27\thill",
    "70\t0.0013\t659\t66\tbench",
    "71\t0.0012\t331\t31\tcountertop",
    "72\t0.0012\t531\t56\tstove, kitchen stove, range, kitchen range, cooking stove",
    "73\t0.0012\t369\t36\tpalm, palm tree",
    "74\t0.0012\t144\t9\tkitchen island",
    (
        "75\t0.0011\t265\t29\tcomputer, computing machine, computing device, data processor"
        ", electronic computer, information processing system"
    ),
    "76\t0.0010\t324\t33\tswivel chair",
    "77\t0.0009\t304\t27\tboat",
    "78\t0.0009\t170\t20\tbar",
    "79\t0.0009\t68\t6\tarcade machine",
    "80\t0.0009\t65\t8\thovel, hut, hutch, shack, shanty",
    (
        "81\t0.0009\t248\t25\tbus, autobus, coach, charabanc, double-decker, jitney, motorbus"
        ", motorcoach, omnibus, passenger vehicle"
    ),
    "82\t0.0008\t492\t49\ttowel",
    "83\t0.0008\t2510\t269\tlight, light source",
    "84\t0.0008\t440\t39\ttruck, motortruck",
    "85\t0.0008\t147\t18\ttower",
    "86\t0.0008\t583\t56\tchandelier, pendant, pendent",
    "87\t0.0007\t533\t61\tawning, sunshade, sunblind",
    "88\t0.0007\t1989\t239\tstreetlight, street lamp",
    "89\t0.0007\t71\t5\tbooth, cubicle, stall, kiosk",
    (
        "90\t0.0007\t618\t53\ttelevision receiver, television, television set, tv, tv set"
        ", idiot box, boob tube, telly, goggle box"
    ),
    "91\t0.0007\t135\t12\tairplane, aeroplane, plane",
    "92\t0.0007\t83\t5\tdirt track",
    "93\t0.0007\t178\t17\tapparel, wearing apparel, dress, clothes",
    "94\t0.0006\t1003\t104\tpole",
    "95\t0.0006\t182\t12\tland, ground, soil",
    "96\t0.0006\t452\t50\tbannister, banister, balustrade, balusters, handrail",
    "97\t0.0006\t42\t6\tescalator, moving staircase, moving stairway",
    "98\t0.0006\t307\t31\tottoman, pouf, pouffe, puff, hassock",
    "99\t0.0006\t965\t114\tbottle",
    "100\t0.0006\t117\t13\tbuffet, counter, sideboard",
    "101\t0.0006\t354\t35\tposter, posting, placard, notice, bill, card",
    "102\t0.0006\t108\t9\tstage",
    "103\t0.0006\t557\t55\tvan",
    "104\t0.0006\t52\t4\tship",
    "105\t0.0005\t99\t5\tfountain",
    "106\t0.0005\t57\t4\tconveyer belt, conveyor belt, conveyer, conveyor, transporter",
    "107\t0.0005\t292\t31\tcanopy",
    "108\t0.0005\t77\t9\twasher, automatic washer, washing machine",
    "109\t0.0005\t340\t38\tplaything, toy",
    "110\t0.0005\t66\t3\tswimming pool, swimming bath, natatorium",
    "111\t0.0005\t465\t49\tstool",
    "112\t0.0005\t50\t4\tbarrel, cask",
    "113\t0.0005\t622\t75\tbasket, handbasket",
    "114\t0.0005\t80\t9\twaterfall, falls",
    "115\t0.0005\t59\t3\ttent, collapsible shelter",
    "116\t0.0005\t531\t72\tbag",
    "117\t0.0005\t282\t30\tminibike, motorbike",
    "118\t0.0005\t73\t7\tcradle",
    "119\t0.0005\t435\t44\toven",
    "120\t0.0005\t136\t25\tball",
    "121\t0.0005\t116\t24\tfood, solid food",
    "122\t0.0004\t266\t31\tstep, stair",
    "123\t0.0004\t58\t12\ttank, storage tank",
    "124\t0.0004\t418\t83\ttrade name, brand name, brand, marque",
    "125\t0.0004\t319\t43\tmicrowave, microwave oven",
    "126\t0.0004\t1193\t139\tpot, flowerpot",
    "127\t0.0004\t97\t23\tanimal, animate being, beast, brute, creature, fauna",
    "128\t0.0004\t347\t36\tbicycle, bike, wheel, cycle ",
    "129\t0.0004\t52\t5\tlake",
    "130\t0.0004\t246\t22\tdishwasher, dish washer, dishwashing machine",
    "131\t0.0004\t108\t13\tscreen, silver screen, projection screen",
    "132\t0.0004\t201\t30\tblanket, cover",
    "133\t0.0004\t285\t21\tsculpture",
    "134\t0.0004\t268\t27\thood, exhaust hood",
    "135\t0.0003\t1020\t108\tsconce",
    "136\t0.0003\t1282\t122\tvase",
    "137\t0.0003\t528\t65\ttraffic light, traffic signal, stoplight",
    "138\t0.0003\t453\t57\ttray",
    (
        "139\t0.0003\t671\t100\tashcan, trash can, garbage can, wastebin, ash bin, ash-bin"
        ", ashbin, dustbin, trash barrel, trash bin"
    ),
    "140\t0.0003\t397\t44\tfan",
    "141\t0.0003\t92\t8\tpier, wharf, wharfage, dock",
    "142\t0.0003\t228\t18\tcrt screen",
    "143\t0.0003\t570\t59\tplate",
    "144\t0.0003\t217\t22\tmonitor, monitoring device",
    "145\t0.0003\t206\t19\tbulletin board, notice board",
    "146\t0.0003\t130\t14\tshower",
    "147\t0.0003\t178\t28\tradiator",
    "148\t0.0002\t504\t57\tglass, drinking glass",
    "149\t0.0002\t775\t96\tclock",
    "150\t0.0002\t421\t56\tflag",
)
# fmt: on
