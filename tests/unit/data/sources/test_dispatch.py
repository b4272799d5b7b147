"""`scene2img.data.sources`: the source names and the one dispatch from a name to its reader."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scene2img.config import PreprocessParams
from scene2img.data.drops import DropCounts
from scene2img.data.sources import (
    SOURCE_NAMES,
    check_source,
    has_masks,
    has_relations,
    params_section,
    read_source,
)
from scene2img.data.sources._io import hash_inputs, sha256_file
from scene2img.data.toyworld import generate_toyworld
from scene2img.errors import ConfigError, DataError
from tests.conftest import toy_params


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("raw")
    tw = dataclasses.replace(toy_params("vg").toyworld, images=6, width=160, height=120)
    for fmt in SOURCE_NAMES:
        generate_toyworld(fmt, root / fmt, tw)
    return {fmt: root / fmt for fmt in SOURCE_NAMES}


def _params(source: str, **coco) -> PreprocessParams:
    p = toy_params(source).preprocess
    return dataclasses.replace(p, coco_stuff=dataclasses.replace(p.coco_stuff, **coco))


def test_each_source_has_its_params_section_and_properties() -> None:
    fields = {f.name for f in dataclasses.fields(PreprocessParams)}
    assert {params_section(s) for s in SOURCE_NAMES} <= fields
    assert params_section("coco-stuff") == "coco_stuff"
    assert [has_masks(s) for s in SOURCE_NAMES] == [False, True, True]
    assert [has_relations(s) for s in SOURCE_NAMES] == [True, False, False]
    assert check_source("ade20k") == "ade20k"
    with pytest.raises(ConfigError, match="toyworld.format='pascal': choose one of vg, "
                                          "coco-stuff, ade20k"):
        check_source("pascal", "toyworld.format")


@pytest.mark.parametrize("source", SOURCE_NAMES)
def test_read_source_reads_every_image_of_the_format(source: str, raw: dict[str, Path]) -> None:
    data = read_source(raw[source], _params(source), DropCounts())
    assert len(data.scenes) == 6 and all(s.objects for s in data.scenes)
    # the split each format ships in (its val is the test split); VG: from its split file, later
    assert {s.split for s in data.scenes} <= {"vg": {None}, "coco-stuff": {"train", "test"},
                                              "ade20k": {"train", "test"}}[source]
    if source == "vg":
        assert data.class_table == {}  # VG's vocabulary comes from counts
        assert set(data.inputs_sha256) == {"image_data.json", "objects.json", "attributes.json",
                                           "relationships.json", "object_alias.txt",
                                           "relationship_alias.txt"}
    else:
        assert 0 not in data.class_table and data.class_table  # 0 is __image__
    if source == "ade20k":
        assert data.class_table[13].startswith("person")
        assert set(data.inputs_sha256) == {"annotations/training/", "annotations/validation/",
                                           "objectInfo150.txt"}
    if source == "coco-stuff":
        assert data.class_table[1] == "person" and 183 not in data.class_table
        assert len(data.inputs_sha256) == 4
        labelmap = read_source(raw[source], _params(source, form="labelmap"), DropCounts())
        assert [s.image_id for s in labelmap.scenes] == [s.image_id for s in data.scenes]
        assert set(labelmap.inputs_sha256) == {"labels.txt", "train_label/", "train_inst/",
                                               "val_label/", "val_inst/"}


def test_read_source_refuses_unknown_names(raw: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="preprocess.source='pascal'"):
        read_source(raw["vg"], dataclasses.replace(_params("vg"), source="pascal"), DropCounts())
    with pytest.raises(ConfigError, match="preprocess.coco_stuff.form='png'"):
        read_source(raw["coco-stuff"], _params("coco-stuff", form="png"), DropCounts())


def test_coco_split_lists_keep_only_the_named_images(raw: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("000000000001\n2\n999\n")
    (tmp_path / "val.txt").write_text("3\n")
    lists = {"train": str(tmp_path / "train.txt"), "val": str(tmp_path / "val.txt")}
    drops = DropCounts()
    data = read_source(raw["coco-stuff"], _params("coco-stuff", split_lists=lists), drops)
    assert sorted(s.image_id.lstrip("0") for s in data.scenes) == ["1", "2", "3"]
    assert drops.as_dict()["split file: ids not in the dataset"] == 1
    assert drops.as_dict()["image: not named by the split lists"] == 3
    lists["val"] = str(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="missing.txt: split list for 'val' not found"):
        read_source(raw["coco-stuff"], _params("coco-stuff", split_lists=lists), DropCounts())


def test_hash_inputs(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "x.png").write_bytes(b"x")
    first = hash_inputs(tmp_path, ["a.json", "d", "absent.json"])
    assert set(first) == {"a.json", "d/"}  # a missing name is left out
    assert first["a.json"] == sha256_file(tmp_path / "a.json") \
        == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    (tmp_path / "d" / "sub" / "x.png").rename(tmp_path / "d" / "sub" / "y.png")
    assert hash_inputs(tmp_path, ["d"])["d/"] != first["d/"]  # names count, not only bytes
