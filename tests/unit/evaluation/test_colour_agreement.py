"""The toy-world colour check: a generator that paints each box in its colour scores 1."""

from __future__ import annotations

import torch
from torch import nn

from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.toyworld import PALETTE
from scene2img.evaluation.colour_agreement import colour_agreement
from scene2img.models.generator import box_masks


class _Painter(nn.Module):
    """Paints each object's box in the palette colour of its colour attribute."""

    def __init__(self, vocab) -> None:
        super().__init__()
        names = [n for n in PALETTE if n in vocab.attribute_name_to_idx]
        self.idx = torch.tensor([vocab.attribute_name_to_idx[n] for n in names])
        self.rgb = torch.tensor([PALETTE[n] for n in names], dtype=torch.float32) / 127.5 - 1

    def sample_latents(self, b, o, generator=None, device=None):
        return torch.zeros(b, 1), torch.zeros(b, o, 1)

    def forward(self, objects, boxes, obj_valid, attributes, z_img, z_obj):
        colours = attributes[..., self.idx]  # [B, O, C]
        rgb = colours @ self.rgb / colours.sum(-1, keepdim=True).clamp(min=1)  # [B, O, 3]
        masks = box_masks(boxes, 64) * (colours.sum(-1) == 1)[..., None, None]
        image = torch.zeros(len(objects), 3, 64, 64)
        for j in range(objects.shape[1]):  # later objects on top, like the toy world
            m = masks[:, j:j + 1]
            image = image * (1 - m) + rgb[:, j, :, None, None] * m
        return image


def test_painter_scores_one_and_real_images_score_between(toy_vg):
    dataset = SceneGraphDataset(toy_vg, "train", max_objects=16)
    real = colour_agreement(dataset, dataset.vocab)
    assert real["objects"] > 0 and 0 < real["colour_accuracy"] <= 1
    painted = colour_agreement(dataset, dataset.vocab, _Painter(dataset.vocab))
    assert painted["colour_accuracy"] > 0.9
