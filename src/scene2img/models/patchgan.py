"""The multi-scale PatchGAN discriminator of pix2pixHD and SPADE (which BachGAN uses unchanged).

D sees the image beside the layout's label map (a conditional discriminator: in BachGAN the
query's foreground box map, not the fused map). Each scale is an N-layer PatchGAN:

    conv 4 x 4 /2, ndf, LeakyReLU(0.2)                           (no norm)
    N - 1 times: conv 4 x 4, width x2 (at most 512), /2 but the last /1,
                 spectral norm + instance norm, LeakyReLU(0.2)
    conv 4 x 4 /1 -> 1: one realism score per patch              (no norm)

every layer's output is returned (the last is the score map), for the feature-matching loss.
Scale k + 1 sees scale k's input average-pooled (3 x 3, stride 2, padding 1, padding not
counted). As NVlabs/SPADE's `discriminator.py` (`MultiscaleDiscriminator`, `NLayerDiscriminator`,
`norm_D spectralinstance`), with SPADE's init (`spade.init_weights`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from scene2img.models.spade import init_weights


class NLayerDiscriminator(nn.Module):
    """[B, Cin, H, W] -> the outputs of its n_layers + 1 layers; the last is [B, 1, h, w] scores."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        pad = math.ceil((4 - 1) / 2)  # 2, as the reference
        layers = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=pad),
                                nn.LeakyReLU(0.2))]
        width = ndf
        for n in range(1, n_layers):
            prev, width = width, min(width * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            # no bias: instance norm removes it (the reference deletes it)
            layers.append(nn.Sequential(
                spectral_norm(nn.Conv2d(prev, width, 4, stride=stride, padding=pad, bias=False)),
                nn.InstanceNorm2d(width, affine=False), nn.LeakyReLU(0.2)))
        layers.append(nn.Sequential(nn.Conv2d(width, 1, 4, stride=1, padding=pad)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


class MultiscaleDiscriminator(nn.Module):
    """(images [B, 3, S, S], label map [B, C, s, s]) -> per scale, the list of its PatchGAN's
    layer outputs (`num_d` lists of `n_layers + 1` tensors; the scores of the first scale are
    [B, 1, 35, 35] at 256 px with 4 layers, as SPADE's).

    The label map is resized to the images' size (nearest) and put beside them.

    Example:
        >>> d = MultiscaleDiscriminator(label_channels=5, ndf=4, n_layers=3, num_d=2)
        >>> out = d(torch.zeros(2, 3, 32, 32), torch.zeros(2, 5, 16, 16))
        >>> [len(scale) for scale in out], [tuple(s[-1].shape) for s in out]
        ([4, 4], [(2, 1, 11, 11), (2, 1, 7, 7)])
    """

    def __init__(
        self,
        label_channels: int,  # C of the label map beside the image
        ndf: int = 64,  # first layer's width (SPADE: 64)
        n_layers: int = 4,  # convolutions before the score layer (SPADE: 4)
        num_d: int = 2,  # scales (SPADE: 2)
        image_channels: int = 3,
    ) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            NLayerDiscriminator(label_channels + image_channels, ndf, n_layers)
            for _ in range(num_d))
        init_weights(self)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> list[list[torch.Tensor]]:
        if labels.shape[-2:] != images.shape[-2:]:
            labels = F.interpolate(labels.to(images.dtype), size=images.shape[-2:], mode="nearest")
        x = torch.cat([labels.to(images.dtype), images], dim=1)  # [B, C + 3, S, S]
        out = []
        for k, scale in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(scale(x))
        return out
