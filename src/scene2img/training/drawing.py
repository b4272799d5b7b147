"""Layout drawings for reviewers: predicted layout beside the ground truth, boxes and labels."""

from __future__ import annotations

import colorsys

import numpy as np
import torch
from PIL import Image, ImageDraw

from scene2img.models.boxes import masks_to_layout, real_objects

__all__ = ["draw_layout", "draw_layout_pairs"]


def _colour(idx: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((idx * 0.618034) % 1.0, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_layout(
    objects: torch.Tensor,  # [O] class indices
    boxes: torch.Tensor,  # [O, 4] normalised xywh
    valid: torch.Tensor,  # [O] bool
    names: list[str | None],  # object_idx_to_name
    masks: torch.Tensor | None = None,  # [O, M, M] in [0, 1], pasted as tints when given
    size: int = 192,  # pixels per side
) -> Image.Image:
    """One layout as an RGB image: masks as tints (optional), then boxes with class names."""
    canvas = np.full((size, size, 3), 255.0)
    keep = real_objects(objects, valid)  # __image__ is the whole canvas
    if masks is not None and keep.any():
        pasted = masks_to_layout(boxes[keep][None].float(), masks[keep][None].float(),
                                 size)[0].clamp(0, 1)  # [N, S, S]
        for obj, alpha in zip(objects[keep].tolist(), pasted.numpy(), strict=True):
            a = 0.45 * alpha[..., None]
            canvas = canvas * (1 - a) + np.array(_colour(obj)) * a
    img = Image.fromarray(canvas.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for obj, box in zip(objects[keep].tolist(), boxes[keep].tolist(), strict=True):
        x, y, w, h = (v * (size - 1) for v in box)
        draw.rectangle([x, y, x + max(w, 1), y + max(h, 1)], outline=_colour(obj), width=2)
        name = names[obj] if 0 <= obj < len(names) and names[obj] else str(obj)
        draw.text((x + 3, y + 2), name, fill=_colour(obj))
    return img


def draw_layout_pairs(
    objects: torch.Tensor,  # [B, O]
    pred_boxes: torch.Tensor,  # [B, O, 4]
    gt_boxes: torch.Tensor,  # [B, O, 4]
    valid: torch.Tensor,  # [B, O]
    names: list[str | None],
    pred_masks: torch.Tensor | None = None,  # [B, O, M, M]
    gt_masks: torch.Tensor | None = None,  # [B, O, M, M] (only drawn where has_masks)
    has_masks: torch.Tensor | None = None,  # [B]
    size: int = 192,
) -> np.ndarray:
    """A grid, one row per scene: predicted (left) beside ground truth (right). [H, W, 3] uint8."""
    rows = []
    gap = np.full((size, 6, 3), 40, dtype=np.uint8)
    for i in range(objects.shape[0]):
        with_masks = bool(has_masks[i]) if has_masks is not None else False
        pred = draw_layout(objects[i], pred_boxes[i], valid[i], names,
                           pred_masks[i] if with_masks and pred_masks is not None else None, size)
        gt = draw_layout(objects[i], gt_boxes[i], valid[i], names,
                         gt_masks[i] if with_masks and gt_masks is not None else None, size)
        rows.append(np.concatenate([np.asarray(pred), gap, np.asarray(gt)], axis=1))
        rows.append(np.full((6, rows[-1].shape[1], 3), 40, dtype=np.uint8))
    return np.concatenate(rows[:-1], axis=0)
