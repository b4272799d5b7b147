"""The discriminator: image head, the two object heads (LostGAN's ROIAlign on the shared trunk,
our crop head), and AttrLostGAN's attribute score."""

from __future__ import annotations

import pytest
import torch

from scene2img.models.discriminator import LostGANDiscriminator, RoIFeatures

pytestmark = pytest.mark.usefixtures("one_thread")

K, A = 10, 6


def _box_pixels(box, size, margin):
    x, y, w, h = (v * size for v in box)
    inside = torch.zeros(size, size, dtype=torch.bool)
    inside[max(0, int(y) - margin):int(y + h) + margin + 1,
           max(0, int(x) - margin):int(x + w) + margin + 1] = True
    return inside


@pytest.mark.parametrize("box", [[0.1, 0.2, 0.3, 0.25], [0.3, 0.1, 0.6, 0.7]],
                         ids=["small", "large"])
def test_crop_head_object_score_sees_only_its_box(box):
    torch.manual_seed(0)
    D = LostGANDiscriminator(K, A, image_size=64, ch=2, object_head="crop").eval()
    objects = torch.tensor([[3, 0]])  # one object and __image__
    boxes = torch.tensor([box, [0.0, 0.0, 1.0, 1.0]]).unsqueeze(0)
    valid = torch.ones(1, 2, dtype=torch.bool)
    attrs = torch.zeros(1, 2, A)
    attrs[0, 0, 2] = 1.0
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        base = D(image, objects, boxes, valid, attrs)
        outside = ~_box_pixels(box, 64, margin=2)  # bilinear sampling reads one pixel around
        noisy = image.clone()
        noisy[:, :, outside] = torch.rand(3, int(outside.sum())) * 2 - 1
        new = D(noisy, objects, boxes, valid, attrs)
    assert base["object"].shape == (1,)  # __image__ is not an object to score
    assert torch.equal(new["object"], base["object"])
    assert torch.equal(new["attribute"], base["attribute"])
    assert not torch.equal(new["image"], base["image"])


@pytest.mark.parametrize("head", ["roi", "crop"])
def test_scores_shapes_without_attributes(head):
    D = LostGANDiscriminator(K, 0, image_size=128, ch=1, object_head=head)
    objects = torch.tensor([[1, 2, 0], [4, 0, 0]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    boxes = torch.tensor([[0.1, 0.1, 0.3, 0.3], [0.0, 0.0, 0.9, 0.9], [0, 0, 1, 1]]).expand(2, 3, 4)
    out = D(torch.zeros(2, 3, 128, 128), objects, boxes, valid, torch.zeros(2, 3, 0))
    assert out["image"].shape == (2,) and out["object"].shape == (3,)
    assert out["attribute"] is None


@pytest.mark.parametrize("size", [64, 128, 256])
def test_roi_head_pools_small_and_large_objects_from_the_shared_trunk(size):
    """LostGAN's object path: small boxes from the 1/4 level (256 px: 1/8), large from the next;
    an object's score also sees its surroundings (the trunk's receptive field)."""
    torch.manual_seed(0)
    D = LostGANDiscriminator(K, A, image_size=size, ch=1).eval()
    assert isinstance(D.object_features, RoIFeatures)
    assert D.object_features.scale == {64: 0.25, 128: 0.25, 256: 0.125}[size]
    objects = torch.tensor([[3, 5, 0]])
    boxes = torch.tensor([[[0.1, 0.1, 0.3, 0.2], [0.2, 0.3, 0.7, 0.6], [0.0, 0.0, 1.0, 1.0]]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    attrs = torch.zeros(1, 3, A)
    image = torch.rand(1, 3, size, size) * 2 - 1
    with torch.no_grad():
        base = D(image, objects, boxes, valid, attrs)
        noisy = image.clone()
        noisy[..., size // 2:, :] = 0.0  # below the small object's box
        new = D(noisy, objects, boxes, valid, attrs)
    assert base["object"].shape == (2,) and base["attribute"].shape == (2,)
    assert not torch.equal(new["object"][0], base["object"][0])  # context reaches the score
    image.requires_grad_(True)
    D(image, objects, boxes, valid, attrs)["object"].sum().backward()
    assert image.grad.abs().sum() > 0


def test_unknown_object_head_is_refused():
    with pytest.raises(ValueError, match="object_head"):
        LostGANDiscriminator(K, A, image_size=64, ch=1, object_head="pool")


def test_attribute_score_is_unconditional_plus_projection():
    """AttrLostGAN: l(h) + <W a + b, h>, with l(h) shared with the object score; objects
    without attributes still get a score (l(h) + <b, h>)."""
    torch.manual_seed(0)
    D = LostGANDiscriminator(K, A, image_size=64, ch=1)
    head = D.object_head
    h = torch.randn(3, head.linear.in_features)
    attrs = torch.tensor([[1.0, 0, 0, 0, 0, 0], [1.0, 1.0, 0, 0, 0, 0], [0.0] * A])
    with torch.no_grad():
        got = head.attribute_score(h, attrs)
        unconditional = head.linear(h).squeeze(1)
        embed = attrs @ head.attr_embed.weight.T + head.attr_embed.bias
    assert torch.allclose(got, unconditional + (embed * h).sum(1), atol=1e-5)
    assert torch.allclose(got[2], unconditional[2] + (head.attr_embed.bias * h[2]).sum(), atol=1e-5)
