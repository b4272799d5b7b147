"""The GAN step: hinge losses, L1 and VGG terms, frozen D in the G phase, bf16 autocast, EMA and
its batch-norm statistics; each on a batch without masks (Visual Genome) and with (COCO-Stuff)."""

from __future__ import annotations

import pytest
import torch

from scene2img.models.discriminator import LostGANDiscriminator
from scene2img.models.gan_loss import (
    LayoutGANLoss,
    mismatched_attributes,
    recompute_batch_norm,
    update_ema,
)
from scene2img.models.generator import LostGANGenerator
from scene2img.models.perceptual import VGGPerceptualLoss, vgg19_features

pytestmark = pytest.mark.usefixtures("one_thread")

B, O, K, A, S = 2, 3, 8, 5, 64  # noqa: E741  (batch, objects, classes, attributes, size)


def _batch(masked: bool = False):
    g = torch.Generator().manual_seed(0)
    attrs = (torch.rand(B, O, A, generator=g) > 0.5).float()
    attrs[:, 0, 0] = 1.0
    masks = torch.zeros(B, O, 16, 16)
    if masked:  # COCO-Stuff-like: a disc in each object's box
        yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
        masks[:, :2] = (((yy - 7.5) ** 2 + (xx - 7.5) ** 2) < 40).float()
    return {
        "image": torch.rand(B, 3, S, S, generator=g) * 2 - 1,
        "objects": torch.tensor([[1, 2, 0], [3, 4, 0]]),
        "boxes": torch.tensor([[0.1, 0.1, 0.4, 0.3], [0.5, 0.4, 0.4, 0.5], [0, 0, 1, 1]])
        .expand(B, O, 4).clone(),
        "obj_valid": torch.ones(B, O, dtype=torch.bool),
        "attributes": attrs,
        "masks": masks,
        "has_masks": torch.full((B,), masked),
    }


def _nets(object_head: str = "roi"):
    torch.manual_seed(0)
    G = LostGANGenerator(K, A, image_size=S, ch=1, z_img=8, z_obj=8, class_dim=8, attr_dim=4,
                         attr_hidden=(8,), mask_width=8, stage_mask_dim=4)
    D = LostGANDiscriminator(K, A, image_size=S, ch=1, object_head=object_head)
    return G, D


def _opts(G, D):
    return (torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.999)),
            torch.optim.Adam(D.parameters(), 1e-4, betas=(0.0, 0.999)))


MASKED = pytest.mark.parametrize("masked", [False, True], ids=["vg", "coco-stuff"])


@MASKED
@pytest.mark.parametrize("object_head", ["roi", "crop"])
def test_step_updates_both_nets_and_reports_losses(masked, object_head):
    G, D = _nets(object_head)
    loss = LayoutGANLoss(G, D, matching_aware=True)
    g0 = [p.clone() for p in G.parameters()]
    d0 = [p.clone() for p in D.parameters()]
    stats = loss.step(_batch(masked), *_opts(G, D), torch.Generator().manual_seed(0))
    assert {"d_loss", "g_loss", "d_image", "d_object", "d_attribute", "g_attribute"} <= set(stats)
    assert all(torch.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters(), strict=True))
    assert all(p.requires_grad for p in D.parameters())  # unfrozen after the G phase


@MASKED
def test_g_phase_leaves_d_without_gradients_and_trains_the_mask_regressor(masked):
    G, D = _nets()
    loss = LayoutGANLoss(G, D)
    batch = _batch(masked)
    z = G.sample_latents(B, O)
    loss.accumulate_gradients("G", batch, loss.generate(batch, *z))
    assert all(p.grad is None for p in D.parameters())
    assert any(p.grad is not None for p in G.parameters())
    # LostGAN's default: masks regressed, also where the data has masks
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in G.mask_regress.parameters())


def test_ground_truth_masks_are_an_explicit_option():
    G, D = _nets()
    loss = LayoutGANLoss(G, D, gt_masks=True)
    batch = _batch(masked=True)
    z = G.sample_latents(B, O)
    loss.accumulate_gradients("G", batch, loss.generate(batch, *z))
    assert all(p.grad is None for p in G.mask_regress.parameters())  # not used
    with pytest.raises(ValueError, match="without masks"):
        loss.generate(_batch(masked=False), *z)


