"""ADE20K SceneParsing reader on tiny annotation maps, and the real objectInfo150 table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scene2img.data.drops import DropCounts
from scene2img.data.sources import ade20k
from scene2img.data.sources.ade20k import find_object_info, load_object_info, read_ade20k
from scene2img.errors import DataError
from tests.conftest import SHARED_DATA

OBJECT_INFO = SHARED_DATA / "ade20k" / "objectInfo150.txt"

HEADER = "Idx\tRatio\tTrain\tVal\tName\n"
TABLE = HEADER + "1\t0.1576\t11664\t1172\twall\n2\t0.1072\t6046\t612\tbuilding, edifice\n" \
    "3\t0.0878\t8265\t796\tsky\n"


def test_real_object_info() -> None:
    assert OBJECT_INFO.is_file(), (
        f"the ADE20K class table is missing at {OBJECT_INFO.resolve()}; it ships in "
        "../shared/data/ next to the project (see shared/data/README.md)"
    )
    table = load_object_info(OBJECT_INFO)
    assert sorted(table) == list(range(1, 151))
    assert table[1] == "wall" and table[2] == "building" and table[4] == "floor"
    assert table[150] == "flag"
    assert all(name == name.strip() and "," not in name for name in table.values())


def test_object_info_csv_and_errors(tmp_path: Path) -> None:
    csv_path = tmp_path / "objectInfo150.csv"
    csv_path.write_text('Idx,Ratio,Train,Val,Name\n1,0.15,1,1,wall\n2,0.1,1,1,building;edifice\n'
                        '3,0.1,1,1,"floor, flooring"\n')
    assert load_object_info(csv_path) == {1: "wall", 2: "building", 3: "floor"}
    bad = tmp_path / "bad.txt"
    bad.write_text(HEADER + "x\t0.1\t1\t1\twall\n")
    with pytest.raises(DataError, match=r"bad.txt:2: expected Idx and Name"):
        load_object_info(bad)
    bad.write_text("just some text\n")
    with pytest.raises(DataError, match="header with Idx and Name"):
        load_object_info(bad)
    with pytest.raises(DataError, match="not found"):
        load_object_info(tmp_path / "nope.txt")


def _dataset(raw: Path, split: str = "training", info_at: str = "ADEChallengeData2016") -> Path:
    root = raw / "ADEChallengeData2016"
    (root / "images" / split).mkdir(parents=True)
    (root / "annotations" / split).mkdir(parents=True)
    (raw / info_at / "objectInfo150.txt").write_text(TABLE)
    return root


def _add(root: Path, split: str, stem: str, ann: np.ndarray | None) -> None:
    (root / "images" / split / f"{stem}.jpg").write_bytes(b"")  # never opened
    if ann is not None:
        Image.fromarray(ann.astype(np.uint8), mode="L").save(
            root / "annotations" / split / f"{stem}.png")


def _scene_map() -> np.ndarray:
    ann = np.zeros((40, 50), dtype=np.uint8)  # 0 = other: never an object
    ann[0:10, :] = 3  # sky across the top
    ann[15:25, 2:12] = 1  # wall, left region (100 px)
    ann[15:30, 30:45] = 1  # wall, right region (225 px)
    ann[25, 12] = 1  # touches the left region only diagonally: 8-connected, one region
    ann[35:37, 20:22] = 1  # a 4-pixel wall region: below min_region_area
    ann[38, 48] = 9  # a class not in the table
    return ann


def test_read_ade20k(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    _add(root, "training", "ADE_train_00000002", _scene_map())
    _add(root, "training", "ADE_train_00000001", np.zeros((8, 9), dtype=np.uint8))
    drops = DropCounts()
    scenes = list(read_ade20k(tmp_path, "training", min_region_area=50, drops=drops))
    assert [s.image_id for s in scenes] == ["ADE_train_00000001", "ADE_train_00000002"]
    empty, s = scenes
    assert (empty.width, empty.height, empty.objects) == (9, 8, [])
    assert (s.width, s.height, s.split) == (50, 40, "train")
    assert s.image_path == root / "images" / "training" / "ADE_train_00000002.jpg"
    assert [(o.name, o.box) for o in s.objects] == [
        ("wall", (2.0, 15.0, 11.0, 11.0)),  # the left region plus its diagonal neighbour
        ("wall", (30.0, 15.0, 15.0, 15.0)),
        ("sky", (0.0, 0.0, 50.0, 10.0)),
    ]
    left, right, sky = s.objects
    assert left.mask.shape == (11, 11) and int(left.mask.sum()) == 101
    assert right.mask.all() and sky.mask.all()
    assert drops.as_dict() == {ade20k.DROP_SMALL: 1, ade20k.DROP_UNKNOWN_CLASS: 1}


def test_validation_split_and_info_in_raw_dir(tmp_path: Path) -> None:
    root = _dataset(tmp_path, "validation", info_at=".")
    _add(root, "validation", "ADE_val_00000001", _scene_map())
    [s] = read_ade20k(tmp_path, "validation", min_region_area=1, drops=DropCounts())
    assert s.split == "test"
    assert [o.name for o in s.objects].count("wall") == 3  # the tiny region counts now
    assert find_object_info(tmp_path) == tmp_path / "objectInfo150.txt"


def test_skips_missing_and_corrupt_annotations(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    _add(root, "training", "ADE_train_00000001", _scene_map())
    _add(root, "training", "ADE_train_00000002", None)
    _add(root, "training", "ADE_train_00000003", None)
    (root / "annotations" / "training" / "ADE_train_00000003.png").write_bytes(b"\x89PNG junk")
    drops = DropCounts()
    scenes = list(read_ade20k(tmp_path, "training", 50, drops))
    assert [s.image_id for s in scenes] == ["ADE_train_00000001"]
    assert drops[ade20k.DROP_MISSING_ANNOTATION] == 1
    assert drops[ade20k.DROP_UNREADABLE_ANNOTATION] == 1


def test_missing_folders_and_table(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"ADEChallengeData2016: directory not found"):
        list(read_ade20k(tmp_path, "training", 50, DropCounts()))
    root = _dataset(tmp_path)
    with pytest.raises(DataError, match=r"annotations/validation: directory not found"):
        (root / "images" / "validation").mkdir()
        list(read_ade20k(tmp_path, "validation", 50, DropCounts()))
    (root / "objectInfo150.txt").unlink()
    with pytest.raises(DataError, match="ADE20K class table not found"):
        list(read_ade20k(tmp_path, "training", 50, DropCounts()))
    with pytest.raises(DataError, match="split 'train'"):
        list(read_ade20k(tmp_path, "train", 50, DropCounts()))


def test_the_whole_label_map_rides_along_at_segmap_size(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    ann = _scene_map()
    _add(root, "training", "ADE_train_00000001", ann)
    (s,) = read_ade20k(tmp_path, "training", min_region_area=50, drops=DropCounts(),
                       segmap_size=20)
    assert s.segmap.shape == (20, 20) and s.segmap.dtype == np.uint8
    # nearest neighbour: every value is one of the map's (the small region's and the unknown
    # class's too: the map is the annotation, not the kept objects), none blended
    assert set(np.unique(s.segmap)) <= set(np.unique(ann))
    assert (s.segmap[:5] == 3).all()  # the sky band: the top quarter
    (s,) = read_ade20k(tmp_path, "training", min_region_area=50, drops=DropCounts())
    assert s.segmap is None  # segmap_size 0: not stored
    with pytest.raises(DataError, match=r"segmap_size=-1: give a side in pixels"):
        next(read_ade20k(tmp_path, "training", 50, DropCounts(), segmap_size=-1))


def test_a_record_keeps_its_segmentation_map() -> None:
    from scene2img.data.shards import decode_record, encode_record

    args = ("img", 40, 30, [13, 0], np.array([[0.1, 0.1, 0.5, 0.5], [0, 0, 1, 1]]), [[], []],
            None, [(0, 0, 1)], b"jpeg")
    segmap = np.arange(64, dtype=np.uint8).reshape(8, 8)
    buf = encode_record(*args, segmap=segmap)
    rec = decode_record(buf)
    assert np.array_equal(rec.segmap, segmap) and rec.image_bytes == b"jpeg"
    plain = encode_record(*args)
    assert decode_record(plain).segmap is None and b"segmap" not in plain  # as before
    with pytest.raises(DataError, match="corrupt record .*truncated"):
        decode_record(buf[:-1])
    with pytest.raises(DataError, match=r"segmentation map of shape \(8, 4\)"):
        encode_record(*args, segmap=segmap[:, :4])


def test_scene_categories(tmp_path: Path) -> None:
    from scene2img.data.sources.ade20k import read_scene_categories

    root = _dataset(tmp_path)
    (root / "sceneCategories.txt").write_text("ADE_train_00000001 beach\n\nADE_val_00000001 lake\n")
    assert read_scene_categories(tmp_path) == {"ADE_train_00000001": "beach",
                                               "ADE_val_00000001": "lake"}
    (root / "sceneCategories.txt").write_text("ADE_train_00000001\n")
    with pytest.raises(DataError, match=r"sceneCategories.txt:1: expected 'image_id scene_cat"):
        read_scene_categories(tmp_path)
    with pytest.raises(DataError, match="not found"):
        read_scene_categories(tmp_path / "nowhere")
