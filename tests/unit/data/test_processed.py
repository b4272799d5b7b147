"""The processed-dataset contract: file names, the manifest and the vocabulary, written and read
back (local folders and fsspec URLs), and the errors for a folder that does not hold them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import fsspec
import pytest

from scene2img.data.processed import (
    MANIFEST_FILE,
    SPLITS,
    VOCAB_FILE,
    load_vocab,
    manifest_sha256,
    read_manifest,
    split_url,
    write_manifest,
    write_vocab,
)
from scene2img.data.vocab import Vocab
from scene2img.errors import DataError

VOCAB = Vocab(object_idx_to_name=["__image__", None, "person", None, "car"],
              pred_idx_to_name=["__in_image__", "left of"],
              attribute_idx_to_name=["red"])


def test_vocab_round_trip_keeps_gaps_and_sg2im_keys(tmp_path: Path) -> None:
    digest = write_vocab(tmp_path, VOCAB)
    data = (tmp_path / VOCAB_FILE).read_bytes()
    assert digest == hashlib.sha256(data).hexdigest()
    assert json.loads(data)["object_name_to_idx"] == {"__image__": 0, "person": 2, "car": 4}
    assert data.endswith(b"\n") and json.dumps(json.loads(data), indent=1, sort_keys=True) + "\n" \
        == data.decode()
    assert load_vocab(tmp_path) == VOCAB
    assert load_vocab(f"{tmp_path}/") == VOCAB  # a trailing slash is not doubled


def test_manifest_round_trip_and_identity(tmp_path: Path) -> None:
    manifest = {"source": "vg", "counts": {"train": 2, "val": 1, "test": 0}, "b": [1], "a": None}
    digest = write_manifest(tmp_path, manifest)
    assert digest == manifest_sha256(tmp_path)
    assert read_manifest(tmp_path) == manifest
    text = (tmp_path / MANIFEST_FILE).read_text()
    assert text.index('"a"') < text.index('"b"') < text.index('"counts"')  # sorted: stable bytes
    write_manifest(tmp_path, dict(reversed(manifest.items())))
    assert manifest_sha256(tmp_path) == digest  # key order does not change the identity


def test_reads_from_an_fsspec_url() -> None:
    fs = fsspec.filesystem("memory")
    with fs.open("/ds/vocab.json", "wb") as f:
        f.write(json.dumps(VOCAB.to_json()).encode())
    with fs.open("/ds/manifest.json", "wb") as f:
        f.write(b'{"source": "ade20k"}')
    try:
        assert load_vocab("memory://ds") == VOCAB
        assert read_manifest("memory://ds/") == {"source": "ade20k"}
        assert manifest_sha256("memory://ds") == hashlib.sha256(b'{"source": "ade20k"}').hexdigest()
    finally:
        fs.rm("/ds", recursive=True)


def test_split_urls() -> None:
    assert SPLITS == ("train", "val", "test")
    assert split_url("s3://bucket/data/", "val") == "s3://bucket/data/val"
    assert split_url(Path("/x/data"), "train") == "/x/data/train"
    with pytest.raises(DataError, match="split 'training': a processed dataset has the splits"):
        split_url("/x", "training")


def test_a_folder_without_the_files_is_named(tmp_path: Path) -> None:
    for read in (read_manifest, manifest_sha256, load_vocab):
        with pytest.raises(DataError, match=r"missing/(manifest|vocab)\.json: not found; is this a "
                                            "processed dataset folder"):
            read(tmp_path / "missing")


@pytest.mark.parametrize(("name", "read"), [(MANIFEST_FILE, read_manifest),
                                            (VOCAB_FILE, load_vocab)])
def test_corrupt_files_are_named(tmp_path: Path, name: str, read) -> None:
    path = tmp_path / name
    path.write_text('{\n "source": "vg",\n')  # truncated
    with pytest.raises(DataError, match=rf"{name}: malformed JSON at line 3, column 1: .*re-run"):
        read(tmp_path)
    path.write_bytes(b'{"source": "\xff"}')
    with pytest.raises(DataError, match=rf"{name}: not UTF-8 text at byte 12"):
        read(tmp_path)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match=rf"{name}: expected a JSON object, got list"):
        read(tmp_path)


def test_a_vocab_that_is_not_sg2im_is_refused(tmp_path: Path) -> None:
    (tmp_path / VOCAB_FILE).write_text(json.dumps({"object_idx_to_name": ["__image__"]}))
    with pytest.raises(DataError, match=r"vocab\.json: not an sg2im vocabulary \(missing "
                                        "'pred_idx_to_name'\\)"):
        load_vocab(tmp_path)
    (tmp_path / VOCAB_FILE).write_text(json.dumps({"object_idx_to_name": ["person"],
                                                    "pred_idx_to_name": ["__in_image__"]}))
    with pytest.raises(DataError, match="object 0 must be '__image__'"):
        load_vocab(tmp_path)
