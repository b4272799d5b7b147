"""sg2im's cascaded refinement network (Johnson et al. 2018, after Chen & Koltun) as a second
generator family, with the same interface as `LostGANGenerator`.

    object vectors   class embedding | attribute embedding | z_obj -> linear          [B, O, E]
    layout           each vector spread over its mask (given, or regressed as sg2im)  [B, E, S, S]
    noise            z_img -> a coarse 4 x 4 map, upsampled with the cascade
    cascade          at 4, 8, ..., S: [layout at r | upsampled features] -> two 3 x 3 convs
                     with batch norm and leaky ReLU (sg2im's RefinementModule)
    output           1 x 1 conv, tanh
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scene2img.models.boxes import real_objects
from scene2img.models.generator import (
    MaskRegression,
    ObjectStyle,
    masks_to_grid,
    truncated_normal,
    widths,
)
from scene2img.models.norm import spread


class RefinementModule(nn.Module):
    """[B, L + C_in, r, r] -> [B, C_out, r, r] (sg2im's CRN module)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
        )
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CRNGenerator(nn.Module):
    """Layout + latents -> image in [-1, 1]; `forward` as `LostGANGenerator.forward`."""

    def __init__(
        self,
        num_classes: int,
        num_attributes: int = 0,
        image_size: int = 128,
        ch: int = 64,  # widths as LostGAN's table (sg2im: 1024, 512, 256, 128, 64)
        z_img: int = 128,
        z_obj: int = 128,
        class_dim: int = 180,
        attr_dim: int = 180,
        attr_hidden: tuple[int, ...] = (2048, 1024, 512, 256),
        mapping: str = "identity",
        mask_size: int = 16,
        mask_width: int = 256,  # mask regression as LostGAN-v2's (sg2im regresses its own)
        mask_norm: str = "instance",
        layout_dim: int = 128,  # sg2im --embedding_dim: channels of the layout
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.z_img_dim, self.z_obj_dim = z_img, z_obj
        chans = widths(image_size, ch)  # one module per resolution 4 .. S
        self.style = ObjectStyle(num_classes, num_attributes, z_obj, class_dim, attr_dim,
                                 tuple(attr_hidden), mapping)
        self.to_layout = nn.Linear(self.style.dim, layout_dim)
        self.mask_regress = MaskRegression(self.style.dim, mask_size, mask_width, mask_norm)
        self.noise = nn.Linear(z_img, chans[0] * 4 * 4)
        mods, prev = [], chans[0]
        for c in chans:
            mods.append(RefinementModule(layout_dim + prev, c))
            prev = c
        self.modules_ = nn.ModuleList(mods)
        self.out = nn.Sequential(nn.Conv2d(chans[-1], 3, 1), nn.Tanh())

    def sample_latents(self, batch: int, objects: int, generator: torch.Generator | None = None,
                       device: torch.device | str | None = None,
                       truncation: float | None = None):
        device = device if device is not None else self.noise.weight.device
        return (truncated_normal((batch, self.z_img_dim), truncation, generator, device),
                truncated_normal((batch, objects, self.z_obj_dim), truncation, generator, device))

    def forward(self, objects, boxes, obj_valid, attributes, z_img, z_obj, masks=None,
                return_masks: bool = False):
        b, o = objects.shape
        assert boxes.shape == (b, o, 4) and z_obj.shape == (b, o, self.z_obj_dim)
        style = self.style(objects, attributes, z_obj)  # [B, O, D]
        real = real_objects(objects, obj_valid)
        if masks is None:
            masks = self.mask_regress(style, real)
        grid = masks_to_grid(masks, boxes, self.image_size) * real.float()[:, :, None, None]
        vectors = self.to_layout(style)  # [B, O, L]
        x = self.noise(z_img).reshape(b, -1, 4, 4)
        for i, module in enumerate(self.modules_):
            r = 4 * 2 ** i
            if i > 0:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            layout = spread(vectors, F.adaptive_avg_pool2d(grid, r)).to(x.dtype)  # [B, L, r, r]
            x = module(torch.cat([layout, x], dim=1))
        image = self.out(x)
        return (image, grid) if return_masks else image
