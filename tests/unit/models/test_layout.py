"""The layout model's plain modules: graph convolution, boxes, layout model, discriminator, losses."""

from __future__ import annotations

import pytest
import torch

from scene2img.models.boxes import (
    box_iou,
    mask_iou,
    masks_to_layout,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from scene2img.models.graph import GraphTripleConv, GraphTripleConvNet
from scene2img.models.layout import (
    LayoutDiscriminator,
    LayoutLoss,
    LayoutModel,
    box_regression_loss,
    d_hinge_loss,
    g_hinge_loss,
    mask_bce_loss,
)

TINY = dict(embed_dim=16, gconv_dim=16, gconv_hidden=32, gconv_layers=2, box_hidden=32,
            mask_size=8, mask_dim=8)


def random_graph(gen: torch.Generator, n: int, t: int, classes: int = 6, preds: int = 4):
    objects = torch.randint(1, classes, (n,), generator=gen)
    triples = torch.stack([torch.randint(0, n, (t,), generator=gen),
                           torch.randint(0, preds, (t,), generator=gen),
                           torch.randint(0, n, (t,), generator=gen)], dim=1)
    return objects, triples


def padded_batch(graphs, o: int, t: int, attrs: int = 3, junk: bool = True, seed: int = 0):
    """Pad graphs to O objects / T triples; with `junk`, padding holds random (invalid) values."""
    gen = torch.Generator().manual_seed(seed)
    b = len(graphs)
    objects = torch.randint(1, 6, (b, o), generator=gen) if junk else torch.zeros(b, o).long()
    triples = torch.randint(0, o, (b, t, 3), generator=gen) if junk \
        else torch.zeros(b, t, 3).long()
    triples[..., 1] = triples[..., 1] % 4
    attributes = torch.rand(b, o, attrs, generator=gen).round() if junk else torch.zeros(b, o, attrs)
    obj_valid = torch.zeros(b, o, dtype=torch.bool)
    triple_valid = torch.zeros(b, t, dtype=torch.bool)
    for i, (objs, trips, att) in enumerate(graphs):
        objects[i, :len(objs)] = objs
        triples[i, :len(trips)] = trips
        attributes[i, :len(objs)] = att
        obj_valid[i, :len(objs)] = True
        triple_valid[i, :len(trips)] = True
    return objects, obj_valid, triples, triple_valid, attributes


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def graphs():
    gen = torch.Generator().manual_seed(1)
    out = []
    for n, t in [(4, 5), (6, 3), (2, 1)]:
        objs, trips = random_graph(gen, n, t)
        out.append((objs, trips, torch.rand(n, 3, generator=gen).round()))
    return out


# --------------------------------------------------------------------------------------------
# boxes


def test_box_conversions_round_trip_and_iou_values():
    boxes = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 1.0, 1.0]])
    assert torch.allclose(xyxy_to_xywh(xywh_to_xyxy(boxes)), boxes)
    assert torch.allclose(xywh_to_xyxy(boxes)[0], torch.tensor([0.1, 0.2, 0.4, 0.6]))
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.2, 0.2]])
    b = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.0, 0.5, 0.5], [0.5, 0.5, 0.2, 0.2]])
    assert torch.allclose(box_iou(a, b), torch.tensor([1.0, 1 / 3, 0.0]), atol=1e-6)
    assert box_iou(torch.tensor([0.1, 0.1, -0.2, 0.3]), a[0]).item() == 0.0  # degenerate box


def test_mask_iou_and_pasting():
    m = torch.zeros(2, 4, 4)
    m[0, :2] = 1
    m[1, :, :2] = 1
    assert torch.allclose(mask_iou(m[0], m[0]), torch.tensor(1.0))
    assert torch.allclose(mask_iou(m[0], m[1]), torch.tensor(4 / 12))
    assert mask_iou(torch.zeros(4, 4), torch.zeros(4, 4)).item() == 1.0
    # A full mask pasted into its box covers exactly the box's pixels.
    boxes = torch.tensor([[[0.25, 0.5, 0.5, 0.25]]])
    grid = masks_to_layout(boxes, torch.ones(1, 1, 8, 8), 16)[0, 0]
    inside = torch.zeros(16, 16)
    inside[8:12, 4:12] = 1
    assert torch.allclose(grid, inside, atol=1e-5)


# --------------------------------------------------------------------------------------------
# graph convolution


def test_graph_conv_shapes_and_zero_padding(graphs):
    objects, obj_valid, triples, triple_valid, _ = padded_batch(graphs, 8, 7)
    net = GraphTripleConvNet(dim_in=12, dim=10, hidden=20, layers=3)
    obj = torch.randn(3, 8, 12)
    pred = torch.randn(3, 7, 12)
    new_obj, new_pred = net(obj, pred, triples, obj_valid, triple_valid)
    assert new_obj.shape == (3, 8, 10) and new_pred.shape == (3, 7, 10)
    assert (new_obj[~obj_valid] == 0).all() and (new_pred[~triple_valid] == 0).all()


