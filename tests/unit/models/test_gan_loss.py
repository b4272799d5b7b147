"""The GAN step: hinge losses, frozen D in the G phase, bf16 autocast, EMA."""

from __future__ import annotations

import torch

from scene2img.models.discriminator import LostGANDiscriminator
from scene2img.models.gan_loss import LayoutGANLoss, mismatched_attributes, update_ema
from scene2img.models.generator import LostGANGenerator

B, O, K, A, S = 2, 3, 8, 5, 64  # noqa: E741  (batch, objects, classes, attributes, size)


def _batch():
    g = torch.Generator().manual_seed(0)
    attrs = (torch.rand(B, O, A, generator=g) > 0.5).float()
    attrs[:, 0, 0] = 1.0
    return {
        "image": torch.rand(B, 3, S, S, generator=g) * 2 - 1,
        "objects": torch.tensor([[1, 2, 0], [3, 4, 0]]),
        "boxes": torch.tensor([[0.1, 0.1, 0.4, 0.3], [0.5, 0.4, 0.4, 0.5], [0, 0, 1, 1]])
        .expand(B, O, 4).clone(),
        "obj_valid": torch.ones(B, O, dtype=torch.bool),
        "attributes": attrs,
        "masks": torch.zeros(B, O, 16, 16),
        "has_masks": torch.zeros(B, dtype=torch.bool),
    }


def _nets():
    torch.manual_seed(0)
    G = LostGANGenerator(K, A, image_size=S, ch=1, z_img=8, z_obj=8, class_dim=8, attr_dim=4)
    D = LostGANDiscriminator(K, A, image_size=S, ch=1)
    return G, D


def _opts(G, D):
    return (torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.999)),
            torch.optim.Adam(D.parameters(), 1e-4, betas=(0.0, 0.999)))


def test_step_updates_both_nets_and_reports_losses():
    G, D = _nets()
    loss = LayoutGANLoss(G, D, matching_aware=True)
    g0 = [p.clone() for p in G.parameters()]
    d0 = [p.clone() for p in D.parameters()]
    stats = loss.step(_batch(), *_opts(G, D), torch.Generator().manual_seed(0))
    assert {"d_loss", "g_loss", "d_image", "d_object", "d_attribute", "g_attribute"} <= set(stats)
    assert all(torch.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters(), strict=True))
    assert all(p.requires_grad for p in D.parameters())  # unfrozen after the G phase


def test_g_phase_leaves_d_without_gradients():
    G, D = _nets()
    loss = LayoutGANLoss(G, D)
    batch = _batch()
    z = G.sample_latents(B, O)
    loss.accumulate_gradients("G", batch, loss.generate(batch, *z))
    assert all(p.grad is None for p in D.parameters())
    assert any(p.grad is not None for p in G.parameters())


def test_bf16_autocast_forward_backward_on_cpu():
    G, D = _nets()
    loss = LayoutGANLoss(G, D, matching_aware=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stats = loss.step(_batch(), *_opts(G, D), torch.Generator().manual_seed(0))
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
