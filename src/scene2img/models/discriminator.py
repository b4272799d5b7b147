"""The LostGAN discriminator: an image head and an object head (with AttrLostGAN's attribute head).

    image head    ResNet down-blocks over the whole image -> one realism score per image
    object head   per real object, a feature vector [N, 16 ch] from one of two object paths
                  (`object_head`), then a realism score with a projection onto the class
                  embedding, and AttrLostGAN's attribute score: the same unconditional score plus
                  a projection onto a linear embedding of the object's multi-hot attributes

    roi           LostGAN's (and AttrLostGAN's): ROIAlign 8 x 8 on the image head's own trunk,
                  small objects (both box sides under half the image) from the 1/4-resolution
                  features through two object blocks, large ones from the 1/8-resolution features
                  through the second, then a shared down-block (256 px: 1/8 and 1/16)
    crop          ours: each box cut out of the image itself with `roi_align` (full resolution
                  for small objects, half for large), P x P, then its own ResNet. An object's
                  score then depends only on the pixels of its box (up to the one-pixel footprint
                  of the bilinear sampling); on the shared trunk every object sees its
                  surroundings through the receptive field

Spectral norm and orthogonal init throughout. Where this differs from the reference code
(`rcnn_discriminator.py` of LostGANs, `rcnn_discriminator_v2.py` of AttrLostGAN):

- 64 px: the reference's 64 px discriminator (LostGAN-v1) pools once, at 1/2; `roi` here uses the
  128 px layout (1/4 and 1/8) at every size.
- AttrLostGAN's attribute embedding reads `[image index | attributes]` (the index column is left
  over from the ROI boxes); here it reads the attributes only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from scene2img.models.boxes import real_objects
from scene2img.models.generator import sn

OBJECT_HEADS = ("roi", "crop")


class DownBlock(nn.Module):
    """Pre-activation ResNet block, optional /2: [B, Cin, r, r] -> [B, Cout, r/2, r/2]."""

    def __init__(self, cin: int, cout: int, down: bool = True, first: bool = False) -> None:
        super().__init__()
        self.conv1 = sn(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = sn(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = sn(nn.Conv2d(cin, cout, 1)) if cin != cout or down else None
        self.down, self.first = down, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        s = x
        if self.first:  # BigGAN/LostGAN "optimized" first block: pool, then 1 x 1 on the image
            s = self.skip(F.avg_pool2d(x, 2) if self.down else x)
        elif self.skip is not None:
            s = self.skip(s)
            s = F.avg_pool2d(s, 2) if self.down else s
        if self.down:
            h = F.avg_pool2d(h, 2)
        return h + s


def _trunk(chans: list[int]) -> nn.Sequential:
    blocks = [DownBlock(3, chans[0], first=True)]
    blocks += [DownBlock(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True)]
    return nn.Sequential(*blocks)


def _xyxy_rois(boxes: torch.Tensor, keep: torch.Tensor, size: int) -> torch.Tensor:
    """boxes [B, O, 4] normalised xywh, keep [B, O] -> ROIs [N, 5] (image index, x0, y0, x1, y1
    in pixels of the S x S image) for the kept objects, row-major."""
    b, o, _ = boxes.shape
    idx = torch.arange(b, device=boxes.device).repeat_interleave(o)[keep.flatten()]
    xywh = boxes.reshape(b * o, 4)[keep.flatten()].float()
    xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
    return torch.cat([idx[:, None].to(xyxy.dtype), xyxy * size], dim=1)


def _small(boxes: torch.Tensor, keep: torch.Tensor, threshold: float) -> torch.Tensor:
    """[N] bool over the kept objects: both box sides below `threshold` (a fraction of S)."""
    wh = boxes[keep][:, 2:]
    return (wh[:, 0] < threshold) & (wh[:, 1] < threshold)


class ImageHead(nn.Module):
    """[B, 3, S, S] -> [B] realism scores; `levels` also returns the trunk's features."""

    # widths in units of ch, down to 4 x 4, then one block at 4 x 4 (LostGAN)
    WIDTHS = {64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16), 256: (1, 2, 4, 8, 8, 16, 16)}

    def __init__(self, image_size: int, ch: int) -> None:
        super().__init__()
        self.chans = [w * ch for w in self.WIDTHS[image_size]]
        self.trunk = _trunk(self.chans[:-1])  # S -> 4 x 4 ... (one down per block)
        self.last = DownBlock(self.chans[-2], self.chans[-1], down=False)
        self.linear = sn(nn.Linear(self.chans[-1], 1))

    def levels(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Scores [B] and each trunk block's output (block i: S / 2^(i+1), chans[i] channels)."""
        feats, h = [], images
        for block in self.trunk:
            h = block(h)
            feats.append(h)
        h = F.relu(self.last(h))
        return self.linear(h.sum(dim=(2, 3))).squeeze(1), feats

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.levels(images)[0]


class ObjectProjection(nn.Module):
    """Object features [N, W] -> object and attribute scores [N] (projection discriminator).

    object     l(h) + <e_class, h>                  LostGAN
    attribute  l(h) + <W a + b, h>, a multi-hot     AttrLostGAN: the unconditional part l(h) is
                                                    shared with the object score
    """

    def __init__(self, width: int, num_classes: int, num_attributes: int) -> None:
        super().__init__()
        self.linear = sn(nn.Linear(width, 1))
        self.class_embed = sn(nn.Embedding(num_classes, width))
        self.attr_embed = sn(nn.Linear(num_attributes, width)) if num_attributes > 0 else None

    def object_score(self, h: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """[N, W], [N] -> [N]."""
        return self.linear(h).squeeze(1) + (self.class_embed(classes) * h).sum(1)

    def attribute_score(self, h: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """[N, W], [N, A] multi-hot -> [N]."""
        embed = self.attr_embed(attributes.to(h.dtype))  # [N, W]
        return self.linear(h).squeeze(1) + (embed * h).sum(1)


class CropFeatures(nn.Module):
    """Ours: each box cut out of the image [N, 3, P, P], then its own ResNet -> [N, 16 ch]."""

    def __init__(self, ch: int, crop: int, small_object: float) -> None:
        super().__init__()
        # crop P -> 4 x 4 by halving, widths ch, 2ch, 4ch, 8ch, ... capped at 16ch
        chans, size = [], crop
        while size > 4:
            chans.append(ch * min(16, 2 ** len(chans)))
            size //= 2
        self.trunk = _trunk(chans)
        self.width = ch * 16
        self.last = DownBlock(chans[-1], self.width, down=False)
        self.crop, self.small_object = crop, small_object

    def crops(self, images: torch.Tensor, boxes: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S], boxes [B, O, 4], keep [B, O] -> [N, 3, P, P] for the N kept objects."""
        rois = _xyxy_rois(boxes, keep, images.shape[-1])  # pixels, level 0
        small = _small(boxes, keep, self.small_object)
        out = images.new_zeros(len(rois), 3, self.crop, self.crop)
        levels = ((small, images, 1.0), (~small, F.avg_pool2d(images, 2), 0.5))
        for sel, level, scale in levels:
            if sel.any():
                out[sel] = roi_align(level, rois[sel].to(level.dtype), self.crop,
                                     spatial_scale=scale, sampling_ratio=2, aligned=True)
        return out

    def forward(self, images: torch.Tensor, boxes: torch.Tensor, keep: torch.Tensor,
                levels: list[torch.Tensor]) -> torch.Tensor:
        crops = self.crops(images, boxes, keep)
        return F.relu(self.last(self.trunk(crops))).sum(dim=(2, 3))  # [N, W]


class RoIFeatures(nn.Module):
    """LostGAN's object path on the image trunk's features -> [N, 16 ch].

    small: level s (1/4; 256 px: 1/8) -> block a -> block b -> ROIAlign 8 x 8 at that scale
    large: level s + 1                 ->           block b -> ROIAlign 8 x 8 at half that scale
    both:  block c (x1/2, 16 ch) -> ReLU -> sum over the 4 x 4 positions
    """

    SMALL_LEVEL = {64: 1, 128: 1, 256: 2}  # trunk block whose output the small objects use

    def __init__(self, image_size: int, chans: list[int], ch: int, small_object: float) -> None:
        super().__init__()
        self.level = self.SMALL_LEVEL[image_size]
        c_small, c_large = chans[self.level], chans[self.level + 1]
        self.scale = 1.0 / 2 ** (self.level + 1)  # of the small objects' level
        self.block_a = DownBlock(c_small, c_large, down=False)
        self.block_b = DownBlock(c_large, 8 * ch, down=False)
        self.block_c = DownBlock(8 * ch, 16 * ch)
        self.width = 16 * ch
        self.small_object = small_object

    def forward(self, images: torch.Tensor, boxes: torch.Tensor, keep: torch.Tensor,
                levels: list[torch.Tensor]) -> torch.Tensor:
        rois = _xyxy_rois(boxes, keep, images.shape[-1])
        small = _small(boxes, keep, self.small_object)
        fine, coarse = levels[self.level], levels[self.level + 1]
        out = fine.new_zeros(len(rois), self.block_b.conv2.out_channels, 8, 8)
        paths = ((small, lambda: self.block_b(self.block_a(fine)), self.scale),
                 (~small, lambda: self.block_b(coarse), self.scale / 2))
        for sel, features, scale in paths:
            if sel.any():
                f = features()
                out[sel] = roi_align(f, rois[sel].to(f.dtype), 8, spatial_scale=scale,
                                     sampling_ratio=0, aligned=False).to(out.dtype)
        return F.relu(self.block_c(out)).sum(dim=(2, 3))  # [N, W]


class LostGANDiscriminator(nn.Module):
    """Image, object and attribute scores for a batch of images with their layouts."""

    def __init__(
        self,
        num_classes: int,
        num_attributes: int = 0,
        image_size: int = 128,
        ch: int = 64,  # base width (LostGAN: 64)
        object_head: str = "roi",  # roi (LostGAN: ROIAlign on the shared trunk) | crop (ours)
        crop: int = 32,  # crop head: object crops are P x P
        small_object: float = 0.5,  # both box sides below this fraction: the finer level
    ) -> None:
        super().__init__()
        if object_head not in OBJECT_HEADS:
            raise ValueError(f"object_head must be one of {OBJECT_HEADS}, got {object_head!r}")
        self.image_size = image_size
        self.image_head = ImageHead(image_size, ch)
        self.object_features = (
            RoIFeatures(image_size, self.image_head.chans, ch, small_object)
            if object_head == "roi" else CropFeatures(ch, crop, small_object))
        self.object_head = ObjectProjection(self.object_features.width, num_classes,
                                            num_attributes)

    def forward(
        self,
        images: torch.Tensor,  # [B, 3, S, S]
        objects: torch.Tensor,  # [B, O]
        boxes: torch.Tensor,  # [B, O, 4]
        obj_valid: torch.Tensor,  # [B, O]
        attributes: torch.Tensor | None = None,  # [B, O, A]
        mismatched: torch.Tensor | None = None,  # [B, O, A] other attributes for the same objects
    ) -> dict[str, torch.Tensor | None]:
        """Scores for the N real objects (padding and `__image__` excluded), row-major:
        {"image": [B], "object": [N], "attribute": [N] | None, "mismatched": [N] | None}."""
        keep = real_objects(objects, obj_valid)
        image_score, levels = self.image_head.levels(images)
        h = self.object_features(images, boxes, keep, levels)  # [N, W]
        head = self.object_head
        has_attrs = head.attr_embed is not None and attributes is not None
        return {
            "image": image_score,
            "object": head.object_score(h, objects[keep]),
            "attribute": head.attribute_score(h, attributes[keep]) if has_attrs else None,
            "mismatched": head.attribute_score(h, mismatched[keep])
            if has_attrs and mismatched is not None else None,
        }
