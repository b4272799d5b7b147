from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from scene2img.data.filters import class_split
from scene2img.data.processed import load_vocab
from scene2img.data.shards import ShardReader, ShardWriter
from scene2img.data.sources.ade20k import load_object_info
from scene2img.data.toyworld import generate_toyworld
from scene2img.errors import DataError, EmptyDatasetError
from scene2img.stages.preprocess import preprocess
from tests.conftest import SHARED_DATA, run_killed_in_the_rename_window, toy_params


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def raw_vg(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw-vg") / "vg"
    generate_toyworld("vg", root, toy_params("vg", images=24).toyworld)
    return root


def test_vg_output_is_byte_identical_and_manifest_matches(raw_vg: Path, tmp_path: Path) -> None:
    params = toy_params("vg", images=24).preprocess
    a = preprocess(raw_vg, tmp_path / "a", params, progress=False)
    b = preprocess(raw_vg, tmp_path / "b", params, progress=False)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert a.manifest_sha256 == b.manifest_sha256

    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["source"] == "vg" and manifest["schema_version"] == 1
    assert manifest["counts"] == a.counts and sum(a.counts.values()) > 0
    for name, digest in manifest["files_sha256"].items():
        assert hashlib.sha256((tmp_path / "a" / name).read_bytes()).hexdigest() == digest
    assert set(manifest["raw_inputs_sha256"]) >= {"objects.json", "relationships.json",
                                                   "images (kept, in order)"}
    assert manifest["params"]["image_size"] == 64 and "coco_stuff" not in manifest["params"]
    # the toy world's injected quirks are handled and counted
    assert manifest["dropped"]["object: relationship endpoint not in objects.json"] > 0
    assert manifest["params"]["vg"]["keep_relationship_endpoints"] is False


def test_vg_records_hold_the_contract(raw_vg: Path, tmp_path: Path) -> None:
    preprocess(raw_vg, tmp_path / "p", toy_params("vg", images=24).preprocess, progress=False)
    vocab = load_vocab(tmp_path / "p")
    assert vocab.object_idx_to_name[0] == "__image__" and vocab.pred_idx_to_name[0] == "__in_image__"
    assert vocab.num_attributes > 0  # colours and sizes
    rec = ShardReader(tmp_path / "p" / "train")[0]
    n = len(rec.objects)
    assert rec.objects[-1] == 0 and rec.boxes[-1].tolist() == [0, 0, 1, 1]
    assert rec.masks is None  # Visual Genome has no masks
    assert ((rec.boxes >= 0) & (rec.boxes <= 1)).all()
    assert rec.image.shape == (64, 64, 3)
    in_image = rec.triples[rec.triples[:, 1] == 0]
    assert sorted(in_image[:, 0].tolist()) == list(range(n - 1)) and (in_image[:, 2] == n - 1).all()
    assert len(rec.triples) > len(in_image)  # annotated relationships too


def test_real_coco_stuff_label_maps(tmp_path: Path) -> None:
    params = toy_params("coco-stuff", **{"preprocess.coco_stuff.form": "labelmap",
                                         "preprocess.coco_stuff.val_size": 2}).preprocess
    # published thresholds (the experiment does not change them for COCO)
    assert params.coco_stuff.min_object_size == 0.02
    result = preprocess(SHARED_DATA / "coco_stuff_sample", tmp_path / "coco", params,
                        progress=False)
    assert sum(result.counts.values()) >= 8
    assert result.drops["image: more than 8 objects"] > 0  # busy COCO images exceed 3-8
    vocab = load_vocab(tmp_path / "coco")
    assert vocab.object_idx_to_name[1] == "person" and vocab.num_objects == 183
    for split in ("train", "test"):
        reader = ShardReader(tmp_path / "coco" / split)
        for i in range(len(reader)):
            rec = reader[i]
            assert 4 <= len(rec.objects) <= 9  # 3-8 objects + __image__
            assert rec.masks.shape == (len(rec.objects), 16, 16)
            assert rec.masks[:-1].reshape(len(rec.objects) - 1, -1).sum(1).min() > 0
            preds = {vocab.pred_idx_to_name[p] for p in rec.triples[:, 1]}
            assert preds <= {"__in_image__", "left of", "right of", "above", "below", "inside",
                             "surrounding"}


def test_coco_json_and_ade20k_toy_worlds(tmp_path: Path) -> None:
    for fmt, extra in (("coco-stuff", {}), ("ade20k", {"preprocess.ade20k.salient_only": "true"})):
        params = toy_params(fmt, images=30, **extra)
        generate_toyworld(fmt, tmp_path / fmt, params.toyworld)
        result = preprocess(tmp_path / fmt, tmp_path / f"p-{fmt}", params.preprocess,
                            progress=False)
        assert result.counts["train"] > 0, result
        rec = ShardReader(tmp_path / f"p-{fmt}" / "train")[0]
        assert rec.masks is not None
    assert result.drops.get("object: background class (salient_only)", 0) > 0
    # ADE20K, salient only: foreground boxes; the whole label map (sky included) for the bank
    foreground, _ = class_split(load_object_info(tmp_path / "ade20k" / "ADEChallengeData2016" /
                                                 "objectInfo150.txt"),
                                params.preprocess.ade20k.class_split)
    for split in ("train", "test"):
        rec = ShardReader(tmp_path / "p-ade20k" / split)[0]
        assert set(rec.objects[:-1].tolist()) <= set(foreground)
        assert rec.segmap.shape == (64, 64) and 3 in rec.segmap  # sky


def test_missing_and_corrupt_images_are_skipped_and_counted(raw_vg: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(raw_vg, raw)
    images = sorted((raw / "VG_100K").glob("*.jpg"))
    images[0].unlink()
    data = images[1].read_bytes()
    images[1].write_bytes(data[: len(data) // 3])  # truncated JPEG
    images[2].write_bytes(b"not an image at all")
    params = toy_params("vg", images=24).preprocess
    result = preprocess(raw, tmp_path / "p", params, progress=False)
    skipped = (result.drops.get("image: file missing", 0)
               + result.drops.get("image: file corrupt or unreadable", 0)
               + result.drops.get("image: not in a format PIL reads", 0))
    assert skipped >= 2  # the three may include an image the filters already dropped
    assert result.drops.get("image: file corrupt or unreadable", 0) >= 1

    strict = toy_params("vg", images=24, **{"preprocess.strict": "true"}).preprocess
    with pytest.raises(DataError, match=r"--strict stops here") as err:
        preprocess(raw, tmp_path / "strict", strict, progress=False)
    assert ".jpg" in str(err.value)
    assert not (tmp_path / "strict").exists()
    assert not list(tmp_path.glob(".strict.tmp-*"))


def _png_header(width: int, height: int) -> bytes:
    """A PNG that is only a header claiming `width` x `height` pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _kept_images(raw: Path, tmp_path: Path) -> list[Path]:
    """The image files a clean preprocess of `raw` keeps (not already dropped by a filter)."""
    preprocess(raw, tmp_path / "clean", toy_params("vg", images=24).preprocess, progress=False)
    ids = [ShardReader(tmp_path / "clean" / split)[i].image_id
           for split in ("train", "val", "test")
           for i in range(len(ShardReader(tmp_path / "clean" / split)))]
    return [next(raw.rglob(f"{image_id}.jpg")) for image_id in sorted(ids)]


def test_unusable_image_files_are_skipped_and_counted(raw_vg: Path, tmp_path: Path,
                                                      caplog) -> None:
    """Bombs, a folder, a file that cannot be read, a format PIL does not read: each skipped,
    counted under its reason, and named in the log; --strict stops at the first."""
    raw = tmp_path / "raw"
    shutil.copytree(raw_vg, raw)
    kept = _kept_images(raw, tmp_path)
    bomb, big, folder, loop, pdf = kept[:5]
    bomb.write_bytes(_png_header(30000, 30000))  # over twice PIL's pixel limit: an error
    big.write_bytes(_png_header(10000, 10000))  # over the limit: a warning, then 400 MB decoded
    folder.unlink()
    folder.mkdir()
    loop.unlink()
    loop.symlink_to(loop.name)  # a link to itself: reading fails (root reads chmod 000 files)
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n")

    caplog.set_level("WARNING")
    result = preprocess(raw, tmp_path / "p", toy_params("vg", images=24).preprocess,
                        progress=False)
    assert sum(result.counts.values()) == len(kept) - 5
    assert result.drops["image: too many pixels (decompression bomb)"] == 2
    assert result.drops["image: not a regular file"] == 1
    assert result.drops["image: file corrupt or unreadable"] == 1
    assert result.drops["image: not in a format PIL reads"] == 1
    for path in (bomb, big, folder, loop, pdf):
        assert f"{path}: " in caplog.text, path  # each skip names its file and why
    assert "pixels" in caplog.text and "directory" in caplog.text and "symbolic" in caplog.text
    assert "BytesIO" not in caplog.text

    strict = toy_params("vg", images=24, **{"preprocess.strict": "true"}).preprocess
    with pytest.raises(DataError, match=r"(too many pixels|directory|symbolic|PIL).*--strict "):
        preprocess(raw, tmp_path / "strict", strict, progress=False)
    assert not (tmp_path / "strict").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file; the symbolic-link "
                    "loop in the test above covers a file that cannot be read")
def test_an_image_without_read_permission_is_skipped(raw_vg: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(raw_vg, raw)
    locked = _kept_images(raw, tmp_path)[0]
    locked.chmod(0)
    try:
        result = preprocess(raw, tmp_path / "p", toy_params("vg", images=24).preprocess,
                            progress=False)
    finally:
        locked.chmod(0o644)
    assert result.drops["image: file corrupt or unreadable"] == 1


@pytest.fixture(scope="module")
def raw_ade(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw-ade") / "ade"
    generate_toyworld("ade20k", root, toy_params("ade20k", images=30).toyworld)
    return root


def _ade_pair(raw: Path, i: int) -> tuple[Path, Path]:
    """The i-th training image of an ADE20K raw folder and its annotation."""
    image = sorted(raw.rglob("images/training/*.jpg"))[i]
    return image, next(raw.rglob(f"annotations/training/{image.stem}.png"))


def test_a_file_name_that_is_not_utf8_names_its_record(raw_ade: Path, tmp_path: Path,
                                                       caplog) -> None:
    """ADE20K lists its images from the folder: a name that is not UTF-8 is skipped, counted,
    and named (escaped) in the log, not a crash in a worker."""
    raw = tmp_path / "raw"
    shutil.copytree(raw_ade, raw)
    image, annotation = _ade_pair(raw, 0)
    bad = os.fsencode(image.stem) + b"\xff"
    os.rename(os.fsencode(image), os.fsencode(image.parent) + b"/" + bad + b".jpg")
    os.rename(os.fsencode(annotation), os.fsencode(annotation.parent) + b"/" + bad + b".png")
    caplog.set_level("WARNING")
    params = toy_params("ade20k", images=30).preprocess
    result = preprocess(raw, tmp_path / "p", params, progress=False)
    assert result.drops["image: file name not UTF-8"] == 1
    assert f"{image.stem}\\xff.jpg: " in caplog.text  # named, with the bad byte escaped
    assert "Logging error" not in caplog.text


def test_an_annotation_that_is_a_decompression_bomb_is_skipped(raw_ade: Path,
                                                               tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(raw_ade, raw)
    _, annotation = _ade_pair(raw, 0)
    annotation.write_bytes(_png_header(30000, 30000))
    _, annotation = _ade_pair(raw, 1)
    annotation.write_bytes(_png_header(10000, 10000))
    result = preprocess(raw, tmp_path / "p", toy_params("ade20k", images=30).preprocess,
                        progress=False)
    assert result.drops["image: unreadable annotation"] == 2


def test_interrupted_run_leaves_no_partial_dataset(raw_vg: Path, tmp_path: Path,
                                                   monkeypatch) -> None:
    params = toy_params("vg", images=24).preprocess
    out = tmp_path / "p"
    preprocess(raw_vg, out, params, progress=False)
    before = tree_digest(out)

    calls = {"n": 0}
    original = ShardWriter.write

    def interrupted(self, record):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        original(self, record)

    monkeypatch.setattr(ShardWriter, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        preprocess(raw_vg, out, toy_params("vg", images=24, **{
            "preprocess.image_size": 128}).preprocess, progress=False)
    assert tree_digest(out) == before  # the previous dataset is intact
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no temporary folder left
    monkeypatch.undo()
    with pytest.raises(KeyboardInterrupt):  # and with no previous output: nothing at all
        monkeypatch.setattr(ShardWriter, "write", interrupted)
        calls["n"] = 0
        preprocess(raw_vg, tmp_path / "fresh", params, progress=False)
    assert not (tmp_path / "fresh").exists()


def test_a_run_killed_between_the_renames_is_recovered(raw_vg: Path, tmp_path: Path,
                                                       caplog) -> None:
    out = tmp_path / "p"
    preprocess(raw_vg, out, toy_params("vg", images=24).preprocess, progress=False)
    before = tree_digest(out)
    # the previous dataset is moved aside, the new one (128 px) complete, then the kill
    pid = run_killed_in_the_rename_window(
        "import sys\nfrom scene2img.stages.preprocess import preprocess\n"
        "from tests.conftest import toy_params\n"
        "params = toy_params('vg', images=24, **{'preprocess.image_size': '128'}).preprocess\n"
        "preprocess(Path(sys.argv[1]), Path(sys.argv[2]), params, progress=False)\n",
        str(raw_vg), str(out))
    old, new = tmp_path / f".p.old-{pid}", tmp_path / f".p.tmp-{pid}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [old.name, new.name]
    assert tree_digest(old) == before  # nothing lost: the previous dataset, whole
    killed_run = tree_digest(new)  # and the killed run's, complete (128 px)
    assert killed_run != before
    with pytest.raises(DataError, match=rf"p: missing; .* left the dataset in .*{old.name}"):
        load_vocab(out)  # a reader says where the dataset is and what to do

    caplog.set_level("WARNING", logger="scene2img.files")
    params = toy_params("vg", images=24, **{"preprocess.image_size": "128"}).preprocess
    preprocess(raw_vg, out, params, progress=False)
    assert "finished the swap a killed run" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no hidden folder left behind
    assert tree_digest(out) == killed_run


def test_everything_filtered_away_is_a_clear_error(raw_vg: Path, tmp_path: Path) -> None:
    params = toy_params("vg", images=24, **{"preprocess.vg.min_object_instances": 100000}
                        ).preprocess
    with pytest.raises(EmptyDatasetError, match="no name in the vocabulary"):
        preprocess(raw_vg, tmp_path / "p", params, progress=False)
    assert not (tmp_path / "p").exists()


def test_malformed_json_names_file_and_position(raw_vg: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(raw_vg, raw)
    text = (raw / "objects.json").read_text()
    (raw / "objects.json").write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"objects.json: malformed JSON at line \d+, column \d+"):
        preprocess(raw, tmp_path / "p", toy_params("vg").preprocess, progress=False)
    assert not (tmp_path / "p").exists()


def test_split_file_with_unknown_ids(raw_vg: Path, tmp_path: Path) -> None:
    splits = json.loads((raw_vg / "vg_splits.json").read_text())
    splits["train"] += [99999991, 99999992]
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps(splits))
    params = toy_params("vg", images=24, **{"preprocess.vg.split_file": str(split_file)})
    result = preprocess(raw_vg, tmp_path / "p", params.preprocess, progress=False)
    assert result.drops["split file: ids not in the dataset"] == 2
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"train": [10**9], "val": [], "test": []}))
    params = toy_params("vg", **{"preprocess.vg.split_file": str(other)})
    with pytest.raises(DataError, match="is it the split file for this dataset"):
        preprocess(raw_vg, tmp_path / "q", params.preprocess, progress=False)
    assert not (tmp_path / "q").exists()


def test_shard_reader_rejects_truncated_shards(raw_vg: Path, tmp_path: Path) -> None:
    preprocess(raw_vg, tmp_path / "p", toy_params("vg", images=24).preprocess, progress=False)
    shard = tmp_path / "p" / "train" / "shard-00000.bin"
    shard.write_bytes(shard.read_bytes()[:-10])
    reader = ShardReader(tmp_path / "p" / "train")
    with pytest.raises(DataError, match="truncated"):
        reader[len(reader) - 1]
    assert np.asarray(reader[0].image).shape == (64, 64, 3)
    with pytest.raises(DataError, match="index.json: not found"):
        ShardReader(tmp_path / "p")
