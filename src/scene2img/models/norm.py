"""ISLA-Norm (LostGAN): instance-sensitive, layout-aware feature normalisation.

Batch norm without affine parameters, then a per-pixel scale and shift built from the objects: each
object's style vector is projected to a per-channel gamma and beta, spread over the object's mask,
and averaged where masks overlap. Pixels that no object covers keep the plain batch-normalised
features.

Differs from the reference (LostGANs' `SpatialAdaptiveSynBatchNorm2d`), which divides the spread by
the cover everywhere (`sum(m * gamma) / (sum(m) + 1e-6)`), so that a lone object's mask value does
not matter: here a partial cover (below 1) keeps its weight and fades the style out, which makes
the regressed mask an intensity and gives it a gradient wherever its object is alone.

The inner `nn.BatchNorm2d` is a plain module, so Lightning's `sync_batchnorm` converts it to
`SyncBatchNorm` under DDP.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def spread(values: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per-object vectors spread over their masks, averaged where masks overlap.

    values [B, O, C], masks [B, O, H, W] (>= 0) -> [B, C, H, W]; zero where no mask covers a pixel.
    """
    b, o, c = values.shape
    h, w = masks.shape[-2:]
    weighted = torch.bmm(values.transpose(1, 2), masks.reshape(b, o, h * w))  # [B, C, H*W]
    cover = masks.sum(1).reshape(b, 1, h * w)  # [B, 1, H*W]
    # Where masks overlap by more than 1 the sum is averaged; partial cover (< 1) keeps its weight,
    # so a soft mask edge fades the style out instead of amplifying it.
    return (weighted / cover.clamp(min=1.0)).reshape(b, c, h, w)


class ISLANorm(nn.Module):
    """BatchNorm2d(affine=False), then `x * (1 + gamma) + beta` with gamma, beta per object."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = spectral_norm(nn.Linear(style_dim, channels))
        self.beta = spectral_norm(nn.Linear(style_dim, channels))

    def forward(
        self,
        x: torch.Tensor,  # [B, C, H, W]
        style: torch.Tensor,  # [B, O, D] per-object style vectors
        masks: torch.Tensor,  # [B, O, H, W] object masks at this resolution (0 for padding)
    ) -> torch.Tensor:
        x = self.bn(x)
        both = torch.cat([self.gamma(style), self.beta(style)], dim=-1)  # [B, O, 2C]
        gamma, beta = spread(both, masks).to(x.dtype).chunk(2, dim=1)  # one pass for both
        return torch.addcmul(x + beta, x, gamma)  # x * (1 + gamma) + beta, [B, C, H, W]
