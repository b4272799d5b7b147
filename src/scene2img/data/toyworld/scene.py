"""Scene composition: the stuff layout (horizon, ground bands, mountains), the rows of things
the graph describes (see the package docstring), and `make_scene`, which composes and draws one
scene from one random stream: same stream, same scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from scene2img.data.toyworld.classes import PALETTE
from scene2img.data.toyworld.drawing import DRAWERS, Box, Pen, jitter, paint_stuff, shadow


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
SCENE_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
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
    kind: str  # key of SCENE_KINDS
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
    kind = list(SCENE_KINDS)[int(rng.integers(len(SCENE_KINDS)))]
    bands = SCENE_KINDS[kind][0]
    owner, stuff, horizon = _stuff_layout(rng, bands, width, height)
    image = paint_stuff(rng, owner, stuff, horizon)
    things = _place_things(rng, owner, stuff, horizon, width, height)
    things.sort(key=lambda t: (t.box[1] + t.box[3], t.box[0]))  # far (small bottom y) first
    for t in things:
        if t.support not in ("sea", "sky"):
            shadow(image, t.box)
    pic = Image.fromarray(image)
    own = Image.fromarray(owner)
    next_layer = max(stuff.values()) + 1
    for t in things:
        t.layer = next_layer
        next_layer += 1
        pen = Pen(pic, own, t.box, t.layer, flip=bool(rng.integers(2)))
        colour = jitter(rng, PALETTE[t.colour], 10)
        t.parts = DRAWERS[t.cls](pen, colour, rng)
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
        if not any(overlap_ratio(a.box, b.box) > 0.4
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


def overlap_ratio(a: Box, b: Box) -> float:
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
