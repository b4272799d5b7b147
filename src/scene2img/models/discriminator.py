"""The LostGAN discriminator: an image head and an object head (with AttrLostGAN's attribute head).

    image head    ResNet down-blocks over the whole image -> one realism score per image
    object head   each real object's box cut out with `torchvision.ops.roi_align` from one of two
                  levels of the input (full resolution for small objects, half resolution for
                  large ones, as LostGAN splits small and large objects between two feature
                  levels), then its own ResNet -> a score with a projection onto the class
                  embedding, and an attribute score: a projection onto the mean embedding of the
                  object's attributes (AttrLostGAN)

The object head pools *before* its convolutions, so an object's score depends only on the pixels of
its box (up to the one-pixel footprint of the bilinear sampling); pooling features of a shared
trunk, as the LostGAN code does, lets every object see its surroundings through the receptive
field. Spectral norm and orthogonal init throughout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from scene2img.models.generator import real_objects, sn


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


class ImageHead(nn.Module):
    """[B, 3, S, S] -> [B] realism scores."""

    # widths in units of ch, down to 4 x 4, then one block at 4 x 4 (LostGAN)
    WIDTHS = {64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16), 256: (1, 2, 4, 8, 8, 16, 16)}

    def __init__(self, image_size: int, ch: int) -> None:
        super().__init__()
        chans = [w * ch for w in self.WIDTHS[image_size]]
        self.trunk = _trunk(chans[:-1])  # S -> 4 x 4 ... (one down per block)
        self.last = DownBlock(chans[-2], chans[-1], down=False)
        self.linear = sn(nn.Linear(chans[-1], 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.last(self.trunk(images)))
        return self.linear(h.sum(dim=(2, 3))).squeeze(1)  # [B]


class ObjectHead(nn.Module):
    """Object crops [N, 3, P, P] -> features [N, W] -> object and attribute scores [N]."""

    def __init__(self, num_classes: int, num_attributes: int, ch: int, crop: int) -> None:
        super().__init__()
        # crop P -> 4 x 4 by halving, widths ch, 2ch, 4ch, 8ch, ... capped at 16ch
        chans, size = [], crop
        while size > 4:
            chans.append(ch * min(16, 2 ** len(chans)))
            size //= 2
        self.trunk = _trunk(chans)
        width = ch * 16
        self.last = DownBlock(chans[-1], width, down=False)
        self.linear = sn(nn.Linear(width, 1))
        self.class_embed = sn(nn.Embedding(num_classes, width))
        self.attr_embed = sn(nn.Linear(num_attributes, width, bias=False)) \
            if num_attributes > 0 else None

    def features(self, crops: torch.Tensor) -> torch.Tensor:
        return F.relu(self.last(self.trunk(crops))).sum(dim=(2, 3))  # [N, W]

    def object_score(self, h: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Realism with a projection onto the class embedding: [N, W], [N] -> [N]."""
        return self.linear(h).squeeze(1) + (self.class_embed(classes) * h).sum(1)

    def attribute_score(self, h: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """Projection onto the mean embedding of the attributes: [N, W], [N, A] -> [N]."""
        count = attributes.sum(1, keepdim=True).clamp(min=1.0)
        mean_embed = self.attr_embed(attributes.to(h.dtype) / count)  # [N, W]
        return (mean_embed * h).sum(1)  # [N]


class LostGANDiscriminator(nn.Module):
    """Image, object and attribute scores for a batch of images with their layouts."""

    def __init__(
        self,
        num_classes: int,
        num_attributes: int = 0,
        image_size: int = 128,
        ch: int = 64,  # base width (LostGAN: 64)
        crop: int = 32,  # P: object crops are P x P
        small_object: float = 0.5,  # both box sides below this fraction: full-resolution level
    ) -> None:
        super().__init__()
        self.image_size, self.crop, self.small_object = image_size, crop, small_object
        self.image_head = ImageHead(image_size, ch)
        self.object_head = ObjectHead(num_classes, num_attributes, ch, crop)

    def crops(self, images: torch.Tensor, boxes: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S], boxes [B, O, 4], keep [B, O] -> [N, 3, P, P] for the N kept objects."""
        b, o, _ = boxes.shape
        s = images.shape[-1]
        idx = torch.arange(b, device=boxes.device).repeat_interleave(o)[keep.flatten()]
        xywh = boxes.reshape(b * o, 4)[keep.flatten()].float()
        xyxy = torch.stack([xywh[:, 0], xywh[:, 1], xywh[:, 0] + xywh[:, 2],
                            xywh[:, 1] + xywh[:, 3]], dim=1)
        rois = torch.cat([idx[:, None].to(xyxy.dtype), xyxy * s], dim=1)  # pixels, level 0
        small = (xywh[:, 2] < self.small_object) & (xywh[:, 3] < self.small_object)
        out = images.new_zeros(len(rois), 3, self.crop, self.crop)
        levels = ((small, images, 1.0), (~small, F.avg_pool2d(images, 2), 0.5))
        for sel, level, scale in levels:
            if sel.any():
                out[sel] = roi_align(level, rois[sel].to(level.dtype), self.crop,
                                     spatial_scale=scale, sampling_ratio=2, aligned=True)
        return out

    def forward(
        self,
        images: torch.Tensor,  # [B, 3, S, S]
        objects: torch.Tensor,  # [B, O]
        boxes: torch.Tensor,  # [B, O, 4]
        obj_valid: torch.Tensor,  # [B, O]
        attributes: torch.Tensor | None = None,  # [B, O, A]
        mismatched: torch.Tensor | None = None,  # [B, O, A] other attributes for the same crops
    ) -> dict[str, torch.Tensor | None]:
        """Scores for the N real objects (padding and `__image__` excluded):
        {"image": [B], "object": [N], "attribute": [N] | None, "mismatched": [N] | None}."""
        keep = real_objects(objects, obj_valid)
        crops = self.crops(images, boxes, keep)
        head = self.object_head
        h = head.features(crops)  # [N, W]
        has_attrs = head.attr_embed is not None and attributes is not None
        return {
            "image": self.image_head(images),
            "object": head.object_score(h, objects[keep]),
            "attribute": head.attribute_score(h, attributes[keep]) if has_attrs else None,
            "mismatched": head.attribute_score(h, mismatched[keep])
            if has_attrs and mismatched is not None else None,
        }
