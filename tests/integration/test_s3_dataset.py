"""Processed datasets read lazily from S3 (the team stack's SeaweedFS), as from a folder."""

from __future__ import annotations

from pathlib import Path

import fsspec
import torch

from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.processed import manifest_sha256


def test_dataset_reads_the_same_from_s3_and_disk(toy_coco: Path, s3_env) -> None:
    fs = fsspec.filesystem("s3")
    url = "s3://dvc-store/tests/toy-coco"
    fs.put(str(toy_coco), url, recursive=True)
    remote = SceneGraphDataset(url, "train", max_objects=16)
    local = SceneGraphDataset(toy_coco, "train", max_objects=16)
    assert len(remote) == len(local) > 0
    for i in (0, len(local) - 1):
        a, b = remote[i], local[i]
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert manifest_sha256(url) == manifest_sha256(toy_coco)
