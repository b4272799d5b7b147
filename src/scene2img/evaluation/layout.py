"""Layout metrics: IoU between predicted and ground-truth boxes, recall at IoU thresholds.

Boxes are matched by object position (the layout model predicts one box per input object, as in
sg2im). Recall at t is the fraction of objects whose predicted box has IoU >= t with its ground
truth (sg2im / LostGAN report t = 0.3 and 0.5).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

RECALL_THRESHOLDS = (0.3, 0.5)


def box_iou_xywh(
    a: Tensor,  # [..., 4] normalised (x, y, w, h)
    b: Tensor,  # [..., 4] same shape
) -> Tensor:
    """Elementwise IoU of matched boxes `[...]`; 0 where both boxes are empty.

    Example:
        >>> box_iou_xywh(torch.tensor([[0.0, 0.0, 0.5, 0.5]]), torch.tensor([[0.25, 0.0, 0.5, 0.5]]))
        tensor([0.3333])
    """
    if a.shape != b.shape or a.shape[-1] != 4:
        raise ValueError(f"expected matched boxes [..., 4], got {list(a.shape)} and {list(b.shape)}")
    ix = ((a[..., 0] + a[..., 2]).minimum(b[..., 0] + b[..., 2]) - a[..., 0].maximum(b[..., 0])).clamp(min=0)
    iy = ((a[..., 1] + a[..., 3]).minimum(b[..., 1] + b[..., 3]) - a[..., 1].maximum(b[..., 1])).clamp(min=0)
    inter = ix * iy
    union = a[..., 2].clamp(min=0) * a[..., 3].clamp(min=0) + b[..., 2].clamp(min=0) * b[..., 3].clamp(min=0) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


class LayoutMetrics(Metric):
    """Mean box IoU and recall at `thresholds` over all valid objects (summed across ranks).

    Example:
        >>> m = LayoutMetrics()
        >>> gt = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]])
        >>> pred = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.1, 0.1]]])
        >>> {k: round(float(v), 3) for k, v in m(pred, gt, torch.tensor([[True, True]])).items()}
        {'iou': 0.5, 'recall0.3': 0.5, 'recall0.5': 0.5}
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, thresholds: tuple[float, ...] = RECALL_THRESHOLDS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.add_state("iou_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("hits", torch.zeros(len(self.thresholds), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: Tensor, gt: Tensor, valid: Tensor) -> None:  # [B, O, 4] x2, [B, O] bool
        iou = box_iou_xywh(pred.float(), gt.float())[valid]
        self.iou_sum += iou.double().sum()
        self.hits += torch.stack([(iou >= t).sum() for t in self.thresholds])
        self.count += iou.numel()

    def compute(self) -> dict[str, Tensor]:
        n = self.count.clamp(min=1)
        out = {"iou": self.iou_sum / n}
        for t, h in zip(self.thresholds, self.hits, strict=True):
            out[f"recall{t:g}"] = h.double() / n
        return out
