"""Regressed masks against the data's masks, beside the box-filling baseline."""

from __future__ import annotations

import pytest
import torch

from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.processed import load_vocab
from scene2img.evaluation.mask_agreement import regressed_mask_iou
from scene2img.models.generator import LostGANGenerator

pytestmark = pytest.mark.usefixtures("one_thread")


def _generator(num_classes: int) -> LostGANGenerator:
    torch.manual_seed(0)
    return LostGANGenerator(num_classes, 0, 64, ch=1, z_img=4, z_obj=4, class_dim=4,
                            mask_width=4, stage_mask_dim=4).eval()


def test_baselines_bound_a_regressor_that_learned_nothing(toy_coco):
    vocab = load_vocab(toy_coco)
    data = SceneGraphDataset(toy_coco, "val", 16, vocab=vocab)
    G = _generator(vocab.num_objects)
    out = regressed_mask_iou(data, G, batch_size=8)
    assert out["objects"] > 0 and 0.0 <= out["mask_iou"] <= 1.0
    assert 0.3 < out["box_iou"] < 1.0  # toy objects are not their boxes
    last = G.mask_regress.convs[-1]
    with torch.no_grad():  # a mask that is high everywhere is the box-filling mask (the bias
        last.bias.fill_(1e3)  # outweighs the spectrally normalised weights' O(1) output)
    full = regressed_mask_iou(data, G, batch_size=8)
    assert full["mask_iou"] == pytest.approx(out["box_iou"])
    with torch.no_grad():  # and one that is low everywhere misses every object
        last.bias.fill_(-1e3)
    assert regressed_mask_iou(data, G, batch_size=8)["mask_iou"] == 0.0


def test_data_without_masks_is_refused(toy_vg):
    vocab = load_vocab(toy_vg)
    data = SceneGraphDataset(toy_vg, "val", 16, vocab=vocab)
    with pytest.raises(ValueError, match="no objects with ground-truth masks"):
        regressed_mask_iou(data, _generator(vocab.num_objects))


def test_per_class_figures_add_up(toy_coco):
    vocab = load_vocab(toy_coco)
    data = SceneGraphDataset(toy_coco, "val", 16, vocab=vocab)
    out = regressed_mask_iou(data, _generator(vocab.num_objects), batch_size=8)
    rows = out["per_class"].values()
    assert sum(r["objects"] for r in rows) == out["objects"]
    weighted = sum(r["mask_iou"] * r["objects"] for r in rows) / out["objects"]
    assert weighted == pytest.approx(out["mask_iou"])
    assert all(0 < c < vocab.num_objects for c in out["per_class"])  # never __image__