def test_graph_conv_is_permutation_equivariant():
    torch.manual_seed(0)
    conv = GraphTripleConv(8, 8, hidden=16)
    n, t = 7, 9
    gen = torch.Generator().manual_seed(3)
    _, triples = random_graph(gen, n, t)
    obj, pred = torch.randn(1, n, 8), torch.randn(1, t, 8)
    valid_o, valid_t = torch.ones(1, n, dtype=torch.bool), torch.ones(1, t, dtype=torch.bool)
    out_obj, out_pred = conv(obj, pred, triples[None], valid_o, valid_t)

    perm = torch.randperm(n, generator=gen)  # new position i holds old object perm[i]
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    tperm = torch.randperm(t, generator=gen)  # the triples' order must not matter either
    p_triples = triples[tperm].clone()
    p_triples[:, 0], p_triples[:, 2] = inv[p_triples[:, 0]], inv[p_triples[:, 2]]
    p_obj, p_pred = conv(obj[:, perm], pred[:, tperm], p_triples[None], valid_o, valid_t)
    assert torch.allclose(p_obj, out_obj[:, perm], atol=1e-5)
    assert torch.allclose(p_pred, out_pred[:, tperm], atol=1e-5)


def test_layout_model_is_permutation_equivariant():
    torch.manual_seed(0)
    model = LayoutModel(6, 4, 3, **TINY).eval()
    gen = torch.Generator().manual_seed(5)
    objs, trips = random_graph(gen, 5, 6)
    att = torch.rand(5, 3, generator=gen).round()
    boxes, masks = model(objs[None], torch.ones(1, 5, dtype=torch.bool), trips[None],
                         torch.ones(1, 6, dtype=torch.bool), att[None])
    perm = torch.tensor([3, 0, 4, 1, 2])
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(5)
    p_trips = trips.clone()
    p_trips[:, 0], p_trips[:, 2] = inv[trips[:, 0]], inv[trips[:, 2]]
    p_boxes, p_masks = model(objs[perm][None], torch.ones(1, 5, dtype=torch.bool), p_trips[None],
                             torch.ones(1, 6, dtype=torch.bool), att[perm][None])
    assert torch.allclose(p_boxes, boxes[:, perm], atol=1e-5)
    assert torch.allclose(p_masks, masks[:, perm], atol=1e-5)


# --------------------------------------------------------------------------------------------
# layout model


def test_layout_model_shapes_and_ranges(graphs):
    model = LayoutModel(6, 4, 3, **TINY)
    objects, obj_valid, triples, triple_valid, attributes = padded_batch(graphs, 8, 7)
    boxes, masks = model(objects, obj_valid, triples, triple_valid, attributes)
    assert boxes.shape == (3, 8, 4) and masks.shape == (3, 8, 8, 8)
    assert ((masks >= 0) & (masks <= 1)).all()
    assert (boxes[~obj_valid] == 0).all() and (masks[~obj_valid] == 0).all()
    with pytest.raises(ValueError, match="triples"):
        model(objects, obj_valid, triples[..., :2], triple_valid, attributes)
    with pytest.raises(ValueError, match="attributes"):
        model(objects, obj_valid, triples, triple_valid, attributes[..., :2])


@pytest.mark.parametrize("train", [False, True])
def test_padding_does_not_change_valid_outputs(graphs, train):
    torch.manual_seed(0)
    model = LayoutModel(6, 4, 3, **TINY)  # batch norm in the mask head: must see no padding
    model.train(train)
    small = padded_batch(graphs, 6, 5, junk=False)
    large = padded_batch(graphs, 11, 14, junk=True, seed=7)  # random junk in the padding
    b1, m1 = model(*small)
    b2, m2 = model(*large)
    for i, (objs, _, _) in enumerate(graphs):
        n = len(objs)
        assert torch.allclose(b1[i, :n], b2[i, :n], atol=1e-5)
        assert torch.allclose(m1[i, :n], m2[i, :n], atol=1e-5)


def test_attributes_change_the_layout(graphs):
    torch.manual_seed(0)
    model = LayoutModel(6, 4, 3, **TINY).eval()
    objects, obj_valid, triples, triple_valid, attributes = padded_batch(graphs, 6, 5)
    b1, _ = model(objects, obj_valid, triples, triple_valid, attributes)
    b2, _ = model(objects, obj_valid, triples, triple_valid, torch.zeros_like(attributes))
    assert not torch.allclose(b1, b2)


# --------------------------------------------------------------------------------------------
# discriminator and losses


