"""The LostGAN-v2 generator (Sun & Wu), with attributes as in AttrLostGAN (Frolov et al. 2021).

Layout (classes, boxes, attributes, optional masks) + latents -> image in [-1, 1]:

    style     per object: z_obj | class embedding | attribute features, through the mapping
              (LostGAN-v2 / AttrLostGAN: identity)                                   [B, O, D]
    masks     regressed from the style (M x M, LostGAN-v2's MaskRegressNetv2), placed into each
              box                                                                    [B, O, S, S]
    4 x 4     the image latent through a linear layer
    blocks    ResNet up-blocks (x2 each) normalised by ISLA-Norm; each block but the last predicts
              a per-class semantic mask from its output (conv 3 x 3 -> BN -> ReLU -> 1 x 1, or
              the PSP module at the stage the reference puts it), which the next block blends
              with the regressed masks inside each box, with a learned per-class weight
    output    BN, ReLU, 3 x 3 conv, tanh

Only real objects are drawn (`boxes.real_objects`: valid and not `__image__`); padding and the
`__image__` object (class 0) get zero masks. Given masks replace the regressed ones where the
caller passes them (`train_image.g.gt_masks`; LostGAN always regresses them).

Where this differs from the reference code (LostGANs' `resnet_generator_v2.py`,
AttrLostGAN's `resnet_generator_v2.py`), and why:

- 64 px: the reference has no LostGAN-v2 64 px model; the widths are LostGAN-v1's 64 px
  generator's (1024, 512, 256, 128, 64) with v2's stage masks, and the PSP module on the last
  stage-mask head as in v2's 128 px model.
- ISLA-Norm averages styles where masks overlap but lets a partial cover (< 1) fade the style out
  (`models.norm.spread`); the reference divides by the cover, so that a lone object's mask value
  does not matter. Ours makes the regressed mask an intensity, which gives the mask regressor a
  gradient wherever its object is alone.
- The semantic-mask heads' 184 output classes are the vocabulary's size here (184 is
  COCO-Stuff's); `mapping: mlp` (ours, off by default) puts a 2-layer MLP where the reference's
  mapping is empty.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from scene2img.models.boxes import masks_to_layout, real_objects
from scene2img.models.norm import ISLANorm

# Block widths in units of the base width `ch` (LostGAN-v2: ch = 64), first entry: the 4 x 4 input.
WIDTHS: dict[int, tuple[int, ...]] = {
    64: (16, 8, 4, 2, 1),  # LostGAN-v1 64 px: 1024, 512, 256, 128, 64
    128: (16, 16, 8, 4, 2, 1),  # LostGAN-v2: 1024, 1024, 512, 256, 128, 64
    256: (16, 16, 8, 8, 4, 2, 1),  # LostGAN-v2: 1024, 1024, 512, 512, 256, 128, 64
}
# Which stage-mask head (counted from the first block) uses the PSP module: v2's 128 px model puts
# it on the last head (64 x 64 features), its 256 px model on none; 64 px follows 128 (ours).
PSP_HEAD: dict[int, int | None] = {64: -1, 128: -1, 256: None}
MAPPINGS = ("identity", "mlp")
MASK_NORMS = ("instance", "batch")


def widths(image_size: int, ch: int) -> list[int]:
    if image_size not in WIDTHS:
        raise ValueError(f"image_size must be one of {sorted(WIDTHS)}, got {image_size}")
    return [w * ch for w in WIDTHS[image_size]]


def sn(module: nn.Module) -> nn.Module:
    """Orthogonal init, zero bias, spectral norm (LostGAN's layers)."""
    nn.init.orthogonal_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return spectral_norm(module)


def orthogonal(module: nn.Module) -> nn.Module:
    """Orthogonal init and zero bias without spectral norm (the reference's `init_parameter`)."""
    nn.init.orthogonal_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return module


def truncated_normal(
    shape: tuple[int, ...],
    threshold: float | None,  # None: the plain standard normal
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Standard normal samples, resampled outside [-threshold, threshold] (LostGAN's test.py
    `truncted_random`, threshold 2.0, for the image and the object latents)."""
    if threshold is None:
        return torch.randn(shape, generator=generator, device=device)
    if threshold <= 0:
        raise ValueError(f"truncation threshold must be positive, got {threshold}")
    out = torch.empty(shape, device=device)
    return nn.init.trunc_normal_(out, 0.0, 1.0, -threshold, threshold, generator=generator)


# --------------------------------------------------------------------------------------------
# layout: masks in box coordinates -> image grid


def masks_to_grid(
    masks: torch.Tensor,  # [B, O, M, M] in box coordinates
    boxes: torch.Tensor,  # [B, O, 4] normalised x, y, w, h
    size: int,  # S
) -> torch.Tensor:
    """Each M x M mask resampled into its box on an S x S grid (zero outside): [B, O, S, S]."""
    return masks_to_layout(boxes.float(), masks.float(), size)


def box_masks(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Hard box indicators on an S x S grid: [B, O, 4] -> [B, O, S, S] (pixel centres inside)."""
    centres = (torch.arange(size, device=boxes.device, dtype=torch.float32) + 0.5) / size
    x, y, w, h = boxes.float().unbind(-1)  # [B, O] each
    in_x = (centres >= x[..., None]) & (centres <= (x + w)[..., None])  # [B, O, S]
    in_y = (centres >= y[..., None]) & (centres <= (y + h)[..., None])
    return (in_y[..., :, None] & in_x[..., None, :]).float()


# --------------------------------------------------------------------------------------------
# per-object style


class ObjectStyle(nn.Module):
    """z_obj [B, O, Zo] + class [B, O] (+ attributes [B, O, A]) -> style [B, O, D].

    AttrLostGAN: the multi-hot attributes through an MLP (A -> 2048 -> 1024 -> 512 -> 256 -> 180,
    ReLU between) concatenated with z and the class embedding. The mapping is the identity in
    LostGAN-v2 and AttrLostGAN (their `nn.Sequential()` with no layers; the training script gives
    "mapping" parameters 0.1 x the learning rate); `mapping="mlp"` is ours.
    """

    def __init__(self, num_classes: int, num_attributes: int, z_dim: int, class_dim: int,
                 attr_dim: int, attr_hidden: tuple[int, ...] = (2048, 1024, 512, 256),
                 mapping: str = "identity") -> None:
        super().__init__()
        if mapping not in MAPPINGS:
            raise ValueError(f"mapping must be one of {MAPPINGS}, got {mapping!r}")
        self.class_embed = nn.Embedding(num_classes, class_dim)
        self.attr_embed = None
        if num_attributes > 0 and attr_dim > 0:
            sizes, layers = [num_attributes, *attr_hidden, attr_dim], []
            for a, b in zip(sizes[:-1], sizes[1:], strict=True):
                layers += [orthogonal(nn.Linear(a, b)), nn.ReLU()]
            self.attr_embed = nn.Sequential(*layers[:-1])  # no ReLU after the last layer
        self.dim = z_dim + class_dim + (attr_dim if self.attr_embed is not None else 0)
        self.mapping = (nn.Sequential(sn(nn.Linear(self.dim, self.dim)), nn.ReLU(),
                                      sn(nn.Linear(self.dim, self.dim)))
                        if mapping == "mlp" else nn.Identity())

    def forward(self, objects: torch.Tensor, attributes: torch.Tensor,
                z_obj: torch.Tensor) -> torch.Tensor:
        parts = [z_obj, self.class_embed(objects)]
        if self.attr_embed is not None:
            parts.append(self.attr_embed(attributes.float()))
        return self.mapping(torch.cat(parts, dim=-1))  # [B, O, D]


class MaskRegression(nn.Module):
    """Style -> M x M mask in box coordinates, values in (0, 1) (LostGAN-v2's MaskRegressNetv2).

    fc to [W, 4, 4], then a 3 x 3 conv + norm + ReLU at 4 x 4 and after each bilinear x2 up to
    M, a 1 x 1 conv and a sigmoid. LostGAN-v2: W = 256 with instance norm (v1: 128, batch norm).
    """

    def __init__(self, style_dim: int, mask_size: int, width: int = 256,
                 norm: str = "instance") -> None:
        super().__init__()
        if norm not in MASK_NORMS:
            raise ValueError(f"mask norm must be one of {MASK_NORMS}, got {norm!r}")
        self.width = width
        self.fc = sn(nn.Linear(style_dim, width * 4 * 4))

        def conv_norm_relu() -> list[nn.Module]:
            normalise = nn.InstanceNorm2d(width) if norm == "instance" else nn.BatchNorm2d(width)
            return [sn(nn.Conv2d(width, width, 3, padding=1)), normalise, nn.ReLU()]

        layers, size = conv_norm_relu(), 4
        while size < mask_size:
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       *conv_norm_relu()]
            size *= 2
        layers += [sn(nn.Conv2d(width, 1, 1))]
        self.convs = nn.Sequential(*layers)
        self.mask_size = mask_size

    def forward(self, style: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """style [B, O, D], real [B, O] bool -> masks [B, O, M, M] (zero for the others)."""
        b, o, _ = style.shape
        n = int(real.sum())
        x = self.fc(style[real]).reshape(n, self.width, 4, 4)  # only the drawn objects
        x = self.convs(x)  # [N, 1, m, m]
        if x.shape[-1] != self.mask_size:
            x = F.interpolate(x, size=self.mask_size, mode="bilinear", align_corners=False)
        masks = style.new_zeros(b, o, self.mask_size, self.mask_size, dtype=torch.float32)
        masks[real] = torch.sigmoid(x.float())[:, 0]
        return masks


# --------------------------------------------------------------------------------------------
# blocks


class UpBlock(nn.Module):
    """ISLA-Norm ResNet block, x2 up: [B, Cin, r, r] -> [B, Cout, 2r, 2r]."""

    def __init__(self, cin: int, cout: int, style_dim: int) -> None:
        super().__init__()
        self.norm1 = ISLANorm(cin, style_dim)
        self.conv1 = sn(nn.Conv2d(cin, cout, 3, padding=1))
        self.norm2 = ISLANorm(cout, style_dim)
        self.conv2 = sn(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = sn(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        # masks: [B, O, r, r] at the input resolution
        up_masks = F.interpolate(masks, scale_factor=2, mode="bilinear", align_corners=False)
        h = F.relu(self.norm1(x, style, masks))
        h = self.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv2(F.relu(self.norm2(h, style, up_masks)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class PSPModule(nn.Module):
    """Pyramid pooling (Zhao et al. 2017), as LostGAN-v2's last stage-mask head uses it:
    [B, C, r, r] -> [B, H, r, r]. Pools to 1, 2, 3, 6, a 1 x 1 conv + BN + ReLU each, upsampled
    and concatenated with the input, then a 3 x 3 conv + BN + ReLU + dropout 0.1."""

    SIZES = (1, 2, 3, 6)

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(size), nn.Conv2d(channels, hidden, 1, bias=False),
                          nn.BatchNorm2d(hidden), nn.ReLU())
            for size in self.SIZES)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(channels + len(self.SIZES) * hidden, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(), nn.Dropout2d(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=r, mode="bilinear", align_corners=True)
                  for stage in self.stages]
        return self.bottleneck(torch.cat([*pooled, x], dim=1))


class StageMask(nn.Module):
    """LostGAN-v2 stage mask: a per-class semantic mask predicted from a block's output, blended
    with the regressed masks inside each box with a learned per-class weight (sigmoid(0) = 0.5 at
    the start). The head: conv 3 x 3 -> `hidden` -> BN -> ReLU -> 1 x 1 -> classes, or the PSP
    module -> 1 x 1 -> classes (no spectral norm in the reference's heads)."""

    def __init__(self, channels: int, num_classes: int, hidden: int = 100,
                 psp: bool = False) -> None:
        super().__init__()
        body = ([PSPModule(channels, hidden)] if psp else
                [orthogonal(nn.Conv2d(channels, hidden, 3, padding=1)), nn.BatchNorm2d(hidden),
                 nn.ReLU()])
        self.semantic = nn.Sequential(*body, orthogonal(nn.Conv2d(hidden, num_classes, 1)))
        self.alpha = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: torch.Tensor, objects: torch.Tensor, masks: torch.Tensor,
                boxes_hard: torch.Tensor) -> torch.Tensor:
        # x [B, C, r, r]; objects [B, O]; masks, boxes_hard [B, O, r, r]
        logits = self.semantic(x).float()  # [B, K, r, r]
        r = logits.shape[-1]
        index = objects[:, :, None, None].expand(-1, -1, r, r)
        semantic = torch.sigmoid(torch.gather(logits, 1, index)) * boxes_hard  # [B, O, r, r]
        alpha = torch.sigmoid(self.alpha)[objects][:, :, None, None]  # [B, O, 1, 1]
        return masks * (1.0 - alpha) + semantic * alpha


# --------------------------------------------------------------------------------------------
# the generator


class LostGANGenerator(nn.Module):
    """LostGAN-v2 generator; AttrLostGAN attribute conditioning when `num_attributes > 0`."""

    def __init__(
        self,
        num_classes: int,  # vocabulary size, __image__ included
        num_attributes: int = 0,  # 0: no attribute conditioning
        image_size: int = 128,  # 64, 128 or 256
        ch: int = 64,  # base width (LostGAN-v2: 64)
        z_img: int = 128,  # image latent
        z_obj: int = 128,  # per-object latent
        class_dim: int = 180,  # class embedding (LostGAN-v2: 180)
        attr_dim: int = 180,  # attribute features (AttrLostGAN: 180)
        attr_hidden: tuple[int, ...] = (2048, 1024, 512, 256),  # AttrLostGAN's attribute MLP
        mapping: str = "identity",  # identity (LostGAN-v2) | mlp (ours)
        mask_size: int = 16,  # regressed masks, M x M in box coordinates
        mask_width: int = 256,  # mask regression channels (LostGAN-v2: 256; v1: 128)
        mask_norm: str = "instance",  # instance (LostGAN-v2) | batch (v1)
        stage_mask_dim: int = 100,  # stage-mask heads' hidden channels (LostGAN-v2: 100)
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.z_img_dim, self.z_obj_dim = z_img, z_obj
        self.num_attributes = num_attributes
        chans = widths(image_size, ch)
        self.style = ObjectStyle(num_classes, num_attributes, z_obj, class_dim, attr_dim,
                                 tuple(attr_hidden), mapping)
        d = self.style.dim
        self.mask_regress = MaskRegression(d, mask_size, mask_width, mask_norm)
        self.fc = sn(nn.Linear(z_img, 4 * 4 * chans[0]))
        self.blocks = nn.ModuleList(UpBlock(a, b, d) for a, b in zip(chans[:-1], chans[1:],
                                                                        strict=True))
        # a stage mask from each block's output but the last (8 x 8 and up)
        heads = chans[1:-1]
        psp = PSP_HEAD[image_size]
        psp = None if psp is None else psp % len(heads)
        self.refine = nn.ModuleList(StageMask(c, num_classes, stage_mask_dim, psp=i == psp)
                                    for i, c in enumerate(heads))
        self.out = nn.Sequential(nn.BatchNorm2d(chans[-1]), nn.ReLU(),
                                 sn(nn.Conv2d(chans[-1], 3, 3, padding=1)), nn.Tanh())

    def sample_latents(
        self,
        batch: int,
        objects: int,
        generator: torch.Generator | None = None,  # seeded generator for reproducible samples
        device: torch.device | str | None = None,
        truncation: float | None = None,  # LostGAN's test-time truncation (2.0); None: N(0, 1)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents z_img [B, Zi], z_obj [B, O, Zo]: standard normal, or truncated at +-truncation."""
        device = device if device is not None else self.fc.bias.device
        z_img = truncated_normal((batch, self.z_img_dim), truncation, generator, device)
        z_obj = truncated_normal((batch, objects, self.z_obj_dim), truncation, generator, device)
        return z_img, z_obj

    def layout(self, objects, boxes, obj_valid, attributes, z_obj, masks=None):
        """Per-object style [B, O, D] and masks on the image grid [B, O, S, S]."""
        real = real_objects(objects, obj_valid)  # [B, O]
        style = self.style(objects, attributes, z_obj)
        if masks is None:
            masks = self.mask_regress(style, real)  # [B, O, M, M]
        grid = masks_to_grid(masks, boxes, self.image_size) * real.float()[:, :, None, None]
        return style, grid

    def forward(
        self,
        objects: torch.Tensor,  # [B, O] long class indices
        boxes: torch.Tensor,  # [B, O, 4] normalised x, y, w, h
        obj_valid: torch.Tensor,  # [B, O] bool
        attributes: torch.Tensor,  # [B, O, A] multi-hot (A may be 0)
        z_img: torch.Tensor,  # [B, Zi]
        z_obj: torch.Tensor,  # [B, O, Zo]
        masks: torch.Tensor | None = None,  # [B, O, M, M] given masks; None: regressed
        return_masks: bool = False,  # also return the final stage masks [B, O, S, S]
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        b, o = objects.shape
        assert boxes.shape == (b, o, 4), boxes.shape
        assert z_img.shape == (b, self.z_img_dim) and z_obj.shape == (b, o, self.z_obj_dim)
        style, grid = self.layout(objects, boxes, obj_valid, attributes, z_obj, masks)
        real = real_objects(objects, obj_valid).float()[:, :, None, None]
        x = self.fc(z_img).reshape(b, -1, 4, 4)  # [B, C0, 4, 4]
        masks_r = F.adaptive_avg_pool2d(grid, 4)
        for i, block in enumerate(self.blocks):
            r = x.shape[-1]
            if i > 0:  # x is block i-1's output: its stage mask drives block i
                base = F.adaptive_avg_pool2d(grid, r)
                hard = box_masks(boxes, r) * real
                masks_r = self.refine[i - 1](x, objects, base, hard)
            x = block(x, style, masks_r.to(x.dtype))
        image = self.out(x)  # [B, 3, S, S]
        if return_masks:
            final = F.interpolate(masks_r, size=self.image_size, mode="bilinear",
                                  align_corners=False)
            return image, final
        return image
