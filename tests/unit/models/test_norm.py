"""ISLA-Norm: a style reaches only the pixels of its object's mask."""

from __future__ import annotations

import torch

from scene2img.models.norm import ISLANorm, spread


def _layout() -> torch.Tensor:
    """Two objects on an 8 x 8 grid: A the left half, B a 2 x 2 square at the top right."""
    masks = torch.zeros(1, 2, 8, 8)
    masks[0, 0, :, :4] = 1.0
    masks[0, 1, :2, 6:] = 1.0
    return masks


def test_spread_averages_where_masks_overlap():
    masks = torch.zeros(1, 2, 4, 4)
    masks[0, 0, :, :3] = 1.0
    masks[0, 1, :, 2:] = 1.0  # column 2 is covered twice
    values = torch.tensor([[[2.0], [4.0]]])  # [B, O, C=1]
    out = spread(values, masks)[0, 0]
    assert torch.equal(out[:, 0], torch.full((4,), 2.0))
    assert torch.equal(out[:, 2], torch.full((4,), 3.0))
    assert torch.equal(out[:, 3], torch.full((4,), 4.0))


def test_isla_style_only_inside_its_mask():
    torch.manual_seed(0)
    norm = ISLANorm(channels=3, style_dim=5).eval()
    x = torch.randn(1, 3, 8, 8)
    masks = _layout()
    style = torch.randn(1, 2, 5)
    base = norm(x, style, masks)

    other = style.clone()
    other[0, 0] = torch.randn(5)  # change object A's style only
    changed = (norm(x, other, masks) - base).abs().amax(dim=1)[0]  # [8, 8]
    inside_a = masks[0, 0].bool()
    assert changed[inside_a].min() > 0
    assert changed[~inside_a].max() == 0

    # pixels no object covers are plain (affine-free) batch norm
    plain = norm.bn(x)
    uncovered = masks[0].sum(0) == 0
    assert torch.allclose(base[0][:, uncovered], plain[0][:, uncovered])
