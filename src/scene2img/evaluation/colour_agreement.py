"""Toy-world check of attribute conditioning: is each object painted in the colour it asked for?

The toy world paints every drawn object in the colour its attribute names (`toyworld.PALETTE`).
For each real object with exactly one colour attribute, the mean colour of the centre of its box
(the middle half on each side, away from the background) is compared with the asked colour:

    colour_accuracy       fraction whose mean colour is nearest (RGB) to the asked palette colour
    colour_distance       mean RGB distance (0-255 scale) between the mean and the asked colour

The same figures on the real images give the ceiling (occlusion and shading keep it below 1).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from scene2img.data.toyworld import PALETTE
from scene2img.data.vocab import Vocab
from scene2img.models.boxes import real_objects

__all__ = ["box_centre_means", "colour_agreement"]


def _box_centre_means(images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """[B, 3, S, S] in [-1, 1], boxes [B, O, 4] -> mean RGB (0-255) of each box centre [B, O, 3]."""
    b, _, s, _ = images.shape
    centres = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    x, y, w, h = boxes.float().unbind(-1)
    in_x = (centres >= (x + w / 4)[..., None]) & (centres <= (x + 3 * w / 4)[..., None])
    in_y = (centres >= (y + h / 4)[..., None]) & (centres <= (y + 3 * h / 4)[..., None])
    region = (in_y[..., :, None] & in_x[..., None, :]).float()  # [B, O, S, S]
    pixels = (images.float().clamp(-1, 1) + 1) * 127.5  # [B, 3, S, S]
    total = torch.einsum("bost,bcst->boc", region, pixels)
    return total / region.sum((-2, -1))[..., None].clamp(min=1.0)


def box_centre_means(images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Mean RGB (0-255) of the centre of each box: images [B, 3, S, S] in [-1, 1], boxes
    [B, O, 4] normalised x, y, w, h -> [B, O, 3] (the colour measured by `colour_agreement`)."""
    return _box_centre_means(images, boxes)


@torch.no_grad()
def colour_agreement(
    dataset: Dataset,  # a SceneGraphDataset split (items as in scene2img.data.dataset)
    vocab: Vocab,
    generator: nn.Module | None = None,  # None: score the real images (the ceiling)
    batch_size: int = 16,
    seed: int = 0,  # latents
) -> dict[str, float]:
    """Colour accuracy and distance over the objects with exactly one colour attribute."""
    names = [n for n in PALETTE if n in vocab.attribute_name_to_idx]
    if not names:
        raise ValueError("the vocabulary has no toy-world colour attributes")
    colour_idx = torch.tensor([vocab.attribute_name_to_idx[n] for n in names])
    palette = torch.tensor([PALETTE[n] for n in names], dtype=torch.float32)  # [C, 3]
    rng = torch.Generator().manual_seed(seed)
    hits, dist, count = 0, 0.0, 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        if generator is None:
            images = batch["image"]
        else:
            b, o = batch["objects"].shape
            z_img, z_obj = generator.sample_latents(b, o, rng, device="cpu")
            images = generator(batch["objects"], batch["boxes"], batch["obj_valid"],
                               batch["attributes"], z_img, z_obj)
        means = _box_centre_means(images, batch["boxes"])  # [B, O, 3]
        colours = batch["attributes"][..., colour_idx]  # [B, O, C]
        keep = real_objects(batch["objects"], batch["obj_valid"]) & (colours.sum(-1) == 1)
        asked = colours[keep].argmax(-1)  # [N]
        got = means[keep]  # [N, 3]
        nearest = torch.cdist(got, palette).argmin(-1)
        hits += int((nearest == asked).sum())
        dist += float((got - palette[asked]).norm(dim=-1).sum())
        count += int(keep.sum())
    return {"colour_accuracy": hits / max(count, 1), "colour_distance": dist / max(count, 1),
            "objects": count}
