"""The LostGAN-v2 and CRN generators: shapes, latents, and what they draw."""

from __future__ import annotations

import pytest
import torch

from scene2img.models.crn import CRNGenerator
from scene2img.models.generator import (
    LostGANGenerator,
    MaskRegression,
    PSPModule,
    box_masks,
    masks_to_grid,
    truncated_normal,
    widths,
)

pytestmark = pytest.mark.usefixtures("one_thread")

B, O, K, A = 2, 4, 10, 6  # noqa: E741  (batch, objects, classes, attributes)


def layout(attributes: int = A, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    objects = torch.randint(1, K, (B, O), generator=g)
    objects[:, -1] = 0  # __image__, last valid object
    xy = torch.rand(B, O, 2, generator=g) * 0.5
    boxes = torch.cat([xy, torch.full((B, O, 2), 0.4)], dim=-1)
    boxes[:, -1] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    valid = torch.ones(B, O, dtype=torch.bool)
    attrs = (torch.rand(B, O, attributes, generator=g) > 0.5).float()
    return objects, boxes, valid, attrs


def test_widths_follow_lostgan():
    assert widths(64, 64) == [1024, 512, 256, 128, 64]  # LostGAN-v1's 64 px generator
    assert widths(128, 64) == [1024, 1024, 512, 256, 128, 64]
    assert widths(256, 64) == [1024, 1024, 512, 512, 256, 128, 64]
    with pytest.raises(ValueError, match="image_size"):
        widths(96, 64)


@pytest.mark.parametrize("arch", [LostGANGenerator, CRNGenerator])
@pytest.mark.parametrize("size", [64, 128, 256])
def test_shapes_and_range(arch, size):
    G = arch(K, A, image_size=size, ch=1, z_img=8, z_obj=8, class_dim=8, attr_dim=4,
             attr_hidden=(8,), mask_width=8)
    objects, boxes, valid, attrs = layout()
    z_img, z_obj = G.sample_latents(B, O, torch.Generator().manual_seed(0))
    assert z_img.shape == (B, 8) and z_obj.shape == (B, O, 8)
    image = G(objects, boxes, valid, attrs, z_img, z_obj)
    assert image.shape == (B, 3, size, size)
    assert image.abs().max() <= 1.0
    image.mean().backward()


def test_no_attributes_and_given_masks():
    G = LostGANGenerator(K, 0, image_size=64, ch=1, z_img=8, z_obj=8, class_dim=8, mask_width=8)
    objects, boxes, valid, _ = layout()
    z_img, z_obj = G.sample_latents(B, O)
    masks = torch.ones(B, O, 16, 16)
    image, final = G(objects, boxes, valid, torch.zeros(B, O, 0), z_img, z_obj, masks,
                     return_masks=True)
    assert image.shape == (B, 3, 64, 64) and final.shape == (B, O, 64, 64)
    assert final[:, -1].abs().max() == 0  # __image__ is not drawn


def test_latents_are_reproducible():
    G = LostGANGenerator(K, A, image_size=64, ch=1, z_img=8, z_obj=8, class_dim=8, mask_width=8)
    a = G.sample_latents(B, O, torch.Generator().manual_seed(3))
    b = G.sample_latents(B, O, torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_padding_and_image_object_do_not_change_the_image():
    torch.manual_seed(0)
    G = LostGANGenerator(K, A, image_size=64, ch=1, z_img=8, z_obj=8, class_dim=8,
                         mask_width=8).eval()
    objects, boxes, valid, attrs = layout()
    valid[:, 1] = False  # object 1 is padding
    z_img, z_obj = G.sample_latents(B, O)
    with torch.no_grad():
        base = G(objects, boxes, valid, attrs, z_img, z_obj)
        boxes2, objects2 = boxes.clone(), objects.clone()
        boxes2[:, 1] = torch.tensor([0.1, 0.1, 0.8, 0.8])
        objects2[:, 1] = 5
        boxes2[:, -1] = torch.tensor([0.2, 0.2, 0.3, 0.3])  # __image__'s box
        assert torch.equal(G(objects2, boxes2, valid, attrs, z_img, z_obj), base)


def test_masks_to_grid_places_a_full_mask_on_its_box():
    boxes = torch.tensor([[[0.25, 0.5, 0.5, 0.25]]])
    grid = masks_to_grid(torch.ones(1, 1, 16, 16), boxes, 16)[0, 0]
    assert torch.allclose(grid, box_masks(boxes, 16)[0, 0], atol=0.5)
    assert grid[8:12, 4:12].min() > 0.49 and grid[:7].max() == 0 and grid[:, :3].max() == 0


def test_truncated_latents_stay_within_the_threshold():
    """LostGAN's test-time latents: N(0, 1) resampled outside +-2, seeded."""
    G = LostGANGenerator(K, A, image_size=64, ch=1, z_img=64, z_obj=64, class_dim=8, mask_width=8)
    z_img, z_obj = G.sample_latents(8, O, torch.Generator().manual_seed(0), truncation=2.0)
    assert z_img.abs().max() <= 2.0 and z_obj.abs().max() <= 2.0
    assert 0.7 < float(z_obj.std()) < 1.0  # a truncated N(0, 1) (std 0.88), not a uniform
    again = G.sample_latents(8, O, torch.Generator().manual_seed(0), truncation=2.0)
    assert torch.equal(again[1], z_obj)
    plain = truncated_normal((20000,), None, torch.Generator().manual_seed(0))
    assert plain.abs().max() > 3.0
    with pytest.raises(ValueError, match="positive"):
        truncated_normal((2,), 0.0)


def test_lostgan_v2_parts_per_size():
    """Identity mapping, MaskRegressNetv2 (instance norm, a conv at 4, 8 and 16), stage-mask
    heads on every block output but the last, PSP on the last head at 64 and 128 px only."""
    for size, psp in ((64, True), (128, True), (256, False)):
        G = LostGANGenerator(K, A, image_size=size, ch=1, z_img=8, z_obj=8, class_dim=8,
                             attr_dim=4, attr_hidden=(8,), mask_width=8, stage_mask_dim=4)
        assert isinstance(G.style.mapping, torch.nn.Identity)
        assert len(G.refine) == len(G.blocks) - 1
        heads = [isinstance(r.semantic[0], PSPModule) for r in G.refine]
        assert heads == [False] * (len(heads) - 1) + [psp], size
    reg = MaskRegression(8, 16, width=8, norm="instance")
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in reg.modules()) == 3
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in reg.modules())
    with pytest.raises(ValueError, match="mask norm"):
        MaskRegression(8, 16, width=8, norm="group")
    mlp = LostGANGenerator(K, A, image_size=64, ch=1, z_img=8, z_obj=8, class_dim=8,
                           mask_width=8, mapping="mlp")
    assert any(".mapping." in f".{n}" for n, _ in mlp.named_parameters())


def test_regressed_masks_get_gradients_given_masks_do_not():
    G = LostGANGenerator(K, A, image_size=64, ch=1, z_img=8, z_obj=8, class_dim=8, attr_dim=4,
                         attr_hidden=(8,), mask_width=8, stage_mask_dim=4)
    objects, boxes, valid, attrs = layout()
    z = G.sample_latents(B, O, torch.Generator().manual_seed(0))
    G(objects, boxes, valid, attrs, *z).square().mean().backward()
    grads = [p.grad for p in G.mask_regress.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    G.zero_grad(set_to_none=True)
    G(objects, boxes, valid, attrs, *z, masks=torch.ones(B, O, 16, 16)).square().mean().backward()
    assert all(p.grad is None for p in G.mask_regress.parameters())
