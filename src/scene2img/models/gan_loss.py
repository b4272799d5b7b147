"""The GAN step for layout-to-image models: hinge losses, the D-then-G update, and the EMA.

The loss class owns the step (stylegan2-ada's `accumulate_gradients(phase, ...)` idea); the
training loop only supplies optimisers and a `backward` (Lightning's `manual_backward`).

One generator forward per iteration serves both phases, as LostGAN's train.py does: the D phase
scores it detached, the G phase scores it again through the updated D. In the G phase D's
parameters are frozen, so the backward pass skips D's weight gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from scene2img.models.generator import real_objects


def hinge_real(score: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - score.float()).mean() if score.numel() else score.sum().float()


def hinge_fake(score: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 + score.float()).mean() if score.numel() else score.sum().float()


def mean_score(score: torch.Tensor) -> torch.Tensor:
    return score.float().mean() if score.numel() else score.sum().float()


def mismatched_attributes(batch: dict[str, torch.Tensor],
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """The attributes of real objects shuffled among them (matching-aware negatives): [B, O, A].

    Objects without attributes keep none; a shuffle that lands an object on its own attributes is
    left as it is (rare for real vocabularies)."""
    attrs = batch["attributes"]
    keep = real_objects(batch["objects"], batch["obj_valid"]) & (attrs.sum(-1) > 0)  # [B, O]
    flat = attrs[keep]  # [N, A]
    perm = torch.randperm(len(flat), generator=generator).to(flat.device)
    out = attrs.clone()
    out[keep] = flat[perm]
    return out


def _has_attributes(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """[N] bool over the real objects (D's object order): the ones with at least one attribute."""
    return batch["attributes"][real_objects(batch["objects"], batch["obj_valid"])].sum(1) > 0


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model for parameters; buffers are copied."""
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


class LayoutGANLoss:
    """Hinge losses on image, object and attribute scores (LostGAN / AttrLostGAN weights)."""

    def __init__(
        self,
        G: nn.Module,  # generator: forward(objects, boxes, obj_valid, attributes, z_img, z_obj, masks)
        D: nn.Module,  # discriminator: forward(images, objects, boxes, obj_valid, attributes, ...)
        w_image: float = 0.1,  # LostGAN lamb_img
        w_object: float = 1.0,  # LostGAN lamb_obj
        w_attribute: float = 1.0,  # AttrLostGAN attribute term
        matching_aware: bool = False,  # real images with shuffled attributes count as fake for D
        gt_masks: bool = True,  # feed the data's masks to G where the dataset has them
        backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    ) -> None:
        self.G, self.D = G, D
        self.w_image, self.w_object, self.w_attribute = w_image, w_object, w_attribute
        self.matching_aware, self.gt_masks = matching_aware, gt_masks
        self.backward = backward

    def generate(self, batch: dict[str, torch.Tensor], z_img: torch.Tensor,
                 z_obj: torch.Tensor, G: nn.Module | None = None) -> torch.Tensor:
        masks = batch["masks"] if self.gt_masks and bool(batch["has_masks"].all()) else None
        return (G or self.G)(batch["objects"], batch["boxes"], batch["obj_valid"],
                             batch["attributes"], z_img, z_obj, masks)

    def _scores(self, images, batch):
        return self.D(images, batch["objects"], batch["boxes"], batch["obj_valid"],
                      batch["attributes"])

    def d_loss(self, batch: dict[str, torch.Tensor], fake: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        # Real and fake go through D as one batch of 2B: one pass over D's weights.
        keys = ("objects", "boxes", "obj_valid", "attributes")
        both = {k: torch.cat([batch[k], batch[k]]) for k in keys}
        mismatched = None
        if self.matching_aware:
            mismatched = torch.cat([mismatched_attributes(batch, generator), batch["attributes"]])
        images = torch.cat([batch["image"].to(fake.dtype), fake.detach()])
        scores = self.D(images, both["objects"], both["boxes"], both["obj_valid"],
                        both["attributes"], mismatched)
        b = len(fake)
        n = int(real_objects(batch["objects"], batch["obj_valid"]).sum())  # real objects per half
        real = {k: v[:b] if k == "image" else v[:n] for k, v in scores.items() if v is not None}
        fake = {k: v[b:] if k == "image" else v[n:] for k, v in scores.items() if v is not None}
        stats = {
            "d_image": hinge_real(real["image"]) + hinge_fake(fake["image"]),
            "d_object": hinge_real(real["object"]) + hinge_fake(fake["object"]),
        }
        loss = self.w_image * stats["d_image"] + self.w_object * stats["d_object"]
        if "attribute" in real:
            has = _has_attributes(batch)
            d_attr = hinge_real(real["attribute"][has]) + hinge_fake(fake["attribute"][has])
            if mismatched is not None:
                d_attr = d_attr + hinge_fake(real["mismatched"][has])
            stats["d_attribute"] = d_attr
            loss = loss + self.w_attribute * d_attr
        stats["d_loss"] = loss
        stats["d_real_image"] = mean_score(real["image"])
        stats["d_fake_image"] = mean_score(fake["image"])
        return loss, stats

    def g_loss(self, batch: dict[str, torch.Tensor], fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        scores = self._scores(fake, batch)
        stats = {"g_image": -mean_score(scores["image"]), "g_object": -mean_score(scores["object"])}
        loss = self.w_image * stats["g_image"] + self.w_object * stats["g_object"]
        if scores["attribute"] is not None:
            has = _has_attributes(batch)
            stats["g_attribute"] = -mean_score(scores["attribute"][has])
            loss = loss + self.w_attribute * stats["g_attribute"]
        stats["g_loss"] = loss
        return loss, stats

    def accumulate_gradients(self, phase: str, batch: dict[str, torch.Tensor], fake: torch.Tensor,
                             generator: torch.Generator | None = None) -> dict:
        """phase "D": D's hinge loss on real vs detached fake; "G": G's loss through a frozen D."""
        if phase == "D":
            loss, stats = self.d_loss(batch, fake, generator)
            self.backward(loss)
        elif phase == "G":
            self.D.requires_grad_(False)
            try:
                loss, stats = self.g_loss(batch, fake)
                self.backward(loss)
            finally:
                self.D.requires_grad_(True)
        else:
            raise ValueError(f"phase must be 'D' or 'G', got {phase!r}")
        return {k: v.detach() for k, v in stats.items()}

    def step(
        self,
        batch: dict[str, torch.Tensor],
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        generator: torch.Generator | None = None,  # latents and shuffles (reproducible runs)
    ) -> dict:
        """One iteration: G forward once, D update, then G update. Returns detached stats."""
        b, o = batch["objects"].shape
        z_img, z_obj = self.G.sample_latents(b, o, generator, device="cpu")
        device = batch["image"].device
        fake = self.generate(batch, z_img.to(device), z_obj.to(device))
        opt_d.zero_grad(set_to_none=True)
        stats = self.accumulate_gradients("D", batch, fake, generator)
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        stats.update(self.accumulate_gradients("G", batch, fake))
        opt_g.step()
        return stats
