"""SPADE and its residual block (models/spade.py): shapes, the map's effect, the shortcut."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch.nn.utils import parametrize

from scene2img.models import spade as spade_module
from scene2img.models.spade import SPADE, SPADEResBlock

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch_normalized(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean((0, 2, 3), keepdim=True)
    var = x.var((0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5)


def test_the_output_depends_on_the_map() -> None:
    torch.manual_seed(0)
    spade = SPADE(channels=4, cond_channels=3, hidden=8)
    x = torch.randn(2, 4, 12, 12)
    a = torch.zeros(2, 3, 12, 12)
    a[:, 0] = 1
    b = a.clone()
    b[:, :, 2:5, 2:5] = 0
    b[:, 1, 2:5, 2:5] = 1  # another class in one square
    out_a, out_b = spade(x, a), spade(x, b)
    assert out_a.shape == (2, 4, 12, 12)
    changed = (out_a - out_b).abs().amax(dim=(0, 1)) > 1e-6  # [12, 12]
    assert changed[2:5, 2:5].all()  # where the map changed
    # two 3 x 3 convs reach 2 pixels: rows and columns from 7 on are the same
    assert not changed[7:, :].any() and not changed[:, 7:].any()


def test_a_constant_map_gives_a_per_channel_affine_map() -> None:
    """Away from the border (two 3 x 3 convs with zero padding), a constant map gives one gamma
    and beta per channel: out = a_c * normalised(x) + b_c exactly."""
    torch.manual_seed(1)
    spade = SPADE(channels=3, cond_channels=4, hidden=8)
    x = torch.randn(2, 3, 12, 12)
    cond = torch.zeros(2, 4, 6, 6)
    cond[:, 2] = 1  # every pixel the same class; resized to 12 x 12 by nearest
    out = spade(x, cond)[..., 2:-2, 2:-2]
    norm = _batch_normalized(x)[..., 2:-2, 2:-2]
    for c in range(3):
        xs, ys = norm[:, c].flatten(), out[:, c].flatten()
        a = ((xs - xs.mean()) * (ys - ys.mean())).sum() / ((xs - xs.mean()) ** 2).sum()
        b = ys.mean() - a * xs.mean()
        assert torch.allclose(ys, a * xs + b, atol=1e-5)


def test_instance_norm_option_and_bad_norm() -> None:
    spade = SPADE(channels=2, cond_channels=2, hidden=4, norm="instance")
    assert isinstance(spade.norm, torch.nn.InstanceNorm2d)
    with pytest.raises(ValueError, match="norm='layer': choose one of"):
        SPADE(2, 2, norm="layer")


def test_res_block_shortcut_and_spectral_norm() -> None:
    same = SPADEResBlock(6, 6, cond_channels=3, hidden=4)
    narrower = SPADEResBlock(6, 4, cond_channels=3, hidden=4)
    assert not same.learned_shortcut and not hasattr(same, "conv_s")
    assert narrower.learned_shortcut and narrower.conv_s.bias is None
    assert narrower.conv_0.out_channels == 4  # the middle width is min(in, out)
    for conv in (narrower.conv_0, narrower.conv_1, narrower.conv_s):
        assert parametrize.is_parametrized(conv, "weight")  # spectral norm, as the reference
    assert not parametrize.is_parametrized(narrower.norm_0.gamma)  # SPADE's own convs: none
    x, cond = torch.randn(2, 6, 8, 8), torch.rand(2, 3, 4, 4)
    assert same(x, cond).shape == (2, 6, 8, 8)
    assert narrower(x, cond).shape == (2, 4, 8, 8)


def test_docstring_examples() -> None:
    assert doctest.testmod(spade_module, extraglobs={"torch": torch}).failed == 0
