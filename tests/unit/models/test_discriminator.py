"""The discriminator: image and object heads; an object's score depends only on its box."""

from __future__ import annotations

import pytest
import torch

from scene2img.models.discriminator import LostGANDiscriminator

K, A = 10, 6


def _box_pixels(box, size, margin):
    x, y, w, h = (v * size for v in box)
    inside = torch.zeros(size, size, dtype=torch.bool)
    inside[max(0, int(y) - margin):int(y + h) + margin + 1,
           max(0, int(x) - margin):int(x + w) + margin + 1] = True
    return inside


@pytest.mark.parametrize("box", [[0.1, 0.2, 0.3, 0.25], [0.3, 0.1, 0.6, 0.7]],
                         ids=["small", "large"])
def test_object_score_sees_only_its_box(box):
    torch.manual_seed(0)
    D = LostGANDiscriminator(K, A, image_size=64, ch=2).eval()
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


def test_scores_shapes_without_attributes():
    D = LostGANDiscriminator(K, 0, image_size=128, ch=1)
    objects = torch.tensor([[1, 2, 0], [4, 0, 0]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    boxes = torch.tensor([[0.1, 0.1, 0.3, 0.3], [0.0, 0.0, 0.9, 0.9], [0, 0, 1, 1]]).expand(2, 3, 4)
    out = D(torch.zeros(2, 3, 128, 128), objects, boxes, valid, torch.zeros(2, 3, 0))
    assert out["image"].shape == (2,) and out["object"].shape == (3,)
    assert out["attribute"] is None
