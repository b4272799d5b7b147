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
formats differ only in how they annotate them. The package mirrors `scene2img.data.sources`, one
writer per reader:

- `scene` composes a scene, `drawing` paints it, `classes` holds the toy classes, the colour
  palette and the real datasets' class tables;
- `visual_genome`: Visual Genome 1.4 (image_data/objects/attributes/relationships.json, alias
  files, VG_100K[_2]/ images, vg_splits.json), with the real files' quirks injected at small rates;
- `coco_stuff`: COCO-Stuff 2017, both the JSON form (annotations/instances_ and stuff_*.json,
  train2017/, val2017/) and SPADE's label-map form ({train,val}_{img,label,inst}/, labels.txt);
- `ade20k`: ADEChallengeData2016 (images/, annotations/, objectInfo150.txt, sceneCategories.txt).

Every image is drawn twice at once, in colour and as an "owner" map of layer ids, so masks, label
maps and boxes agree with the pixels exactly. Output is deterministic: same params, same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scene2img.config import ToyworldParams
from scene2img.data.sources import SOURCE_NAMES
from scene2img.data.toyworld._io import Writer
from scene2img.data.toyworld.ade20k import AdeWriter
from scene2img.data.toyworld.classes import PALETTE, STUFF, THINGS, ToyClass
from scene2img.data.toyworld.coco_stuff import CocoWriter, mask_to_polygons
from scene2img.data.toyworld.scene import Scene, Thing, make_scene
from scene2img.data.toyworld.visual_genome import VGWriter
from scene2img.errors import ConfigError
from scene2img.files import atomic_dir

log = logging.getLogger(__name__)

__all__ = ["PALETTE", "STUFF", "THINGS", "Scene", "Thing", "ToyClass", "generate_toyworld",
           "make_scene", "mask_to_polygons"]

# one writer per raw format
_WRITERS: dict[str, Callable[[Path, ToyworldParams], Writer]] = {
    "vg": VGWriter,
    "coco-stuff": CocoWriter,
    "ade20k": AdeWriter,
}


def generate_toyworld(fmt: str, out_dir: Path, params: ToyworldParams) -> dict[str, int]:
    """Write `params.images` synthetic scenes to `out_dir` in raw format `fmt`.

    `fmt` is "vg", "coco-stuff" or "ade20k". The folder is written under a temporary sibling name
    and renamed into place at the end; an existing non-empty `out_dir` is refused (`DataError`).
    Returns counts: images per split, objects drawn, and format-specific annotation counts.
    """
    if fmt not in SOURCE_NAMES:
        raise ConfigError(f"unknown toyworld format {fmt!r}; expected one of "
                          f"{', '.join(SOURCE_NAMES)}")
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
