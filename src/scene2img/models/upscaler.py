"""RDN: the residual dense network for single-image super-resolution (Zhang et al., CVPR 2018).

Built in the paper's order (its Fig. 2 and Sec. 3):

    LR [N, 3, h, w]
      -> shallow feature extraction: two 3x3 convs          F_-1, F_0  [N, G0, h, w]
      -> D residual dense blocks (RDBs)                      F_1 .. F_D [N, G0, h, w]
      -> global feature fusion: concat, 1x1, 3x3             F_GF       [N, G0, h, w]
      -> global residual learning: F_DF = F_GF + F_-1
      -> up-sampling net: sub-pixel conv (ESPCN) x2 or x4, 3x3 conv to RGB
    SR [N, 3, s*h, s*w]

Each RDB holds C conv+ReLU layers with growth rate G, densely connected (layer c sees the block's
input and every earlier layer's output), then local feature fusion (1x1 conv back to G0) and a
local residual. Images are RGB in [0, 1]; there is no batch normalisation (the paper removes it).
The paper's configuration is D=16, C=8, G=64, G0=64 (`params.yaml`, `train_upscaler.rdn`).
The up-sampling net follows the PyTorch RDN of EDSR-PyTorch (`rdn.py`): x4 is two x2
sub-pixel steps, each a 3x3 conv to 4G channels and a pixel shuffle.

Ours, off in the paper's configuration: `bicubic_skip=True` adds the bicubic upscale of the LR
image to the output (an image-level residual, as VDSR has) and zero-initialises the last conv, so
training starts at bicubic quality. The CPU recipe uses it: the tiny RDN learns from scratch too
slowly to pass bicubic in a short run (README, "Super-resolution").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RDN", "SCALES", "ResidualDenseBlock"]

SCALES = (2, 4)  # the up-sampling factors built here


class DenseLayer(nn.Module):
    """One conv+ReLU of an RDB; its G new channels are appended to its input (dense connection)."""

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, growth, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, Cin, h, w] -> [N, Cin + G, h, w]
        return torch.cat([x, self.act(self.conv(x))], dim=1)


class ResidualDenseBlock(nn.Module):
    """RDB (Sec. 3.2): C dense layers (contiguous memory), local feature fusion, local residual."""

    def __init__(self, features: int, growth: int, layers: int) -> None:
        super().__init__()
        # layer c takes G0 + c*G channels: the block's input and the c layers before it
        self.dense = nn.Sequential(*[DenseLayer(features + c * growth, growth)
                                     for c in range(layers)])
        # local feature fusion: a 1x1 conv from G0 + C*G back to G0 channels
        self.fusion = nn.Conv2d(features + layers * growth, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, G0, h, w] -> [N, G0, h, w]
        return x + self.fusion(self.dense(x))  # local residual learning


class RDN(nn.Module):
    """The residual dense network: LR image [N, 3, h, w] in [0, 1] -> SR [N, 3, s*h, s*w]."""

    def __init__(
        self,
        scale: int = 4,  # up-sampling factor: 2 or 4
        blocks: int = 16,  # D: residual dense blocks
        layers: int = 8,  # C: conv layers per block
        growth: int = 64,  # G: growth rate (channels each dense layer adds)
        features: int = 64,  # G0: channels between blocks
        channels: int = 3,  # image channels (RGB)
        bicubic_skip: bool = False,  # ours: output = RDN(LR) + bicubic(LR); the paper: False
    ) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale={scale!r}: RDN is built here for x{' or x'.join(map(str, SCALES))}")
        for name, value in (("blocks", blocks), ("layers", layers), ("growth", growth),
                            ("features", features)):
            if value < 1:
                raise ValueError(f"{name}={value!r}: must be at least 1")
        self.scale, self.bicubic_skip = scale, bicubic_skip

        # shallow feature extraction (Sec. 3.1): F_-1 = SFE1(LR), F_0 = SFE2(F_-1)
        self.sfe1 = nn.Conv2d(channels, features, 3, padding=1)
        self.sfe2 = nn.Conv2d(features, features, 3, padding=1)

        # D residual dense blocks
        self.rdbs = nn.ModuleList([ResidualDenseBlock(features, growth, layers)
                                   for _ in range(blocks)])

        # global feature fusion (Sec. 3.3): 1x1 over [F_1, ..., F_D], then 3x3
        self.gff = nn.Sequential(
            nn.Conv2d(blocks * features, features, 1),
            nn.Conv2d(features, features, 3, padding=1),
        )

        # up-sampling net: log2(scale) sub-pixel steps of x2, then a 3x3 conv to the image
        steps: list[nn.Module] = []
        width = features
        for _ in range(scale.bit_length() - 1):
            steps += [nn.Conv2d(width, growth * 4, 3, padding=1), nn.PixelShuffle(2)]
            width = growth
        self.upsample = nn.Sequential(*steps)
        self.to_image = nn.Conv2d(width, channels, 3, padding=1)
        if bicubic_skip:  # start exactly at bicubic; RDN learns the residual detail
            nn.init.zeros_(self.to_image.weight)
            nn.init.zeros_(self.to_image.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != self.sfe1.in_channels:
            raise ValueError(f"RDN takes [N, {self.sfe1.in_channels}, h, w] images, got "
                             f"{list(lr.shape)}")
        f_minus1 = self.sfe1(lr)  # [N, G0, h, w]
        f = self.sfe2(f_minus1)  # F_0
        local = []
        for rdb in self.rdbs:
            f = rdb(f)  # F_d [N, G0, h, w]
            local.append(f)
        f_gf = self.gff(torch.cat(local, dim=1))  # [N, D*G0, h, w] -> [N, G0, h, w]
        f_df = f_gf + f_minus1  # global residual learning
        sr = self.to_image(self.upsample(f_df))  # [N, G, s*h, s*w] -> [N, 3, s*h, s*w]
        if self.bicubic_skip:
            sr = sr + F.interpolate(lr, scale_factor=self.scale, mode="bicubic",
                                    align_corners=False)
        return sr
