from __future__ import annotations

import pytest
import torch

from scene2img.evaluation.images import (
    crop_objects,
    pixel_boxes,
    resize_uint8,
    to_uint8,
    to_unit_range,
)


def test_to_uint8_edges_and_clamp():
    x = torch.tensor([-5.0, -1.0, -1.0 + 1e-7, 0.0, 1.0 - 1e-7, 1.0, 7.0, float("-inf"), float("inf")])
    assert to_uint8(x).tolist() == [0, 0, 0, 128, 255, 255, 255, 0, 255]
    assert to_uint8(x).dtype == torch.uint8


def test_to_uint8_inverts_the_dataset_mapping_exactly():
    v = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(v.float() / 127.5 - 1.0), v)  # the dataset's own mapping
    assert torch.equal(to_uint8(to_unit_range(v)), v)


def test_to_uint8_rounds_instead_of_truncating():
    # Values up to 0.4 of a level either side of each level come back to that level; truncation
    # (x * 127.5 + 127.5).byte() would move every value below a level down by one.
    v = torch.arange(1, 255).float()
    for offset in (-0.4, -0.1, 0.1, 0.4):
        x = (v + offset) / 127.5 - 1.0
        assert torch.equal(to_uint8(x).float(), v), offset
    # No bias: uniform values in [-1, 1] keep their mean level.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1_000_000, generator=g) * 2 - 1
    assert abs(to_uint8(x).double().mean().item() - 127.5) < 0.1


def test_to_uint8_rejects_integers():
    with pytest.raises(TypeError, match="float"):
        to_uint8(torch.zeros(3, dtype=torch.uint8))


def test_resize_uint8_keeps_same_size_and_constant_images():
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    assert resize_uint8(x, 16) is x
    const = torch.full((1, 3, 16, 16), 77, dtype=torch.uint8)
    for mode in ("bilinear", "bicubic", "nearest", "area"):
        for antialias in (True, False):
            out = resize_uint8(const, 7, mode, antialias)
            assert out.shape == (1, 3, 7, 7) and out.dtype == torch.uint8
            assert torch.all(out == 77), (mode, antialias)
    with pytest.raises(ValueError, match="resize mode"):
        resize_uint8(x, 8, "lanczos")


def test_pixel_boxes_round_clip_and_keep_one_pixel():
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.9, 0.9, 0.5, 0.5], [0.5, 0.5, 0.0, 0.0]])
    assert pixel_boxes(boxes, 10, 20).tolist() == [[0, 0, 20, 10], [18, 9, 20, 10], [10, 5, 11, 6]]


def test_crop_objects_takes_exactly_the_box():
    # A hand-made 3 x 20 x 40 image: background 0, a red box at x 8..16, y 4..12, a green box at
    # x 24..40, y 10..20, and one white pixel just outside the red box.
    img = torch.zeros(1, 3, 20, 40, dtype=torch.uint8)
    img[0, 0, 4:12, 8:16] = 200
    img[0, 1, 10:20, 24:40] = 100
    img[0, :, 12, 8] = 255
    boxes = torch.tensor([[[8 / 40, 4 / 20, 8 / 40, 8 / 20],     # red, exact
                           [24 / 40, 10 / 20, 16 / 40, 10 / 20],  # green, exact
                           [0.0, 0.0, 1.0, 1.0]]])                # whole image: not kept
    keep = torch.tensor([[True, True, False]])
    crops, index = crop_objects(img, boxes, keep, size=8, antialias=True)
    assert crops.shape == (2, 3, 8, 8) and index.tolist() == [[0, 0], [0, 1]]
    red = torch.tensor([200, 0, 0], dtype=torch.uint8).view(3, 1, 1).expand(3, 8, 8)
    green = torch.tensor([0, 100, 0], dtype=torch.uint8).view(3, 1, 1).expand(3, 8, 8)
    assert torch.equal(crops[0], red)  # an 8 x 8 box at size 8: copied, nothing from outside
    assert torch.equal(crops[1], green)  # 16 x 10 resized to 8 x 8: still only green


def test_crop_objects_batch_index_and_empty():
    imgs = torch.stack([torch.full((3, 8, 8), v, dtype=torch.uint8) for v in (10, 20, 30)])
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5]]).expand(3, 2, 4)
    keep = torch.tensor([[False, False], [True, False], [False, True]])
    crops, index = crop_objects(imgs, boxes, keep, size=4)
    assert index.tolist() == [[1, 0], [2, 1]]
    assert crops[:, 0, 0, 0].tolist() == [20, 30]
    crops, index = crop_objects(imgs, boxes, torch.zeros(3, 2, dtype=torch.bool), size=4)
    assert crops.shape == (0, 3, 4, 4) and index.shape == (0, 2)
