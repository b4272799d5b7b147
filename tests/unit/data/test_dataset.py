from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from scene2img.config import load_params
from scene2img.data.dataset import SceneGraphDataModule, SceneGraphDataset
from scene2img.data.relations import (
    GEOMETRIC_PREDICATES,
    geometric_predicate,
    geometric_triples,
    image_rng,
    object_centres,
)
from scene2img.errors import DataError, SceneGraphError


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


# --------------------------------------------------------------------------------------------
# COCO-Stuff / ADE20K: relations drawn afresh for training, as sg2im


def _geometric_ok(item: dict, vocab) -> None:
    """Every triple is a geometric predicate that the two boxes (and masks) support."""
    names = vocab.pred_idx_to_name
    n = int(item["obj_valid"].sum()) - 1  # __image__ last
    boxes = item["boxes"][:n].numpy()  # float32, as stored: edges compared in float32
    masks = item["masks"][:n].numpy()
    centres = object_centres(boxes.astype(np.float64), masks)
    t = item["triples"][item["triple_valid"]].tolist()
    geo = [(s, names[p], o) for s, p, o in t if names[p] != "__in_image__"]
    assert sorted((s, o) for s, p, o in t if names[p] == "__in_image__") == [(i, n) for i in range(n)]
    assert len(geo) == n and all(s != o and s < n and o < n for s, _, o in geo)
    for s, pred, o in geo:
        assert pred in GEOMETRIC_PREDICATES
        assert pred == geometric_predicate(boxes[s], boxes[o], centres[s] - centres[o])
    # each object starts one draw: it is an endpoint of at least one triple
    assert {x for s, _, o in geo for x in (s, o)} == set(range(n))


def test_preprocessing_and_training_draw_with_the_same_sampler(toy_coco: Path) -> None:
    ds = SceneGraphDataset(toy_coco, "val", max_objects=16)
    p2i = ds.vocab.pred_name_to_idx
    seed = load_params(experiment="toyworld").preprocess.seed
    for i in range(len(ds)):
        rec = ds.reader[i]
        n = len(rec.objects) - 1
        again = geometric_triples(rec.boxes[:n], rec.masks[:n], image_rng(seed, rec.image_id), p2i)
        assert [list(t) for t in again] == rec.triples.tolist()


def test_resampled_relations_are_reproducible_differ_by_draw_and_fit_the_boxes(
        toy_coco: Path) -> None:
    ds = SceneGraphDataset(toy_coco, "train", max_objects=16, resample_relations=True,
                           relation_seed=3)
    stored = SceneGraphDataset(toy_coco, "train", max_objects=16)
    differs = {"draws": 0, "stored": 0, "seed": 0}
    other_seed = SceneGraphDataset(toy_coco, "train", max_objects=16, resample_relations=True,
                                   relation_seed=4)
    for i in range(min(len(ds), 12)):
        a, b = ds.item(i, draw=0), ds.item(i, draw=0)
        assert torch.equal(a["triples"], b["triples"])  # reproducible for (seed, draw, index)
        c = ds.item(i, draw=1)
        differs["draws"] += not torch.equal(a["triples"], c["triples"])
        differs["stored"] += not torch.equal(a["triples"], stored.item(i)["triples"])
        differs["seed"] += not torch.equal(a["triples"], other_seed.item(i, draw=0)["triples"])
        for item in (a, c):
            _geometric_ok(item, ds.vocab)
            for key in ("image", "objects", "boxes", "masks", "attributes", "obj_valid"):
                assert torch.equal(item[key], stored.item(i)[key])  # only the graph changes
        assert torch.equal(ds.item(i, draw=None)["triples"], stored.item(i)["triples"])
    assert min(differs.values()) >= 6, differs
    # flipped after the draw: left/right swap with the mirrored boxes
    f = ds.item(0, flip=True, draw=5)
    _geometric_ok(f, ds.vocab)


def test_datamodule_resamples_training_only_and_only_geometric_sources(
        toy_coco: Path, toy_vg: Path) -> None:
    params = load_params(experiment="toyworld").data
    assert params.resample_relations  # sg2im's behaviour is the default
    dm = SceneGraphDataModule(toy_coco, params, batch_size=4, seed=1)
    assert dm.dataset("train").resample_relations
    assert not dm.dataset("val").resample_relations and not dm.dataset("test").resample_relations
    off = SceneGraphDataModule(toy_coco, replace(params, resample_relations=False), batch_size=4)
    assert not off.dataset("train").resample_relations
    assert not SceneGraphDataModule(toy_vg, params, batch_size=4).dataset("train").resample_relations
    # the plain loader draws from the global generator: seeded, it repeats; the next draw differs
    train = dm.dataset("train")
    torch.manual_seed(0)
    first = [train[i]["triples"] for i in range(8)]
    torch.manual_seed(0)
    assert all(torch.equal(a, train[i]["triples"]) for i, a in enumerate(first))
    assert any(not torch.equal(a, train[i]["triples"]) for i, a in enumerate(first))
    with pytest.raises(DataError, match="geometric predicates"):
        SceneGraphDataset(toy_vg, "train", max_objects=16, resample_relations=True)


def test_ade20k_training_graphs_are_resampled_too(tmp_path: Path) -> None:
    from scene2img.data.toyworld import generate_toyworld
    from scene2img.stages.preprocess import preprocess
    from tests.conftest import toy_params

    params = toy_params("ade20k", images=24)
    generate_toyworld("ade20k", tmp_path / "raw", params.toyworld)
    preprocess(tmp_path / "raw", tmp_path / "p", params.preprocess, progress=False)
    dm = SceneGraphDataModule(tmp_path / "p", params.data, batch_size=2, seed=0)
    ds = dm.dataset("train")
    assert ds.resample_relations and not dm.dataset("test").resample_relations
    changed = 0
    for i in range(len(ds)):
        a, b = ds.item(i, draw=0), ds.item(i, draw=1)
        _geometric_ok(a, ds.vocab)
        changed += not torch.equal(a["triples"], b["triples"])
    assert changed > 0
