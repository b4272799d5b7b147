"""Layout metrics (sg2im's box IoU, R@0.3, R@0.5, mask IoU) against a reference loop, and the
class-mean-box baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scene2img.data.dataset import SceneGraphDataset
from scene2img.evaluation.layout_metrics import (
    LayoutMetrics,
    class_mean_baseline,
    class_mean_boxes,
)


def test_layout_metrics_match_a_reference_loop():
    gen = torch.Generator().manual_seed(0)
    pred, gt = torch.rand(4, 5, 4, generator=gen) * 0.6, torch.rand(4, 5, 4, generator=gen) * 0.6
    pred[0, :2] = gt[0, :2]  # some exact hits
    objects = torch.randint(0, 3, (4, 5), generator=gen)
    valid = torch.rand(4, 5, generator=gen) > 0.2
    masks_p, masks_t = torch.rand(4, 5, 3, 3, generator=gen), torch.rand(4, 5, 3, 3, generator=gen)
    has = torch.tensor([True, False, True, False])

    ious, mious = [], []
    for b in range(4):
        for o in range(5):
            if not valid[b, o] or objects[b, o] == 0:
                continue
            (x0, y0, w0, h0), (x1, y1, w1, h1) = pred[b, o].tolist(), gt[b, o].tolist()
            iw = max(0.0, min(x0 + w0, x1 + w1) - max(x0, x1))
            ih = max(0.0, min(y0 + h0, y1 + h1) - max(y0, y1))
            ious.append(iw * ih / (w0 * h0 + w1 * h1 - iw * ih))
            if has[b]:
                p, t = masks_p[b, o] >= 0.5, masks_t[b, o] >= 0.5
                mious.append(((p & t).sum() / (p | t).sum()).item() if (p | t).any() else 1.0)
    metric = LayoutMetrics()
    metric.update(pred[:2], gt[:2], objects[:2], valid[:2], masks_p[:2], masks_t[:2], has[:2])
    metric.update(pred[2:], gt[2:], objects[2:], valid[2:], masks_p[2:], masks_t[2:], has[2:])
    out = metric.compute()
    assert out["box_iou"].item() == pytest.approx(np.mean(ious), abs=1e-5)
    assert out["recall_at_0.5"].item() == pytest.approx(np.mean(np.array(ious) >= 0.5), abs=1e-6)
    assert out["recall_at_0.3"].item() == pytest.approx(np.mean(np.array(ious) >= 0.3), abs=1e-6)
    assert out["mask_iou"].item() == pytest.approx(np.mean(mious), abs=1e-5)
    metric.reset()
    metric.update(gt, gt, objects, valid)
    out = metric.compute()
    assert out["recall_at_0.5"].item() == 1.0 and "mask_iou" not in out


def test_class_mean_baseline(toy_vg):
    train = SceneGraphDataset(toy_vg, "train", 16)
    means = class_mean_boxes(train)
    assert means.shape == (train.vocab.num_objects, 4)
    assert torch.allclose(means[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))  # __image__
    baseline = class_mean_baseline(means, SceneGraphDataset(toy_vg, "val", 16))
    scores = {k: float(v) for k, v in baseline.compute().items()}
    assert set(scores) == {"box_iou", "recall_at_0.3", "recall_at_0.5"}
    assert 0.0 < scores["recall_at_0.5"] < 1.0