def test_discriminator_ignores_padding_and_missing_masks(graphs):
    torch.manual_seed(0)
    disc = LayoutDiscriminator(6, dim=16, mask_size=8)
    objects, obj_valid, _, _, _ = padded_batch(graphs, 8, 6, seed=2)
    boxes = torch.rand(3, 8, 4)
    masks = torch.rand(3, 8, 8, 8)
    has = torch.tensor([True, False, True])
    s1 = disc(objects, boxes, masks, obj_valid, has)
    junk_boxes = torch.where(obj_valid[..., None], boxes, torch.rand(3, 8, 4))
    other_masks = torch.where(has[:, None, None, None], masks, torch.rand(3, 8, 8, 8))
    other_masks = torch.where(obj_valid[..., None, None], other_masks, torch.rand(3, 8, 8, 8))
    s2 = disc(objects, junk_boxes, other_masks, obj_valid, has)
    assert s1.shape == (3,)
    assert torch.allclose(s1, s2, atol=1e-6)


def test_loss_functions():
    gt = torch.rand(2, 3, 4)
    valid = torch.tensor([[True, True, False], [True, False, False]])
    assert box_regression_loss(gt, gt, valid).item() == 0.0
    off = gt.clone()
    off[~valid] += 5.0  # padding is not counted
    assert box_regression_loss(off, gt, valid, "l1").item() == 0.0
    off[0, 0] += 0.5
    # per image: (0.5 over 1 of 2 objects) / 2, image 2: 0 -> batch mean 0.125 (L1)
    assert box_regression_loss(off, gt, valid, "l1").item() == pytest.approx(0.125)
    logits = torch.randn(2, 3, 4, 4)
    target = torch.ones(2, 3, 4, 4)
    none = torch.tensor([False, False])
    assert mask_bce_loss(logits, target, valid, none).item() == 0.0
    assert mask_bce_loss(logits, target, valid, ~none).item() > 0.0
    assert d_hinge_loss(torch.tensor([2.0]), torch.tensor([-2.0])).item() == 0.0
    assert d_hinge_loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == 2.0
    assert g_hinge_loss(torch.tensor([1.0, 3.0])).item() == -2.0


def test_layout_loss_routes_gradients(graphs):
    """One backward pass: the discriminator gets only its loss's gradient, the model only its own."""
    torch.manual_seed(0)
    model = LayoutModel(6, 4, 3, **TINY)
    disc = LayoutDiscriminator(6, dim=16, mask_size=8)
    objects, obj_valid, triples, triple_valid, attributes = padded_batch(graphs, 6, 5, junk=False)
    batch = dict(objects=objects, obj_valid=obj_valid, triples=triples,
                 triple_valid=triple_valid, attributes=attributes, boxes=torch.rand(3, 6, 4),
                 masks=torch.rand(3, 6, 8, 8).round(), has_masks=torch.tensor([True, True, False]))
    loss = LayoutLoss(model, disc, box_weight=10.0, mask_weight=0.1, adv_weight=0.5)
    total, terms, _, _ = loss(batch)
    total.backward()
    d_grads = [p.grad.clone() for p in disc.parameters()]
    g_grads = [p.grad.clone() for p in model.parameters()]
    for p in [*model.parameters(), *disc.parameters()]:
        p.grad = None

    # Reference: the discriminator's loss alone, and the model's loss alone.
    _, _, boxes, masks = loss(batch)
    real = disc(objects, batch["boxes"], batch["masks"], obj_valid, batch["has_masks"])
    fake = disc(objects, boxes.detach(), masks.detach(), obj_valid, batch["has_masks"])
    d_hinge_loss(real, fake).backward()
    for g, p in zip(d_grads, disc.parameters(), strict=True):
        assert torch.allclose(g, p.grad, atol=1e-6)
    for p in disc.parameters():
        p.requires_grad_(False)
    model.zero_grad()
    boxes, mask_logits = model.layout(objects, obj_valid, triples, triple_valid, attributes)
    masks = torch.sigmoid(mask_logits) * obj_valid[..., None, None]
    gen = 10.0 * box_regression_loss(boxes, batch["boxes"], obj_valid) \
        + 0.1 * mask_bce_loss(mask_logits, batch["masks"], obj_valid, batch["has_masks"]) \
        + 0.5 * g_hinge_loss(disc(objects, boxes, masks, obj_valid, batch["has_masks"]))
    gen.backward()
    for g, p in zip(g_grads, model.parameters(), strict=True):
        assert torch.allclose(g, p.grad, atol=1e-5)
    assert set(terms) == {"box", "mask", "g_adv", "d", "loss"}


def test_tiny_batch_overfits(graphs):
    torch.manual_seed(0)
    model = LayoutModel(6, 4, 3, **TINY)
    objects, obj_valid, triples, triple_valid, attributes = padded_batch(graphs, 6, 5, junk=False)
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 6, 4, generator=gen) * 0.5
    batch = dict(objects=objects, obj_valid=obj_valid, triples=triples, attributes=attributes,
                 triple_valid=triple_valid, boxes=target, masks=torch.zeros(3, 6, 8, 8),
                 has_masks=torch.tensor([False] * 3))
    loss = LayoutLoss(model, box_weight=10.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        total, terms, _, _ = loss(batch)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(terms["box"].item())
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])
