"""The common raw scene record that every source reader yields.

Readers (`data/sources/`) turn a dataset as it ships into `RawScene`s: names are cleaned the way
the source's reference preprocessing cleans them (Visual Genome: as sg2im reads them, see
`sources/visual_genome.py`) but not yet mapped to a vocabulary, and boxes are in pixels of the
original image. Filtering, vocabulary building, mask resizing, relation synthesis
and encoding happen later, in `data/filters.py`, `data/vocab.py`, `data/relations.py` and
`data/shards.py`, the same for every source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class RawObject:
    """One object instance as the source describes it.

    `box` is `(x0, y0, w, h)` in pixels of the original image (floats; may lie partly
    outside the image: the pipeline clips it, and drops degenerate boxes).

    A mask is given in one of two forms (or not at all, e.g. Visual Genome):
    - `mask`: a boolean array in *box coordinates* (the mask cropped to the box, any size), for
      sources whose masks come from label maps;
    - `segmentation`: COCO polygon list or RLE dict in image coordinates, decoded lazily.
    """

    name: str
    box: tuple[float, float, float, float]
    attributes: list[str] = field(default_factory=list)
    mask: np.ndarray | None = None
    segmentation: Any = None
    source_id: int | str | None = None  # id in the source (VG object_id, COCO annotation id)
    iscrowd: bool = False
    # Visual Genome: every name the object carries, in order (aliased); `name` is the first. The
    # filter keeps the first that is in the vocabulary, as sg2im does.
    names: list[str] = field(default_factory=list)
    # Visual Genome: a relationship endpoint that objects.json does not list (built from the
    # relationship's own subject/object record)
    from_relationship: bool = False


@dataclass
class RawRelationship:
    """`subject` and `object` are positions in `RawScene.objects`.

    `predicate` is normalised and aliased; `raw_predicate` is the text as the source wrote it (Visual
    Genome: sg2im looks val/test predicates up as written).
    """

    subject: int
    predicate: str
    object: int
    raw_predicate: str | None = None


@dataclass
class RawScene:
    """One image with its objects and (for Visual Genome) its relationships."""

    image_id: str
    image_path: Path
    width: int
    height: int
    objects: list[RawObject] = field(default_factory=list)
    relationships: list[RawRelationship] = field(default_factory=list)
    split: str | None = None  # the split the source assigns ("train", "test"), else None
    # ADE20K: the full label map resized to [S, S] (nearest neighbour), uint8 class ids of the
    # fixed class table, 0 = unlabeled ("other"); stored per record for BachGAN's memory bank
    segmap: np.ndarray | None = None
    # Visual Genome: the attribute list of every entry of attributes.json for this image, in file
    # order, including objects that are not in `objects` (sg2im's vocabulary counts them all)
    annotated_attributes: list[list[str]] = field(default_factory=list)
    # position of this image's entry in each annotation file (file name -> index): counting in
    # file order breaks vocabulary ties as sg2im does
    file_order: dict[str, int] = field(default_factory=dict)
