"""One reader per raw format; each yields `scene2img.data.records.RawScene`s.

This module is the one place that knows the source names and maps each to its reader:
`read_source` reads a raw dataset as `preprocess` needs it (all splits, the fixed class table,
the hashes of the inputs it read). The readers themselves are `visual_genome`, `coco_stuff` and
`ade20k`, imported only when their format is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scene2img.config import PreprocessParams
from scene2img.data.drops import DropCounts
from scene2img.data.records import RawScene
from scene2img.data.sources._io import hash_inputs, sha256_file
from scene2img.errors import ConfigError, DataError

SOURCE_NAMES = ("vg", "coco-stuff", "ade20k")  # `preprocess.source`, the toy world's formats


def check_source(name: str, where: str = "preprocess.source") -> str:
    """`name` if it is a source name, else a `ConfigError` naming `where`."""
    if name not in SOURCE_NAMES:
        raise ConfigError(f"{where}={name!r}: choose one of {', '.join(SOURCE_NAMES)}")
    return name


def has_masks(source: str) -> bool:
    """Whether the source annotates masks (Visual Genome has boxes only)."""
    return source in ("coco-stuff", "ade20k")


def has_relations(source: str) -> bool:
    """Whether the source annotates relationships (the others get geometric ones, as in sg2im)."""
    return source == "vg"


def params_section(source: str) -> str:
    """The source's own section of `preprocess` params (`coco-stuff` -> `coco_stuff`)."""
    return check_source(source).replace("-", "_")


@dataclass
class SourceData:
    """A raw dataset as read: every scene at annotation level, before filtering."""

    scenes: list[RawScene]
    class_table: dict[int, str]  # fixed class table {id: name} (COCO-Stuff, ADE20K); VG: {}
    inputs_sha256: dict[str, str]  # the annotation files read (folders: sha256 of a listing)


def read_source(raw_dir: Path, params: PreprocessParams, drops: DropCounts) -> SourceData:
    """Read the raw dataset in `raw_dir` in the format `params.source`, counting skips in
    `drops`."""
    return _READERS[check_source(params.source)](Path(raw_dir), params, drops)


def _read_visual_genome(raw_dir: Path, params: PreprocessParams, drops: DropCounts) -> SourceData:
    from scene2img.data.sources.visual_genome import read_visual_genome

    scenes = list(read_visual_genome(raw_dir, drops, params.vg.normalise_names))
    names = ["image_data.json", "objects.json", "attributes.json", "relationships.json",
             "object_alias.txt", "relationship_alias.txt"]
    return SourceData(scenes, {}, hash_inputs(raw_dir, names))


def _read_coco_stuff(raw_dir: Path, params: PreprocessParams, drops: DropCounts) -> SourceData:
    from scene2img.data.sources import coco_stuff

    p = params.coco_stuff
    if p.form == "json":
        table: dict[int, str] = {}  # filled from the JSON files' categories
        scenes = []
        for split in ("train", "val"):
            scenes += coco_stuff.read_coco_stuff_json(raw_dir, split, p.include_other,
                                                      p.drop_crowd, drops, class_table=table)
        names = [f"annotations/{k}_{s}2017.json" for k in ("instances", "stuff")
                 for s in ("train", "val")]
        inputs = hash_inputs(raw_dir, names)
    elif p.form == "labelmap":
        table = coco_stuff.load_labels(raw_dir / "labels.txt")
        if p.include_other:
            table[183] = "other"
        scenes = []
        for split in ("train", "val"):
            scenes += coco_stuff.read_coco_stuff_labelmap(raw_dir, split, table, drops,
                                                          p.include_other)
        inputs = hash_inputs(raw_dir, ["labels.txt", "train_label", "train_inst", "val_label",
                                       "val_inst"])
    else:
        raise ConfigError(f"preprocess.coco_stuff.form={p.form!r}: choose 'json' or 'labelmap'")
    table.pop(0, None)  # 0 = unlabeled; index 0 is __image__
    if p.split_lists:
        _apply_split_lists(scenes, p.split_lists, drops)
    return SourceData(scenes, table, inputs)


def _apply_split_lists(scenes: list[RawScene], lists: dict[str, str], drops: DropCounts) -> None:
    """Keep only the images named by the lists (e.g. the 40K / 5K challenge lists)."""
    wanted: dict[str, str] = {}
    for split, path in lists.items():
        try:
            ids = Path(path).read_text().split()
        except FileNotFoundError:
            raise DataError(f"{path}: split list for {split!r} not found") from None
        wanted.update({i.lstrip("0") or "0": split for i in ids})
    unknown = set(wanted) - {s.image_id.lstrip("0") or "0" for s in scenes}
    drops.add("split file: ids not in the dataset", len(unknown))
    for s in scenes:
        if (s.image_id.lstrip("0") or "0") not in wanted:
            drops.add("image: not named by the split lists")
            s.split = None
    scenes[:] = [s for s in scenes if s.split is not None]


def _read_ade20k(raw_dir: Path, params: PreprocessParams, drops: DropCounts) -> SourceData:
    from scene2img.data.sources.ade20k import ROOT, find_object_info, load_object_info, read_ade20k

    info = find_object_info(raw_dir)
    table = load_object_info(info)
    scenes = []
    for split in ("training", "validation"):
        scenes += read_ade20k(raw_dir, split, params.ade20k.min_region_area, drops,
                              object_info=table, segmap_size=params.ade20k.segmap_size)
    inputs = hash_inputs(raw_dir / ROOT, ["annotations/training", "annotations/validation"])
    inputs[info.name] = sha256_file(info)
    return SourceData(scenes, table, inputs)


_READERS: dict[str, Callable[[Path, PreprocessParams, DropCounts], SourceData]] = {
    "vg": _read_visual_genome,
    "coco-stuff": _read_coco_stuff,
    "ade20k": _read_ade20k,
}
assert tuple(_READERS) == SOURCE_NAMES
