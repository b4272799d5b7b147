"""Class colours for drawing layouts and label maps (training grids, served backgrounds)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def class_colours(num_classes: int) -> torch.Tensor:
    """A fixed colour per class, [K, 3] in [-1, 1] (golden-ratio hues)."""
    hues = (np.arange(num_classes) * 0.618034) % 1.0
    rgb = np.stack([np.abs(hues * 6 - 3) - 1, 2 - np.abs(hues * 6 - 2), 2 - np.abs(hues * 6 - 4)],
                   axis=1).clip(0, 1)
    return torch.from_numpy(rgb * 1.6 - 0.8).float()


def label_colours(labels: torch.Tensor, num_classes: int, size: int) -> torch.Tensor:
    """Label maps [B, s, s] (class indices; 0 = unlabeled, grey) -> [B, 3, size, size] in
    [-1, 1], class colours resized with nearest neighbour."""
    colours = class_colours(num_classes)
    colours[0] = 0.0
    painted = colours[labels.long().cpu()].permute(0, 3, 1, 2)  # [B, 3, s, s]
    return F.interpolate(painted, size=(size, size), mode="nearest")
