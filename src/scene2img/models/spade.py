"""SPADE (Park et al., CVPR 2019): spatially-adaptive normalisation and its residual block.

    SPADE(x, m)     param-free norm of x, then x_hat * (1 + gamma(m)) + beta(m): gamma and beta
                    per pixel and channel, from the conditioning map m resized to x's size
                    (nearest) through a shared 3 x 3 conv + ReLU (128 hidden channels) and one
                    3 x 3 conv each
    SPADEResBlock   [norm -> LeakyReLU(0.2) -> conv 3 x 3] twice, plus the shortcut: identity,
                    or a SPADE-normalised 1 x 1 conv (no bias) where the width changes; the
                    middle width is min(in, out); spectral norm on the block's convolutions

As NVlabs/SPADE's `normalization.py` (`SPADE`) and `architecture.py` (`SPADEResnetBlock`), which
BachGAN uses unchanged: spectral norm on the block's convolutions, none on SPADE's own. The
param-free norm is batch norm (the reference's ADE20K default, `spectralspadesyncbatch3x3`; a plain
`nn.BatchNorm2d` here, which Lightning's `sync_batchnorm` turns into SyncBatchNorm under DDP) or
instance norm (the reference's other choice).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

PARAM_FREE_NORMS = ("batch", "instance")


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """SPADE's init (`init_type xavier`, `init_variance 0.02`): Xavier-normal weights with gain
    0.02 and zero biases for the convolutions and linear layers without spectral norm. The
    spectral-normed ones keep PyTorch's default init: in the reference the init writes to the
    weight that spectral norm recomputes from `weight_orig` at every forward, so it has no
    effect there either."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear) and not parametrize.is_parametrized(m):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


class SPADE(nn.Module):
    """[B, C, H, W] features and a [B, L, h, w] conditioning map -> [B, C, H, W].

    Example:
        >>> spade = SPADE(channels=4, cond_channels=3, hidden=8)
        >>> spade(torch.randn(2, 4, 8, 8), torch.rand(2, 3, 4, 4)).shape
        torch.Size([2, 4, 8, 8])
    """

    def __init__(
        self,
        channels: int,  # C: features normalised
        cond_channels: int,  # L: channels of the conditioning map
        hidden: int = 128,  # the shared conv's width (the reference: 128, fixed)
        norm: str = "batch",  # the param-free norm: batch | instance
    ) -> None:
        super().__init__()
        if norm not in PARAM_FREE_NORMS:
            raise ValueError(f"norm={norm!r}: choose one of {PARAM_FREE_NORMS}")
        self.norm = (nn.BatchNorm2d(channels, affine=False) if norm == "batch"
                     else nn.InstanceNorm2d(channels, affine=False))
        self.shared = nn.Sequential(nn.Conv2d(cond_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        normalized = self.norm(x)  # [B, C, H, W]
        cond = F.interpolate(cond.to(x.dtype), size=x.shape[-2:], mode="nearest")  # [B, L, H, W]
        h = self.shared(cond)  # [B, hidden, H, W]
        return torch.addcmul(normalized + self.beta(h), normalized, self.gamma(h))  # x^(1+g)+b


class SPADEResBlock(nn.Module):
    """[B, Cin, H, W], [B, L, h, w] -> [B, Cout, H, W]: the residual block of SPADE's generator."""

    def __init__(
        self,
        cin: int,
        cout: int,
        cond_channels: int,  # L
        hidden: int = 128,  # SPADE's shared width
        norm: str = "batch",  # SPADE's param-free norm
    ) -> None:
        super().__init__()
        mid = min(cin, cout)
        self.norm_0 = SPADE(cin, cond_channels, hidden, norm)
        self.conv_0 = spectral_norm(nn.Conv2d(cin, mid, 3, padding=1))
        self.norm_1 = SPADE(mid, cond_channels, hidden, norm)
        self.conv_1 = spectral_norm(nn.Conv2d(mid, cout, 3, padding=1))
        self.learned_shortcut = cin != cout
        if self.learned_shortcut:
            self.norm_s = SPADE(cin, cond_channels, hidden, norm)
            self.conv_s = spectral_norm(nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        s = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, cond), 0.2))  # [B, mid, H, W]
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, cond), 0.2))  # [B, Cout, H, W]
        return s + dx
