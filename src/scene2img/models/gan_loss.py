"""The GAN step for layout-to-image models: hinge losses, the D-then-G update, and the EMA.

The losses are LostGAN-v2's (`train.py` of LostGANs and AttrLostGAN), with their weights:

    D   w_object * hinge(object) + w_image * hinge(image) [+ w_attribute * hinge(attribute)]
    G   -w_object * D_object - w_image * D_image [- w_attribute * D_attribute]
        + w_l1 * |fake - real| + w_vgg * VGG-19 perceptual (`models.perceptual`)

AttrLostGAN's attribute term scores every real object, those without attributes included (their
score is the unconditional part plus the embedding's bias). Matching-aware negatives (real images
with shuffled attributes count as fake, only objects that have attributes) are ours, off by default.

The loss class owns the step (stylegan2-ada's `accumulate_gradients(phase, ...)` idea); the
training loop only supplies optimisers and a `backward` (Lightning's `manual_backward`).

One generator forward per iteration serves both phases, as LostGAN's train.py does: the D phase
scores it detached, the G phase scores it again through the updated D. In the G phase D's
parameters are frozen, so the backward pass skips D's weight gradients.

The multi-scale PatchGAN losses (SPADE / BachGAN; `models.patchgan` gives, per scale, the list
of a PatchGAN's layer outputs, the last its score map) are plain functions:

    d_adversarial     hinge: per scale mean relu(1 - D(real)) + mean relu(1 + D(fake)), averaged
                      over scales (SPADE's `GANLoss`); wgan-gp: mean D(fake) - mean D(real), the
                      same way, plus `gp_weight * gradient_penalty` (the caller's)
    g_adversarial     -mean D(fake), averaged over scales (both losses)
    gradient_penalty  WGAN-GP (Gulrajani et al. 2017): mean over the batch of
                      (||grad_x critic(x)||_2 - 1)^2 at x = e real + (1 - e) fake, e ~ U[0, 1]
                      per sample; the critic value of a sample is its scores' mean over patches
                      and scales (`critic_value`), as the loss reads them
    feature_matching  pix2pixHD's: per scale, per layer but the last, L1(fake, real detached),
                      summed, divided by the scales (SPADE's, before its lambda_feat)
    patch_d_loss      D's whole loss (the adversarial term, the penalty with wgan-gp) and stats
    patch_g_loss      G's whole loss: adversarial + lambda_feat * feature matching
                      + lambda_vgg * VGG-19 perceptual (SPADE's), and stats
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from scene2img.config import BACHGAN_LOSSES
from scene2img.models.boxes import real_objects


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
def recompute_batch_norm(
    G: nn.Module,  # generator (e.g. the EMA copy) whose BatchNorm statistics are recomputed
    batches: Iterable[dict[str, torch.Tensor]],  # training batches (layouts, and masks if given)
    generate: Callable[[dict[str, torch.Tensor]], torch.Tensor],  # batch -> G's images
) -> int:
    """Recompute every `BatchNorm` running mean and variance of `G` for G's own weights.

    The EMA generator's weights are an average of the trained ones, but its batch-norm statistics
    were copied from the trained generator, which normalises different activations. This resets
    them and runs `G` in training mode over `batches` with cumulative averaging (momentum None),
    then restores the momenta and leaves `G` in eval mode. Returns the number of batches used.
    """
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    G.train()
    count = 0
    try:
        for batch in batches:
            generate(batch)
            count += 1
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        G.eval()
    return count


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
        gt_masks: bool = False,  # feed the data's masks to G (LostGAN: never; masks regressed)
        w_l1: float = 0.0,  # LostGAN-v2: 1.0, L1 between fake and real image
        w_vgg: float = 0.0,  # LostGAN-v2: 1.0, VGG-19 perceptual loss
        perceptual: nn.Module | None = None,  # (fake, real) -> loss; needed when w_vgg > 0
        backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    ) -> None:
        if w_vgg > 0 and perceptual is None:
            raise ValueError("w_vgg > 0 needs the perceptual network (models.perceptual)")
        self.G, self.D = G, D
        self.w_image, self.w_object, self.w_attribute = w_image, w_object, w_attribute
        self.w_l1, self.w_vgg, self.perceptual = w_l1, w_vgg, perceptual
        self.matching_aware, self.gt_masks = matching_aware, gt_masks
        self.backward = backward

    @property
    def losses(self) -> list[str]:
        """The terms of G's objective that are on (besides the attribute term, which the data
        decides): recorded with the run."""
        terms = [name for name, w in (("image", self.w_image), ("object", self.w_object),
                                      ("attribute", self.w_attribute), ("l1", self.w_l1),
                                      ("vgg", self.w_vgg)) if w > 0]
        return terms

    def masks_for(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The masks G is given for `batch`: the data's with `gt_masks`, else None (regressed)."""
        if not self.gt_masks:
            return None
        if not bool(batch["has_masks"].all()):
            raise ValueError("gt_masks is on but the batch has images without masks")
        return batch["masks"]

    def generate(self, batch: dict[str, torch.Tensor], z_img: torch.Tensor,
                 z_obj: torch.Tensor, G: nn.Module | None = None) -> torch.Tensor:
        return (G or self.G)(batch["objects"], batch["boxes"], batch["obj_valid"],
                             batch["attributes"], z_img, z_obj, self.masks_for(batch))

    def recompute_batch_norm(self, G: nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                             generator: torch.Generator | None = None) -> int:
        """`recompute_batch_norm` for G (e.g. the EMA copy) with training latents and masks."""
        def generate(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            b, o = batch["objects"].shape
            z_img, z_obj = G.sample_latents(b, o, generator, device="cpu")
            device = batch["objects"].device
            return self.generate(batch, z_img.to(device), z_obj.to(device), G=G)

        with torch.random.fork_rng(devices=[]):  # dropout: reproducible, caller's RNG untouched
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            return recompute_batch_norm(G, batches, generate)

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
            d_attr = hinge_real(real["attribute"]) + hinge_fake(fake["attribute"])
            if mismatched is not None:
                d_attr = d_attr + hinge_fake(real["mismatched"][_has_attributes(batch)])
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
            stats["g_attribute"] = -mean_score(scores["attribute"])
            loss = loss + self.w_attribute * stats["g_attribute"]
        real = batch["image"].to(fake.dtype)
        if self.w_l1 > 0:
            stats["g_l1"] = F.l1_loss(fake.float(), real.float())
            loss = loss + self.w_l1 * stats["g_l1"]
        if self.w_vgg > 0:
            stats["g_vgg"] = self.perceptual(fake, real)
            loss = loss + self.w_vgg * stats["g_vgg"]
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
        """One iteration: G forward once, D update, then G update. Returns detached stats.

        Stochastic layers (the PSP module's dropout) draw from the global RNG, which is seeded
        for the iteration from `generator` and restored afterwards: with the latent stream in a
        checkpoint, a resumed run repeats them exactly.
        """
        b, o = batch["objects"].shape
        z_img, z_obj = self.G.sample_latents(b, o, generator, device="cpu")
        seed = int(torch.randint(2**62, (1,), generator=generator))
        device = batch["image"].device
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            fake = self.generate(batch, z_img.to(device), z_obj.to(device))
            opt_d.zero_grad(set_to_none=True)
            stats = self.accumulate_gradients("D", batch, fake, generator)
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            stats.update(self.accumulate_gradients("G", batch, fake))
            opt_g.step()
        return stats


# --------------------------------------------------------------------------------------------
# multi-scale PatchGAN losses (SPADE / BachGAN)

Scales = list[list[torch.Tensor]]  # per scale, a PatchGAN's layer outputs; the last: scores


def _scores(outputs: Scales) -> list[torch.Tensor]:
    return [scale[-1].float() for scale in outputs]


def d_adversarial(real: Scales, fake: Scales, loss: str = "hinge") -> torch.Tensor:
    """D's adversarial loss over the scales: `hinge` or the Wasserstein part of `wgan-gp` (add
    `gp_weight * gradient_penalty(...)`)."""
    if loss not in BACHGAN_LOSSES:
        raise ValueError(f"loss={loss!r}: choose one of {BACHGAN_LOSSES}")
    terms = []
    for r, f in zip(_scores(real), _scores(fake), strict=True):
        if loss == "hinge":
            terms.append(hinge_real(r) + hinge_fake(f))
        else:
            terms.append(f.mean() - r.mean())
    return torch.stack(terms).mean()


def g_adversarial(fake: Scales) -> torch.Tensor:
    """G's adversarial loss, -mean D(fake) averaged over the scales (hinge and wgan-gp alike)."""
    return -torch.stack([f.mean() for f in _scores(fake)]).mean()


def critic_value(outputs: Scales) -> torch.Tensor:
    """[B]: each sample's scores averaged over patches, then over scales."""
    return torch.stack([f.flatten(1).mean(1) for f in _scores(outputs)]).mean(0)


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],  # images [B, ...] -> values [B]
    real: torch.Tensor,  # [B, 3, S, S]
    fake: torch.Tensor,  # [B, 3, S, S] (detached or not: the penalty does not reach G)
    generator: torch.Generator | None = None,  # draws the interpolation weights
) -> torch.Tensor:
    """WGAN-GP's penalty, mean over the batch of (||grad critic(x_hat)|| - 1)^2, with gradients
    kept for D's backward (`create_graph`).

    Example:
        >>> w = torch.full((1, 3, 2, 2), 0.5 / 3 ** 0.5)  # a linear critic, ||w|| = 1
        >>> critic = lambda x: (x * w).flatten(1).sum(1)
        >>> round(float(gradient_penalty(critic, torch.ones(4, 3, 2, 2), torch.zeros(4, 3, 2, 2))), 6)
        0.0
    """
    b = real.shape[0]
    eps = torch.rand(b, *([1] * (real.ndim - 1)), generator=generator).to(real)
    x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return ((grad.float().flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def feature_matching(fake: Scales, real: Scales) -> torch.Tensor:
    """pix2pixHD / SPADE feature matching: sum over scales and layers (not the score layer) of
    L1(fake, real detached), divided by the number of scales."""
    total = fake[0][0].new_zeros((), dtype=torch.float32)
    for f_scale, r_scale in zip(fake, real, strict=True):
        for f, r in zip(f_scale[:-1], r_scale[:-1], strict=True):
            total = total + F.l1_loss(f.float(), r.detach().float())
    return total / len(fake)


def patch_d_loss(
    D: nn.Module,  # (images [B, 3, S, S], label map [B, C, s, s]) -> Scales
    real: torch.Tensor,  # [B, 3, S, S]
    fake: torch.Tensor,  # [B, 3, S, S] (detached here)
    labels: torch.Tensor,  # [B, C, s, s] the map D is conditioned on
    loss: str = "hinge",  # hinge | wgan-gp
    gp_weight: float = 10.0,  # wgan-gp only
    generator: torch.Generator | None = None,  # wgan-gp: the interpolation weights
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """D's loss for the multi-scale PatchGAN: `d_adversarial` (+ `gp_weight` x the gradient
    penalty with `wgan-gp`), and its stats. Real and fake go through D as one batch of 2B."""
    b = len(real)
    out = D(torch.cat([real.to(fake.dtype), fake.detach()]), torch.cat([labels, labels]))
    real_out = [[t[:b] for t in scale] for scale in out]
    fake_out = [[t[b:] for t in scale] for scale in out]
    adv = d_adversarial(real_out, fake_out, loss)
    stats = {"d_adversarial": adv, "d_real": critic_value(real_out).mean(),
             "d_fake": critic_value(fake_out).mean()}
    total = adv
    if loss == "wgan-gp":
        stats["d_gp"] = gradient_penalty(lambda x: critic_value(D(x, labels)), real,
                                         fake.detach(), generator)
        total = total + gp_weight * stats["d_gp"]
    stats["d_loss"] = total
    return total, stats


def patch_g_loss(
    D: nn.Module,  # as `patch_d_loss`'s (frozen by the caller)
    real: torch.Tensor,  # [B, 3, S, S]
    fake: torch.Tensor,  # [B, 3, S, S] with gradients to G
    labels: torch.Tensor,  # [B, C, s, s]
    lambda_feat: float = 10.0,  # feature matching (SPADE: 10; 0: off)
    lambda_vgg: float = 0.0,  # perceptual loss (SPADE: 10; 0: off)
    perceptual: nn.Module | None = None,  # (fake, real) -> loss; needed when lambda_vgg > 0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's loss for the multi-scale PatchGAN, SPADE's: `g_adversarial` + `lambda_feat` x
    `feature_matching` (D's features of the real images, detached) + `lambda_vgg` x perceptual."""
    if lambda_vgg > 0 and perceptual is None:
        raise ValueError("lambda_vgg > 0 needs the perceptual network (models.perceptual)")
    b = len(real)
    out = D(torch.cat([fake, real.to(fake.dtype)]), torch.cat([labels, labels]))
    fake_out = [[t[:b] for t in scale] for scale in out]
    real_out = [[t[b:].detach() for t in scale] for scale in out]
    stats = {"g_adversarial": g_adversarial(fake_out)}
    total = stats["g_adversarial"]
    if lambda_feat > 0:
        stats["g_feat"] = feature_matching(fake_out, real_out)
        total = total + lambda_feat * stats["g_feat"]
    if lambda_vgg > 0:
        stats["g_vgg"] = perceptual(fake, real.to(fake.dtype))
        total = total + lambda_vgg * stats["g_vgg"]
    stats["g_loss"] = total
    return total, stats
