from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scene2img.config import load_params
from scene2img.data.dataset import SceneGraphDataModule, SceneGraphDataset
from scene2img.errors import SceneGraphError


def test_items_are_padded_and_typed(toy_vg: Path) -> None:
    ds = SceneGraphDataset(toy_vg, "train", max_objects=16)
    item = ds[0]
    n = int(item["obj_valid"].sum())
    assert item["image"].shape == (3, 64, 64) and item["image"].min() >= -1
    assert item["objects"].shape == (16,) and item["objects"][n - 1] == 0  # __image__ last
    assert (item["objects"][n:] == 0).all() and (item["boxes"][n:] == 0).all()
    assert item["attributes"].shape == (16, ds.vocab.num_attributes)
    assert item["attributes"][: n - 1].sum() > 0  # toy objects carry colour / size
    t = item["triples"][item["triple_valid"]]
    assert t[:, [0, 2]].max() < n
    assert not bool(item["has_masks"])


def test_flip_mirrors_boxes_masks_and_left_right(toy_coco: Path) -> None:
    plain = SceneGraphDataset(toy_coco, "train", max_objects=16)
    flipped = SceneGraphDataset(toy_coco, "train", max_objects=16, flip=True)
    p2i = plain.vocab.pred_name_to_idx
    torch.manual_seed(0)
    # find an item that has a left/right triple and is flipped (rand < 0.5)
    for i in range(len(plain)):
        a = plain[i]
        t = a["triples"][a["triple_valid"]]
        if not ((t[:, 1] == p2i["left of"]) | (t[:, 1] == p2i["right of"])).any():
            continue
        for _ in range(20):
            b = flipped[i]
            if not torch.equal(a["image"], b["image"]):
                break
        assert torch.equal(b["image"], a["image"].flip(-1))
        v = a["obj_valid"]
        assert torch.allclose(b["boxes"][v, 0], 1 - a["boxes"][v, 0] - a["boxes"][v, 2])
        assert torch.equal(b["masks"], a["masks"].flip(-1))
        la, lb = a["triples"][:, 1], b["triples"][:, 1]
        assert torch.equal(lb[la == p2i["left of"]],
                           torch.full_like(lb[la == p2i["left of"]], p2i["right of"]))
        assert torch.equal(lb[la == p2i["above"]], la[la == p2i["above"]])
        return
    pytest.fail("no toy COCO image with a left/right relation")


def test_more_objects_than_the_maximum_is_a_clear_error(toy_vg: Path) -> None:
    ds = SceneGraphDataset(toy_vg, "train", max_objects=2)
    with pytest.raises(SceneGraphError, match=r"at most 2; raise data.max_objects"):
        ds[0]


def test_datamodule_batches(toy_coco: Path) -> None:
    params = load_params(experiment="toyworld").data
    dm = SceneGraphDataModule(toy_coco, params, batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 64, 64)
    assert batch["masks"].shape == (4, params.max_objects, 16, 16)
    assert bool(batch["has_masks"].all())
    assert len(dm.val_dataloader().dataset) > 0 and len(dm.test_dataloader().dataset) > 0
