"""BachGAN's generator (models/bachgan.py): label maps, candidates, fusion, block shapes."""

from __future__ import annotations

import doctest

import pytest
import torch

from scene2img.models import bachgan
from scene2img.models.bachgan import (
    BachGANGenerator,
    BackgroundFusion,
    compose_candidates,
    layout_label_map,
    one_hot_maps,
)
from scene2img.models.spade import init_weights

pytestmark = pytest.mark.usefixtures("one_thread")

C = 6  # label channels: 0 unlabeled, 1-2 background, 3-5 foreground
FOREGROUND = [3, 4, 5]


def test_layout_label_map_draws_real_objects_only() -> None:
    objects = torch.tensor([[0, 3, 4, 3]])  # __image__, two 3s, a 4
    boxes = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5],
                           [0.25, 0.0, 0.5, 0.5]]])
    valid = torch.tensor([[True, True, False, True]])  # the 4 is padding
    out = layout_label_map(objects, boxes, valid, C, size=8)
    assert out.shape == (1, C, 8, 8)
    assert out[0, 0].sum() == 0 and out[0, 4].sum() == 0  # __image__ and padding: nothing
    expected = torch.zeros(8, 8)
    expected[0:4, 0:4] = 1
    expected[0:4, 2:6] = 1  # the union of the two class-3 boxes, still 1 where they overlap
    assert torch.equal(out[0, 3], expected)
    with pytest.raises(ValueError, match="outside 0..5"):
        layout_label_map(objects + 3, boxes, valid, C, size=8)


def test_one_hot_maps_and_bad_labels() -> None:
    maps = torch.tensor([[[[0, 1], [5, 2]]]])  # [1, 1, 2, 2]
    out = one_hot_maps(maps, C)
    assert out.shape == (1, 1, C, 2, 2) and torch.equal(out.sum(2), torch.ones(1, 1, 2, 2))
    assert out[0, 0, 5, 1, 0] == 1
    with pytest.raises(ValueError, match="outside 0..5"):
        one_hot_maps(maps + 1, C)


def test_candidates_keep_the_background_outside_the_boxes_and_paste_the_layout() -> None:
    s = 4
    background = torch.full((1, 1, s, s), 1)  # background class 1 ...
    background[..., 0, :] = 4  # ... with a foreground class-4 row at the top
    layout = torch.zeros(1, C, s, s)
    layout[0, 3, 2:, 2:] = 1  # the query's class-3 box, bottom right
    fg = torch.zeros(C, dtype=torch.bool)
    fg[FOREGROUND] = True
    out = compose_candidates(one_hot_maps(background, C), layout, fg)[0, 0]  # [C, s, s]
    assert torch.equal(out[3], layout[0, 3])  # the box, pasted
    assert out[4].sum() == 0  # the retrieved map's own foreground: cleared
    assert out[1, 2:, 2:].sum() == 0  # the background under the box: cleared
    assert out[1, 1:, :2].eq(1).all() and out[1, 1, 2:].eq(1).all()  # elsewhere: kept
    assert out.sum(0)[0].eq(0).all()  # the cleared foreground row holds no class


@pytest.mark.parametrize("m", [1, 3, 5])
def test_fusion_takes_m_maps(m: int) -> None:
    torch.manual_seed(0)
    fusion = BackgroundFusion(C)
    layout, candidates = torch.rand(2, C, 8, 8), torch.rand(2, m, C, 8, 8)
    out = fusion(layout, candidates)
    assert out.shape == (2, C, 8, 8)
    # the candidates enter through their mean: their order does not matter
    assert torch.allclose(out, fusion(layout, candidates.flip(1)), atol=1e-6)
    with pytest.raises(ValueError, match="does not match"):
        fusion(layout[:, :, :4], candidates)


@pytest.mark.parametrize(("size", "start"), [(128, 4), (256, 8)])
def test_generator_block_shapes_at_each_size(size: int, start: int) -> None:
    torch.manual_seed(0)
    ngf = 1
    g = BachGANGenerator(C, FOREGROUND, image_size=size, ngf=ngf, spade_hidden=4)
    assert g.start == start
    shapes = {}

    def record(name: str):
        def hook(module, args, out) -> None:
            shapes[name] = tuple(out.shape)
        return hook

    for name, block in g.blocks.items():
        block.register_forward_hook(record(name))
    layout = layout_label_map(torch.tensor([[3, 5]]).repeat(2, 1),
                              torch.tensor([[[0.1, 0.2, 0.3, 0.3], [0.5, 0.5, 0.4, 0.2]]]).repeat(
                                  2, 1, 1), torch.ones(2, 2, dtype=torch.bool), C, size=16)
    backgrounds = one_hot_maps(torch.randint(0, 3, (2, 3, 16, 16)), C)
    image = g(layout, backgrounds)
    assert image.shape == (2, 3, size, size) and image.abs().max() <= 1
    s = size // 32
    assert shapes == {"head_0": (2, 16 * ngf, s, s), "middle_0": (2, 16 * ngf, 2 * s, 2 * s),
                      "middle_1": (2, 16 * ngf, 2 * s, 2 * s), "up_0": (2, 8 * ngf, 4 * s, 4 * s),
                      "up_1": (2, 4 * ngf, 8 * s, 8 * s), "up_2": (2, 2 * ngf, 16 * s, 16 * s),
                      "up_3": (2, ngf, size, size)}
    assert g.fuse(layout, backgrounds).shape == (2, C, 16, 16)


def test_the_image_depends_on_the_retrieved_backgrounds() -> None:
    torch.manual_seed(0)
    g = BachGANGenerator(C, FOREGROUND, image_size=128, ngf=1, spade_hidden=4).eval()
    init_weights(g, gain=1.0)  # SPADE's gain 0.02 leaves the condition's effect tiny at first
    layout = torch.zeros(1, C, 16, 16)
    layout[0, 3, 4:8, 4:8] = 1
    sky = one_hot_maps(torch.full((1, 2, 16, 16), 1), C)
    sea = one_hot_maps(torch.full((1, 2, 16, 16), 2), C)
    with torch.no_grad():
        assert (g(layout, sky) - g(layout, sea)).abs().max() > 1e-3


def test_unsupported_sizes_and_layouts_are_refused() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        BachGANGenerator(C, FOREGROUND, image_size=32, ngf=1, spade_hidden=4)
    g = BachGANGenerator(C, FOREGROUND, image_size=128, ngf=1, spade_hidden=4)
    with pytest.raises(ValueError, match=r"expected \[B, 6, s, s\]"):
        g(torch.zeros(1, C + 1, 8, 8), torch.zeros(1, 3, C + 1, 8, 8))


def test_docstring_examples() -> None:
    assert doctest.testmod(bachgan, extraglobs={"torch": torch}).failed == 0
