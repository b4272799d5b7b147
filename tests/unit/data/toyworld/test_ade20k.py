"""The toy world in the ADE20K SceneParsing format (ADEChallengeData2016)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from scene2img.data.toyworld import STUFF, THINGS
from tests.unit.data.toyworld.conftest import SHARED


def test_ade20k_layout(generated: dict) -> None:
    root, counts = generated["ade20k"]
    ade = root / "ADEChallengeData2016"
    info = (ade / "objectInfo150.txt").read_text()
    if (SHARED / "ade20k" / "objectInfo150.txt").exists():
        assert info == (SHARED / "ade20k" / "objectInfo150.txt").read_text()
    table = {
        int(line.split("\t")[0]): line.split("\t")[-1].split(",")[0].strip()
        for line in info.splitlines()[1:]
    }
    assert len(table) == 150 and table[THINGS["person"].ade] == "person"
    assert {table[c.ade] for c in STUFF.values()} == {
        "sky",
        "grass",
        "sand",
        "sea",
        "road",
        "mountain",
    }
    lines = (ade / "sceneCategories.txt").read_text().splitlines()
    stems = [line.split()[0] for line in lines]
    assert all(len(line.split()) == 2 for line in lines)
    for folder, prefix, n in (("training", "train", 9), ("validation", "val", 3)):
        names = sorted(p.stem for p in (ade / "images" / folder).glob("*.jpg"))
        assert names == [f"ADE_{prefix}_{i:08d}" for i in range(1, n + 1)]
        assert sorted(p.stem for p in (ade / "annotations" / folder).glob("*.png")) == names
        assert [s for s in stems if s.startswith(f"ADE_{prefix}_")] == names
        for stem in names:
            ann = Image.open(ade / "annotations" / folder / f"{stem}.png")
            with Image.open(ade / "images" / folder / f"{stem}.jpg") as pic:
                assert ann.mode == "L" and ann.size == pic.size
            used = {c.ade for c in (*THINGS.values(), *STUFF.values())} | {0}
            values = set(np.unique(np.asarray(ann)).tolist())
            assert values <= used and THINGS["person"].ade != 0
            assert 3 in values  # sky
    assert (counts["training"], counts["validation"]) == (9, 3)
