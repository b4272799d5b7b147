"""BachGAN's background retrieval against the plain loop of its reference code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scene2img.models.retrieval import MemoryBank, box_pixels
from tests.unit.models.retrieval_reference import box_masks, brute_force_scores

FOREGROUND = [3, 4, 5, 6]


def blocky_maps(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Label maps like scenes: a background band split (labels 1, 2) and a few rectangles of
    foreground and other classes, [n, size, size] uint8."""
    g = torch.Generator().manual_seed(seed)
    maps = torch.ones(n, size, size, dtype=torch.uint8)
    ar = torch.arange(size)
    horizon = torch.randint(1, size, (n, 1, 1), generator=g)
    maps[(ar[None, :, None] >= horizon).expand(n, size, size)] = 2
    for _ in range(4):
        x0, y0 = (torch.randint(0, size - 1, (n, 1), generator=g) for _ in range(2))
        w, h = (torch.randint(1, size // 2, (n, 1), generator=g) for _ in range(2))
        cls = torch.randint(0, 8, (n, 1, 1), generator=g).to(torch.uint8)
        inside = (((ar >= y0) & (ar < y0 + h))[:, :, None] & ((ar >= x0) & (ar < x0 + w))[:, None])
        maps = torch.where(inside, cls, maps)
    return maps


def queries(q: int, o: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    objects = torch.randint(0, 8, (q, o), generator=g)  # some background, some pads (0)
    boxes = torch.rand(q, o, 4, generator=g) * torch.tensor([0.9, 0.9, 0.6, 0.6])
    return objects, boxes


def test_exact_at_full_resolution_against_the_loop() -> None:
    maps = blocky_maps(60, 12)
    objects, boxes = queries(7, 5)
    objects[6] = 0  # no foreground box at all: scores 0
    bank = MemoryBank(maps, FOREGROUND, grid=12)
    scores = bank.score(objects, boxes)
    assert scores.shape == (7, 60)
    for q in range(7):
        ref = brute_force_scores(objects[q].numpy(), boxes[q].numpy(), maps.numpy(), FOREGROUND)
        np.testing.assert_allclose(scores[q].numpy(), ref, atol=1e-6)
    assert (scores[6] == 0).all() and scores[:6].max() > 0.2


def test_coarser_grids_approximate_only_the_intersection() -> None:
    maps = blocky_maps(80, 16)
    objects, boxes = queries(6, 4)
    exact = MemoryBank(maps, FOREGROUND, grid=16).score(objects, boxes)
    for grid in (8, 4, 1):
        approx = MemoryBank(maps, FOREGROUND, grid=grid).score(objects, boxes)
        assert (approx - exact).abs().max() < 0.5 and approx.min() >= 0 and approx.max() <= 1
    # maps that are constant over each 4 x 4 cell score exactly at G = 4
    coarse = maps[:, ::4, ::4].repeat_interleave(4, 1).repeat_interleave(4, 2)
    snapped = (boxes * 4).round() / 4
    np.testing.assert_allclose(MemoryBank(coarse, FOREGROUND, grid=4).score(objects, snapped),
                               MemoryBank(coarse, FOREGROUND, grid=16).score(objects, snapped),
                               atol=1e-6)


def test_box_rasterisation_matches_the_reference() -> None:
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.49, 0.26, 0.0, 0.01], [0.9, -0.2, 0.5, 0.5]])
    cols, rows = box_pixels(boxes, 8)
    assert cols.tolist() == [[0, 8], [4, 5], [7, 8]] and rows.tolist() == [[0, 8], [2, 3], [0, 2]]
    masks = box_masks([3, 4, 5], boxes.numpy(), set(FOREGROUND), 8)
    assert [int(masks[c].sum()) for c in (3, 4, 5)] == [64, 1, 2]


def test_retrieve_top_m_and_exclude_the_query_itself() -> None:
    maps = torch.zeros(5, 8, 8, dtype=torch.uint8)
    maps[0, :4, :4] = 3  # the query's own scene
    maps[1, :4, :3] = 3  # a near copy
    maps[2, 4:, 4:] = 3  # the class elsewhere
    maps[3, :4, :4] = 4  # the place, another class
    bank = MemoryBank(maps, FOREGROUND, grid=4)
    objects, boxes = torch.tensor([[3]]), torch.tensor([[[0.0, 0.0, 0.5, 0.5]]])
    idx, scores = bank.retrieve(objects, boxes, m=2)
    assert idx.tolist() == [[0, 1]] and scores[0, 0] == 1.0 and scores[0, 1] == 0.75
    idx, scores = bank.retrieve(objects, boxes, m=2, exclude=torch.tensor([0]))
    assert idx[0, 0] == 1 and idx[0, 1] in (2, 3, 4) and scores[0, 1] == 0  # the rest tie at 0
    assert bank.retrieve(objects, boxes, m=1, exclude=torch.tensor([-1]))[0].tolist() == [[0]]


def test_bad_arguments_are_named() -> None:
    maps = torch.zeros(3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"grid=3: must divide the maps' side 8"):
        MemoryBank(maps, FOREGROUND, grid=3)
    with pytest.raises(ValueError, match=r"segmaps: expected \[N, S, S\]"):
        MemoryBank(maps[:, :4], FOREGROUND, grid=4)
    with pytest.raises(ValueError, match="foreground: give the object indices"):
        MemoryBank(maps, [], grid=4)
    bank = MemoryBank(maps, FOREGROUND, grid=4)
    with pytest.raises(ValueError, match=r"m=3: retrieve between 1 and the bank's 3 maps"):
        bank.retrieve(torch.tensor([[3]]), torch.zeros(1, 1, 4), m=3, exclude=torch.tensor([0]))
    with pytest.raises(ValueError, match=r"queries: expected objects \[Q, O\]"):
        bank.score(torch.tensor([3]), torch.zeros(1, 4))
