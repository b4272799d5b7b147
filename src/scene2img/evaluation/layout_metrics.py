"""Layout metrics (as sg2im reports them) and the class-mean-box baseline.

Protocol: every valid object except `__image__` (whose box is the whole image) counts once.
`box_iou` is the mean IoU of predicted against ground-truth boxes, `recall_at_0.3` /
`recall_at_0.5` (sg2im's R@0.3 / R@0.5; MLflow names allow no "@") the fraction of objects whose
IoU reaches 0.3 / 0.5, and `mask_iou` the mean IoU of the predicted
mask (thresholded at 0.5) against the ground-truth mask, both in box coordinates, on images whose
source has masks.

Example:
    >>> import torch
    >>> m = LayoutMetrics()
    >>> boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]]])
    >>> m.update(boxes, boxes, torch.tensor([[3, 0]]), torch.tensor([[True, True]]))
    >>> {k: round(float(v), 3) for k, v in m.compute().items()}
    {'box_iou': 1.0, 'recall_at_0.3': 1.0, 'recall_at_0.5': 1.0}
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric

from scene2img.data.dataset import SceneGraphDataset
from scene2img.models.boxes import box_iou, mask_iou, real_objects

__all__ = ["RECALL_THRESHOLDS", "LayoutMetrics", "class_mean_baseline", "class_mean_boxes",
           "recall_by_class"]

RECALL_THRESHOLDS = (0.3, 0.5)


class LayoutMetrics(Metric):
    """Mean box IoU, recall at IoU 0.3 / 0.5 and mask IoU, summed over batches (and DDP ranks).

    With `num_classes`, it also counts objects and IoU >= 0.5 hits per class (`by_class`).
    """

    full_state_update = False

    def __init__(self, num_classes: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        if num_classes:
            self.add_state("class_boxes", torch.zeros(num_classes, dtype=torch.long),
                           dist_reduce_fx="sum")
            self.add_state("class_hits", torch.zeros(num_classes, dtype=torch.long),
                           dist_reduce_fx="sum")
        self.add_state("iou_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("boxes", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("hits", torch.zeros(len(RECALL_THRESHOLDS), dtype=torch.long),
                       dist_reduce_fx="sum")
        self.add_state("mask_iou_sum", torch.tensor(0.0, dtype=torch.float64),
                       dist_reduce_fx="sum")
        self.add_state("masks", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self,
        pred_boxes: torch.Tensor,  # [B, O, 4] xywh
        gt_boxes: torch.Tensor,  # [B, O, 4] xywh
        objects: torch.Tensor,  # [B, O] class indices
        obj_valid: torch.Tensor,  # [B, O] bool
        pred_masks: torch.Tensor | None = None,  # [B, O, M, M] probabilities
        gt_masks: torch.Tensor | None = None,  # [B, O, M, M] {0, 1}
        has_masks: torch.Tensor | None = None,  # [B] bool
    ) -> None:
        keep = real_objects(objects, obj_valid)
        iou = box_iou(pred_boxes.float(), gt_boxes.float())[keep]  # [N]
        self.iou_sum += iou.double().sum()
        self.boxes += iou.numel()
        self.hits += torch.stack([(iou >= t).sum() for t in RECALL_THRESHOLDS])
        if self.num_classes:
            classes = objects[keep]  # [N]
            self.class_boxes += torch.bincount(classes, minlength=self.num_classes)
            self.class_hits += torch.bincount(classes[iou >= 0.5], minlength=self.num_classes)
        if pred_masks is not None and gt_masks is not None and has_masks is not None:
            keep_m = keep & has_masks[:, None]
            miou = mask_iou(pred_masks, gt_masks)[keep_m]
            self.mask_iou_sum += miou.double().sum()
            self.masks += miou.numel()

    def compute(self) -> dict[str, torch.Tensor]:
        n = self.boxes.clamp(min=1).double()
        out = {"box_iou": (self.iou_sum / n).float()}
        for t, hits in zip(RECALL_THRESHOLDS, self.hits, strict=True):
            out[f"recall_at_{t}"] = (hits.double() / n).float()
        if self.masks > 0:
            out["mask_iou"] = (self.mask_iou_sum / self.masks.double()).float()
        return out

    def by_class(self) -> dict[int, tuple[int, float]]:
        """Class index -> (objects scored, recall at IoU 0.5), over all ranks; classes seen only."""
        if not self.num_classes:
            raise ValueError("LayoutMetrics(num_classes=...) is needed for by_class()")
        with self.sync_context():
            boxes, hits = self.class_boxes.tolist(), self.class_hits.tolist()
        return {c: (n, h / n) for c, (n, h) in enumerate(zip(boxes, hits, strict=True)) if n}


def class_mean_boxes(dataset: SceneGraphDataset) -> torch.Tensor:
    """[C, 4]: each class's mean box over a split (no flips); classes never seen: the mean box."""
    n = dataset.vocab.num_objects
    sums, counts = np.zeros((n, 4)), np.zeros(n)
    for i in range(len(dataset)):
        rec = dataset.reader[i]  # annotations only: the image is decoded lazily, never here
        np.add.at(sums, rec.objects, rec.boxes)
        np.add.at(counts, rec.objects, 1)
    overall = sums.sum(0) / max(counts.sum(), 1)
    means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], overall)
    return torch.from_numpy(means).float()


def class_mean_baseline(means: torch.Tensor, dataset: SceneGraphDataset) -> LayoutMetrics:
    """The layout metrics (with `by_class`) of the baseline that predicts each object's
    class-mean box, over a split."""
    metric = LayoutMetrics(num_classes=means.shape[0])
    for i in range(len(dataset)):
        rec = dataset.reader[i]
        objects = torch.from_numpy(rec.objects)[None]  # [1, O]
        gt = torch.from_numpy(rec.boxes)[None]  # [1, O, 4]
        metric.update(means[objects], gt, objects, torch.ones_like(objects, dtype=torch.bool))
    return metric


def recall_by_class(
    model: dict[int, tuple[int, float]],  # `LayoutMetrics.by_class()` of the model on a split
    baseline: dict[int, tuple[int, float]],  # ... of `class_mean_baseline` on the same split
    names: list[str | None],  # vocab.object_idx_to_name
) -> dict[str, dict[str, float]]:
    """Per class, most frequent first: objects scored, the model's and the baseline's R@0.5.

    It shows where the graph helps and where it cannot (objects a graph does not place);
    weighted by `objects`, it gives the overall recall."""
    order = sorted(model, key=lambda c: (-model[c][0], c))
    return {str(names[c]): {"objects": model[c][0], "model": model[c][1],
                            "baseline": baseline.get(c, (0, 0.0))[1]} for c in order}
