"""BachGAN under Lightning: a thin module around the generator, the multi-scale PatchGAN and the
loss functions of `models.gan_loss` (`patch_d_loss`, `patch_g_loss`). It receives its networks
from the stage that builds them (`scene2img.stages.train_bachgan.bachgan_module`).

Manual optimisation, one iteration per batch: G forward once, D update on real vs the detached
fake, G update through the updated D (frozen), then the EMA update. Lightning counts both optimiser
steps, so `trainer.global_step` is twice the iteration count. The only random draw of the step (the
gradient penalty's interpolation weights, with `wgan-gp`) comes from a generator that travels in
the checkpoint, so a resumed CPU run continues exactly.

A batch (`training.bachgan_data`) carries the query's layout (`objects`, `boxes`, `obj_valid`),
its `backgrounds` [B, m, s, s] and the real `image` [B, 3, S, S]; G sees the layout as a
multi-hot label map at s and the backgrounds one-hot, D the image beside the layout map.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from scene2img.config import TrainBachGANParams
from scene2img.models.bachgan import BachGANGenerator, layout_label_map, one_hot_maps
from scene2img.models.gan_loss import patch_d_loss, patch_g_loss, update_ema
from scene2img.models.palette import label_colours
from scene2img.training.image_module import image_grid, log_grid, pick_grid_batch

__all__ = ["BachGANModule"]


class BachGANModule(pl.LightningModule):
    def __init__(
        self,
        G: BachGANGenerator,
        D: nn.Module,  # models.patchgan.MultiscaleDiscriminator over the layout's label map
        params: TrainBachGANParams,
        segmap_size: int,  # s: the label maps' side (the data's)
        perceptual: nn.Module | None = None,  # needed when params.lambda_vgg > 0
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.G, self.D = G, D
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.params, self.segmap_size = params, segmap_size
        # a fixed part of the loss, kept out of the checkpoints and of DDP (plain attribute)
        self.__dict__["perceptual"] = perceptual
        self.rng = torch.Generator().manual_seed(params.seed)
        self.grid_batch: dict[str, torch.Tensor] | None = None

    @property
    def losses(self) -> list[str]:
        """The terms of the objective that are on: recorded with the run and the export."""
        p = self.params
        terms = [p.loss] + (["feat"] if p.lambda_feat > 0 else []) + \
            (["vgg"] if p.lambda_vgg > 0 else [])
        return terms

    def setup(self, stage: str) -> None:
        self.rng.manual_seed(self.params.seed + 1000 * self.global_rank)

    def on_fit_start(self) -> None:
        if self.perceptual is not None:
            self.perceptual.to(self.device)

    def configure_optimizers(self):
        p = self.params
        opt_g = torch.optim.Adam(self.G.parameters(), p.lr_g, betas=tuple(p.betas))
        opt_d = torch.optim.Adam(self.D.parameters(), p.lr_d, betas=tuple(p.betas))
        return opt_g, opt_d

    def maps(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The layout's label map [B, C, s, s] and the backgrounds one-hot [B, m, C, s, s]."""
        c = self.G.num_classes
        layout = layout_label_map(batch["objects"], batch["boxes"], batch["obj_valid"], c,
                                  self.segmap_size)
        return layout, one_hot_maps(batch["backgrounds"], c)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        if self.grid_batch is None:
            self.grid_batch = pick_grid_batch(self, batch, self.params.grid_images)
        p = self.params
        opt_g, opt_d = self.optimizers()
        layout, backgrounds = self.maps(batch)
        real = batch["image"]
        fake = self.G(layout, backgrounds)  # [B, 3, S, S]

        opt_d.zero_grad(set_to_none=True)
        d_loss, stats = patch_d_loss(self.D, real, fake, layout, p.loss, p.gp_weight, self.rng)
        self.manual_backward(d_loss)
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        try:
            g_loss, g_stats = patch_g_loss(self.D, real, fake, layout, p.lambda_feat,
                                           p.lambda_vgg, self.perceptual)
            self.manual_backward(g_loss)
        finally:
            self.D.requires_grad_(True)
        opt_g.step()
        update_ema(self.G_ema, self.G, p.ema_decay)

        stats.update(g_stats)
        self.log_dict({f"train/{k}": v.detach() for k, v in stats.items()}, prog_bar=False,
                      batch_size=len(real), sync_dist=False)
        iteration = self.global_step // 2
        if iteration % p.grid_every_n_steps == 0:
            self.log_grid(iteration)

    @torch.no_grad()
    def grid(self) -> np.ndarray:
        """layout | first retrieved map | fused map (argmax) | EMA generated | real, HWC uint8."""
        batch = self.grid_batch
        self.G_ema.eval()
        layout, backgrounds = self.maps(batch)
        with torch.autocast(self.device.type, enabled=False):
            fused = self.G_ema.fuse(layout, backgrounds)  # [B, C, s, s]
            fake = self.G_ema.decode(fused)
        size, c = fake.shape[-1], self.G.num_classes
        # the layout's label per pixel: its box's class, 0 (grey) outside the boxes
        boxes = torch.where(layout.amax(1) > 0, layout.argmax(1), 0)
        columns = [label_colours(boxes, c, size), label_colours(batch["backgrounds"][:, 0], c, size),
                   label_colours(fused.argmax(1), c, size), fake, batch["image"]]
        return image_grid(columns)

    def log_grid(self, iteration: int) -> None:
        if self.grid_batch is not None:
            log_grid(self, self.grid, iteration)

    def on_train_end(self) -> None:
        self.log_grid(self.global_step // 2)

    # exact resume: the penalty's stream travels in the checkpoint (the data order and the global
    # RNGs with `scene2img.training.sampling.DataPosition`)
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["loss_rng"] = self.rng.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "loss_rng" in checkpoint:
            self.rng.set_state(checkpoint["loss_rng"])
