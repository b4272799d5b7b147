"""RDN: output shapes at x2 and x4, the paper's size, its residual paths and bad arguments."""

from __future__ import annotations

import pytest
import torch

from scene2img.models.upscaler import RDN, ResidualDenseBlock

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("scale", [2, 4])
def test_shapes(scale):
    net = RDN(scale, blocks=2, layers=3, growth=8, features=8)
    lr = torch.rand(2, 3, 12, 10)
    assert net(lr).shape == (2, 3, 12 * scale, 10 * scale)


@pytest.mark.parametrize("scale", [2, 4])
def test_the_papers_configuration_has_its_size(scale):
    """D=16, C=8, G=64, G0=64: about 22 M parameters (the paper's Fig. 1 / Table 2 figure)."""
    with torch.device("meta"):
        net = RDN(scale, blocks=16, layers=8, growth=64, features=64)
    n = sum(p.numel() for p in net.parameters())
    assert 21.9e6 < n < 22.4e6, n
    # every RDB's c-th layer sees G0 + c*G channels; fusion maps G0 + C*G back to G0
    rdb = net.rdbs[0]
    assert [layer.conv.in_channels for layer in rdb.dense] == [64 + 64 * c for c in range(8)]
    assert (rdb.fusion.in_channels, rdb.fusion.out_channels) == (64 + 8 * 64, 64)
    assert net.gff[0].in_channels == 16 * 64


def test_local_residual_makes_a_zeroed_block_the_identity():
    rdb = ResidualDenseBlock(features=4, growth=3, layers=2)
    torch.nn.init.zeros_(rdb.fusion.weight)
    torch.nn.init.zeros_(rdb.fusion.bias)
    x = torch.randn(1, 4, 5, 5)
    assert torch.equal(rdb(x), x)


def test_global_residual_carries_the_shallow_features():
    """With the global fusion zeroed, the output depends on the LR image only through F_-1."""
    torch.manual_seed(0)
    net = RDN(2, blocks=1, layers=1, growth=4, features=4)
    for p in net.gff.parameters():
        torch.nn.init.zeros_(p)
    lr = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        expected = net.to_image(net.upsample(net.sfe1(lr)))
        assert torch.allclose(net(lr), expected)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="scale=3"):
        RDN(3)
    with pytest.raises(ValueError, match="blocks=0"):
        RDN(2, blocks=0)
    with pytest.raises(ValueError, match=r"\[N, 3, h, w\]"):
        RDN(2, blocks=1, layers=1, growth=4, features=4)(torch.rand(3, 8, 8))


def test_bicubic_skip_starts_at_bicubic():
    """Ours (the CPU recipe): output = RDN(LR) + bicubic(LR), with RDN's last conv at zero."""
    lr = torch.rand(1, 3, 6, 7)
    net = RDN(4, blocks=1, layers=1, growth=4, features=4, bicubic_skip=True)
    bicubic = torch.nn.functional.interpolate(lr, scale_factor=4, mode="bicubic",
                                              align_corners=False)
    assert torch.equal(net(lr), bicubic)
