"""Drawing: the stuff's colours and textures, shadows, and one small function per thing class.

Every shape is drawn twice at once (`Pen`): in colour on the picture and as the object's layer id
on the "owner" map, so masks, label maps and boxes agree with the pixels exactly. Thing drawers
work in box-relative coordinates (0..1) and return the visible parts they drew (Visual Genome
annotates them: "car has wheel").
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]  # x, y, w, h in pixels; the object lies in x..x+w-1, y..y+h-1
RGB = tuple[int, int, int]
Parts = list[tuple[str, Box]]

_GLASS: RGB = (150, 190, 215)
_TYRE: RGB = (30, 30, 32)
_SKIN: tuple[RGB, ...] = ((240, 200, 165), (200, 150, 110), (140, 95, 60), (95, 65, 45))


# --------------------------------------------------------------------------------------------
# the stuff


def paint_stuff(
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
        return np.array(jitter(rng, base, spread), np.float32)

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


def shadow(image: np.ndarray, box: Box) -> None:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h - 1
    rx, ry = w * 0.55, max(2.0, h * 0.06)
    y0, y1 = max(0, int(cy - ry)), min(image.shape[0], int(cy + ry) + 1)
    x0, x1 = max(0, int(cx - rx)), min(image.shape[1], int(cx + rx) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    patch = image[y0:y1, x0:x1]
    patch[inside] = (patch[inside] * 0.65).astype(np.uint8)


def jitter(rng: np.random.Generator, colour: RGB, spread: int) -> RGB:
    c = np.clip(np.array(colour) + rng.integers(-spread, spread + 1, 3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(int(min(255, c * factor)) for c in colour)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# the things: one small function per class, in box-relative coordinates (0..1)


class Pen:
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


def _draw_car(pen: Pen, c: RGB, rng: np.random.Generator) -> Parts:
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


def _draw_bus(pen: Pen, c: RGB, rng: np.random.Generator) -> Parts:
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


def _draw_house(pen: Pen, c: RGB, rng: np.random.Generator) -> Parts:
    roof = [(150, 40, 35), (90, 60, 45), (70, 70, 80)][int(rng.integers(3))]
    pen.rect(0.08, 0.42, 0.92, 1.0, c)
    pen.polygon([(0.0, 0.46), (0.5, 0.0), (1.0, 0.46)], roof, outline=_shade(roof, 0.7))
    pen.rect(0.42, 0.66, 0.58, 1.0, (95, 60, 35))
    parts = [pen.part("roof", 0.0, 0.0, 1.0, 0.46), pen.part("door", 0.42, 0.66, 0.58, 1.0)]
    for fx in (0.16, 0.68):
        pen.rect(fx, 0.55, fx + 0.16, 0.75, _GLASS)
        parts.append(pen.part("window", fx, 0.55, fx + 0.16, 0.75))
    return parts


def _draw_tree(pen: Pen, c: RGB, rng: np.random.Generator) -> Parts:
    pen.rect(0.42, 0.55, 0.58, 1.0, (105, 70, 40))
    pen.ellipse(0.0, 0.05, 1.0, 0.72, c)
    pen.ellipse(0.15, 0.0, 0.8, 0.45, _shade(c, 1.12))  # a lighter crown
    return [pen.part("trunk", 0.42, 0.6, 0.58, 1.0)]


def _draw_person(pen: Pen, c: RGB, rng: np.random.Generator) -> Parts:
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


def _draw_ball(pen: Pen, c: RGB, rng: np.random.Generator) -> Parts:
    pen.ellipse(0.0, 0.0, 1.0, 1.0, c)
    pen.ellipse(0.22, 0.18, 0.42, 0.36, _shade(c, 1.25))  # highlight
    return []


def _draw_bench(pen: Pen, c: RGB, rng: np.random.Generator) -> Parts:
    metal = (60, 60, 64)
    pen.rect(0.08, 0.3, 0.14, 1.0, metal)
    pen.rect(0.86, 0.3, 0.92, 1.0, metal)
    pen.rect(0.0, 0.02, 1.0, 0.32, c)
    pen.rect(0.0, 0.45, 1.0, 0.64, c)
    return []


def _draw_boat(pen: Pen, c: RGB, rng: np.random.Generator) -> Parts:
    pen.rect(0.47, 0.0, 0.51, 0.56, (110, 80, 50))  # mast
    pen.polygon([(0.52, 0.06), (0.52, 0.5), (0.88, 0.5)], (245, 243, 235))  # sail
    pen.polygon([(0.0, 0.52), (1.0, 0.52), (0.84, 1.0), (0.14, 1.0)], c, outline=_shade(c, 0.6))
    return []


def _draw_airplane(pen: Pen, c: RGB, rng: np.random.Generator) -> Parts:
    pen.polygon([(0.0, 0.0), (0.12, 0.0), (0.24, 0.45), (0.04, 0.45)], c)  # tail fin
    pen.ellipse(0.0, 0.3, 1.0, 0.72, c)
    pen.polygon([(0.38, 0.55), (0.58, 0.55), (0.46, 1.0), (0.38, 1.0)], _shade(c, 0.75))  # wing
    for k in range(6):
        fx = 0.3 + k * 0.08
        pen.ellipse(fx, 0.42, fx + 0.03, 0.5, (40, 50, 70))
    return [pen.part("window", 0.3, 0.42, 0.73, 0.5)]


DRAWERS = {
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
