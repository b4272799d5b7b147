"""Training the RDN upscaler with Lightning: the data module over raw-image crops, the thin
LightningModule (L1 loss and Adam as RDN) and the MLflow strip. The export is
`training.export`'s.

The network is `models.upscaler.RDN`; the pairs and degradations are `data.superres`. The
training order resumes exactly: `training.sampling.ResumableBatchSampler` yields
`(index, flip, epoch)` and `SuperResDataset` draws the crop and rotation from them alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchmetrics.image import PeakSignalNoiseRatio

from scene2img.config import TrainUpscalerParams
from scene2img.data.superres import (
    PairedCrops,
    SuperResDataset,
    bicubic_upscale,
    nearest_upscale,
    shave,
)
from scene2img.models.upscaler import RDN
from scene2img.training.image_module import image_grid
from scene2img.training.sampling import DataPosition, ResumableBatchSampler, ResumableLoader

__all__ = ["SuperResDataModule", "UpscalerModule", "build_rdn", "finetune", "superres_strip"]


def build_rdn(params: TrainUpscalerParams) -> RDN:
    """The RDN of `params` (scale and `rdn` sizes)."""
    return RDN(params.scale, **dataclasses.asdict(params.rdn))


def superres_strip(lr: torch.Tensor, hr: torch.Tensor, sr: torch.Tensor, scale: int) -> np.ndarray:
    """Rows of LR (pixels replicated) | bicubic | ours | HR, as one HWC uint8 picture.

    `lr` [B, 3, h, w], `hr` and `sr` [B, 3, s*h, s*w], all in [0, 1]."""
    columns = [nearest_upscale(lr, scale), bicubic_upscale(lr, scale), sr.clamp(0, 1), hr]
    return image_grid([c.float() * 2 - 1 for c in columns])  # image_grid takes [-1, 1]


# --------------------------------------------------------------------------------------------
# data


def _position(trainer: pl.Trainer | None) -> DataPosition:
    found = [c for c in (trainer.callbacks if trainer else []) if isinstance(c, DataPosition)]
    if not found:
        raise RuntimeError("SuperResDataModule needs a DataPosition callback on the trainer")
    return found[0]


class SuperResDataModule(pl.LightningDataModule):
    """Train / val / test `SuperResDataset`s; the training order is resumable and DDP-aware.

    The trainer must carry a `DataPosition` callback and `use_distributed_sampler=False`."""

    def __init__(self, datasets: dict[str, SuperResDataset], batch_size: int, seed: int,
                 flip: bool, num_workers: int = 0) -> None:
        super().__init__()
        self.datasets, self.batch_size, self.seed = datasets, batch_size, seed
        self.flip, self.num_workers = flip, num_workers

    def train_dataloader(self) -> DataLoader:
        data = self.datasets["train"]
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer \
            else (0, 1)
        sampler = ResumableBatchSampler(len(data), self.batch_size, _position(self.trainer),
                                        seed=self.seed, flip=self.flip, rank=rank,
                                        world_size=world)
        return ResumableLoader(data, batch_sampler=sampler, num_workers=self.num_workers,
                               persistent_workers=self.num_workers > 0)

    def _eval(self, split: str) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=False,
                          num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval("test")


# --------------------------------------------------------------------------------------------
# the module


class UpscalerModule(pl.LightningModule):
    """L1 between RDN's output and the HR crop (RDN's loss), Adam with the lr halved in steps.

    Validation logs PSNR (RGB, `scale` border pixels shaved) of ours and of bicubic, and a strip
    LR | bicubic | ours | HR of the first validation images to MLflow."""

    def __init__(self, net: RDN, params: TrainUpscalerParams) -> None:
        super().__init__()
        self.net, self.params = net, params
        self.psnr = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))
        self.psnr_bicubic = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))
        self.strip: np.ndarray | None = None

    def configure_optimizers(self):
        p = self.params
        opt = torch.optim.Adam(self.net.parameters(), lr=p.lr, betas=tuple(p.betas), eps=1e-8)
        halve = torch.optim.lr_scheduler.StepLR(opt, step_size=p.lr_halve_every, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": halve, "interval": "step"}}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = F.l1_loss(self.net(batch["lr"]), batch["hr"])
        self.log("train/l1", loss, prog_bar=True)
        return loss

    def _scores(self, batch: dict[str, torch.Tensor], prefix: str, batch_idx: int) -> None:
        s = self.params.scale
        sr = self.net(batch["lr"]).float().clamp(0, 1)
        hr = batch["hr"].float()
        self.psnr(shave(sr, s), shave(hr, s))
        self.psnr_bicubic(shave(bicubic_upscale(batch["lr"].float(), s), s), shave(hr, s))
        self.log(f"{prefix}/psnr", self.psnr, on_epoch=True)
        self.log(f"{prefix}/psnr_bicubic", self.psnr_bicubic, on_epoch=True)
        if batch_idx == 0 and prefix == "val":
            n = self.params.strip_images
            self.strip = superres_strip(batch["lr"][:n].float().cpu(), hr[:n].cpu(),
                                        sr[:n].cpu(), s)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._scores(batch, "val", batch_idx)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._scores(batch, "test", batch_idx)

    def on_validation_epoch_end(self) -> None:
        logger = self.logger
        if (self.global_rank != 0 or self.strip is None or self.trainer.sanity_checking
                or not hasattr(getattr(logger, "experiment", None), "log_image")):
            return
        logger.experiment.log_image(logger.run_id, self.strip,
                                    artifact_file=f"strips/step_{self.global_step:07d}.png")


def finetune(
    net: RDN,  # trained on real images; fine-tuned in place
    pairs: PairedCrops,  # generated images (LR) and the real images of their layouts (HR)
    params: TrainUpscalerParams,  # finetune_steps, batch_size, lr, betas, seed
) -> list[float]:
    """Fine-tune `net` on `pairs` with RDN's L1 loss and Adam (a plain loop, on the CPU or
    where `net` is); returns the loss of each step. The same seed gives the same steps."""
    opt = torch.optim.Adam(net.parameters(), lr=params.lr, betas=tuple(params.betas))
    device = next(net.parameters()).device
    net.train()
    losses = []
    for step in range(params.finetune_steps):
        batch = pairs.batch(step, params.batch_size)
        loss = F.l1_loss(net(batch["lr"].to(device)), batch["hr"].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