@MASKED
def test_l1_and_vgg_terms_join_g_loss(masked):
    G, D = _nets()
    with pytest.raises(ValueError, match="perceptual"):
        LayoutGANLoss(G, D, w_vgg=1.0)
    torch.manual_seed(1)
    vgg = VGGPerceptualLoss(vgg19_features().requires_grad_(False))
    loss = LayoutGANLoss(G, D, w_l1=1.0, w_vgg=1.0, perceptual=vgg)
    assert loss.losses == ["image", "object", "attribute", "l1", "vgg"]
    batch = _batch(masked)
    fake = loss.generate(batch, *G.sample_latents(B, O))
    total, stats = loss.g_loss(batch, fake)
    expected_l1 = (fake - batch["image"]).abs().mean()
    assert torch.allclose(stats["g_l1"], expected_l1)
    assert stats["g_vgg"] > 0
    adversarial = 0.1 * stats["g_image"] + stats["g_object"] + stats["g_attribute"]
    assert torch.allclose(total, adversarial + stats["g_l1"] + stats["g_vgg"], atol=1e-5)
    assert torch.allclose(vgg(batch["image"], batch["image"]), torch.zeros(()))


def test_attribute_hinge_covers_every_real_object():
    """AttrLostGAN: hinge(attribute) over all real objects, those without attributes too."""
    G, D = _nets()
    batch = _batch()
    batch["attributes"][0, 1] = 0.0  # an object without attributes
    loss = LayoutGANLoss(G, D)
    fake = loss.generate(batch, *G.sample_latents(B, O))
    _, stats = loss.d_loss(batch, fake)
    scores = D(torch.cat([batch["image"], fake.detach()]),
               *(torch.cat([batch[k], batch[k]]) for k in ("objects", "boxes", "obj_valid",
                                                           "attributes")))
    n = 4  # real objects per half
    expected = (torch.relu(1 - scores["attribute"][:n]).mean()
                + torch.relu(1 + scores["attribute"][n:]).mean())
    assert torch.allclose(stats["d_attribute"], expected, atol=1e-5)


@MASKED
def test_ema_batch_norm_statistics_are_recomputed_for_its_weights(masked):
    G, D = _nets()
    loss = LayoutGANLoss(G, D)
    ema = LostGANGenerator(K, A, image_size=S, ch=1, z_img=8, z_obj=8, class_dim=8, attr_dim=4,
                           attr_hidden=(8,), mask_width=8, stage_mask_dim=4)
    ema.load_state_dict(G.state_dict())
    with torch.no_grad():
        for p in ema.parameters():
            p.mul_(1.5)  # other weights than G's: other activations
    bn = ema.out[0]
    seen = []  # what the output BN normalises during the recomputation: ema's own activations
    hook = bn.register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
    used = loss.recompute_batch_norm(ema, [_batch(masked)] * 3, torch.Generator().manual_seed(0))
    hook.remove()
    assert used == 3 and not ema.training and bn.momentum == 0.1
    assert int(bn.num_batches_tracked) == 3
    # cumulative average over the three batches (momentum None), not G's statistics
    expected = torch.stack([x.mean((0, 2, 3)) for x in seen]).mean(0)
    assert torch.allclose(bn.running_mean, expected, atol=1e-5)
    assert not torch.allclose(bn.running_mean, G.out[0].running_mean)
    assert recompute_batch_norm(ema, [], lambda b: None) == 0  # nothing to average: reset only


def test_bf16_autocast_forward_backward_on_cpu():
    G, D = _nets()
    loss = LayoutGANLoss(G, D, matching_aware=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stats = loss.step(_batch(masked=True), *_opts(G, D), torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v) for v in stats.values())
    assert all(p.dtype == torch.float32 for p in G.parameters())


def test_mismatched_attributes_shuffle_only_real_objects():
    batch = _batch()
    out = mismatched_attributes(batch, torch.Generator().manual_seed(1))
    assert torch.equal(out[:, 2], batch["attributes"][:, 2])  # __image__ untouched
    real = batch["attributes"][:, :2].reshape(-1, A)
    assert sorted(map(tuple, out[:, :2].reshape(-1, A).tolist())) == \
        sorted(map(tuple, real.tolist()))


def test_update_ema():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = 0.9 * a.weight.detach() + 0.1 * b.weight.detach()
    update_ema(a, b, 0.9)
    assert torch.allclose(a.weight, expected)
