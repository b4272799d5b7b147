"""Image conversion for evaluation: [-1, 1] floats to uint8, resizing, and object crops.

Every metric sees images the way they would be saved to disk: generated images in [-1, 1] are
clamped, scaled to [0, 255] and *rounded* (not truncated) to uint8. Truncation (`.byte()` on
`x * 255`) would shift every pixel down by half a level on average, a bias that FID notices.

Rounding is round-half-to-even (`torch.round`), so 0.0 maps to 127.5 -> 128; the dataset's own
mapping `v / 127.5 - 1` is inverted exactly for every uint8 value `v`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Resize modes the protocol may name, all taken by `torch.nn.functional.interpolate`.
RESIZE_MODES = ("bilinear", "bicubic", "nearest", "area")


def to_uint8(
    images: Tensor,  # [N, 3, H, W] float, nominally in [-1, 1]; values beyond are clamped
) -> Tensor:
    """[-1, 1] floats -> uint8 [0, 255]: clamp, scale by 127.5, round half to even.

    Example:
        >>> to_uint8(torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0])).tolist()
        [0, 0, 128, 255, 255]
    """
    if images.is_floating_point():
        return ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    raise TypeError(f"to_uint8 expects a float tensor in [-1, 1], got dtype {images.dtype}")


def to_unit_range(
    images: Tensor,  # [N, 3, H, W] uint8
) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1], the dataset's mapping (`v / 127.5 - 1`).

    Example:
        >>> to_unit_range(torch.tensor([0, 255], dtype=torch.uint8)).tolist()
        [-1.0, 1.0]
    """
    return images.float() / 127.5 - 1.0


def resize_uint8(
    images: Tensor,  # [N, 3, H, W] uint8
    size: int,  # output side, pixels
    mode: str = "bilinear",  # one of RESIZE_MODES
    antialias: bool = True,  # low-pass when downsampling (bilinear and bicubic only)
) -> Tensor:
    """Resize uint8 images to `size` x `size`, computing in float and rounding back to uint8.

    Images already at `size` are returned unchanged.

    Example:
        >>> x = torch.full((1, 3, 8, 8), 200, dtype=torch.uint8)
        >>> resize_uint8(x, 4).shape, int(resize_uint8(x, 4).max())
        (torch.Size([1, 3, 4, 4]), 200)
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise TypeError(f"expected uint8 [N, 3, H, W] images, got {images.dtype} {list(images.shape)}")
    if images.shape[-2:] == (size, size):
        return images
    kwargs = {"antialias": antialias} if mode in ("bilinear", "bicubic") else {}
    if mode in ("bilinear", "bicubic"):
        kwargs["align_corners"] = False
    out = F.interpolate(images.float(), size=(size, size), mode=mode, **kwargs)
    return out.round().clamp(0, 255).to(torch.uint8)


def pixel_boxes(
    boxes: Tensor,  # [K, 4] normalised (x, y, w, h)
    height: int,
    width: int,
) -> Tensor:
    """Normalised (x, y, w, h) -> integer pixel (x0, y0, x1, y1), end exclusive, at least 1 px.

    Edges are rounded to the nearest pixel boundary and clipped to the image.

    Example:
        >>> pixel_boxes(torch.tensor([[0.25, 0.5, 0.5, 0.25]]), 8, 8).tolist()
        [[2, 4, 6, 6]]
    """
    x0 = (boxes[:, 0] * width).round().long().clamp(0, width - 1)
    y0 = (boxes[:, 1] * height).round().long().clamp(0, height - 1)
    x1 = ((boxes[:, 0] + boxes[:, 2]) * width).round().long().clamp(max=width)
    y1 = ((boxes[:, 1] + boxes[:, 3]) * height).round().long().clamp(max=height)
    x1 = torch.maximum(x1, x0 + 1)
    y1 = torch.maximum(y1, y0 + 1)
    return torch.stack([x0, y0, x1, y1], dim=1)


def crop_objects(
    images: Tensor,  # [N, 3, H, W] uint8
    boxes: Tensor,  # [N, O, 4] normalised (x, y, w, h)
    keep: Tensor,  # [N, O] bool: which objects to crop (e.g. valid and not __image__)
    size: int,  # crops are resized to size x size
    mode: str = "bilinear",
    antialias: bool = True,
) -> tuple[Tensor, Tensor]:
    """Crop every kept object's box out of its image and resize it: SceneFID's crops.

    Returns `(crops [K, 3, size, size] uint8, index [K, 2] long)` where `index[k] = (n, o)` says
    which image and object position crop `k` came from (row-major order over `keep`).

    Example:
        >>> img = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
        >>> img[:, :, 4:6, 2:6] = 255
        >>> crops, index = crop_objects(img, torch.tensor([[[0.25, 0.5, 0.5, 0.25]]]),
        ...                             torch.tensor([[True]]), size=4)
        >>> int(crops.min()), index.tolist()
        (255, [[0, 0]])
    """
    n, _, h, w = images.shape
    if boxes.shape[:2] != keep.shape or boxes.shape[0] != n:
        raise ValueError(f"boxes {list(boxes.shape)} and keep {list(keep.shape)} do not match "
                         f"{n} images")
    index = keep.nonzero()  # [K, 2]
    if len(index) == 0:
        return images.new_zeros((0, 3, size, size)), index
    px = pixel_boxes(boxes[index[:, 0], index[:, 1]].float(), h, w).tolist()
    crops = [
        resize_uint8(images[i : i + 1, :, y0:y1, x0:x1], size, mode, antialias)
        for i, (x0, y0, x1, y1) in zip(index[:, 0].tolist(), px, strict=True)
    ]
    return torch.cat(crops), index
