"""The image GAN under Lightning: a thin module around the nets and `LayoutGANLoss`. It receives
its networks from the stage that builds them (`scene2img.stages.train_image.image_gan_module`).

Manual optimisation: each training step is one `LayoutGANLoss.step` (G forward, D update, G
update), then the EMA update. Lightning counts both optimiser steps, so `trainer.global_step` is
twice the iteration count. The latent generator's state travels in the checkpoint (the data order
and global RNGs with `training.sampling.DataPosition`), so a resumed CPU run continues exactly as
an uninterrupted one.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import default_collate

from scene2img.config import TrainImageParams
from scene2img.models.boxes import real_objects
from scene2img.models.gan_loss import LayoutGANLoss, update_ema
from scene2img.models.generator import box_masks, masks_to_grid
from scene2img.models.palette import class_colours

log = logging.getLogger(__name__)


def generator_param_groups(G: nn.Module, lr: float, mapping_scale: float) -> list[dict]:
    """Adam groups: G's mapping at `mapping_scale` x lr (LostGAN's train.py gives parameters
    named "mapping" 0.1 x lr_g), everything else at lr. Empty groups are left out."""
    mapping = [p for n, p in G.named_parameters() if ".mapping." in f".{n}"]
    ids = {id(p) for p in mapping}
    rest = [p for p in G.parameters() if id(p) not in ids]
    groups = [{"params": rest, "lr": lr}]
    if mapping:
        groups.append({"params": mapping, "lr": lr * mapping_scale})
    return groups


# --------------------------------------------------------------------------------------------
# pictures


def paint_layout(batch: dict[str, torch.Tensor], size: int, num_classes: int) -> torch.Tensor:
    """Objects painted in class colours over grey, larger boxes first: [B, 3, S, S]."""
    keep = real_objects(batch["objects"], batch["obj_valid"]).float()[:, :, None, None]
    if bool(batch["has_masks"].all()):
        masks = masks_to_grid(batch["masks"], batch["boxes"], size)
    else:
        masks = box_masks(batch["boxes"], size)
    masks = (masks * keep).clamp(0, 1)  # [B, O, S, S]
    colours = class_colours(num_classes)[batch["objects"].cpu()]  # [B, O, 3]
    masks = masks.cpu()
    order = (batch["boxes"][..., 2] * batch["boxes"][..., 3]).cpu().argsort(1, descending=True)
    canvas = torch.zeros(len(masks), 3, size, size)
    rows = torch.arange(len(masks))
    for j in range(masks.shape[1]):
        k = order[:, j]
        m = masks[rows, k][:, None]  # [B, 1, S, S]
        canvas = canvas * (1 - m) + colours[rows, k][:, :, None, None] * m
    return canvas


def image_grid(columns: list[torch.Tensor]) -> np.ndarray:
    """Columns of [B, 3, S, S] images in [-1, 1] -> one HWC uint8 picture (rows: examples)."""
    rows = torch.cat([torch.cat(list(col.float().cpu().clamp(-1, 1)), dim=1)
                      for col in columns], dim=2)  # [3, B*S, C*S]
    return ((rows.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


def pick_grid_batch(module: pl.LightningModule, batch: dict[str, torch.Tensor],
                    n: int) -> dict[str, torch.Tensor]:
    """The batch a GAN module draws its grids from: the first `n` items of its data module's val
    split (on the module's device), else the first `n` of `batch`."""
    dm = getattr(module.trainer, "datamodule", None)
    if dm is not None and hasattr(dm, "dataset"):
        val = dm.dataset("val")
        if len(val):
            items = [val[i] for i in range(min(n, len(val)))]
            return {k: v.to(module.device) for k, v in default_collate(items).items()}
    return {k: v[:n].clone() for k, v in batch.items()}


def log_grid(module: pl.LightningModule, picture: Callable[[], np.ndarray],
             iteration: int) -> None:
    """`picture()` (HWC uint8) as `grids/step_NNNNNNN.png` in the module's MLflow run, from rank
    0 only (the picture is not drawn elsewhere)."""
    logger = module.logger
    if module.global_rank != 0 or logger is None or not hasattr(logger.experiment, "log_image"):
        return
    logger.experiment.log_image(logger.run_id, picture(),
                                artifact_file=f"grids/step_{iteration:07d}.png")


# --------------------------------------------------------------------------------------------
# the module


class ImageGANModule(pl.LightningModule):
    def __init__(self, G: nn.Module, D: nn.Module, params: TrainImageParams,
                 num_classes: int, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.G, self.D = G, D
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.params = params
        self.num_classes = num_classes
        # The perceptual network is a fixed part of the loss, kept out of the module's state
        # (checkpoints) and of DDP: `LayoutGANLoss` holds it, `on_fit_start` moves it.
        self.gan = LayoutGANLoss(G, D, params.w_image, params.w_object, params.w_attribute,
                                 params.matching_aware, params.g.gt_masks, params.w_l1,
                                 params.w_vgg, perceptual, backward=self.manual_backward)
        self.rng = torch.Generator().manual_seed(params.seed)
        self.grid_batch: dict[str, torch.Tensor] | None = None

    def setup(self, stage: str) -> None:
        # one latent stream per process (DDP ranks draw different latents)
        self.rng.manual_seed(self.params.seed + 1000 * self.global_rank)

    def on_fit_start(self) -> None:
        if self.gan.perceptual is not None:
            self.gan.perceptual.to(self.device)

    def configure_optimizers(self):
        p = self.params
        fused = p.fused_adam or None
        opt_g = torch.optim.Adam(generator_param_groups(self.G, p.lr_g, p.mapping_lr_scale),
                                 p.lr_g, betas=tuple(p.betas), fused=fused)
        opt_d = torch.optim.Adam(self.D.parameters(), p.lr_d, betas=tuple(p.betas), fused=fused)
        return opt_g, opt_d

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        if self.params.channels_last:
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        if self.grid_batch is None:
            self.grid_batch = self._pick_grid_batch(batch)
        opt_g, opt_d = self.optimizers()
        stats = self.gan.step(batch, opt_g, opt_d, self.rng)
        update_ema(self.G_ema, self.G, self.params.ema_decay)
        self.log_dict({f"train/{k}": v for k, v in stats.items()}, prog_bar=False,
                      batch_size=len(batch["image"]), sync_dist=False)
        iteration = self.global_step // 2
        if iteration % self.params.grid_every_n_steps == 0:
            self.log_grid(iteration)

    def _pick_grid_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return pick_grid_batch(self, batch, self.params.grid_images)

    @torch.no_grad()
    def grid(self) -> np.ndarray:
        """layout | real | EMA generator (fixed latents) for the grid batch, HWC uint8."""
        batch = self.grid_batch
        self.G_ema.eval()
        b, o = batch["objects"].shape
        z_img, z_obj = self.G_ema.sample_latents(b, o, torch.Generator().manual_seed(0), "cpu")
        with torch.autocast(self.device.type, enabled=False):
            fake = self.gan.generate(batch, z_img.to(self.device), z_obj.to(self.device),
                                     G=self.G_ema)
        size = fake.shape[-1]
        return image_grid([paint_layout(batch, size, self.num_classes), batch["image"], fake])

    def log_grid(self, iteration: int) -> None:
        if self.grid_batch is not None:
            log_grid(self, self.grid, iteration)

    def on_train_end(self) -> None:
        self.log_grid(self.global_step // 2)

    # exact resume: the latent stream travels in the checkpoint (the data order and the global
    # RNGs travel with `scene2img.training.sampling.DataPosition`)
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["latent_rng"] = self.rng.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "latent_rng" in checkpoint:
            self.rng.set_state(checkpoint["latent_rng"])
