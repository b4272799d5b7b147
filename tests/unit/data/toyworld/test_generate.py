"""`generate_toyworld`: the output folder, its arguments, determinism, and one scene set in every
format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scene2img.config import ToyworldParams
from scene2img.data import toyworld
from scene2img.data.sources import SOURCE_NAMES
from scene2img.data.toyworld import STUFF, THINGS, generate_toyworld
from scene2img.errors import ConfigError, DataError
from tests.unit.data.toyworld.conftest import PARAMS, load, tree


def test_refuses_a_non_empty_out_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        generate_toyworld("vg", out, PARAMS)
    assert (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_writes_into_an_existing_empty_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    small = ToyworldParams(2, 96, 72, 0.0, 0.0, 0)
    counts = generate_toyworld("ade20k", out, small)
    assert counts["images"] == 2 and counts["train"] == 2
    assert (out / "ADEChallengeData2016" / "objectInfo150.txt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = toyworld.make_scene
    calls = []

    def failing(rng, width, height):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(rng, width, height)

    monkeypatch.setattr(toyworld, "make_scene", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_toyworld("coco-stuff", tmp_path / "out", PARAMS)
    assert list(tmp_path.iterdir()) == []


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown toyworld format"):
        generate_toyworld("pascal", tmp_path / "a", PARAMS)
    with pytest.raises(ConfigError, match="sum to less than 1"):
        generate_toyworld("vg", tmp_path / "b", ToyworldParams(4, 160, 120, 0.5, 0.5, 0))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", SOURCE_NAMES)
def test_same_params_give_identical_bytes(fmt: str, generated: dict, tmp_path: Path) -> None:
    root, counts = generated[fmt]
    again = generate_toyworld(fmt, tmp_path / "again", PARAMS)
    assert again == counts
    first, second = tree(root), tree(tmp_path / "again")
    assert list(first) == list(second)
    assert [k for k in first if first[k] != second[k]] == []
    other = generate_toyworld(fmt, tmp_path / "other", ToyworldParams(12, 160, 120, 0.25, 0.25, 4))
    assert other["objects"] > 0
    assert tree(tmp_path / "other") != first


def test_splits_follow_the_fractions(generated: dict) -> None:
    for _, counts in generated.values():
        assert (counts["train"], counts["val"], counts["test"]) == (6, 3, 3)
        assert counts["images"] == 12


def test_the_formats_annotate_the_same_scenes(generated: dict) -> None:
    """Same params, same pictures: ADE and COCO-Stuff label maps map onto each other."""
    coco_root, _ = generated["coco-stuff"]
    ade_root, _ = generated["ade20k"]
    ade_to_coco = np.full(256, 255, np.int64)
    for c in (*THINGS.values(), *STUFF.values()):
        ade_to_coco[c.ade] = c.coco - 1
    inst = load(coco_root / "annotations" / "instances_train2017.json")
    coco_label = np.asarray(
        Image.open(coco_root / "train_label" / (inst["images"][0]["file_name"][:-4] + ".png"))
    )
    ade_label = np.asarray(
        Image.open(
            ade_root
            / "ADEChallengeData2016"
            / "annotations"
            / "training"
            / "ADE_train_00000001.png"
        )
    )
    assert (ade_to_coco[ade_label] == coco_label).all()
