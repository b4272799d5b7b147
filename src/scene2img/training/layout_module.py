"""The layout model's LightningModule: a thin shell over `LayoutModel`, `LayoutDiscriminator`
and `LayoutLoss` (plain modules, in `scene2img.models.layout`). Like `ImageGANModule`, it receives
its networks (and its metrics, `scene2img.evaluation.layout_metrics`) from the stage that builds
them (`scene2img.stages.train_layout.layout_module`).

One step function serves train, val and test. Logged keys: `{stage}/loss`, `{stage}/loss_box`,
`{stage}/loss_mask` (and `loss_g_adv`, `loss_d` with the discriminator); at validation and test
`{stage}/box_iou`, `{stage}/recall_at_0.3`, `{stage}/recall_at_0.5` and, where the data has masks,
`{stage}/mask_iou`; `by_class[stage]` keeps the last epoch's per-class R@0.5. At each validation
a drawing of the first validation layouts (predicted beside ground truth) goes to MLflow as
`layouts/step_NNNNNN.png`.

Optimisation is automatic with one Adam of two parameter groups (model, discriminator): the loss
routes each network's gradients (see `LayoutLoss`), so a step is one backward pass, one optimiser
step, and `global_step` counts training batches.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import MLFlowLogger
from torch import nn
from torchmetrics import Metric

from scene2img.config import TrainLayoutParams
from scene2img.data.vocab import Vocab
from scene2img.models.layout import LayoutDiscriminator, LayoutLoss, LayoutModel
from scene2img.training.drawing import draw_layout_pairs

log = logging.getLogger(__name__)

__all__ = ["LayoutModule", "build_layout_discriminator", "build_layout_model"]


def build_layout_model(params: TrainLayoutParams, vocab: Vocab) -> LayoutModel:
    """A `LayoutModel` sized for a vocabulary, from the `train_layout` params."""
    return LayoutModel(
        num_objects=vocab.num_objects,
        num_predicates=vocab.num_predicates,
        num_attributes=vocab.num_attributes,
        embed_dim=params.embed_dim,
        gconv_dim=params.gconv_dim,
        gconv_hidden=params.gconv_hidden,
        gconv_layers=params.gconv_layers,
        gconv_pooling=params.gconv_pooling,
        box_hidden=params.box_hidden,
        mask_size=params.mask_size,
        mask_dim=params.mask_dim,
        mask_norm=params.mask_norm,
    )


def build_layout_discriminator(params: TrainLayoutParams, vocab: Vocab
                               ) -> LayoutDiscriminator | None:
    """The mask discriminator when `adv_loss_weight > 0`, else None."""
    if params.adv_loss_weight <= 0:
        return None
    return LayoutDiscriminator(vocab.num_objects, params.d_dim, params.mask_size)


class LayoutModule(pl.LightningModule):
    """Trains a `LayoutModel` (and, when given, a `LayoutDiscriminator`); it receives both, and
    the layout metrics it updates at validation and test (`evaluation.layout_metrics`)."""

    def __init__(
        self,
        model: LayoutModel,
        disc: LayoutDiscriminator | None,  # None: no adversarial mask loss
        params: TrainLayoutParams,
        object_names: list[str | None],  # vocab.object_idx_to_name, for the drawings
        metrics: dict[str, Metric],  # "val" and "test": LayoutMetrics(num_classes)
    ) -> None:
        super().__init__()
        self.params = params
        self.object_names = list(object_names)
        self.model = model
        self.disc = disc
        self.loss = LayoutLoss(self.model, self.disc, params.box_loss_weight,
                               params.mask_loss_weight, params.adv_loss_weight, params.box_loss)
        self.metrics = nn.ModuleDict(metrics)
        self.by_class: dict[str, dict[int, tuple[int, float]]] = {}  # the last epoch's, per stage
        self._drawing: dict[str, torch.Tensor] | None = None

    def forward(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(*args, **kwargs)

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        total, terms, boxes, masks = self.loss(batch)
        train = stage == "train"
        self.log_dict({f"{stage}/loss" if k == "loss" else f"{stage}/loss_{k}": v
                       for k, v in terms.items()},
                      on_step=train, on_epoch=not train, prog_bar=train,
                      batch_size=batch["objects"].shape[0])
        if not train:
            self.metrics[stage].update(boxes, batch["boxes"], batch["objects"], batch["obj_valid"],
                                       masks, batch["masks"], batch["has_masks"])
        return total

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")
        if batch_idx == 0 and self.global_rank == 0 and not self.trainer.sanity_checking:
            n = self.params.layout_images
            boxes, masks = self.model(batch["objects"][:n], batch["obj_valid"][:n],
                                      batch["triples"][:n], batch["triple_valid"][:n],
                                      batch["attributes"][:n])
            keys = ("objects", "boxes", "obj_valid", "masks", "has_masks")
            self._drawing = {k: batch[k][:n].detach().cpu() for k in keys}
            self._drawing.update(pred_boxes=boxes.detach().cpu(), pred_masks=masks.detach().cpu())

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def _log_metrics(self, stage: str) -> None:
        values = self.metrics[stage].compute()
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()})
        self.by_class[stage] = self.metrics[stage].by_class()
        self.metrics[stage].reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")
        if self._drawing is not None:
            self._log_drawing(self._drawing)
            self._drawing = None

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def _log_drawing(self, d: dict[str, torch.Tensor]) -> None:
        image = draw_layout_pairs(d["objects"], d["pred_boxes"], d["boxes"], d["obj_valid"],
                                  self.object_names, d["pred_masks"], d["masks"], d["has_masks"])
        for logger in self.loggers:
            if isinstance(logger, MLFlowLogger):
                logger.experiment.log_image(logger.run_id, image,
                                            artifact_file=f"layouts/step_{self.global_step:06d}.png")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        groups = [{"params": list(self.model.parameters()), "lr": self.params.lr}]
        if self.disc is not None:
            groups.append({"params": list(self.disc.parameters()), "lr": self.params.d_lr})
        beta1, beta2 = self.params.betas
        return torch.optim.Adam(groups, betas=(beta1, beta2))
