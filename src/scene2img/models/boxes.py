"""Box and mask utilities shared by the layout model, its metrics and the image GAN.

Boxes are normalised to the image (0..1). `xywh` is (left, top, width, height), the processed
dataset's convention; `xyxy` is (left, top, right, bottom). Masks are M x M in box coordinates.
Of a batch's objects only the real ones have a box of their own (`real_objects`): padding has
none, and `__image__` (class 0, as the vocabulary fixes it) is the whole image.

Example:
    >>> import torch
    >>> a = torch.tensor([0.0, 0.0, 0.5, 0.5])
    >>> b = torch.tensor([0.25, 0.0, 0.5, 0.5])
    >>> round(box_iou(a, b).item(), 4)
    0.3333
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["IMAGE_CLASS", "box_iou", "clip_to_image", "mask_iou", "masks_to_layout",
           "real_objects", "xywh_to_xyxy", "xyxy_to_xywh"]

IMAGE_CLASS = 0  # the vocabulary's index of `__image__` (scene2img.data.vocab)


def real_objects(objects: torch.Tensor, obj_valid: torch.Tensor) -> torch.Tensor:
    """[B, O] bool: the objects with a box of their own (valid, not `__image__`): those a
    generator draws and the metrics score."""
    return obj_valid & (objects != IMAGE_CLASS)


def xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] (x, y, w, h) -> [..., 4] (x0, y0, x1, y1)."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, y, x + w, y + h], dim=-1)


def xyxy_to_xywh(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] (x0, y0, x1, y1) -> [..., 4] (x, y, w, h)."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([x0, y0, x1 - x0, y1 - y0], dim=-1)


def clip_to_image(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] xywh -> the part inside the unit square, xywh; a box with no area inside keeps
    its clipped corner and gets width or height 0 (never negative).

    Example:
        >>> clip_to_image(torch.tensor([0.75, -0.25, -0.5, 0.5])).tolist()
        [0.75, 0.0, 0.0, 0.25]
    """
    x0y0 = boxes[..., :2].clamp(0, 1)
    x1y1 = (boxes[..., :2] + boxes[..., 2:]).clamp(0, 1)
    return torch.cat([x0y0, (x1y1 - x0y0).clamp(min=0)], dim=-1)


def box_iou(
    a: torch.Tensor,  # [..., 4] xywh
    b: torch.Tensor,  # [..., 4] xywh, same shape
    eps: float = 1e-8,
) -> torch.Tensor:
    """Element-wise intersection over union of paired boxes: [...]. Negative sizes count as 0."""
    a, b = xywh_to_xyxy(a), xywh_to_xyxy(b)
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    lo = torch.maximum(a[..., :2], b[..., :2])
    hi = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (hi - lo).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter).clamp(min=eps)


def mask_iou(
    pred: torch.Tensor,  # [..., M, M] probabilities or {0, 1}
    target: torch.Tensor,  # [..., M, M] {0, 1}
    threshold: float = 0.5,  # a predicted pixel is "in" at or above this
) -> torch.Tensor:
    """Element-wise IoU of binary masks: [...]. Two empty masks score 1."""
    p = pred >= threshold
    t = target >= 0.5
    inter = (p & t).flatten(-2).sum(-1).float()
    union = (p | t).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def masks_to_layout(
    boxes: torch.Tensor,  # [B, O, 4] normalised xywh
    masks: torch.Tensor,  # [B, O, M, M] in box coordinates
    height: int,  # H of the output grid
    width: int | None = None,  # W (default: H)
) -> torch.Tensor:
    """Paste each object's mask into its box on an H x W grid: [B, O, H, W] (sg2im-style warp).

    Differentiable in both boxes and masks (bilinear `grid_sample`); zero outside each box.
    """
    width = width or height
    b, o, m, _ = masks.shape
    x, y, w, h = boxes.reshape(b * o, 4).unbind(-1)  # [N] each
    # Pixel centres of the output grid, in image coordinates (0..1).
    xs = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) / width  # [W]
    ys = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) / height  # [H]
    # Where each output pixel falls in its object's box, mapped to grid_sample's -1..1.
    gx = (xs[None, :] - x[:, None]) / w.clamp(min=1e-6)[:, None] * 2 - 1  # [N, W]
    gy = (ys[None, :] - y[:, None]) / h.clamp(min=1e-6)[:, None] * 2 - 1  # [N, H]
    grid = torch.stack([gx[:, None, :].expand(-1, height, -1),
                        gy[:, :, None].expand(-1, -1, width)], dim=-1)  # [N, H, W, 2]
    out = F.grid_sample(masks.reshape(b * o, 1, m, m).to(boxes.dtype), grid,
                        mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(b, o, height, width)
