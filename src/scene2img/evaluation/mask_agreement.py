"""Are the image generator's regressed masks the objects' shapes? A check on data with masks.

LostGAN learns its masks without mask supervision, only through the image losses. On a dataset
with ground-truth masks (COCO-Stuff, ADE20K, their toy worlds) each real object's regressed mask
(M x M in box coordinates, thresholded at 0.5) is compared with the data's mask by IoU, beside
the IoU a box-filling mask (all ones: "the object is its box") gets:

    mask_iou          mean IoU of the regressed masks with the ground truth
    box_iou           mean IoU of the box-filling mask with the ground truth (the baseline)
    per_class         the same two, and the object count, per class index

A mask regressor that learned nothing useful sits at or below the baseline (a mask that is high
everywhere *is* the box); one that learned the shapes is above it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from scene2img.models.boxes import mask_iou, real_objects

__all__ = ["regressed_mask_iou"]


@torch.no_grad()
def regressed_mask_iou(
    dataset: Dataset,  # a SceneGraphDataset split with masks (items as in scene2img.data.dataset)
    generator: nn.Module,  # LostGAN or CRN generator (has `style` and `mask_regress`), eval mode
    batch_size: int = 16,
    seed: int = 0,  # object latents
    threshold: float = 0.5,  # a regressed pixel is "in" at or above this
) -> dict:
    """Mean IoU of the generator's regressed masks and of box-filling masks with the data's masks,
    over the real objects of images that have masks.

    Example:
        >>> from scene2img.models.generator import LostGANGenerator
        >>> G = LostGANGenerator(4, 0, 64, ch=1, z_img=4, z_obj=4, class_dim=4, mask_width=4)
        >>> item = {"objects": torch.tensor([1, 0]), "attributes": torch.zeros(2, 0),
        ...         "obj_valid": torch.tensor([True, True]), "masks": torch.ones(2, 16, 16),
        ...         "has_masks": torch.tensor(True)}
        >>> regressed_mask_iou([item], G.eval())["box_iou"]  # the mask is the whole box
        1.0
    """
    rng = torch.Generator().manual_seed(seed)
    sums: dict[int, list[float]] = {}  # class -> [mask IoU sum, box IoU sum, count]
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        keep = real_objects(batch["objects"], batch["obj_valid"]) & batch["has_masks"][:, None]
        if not keep.any():
            continue
        b, o = batch["objects"].shape
        _, z_obj = generator.sample_latents(b, o, rng, device="cpu")
        style = generator.style(batch["objects"], batch["attributes"], z_obj)  # [B, O, D]
        pred = generator.mask_regress(style, keep)  # [B, O, M, M]
        target = batch["masks"].float()
        if target.shape[-1] != pred.shape[-1]:
            target = nn.functional.interpolate(target, size=pred.shape[-2:], mode="nearest")
        ious = mask_iou(pred, target, threshold)[keep]  # [N]
        boxes = mask_iou(torch.ones_like(target), target)[keep]
        for c, a, b_ in zip(batch["objects"][keep].tolist(), ious.tolist(), boxes.tolist(),
                            strict=True):
            row = sums.setdefault(c, [0.0, 0.0, 0])
            row[0] += a
            row[1] += b_
            row[2] += 1
    count = sum(int(r[2]) for r in sums.values())
    if not count:
        raise ValueError("no objects with ground-truth masks in this dataset (Visual Genome has "
                         "none); measure on COCO-Stuff or ADE20K data")
    return {"mask_iou": sum(r[0] for r in sums.values()) / count,
            "box_iou": sum(r[1] for r in sums.values()) / count, "objects": count,
            "per_class": {c: {"mask_iou": r[0] / r[2], "box_iou": r[1] / r[2], "objects": int(r[2])}
                          for c, r in sorted(sums.items())}}
