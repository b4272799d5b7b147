"""Stage `train_image`: a processed dataset -> the image GAN (layout + attributes -> image).

Writes into `out_dir`:

    image_model.pt      the EMA generator, its batch-norm statistics recomputed for its own weights
                        (state dict + config + vocab; weights_only-safe); the config records
                        whether G takes the data's masks (`gt_masks`), which weights these are,
                        how their BN statistics were made, and which losses were on
    metrics.json        final training losses and throughput (for DVC)
    checkpoints/        Lightning checkpoints; `last.ckpt` is what `resume=True` continues from
    mlflow_run_id       the MLflow run, continued on resume

Every run is an MLflow run: params, losses (the tag `train_image.losses` lists the terms that
were on), and image grids (layout | real | EMA generated). The image size is the data's. `train_image.max_steps` counts iterations (one D and one G update);
Lightning's `global_step` and `trainer.checkpoint_every_n_steps` count optimiser steps (two per
iteration).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from scene2img.config import Params, TrainImageParams
from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.vocab import Vocab
from scene2img.errors import ConfigError, ModelError
from scene2img.models.builders import build_discriminator, build_generator
from scene2img.models.gan_loss import LayoutGANLoss
from scene2img.models.perceptual import VGGPerceptualLoss, load_vgg19_features
from scene2img.stages._training import (
    NUMPY_ARRAY_GLOBALS,
    Throughput,
    TrainingResult,
    TrainingRun,
    ddp_strategy,
)
from scene2img.training.export import IMAGE_MODEL_FILE, export_generator, masks_source
from scene2img.training.image_module import ImageGANModule

log = logging.getLogger(__name__)

__all__ = ["image_gan_module", "train_image"]


def image_gan_module(params: TrainImageParams, vocab: Vocab, image_size: int) -> ImageGANModule:
    """The generator, the discriminator and the perceptual network, in their LightningModule."""
    perceptual = VGGPerceptualLoss(load_vgg19_features(params.vgg_weights)) \
        if params.w_vgg > 0 else None
    G = build_generator(params.generator, vocab.num_objects, vocab.num_attributes, image_size,
                        params.g)
    D = build_discriminator(vocab.num_objects, vocab.num_attributes, image_size, params.d)
    if params.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    return ImageGANModule(G, D, params, vocab.num_objects, perceptual)


def train_image(
    data_url: str | Path,  # processed dataset folder or URL (s3://...)
    out_dir: str | Path,  # model folder: export, metrics.json, checkpoints
    params: Params,  # uses train_image, data, trainer, tracking
    resume: bool | str | Path = False,  # True: out_dir/checkpoints/last.ckpt; or a checkpoint path
    progress: bool = True,  # Lightning's progress bar
    callbacks: list[pl.Callback] | None = None,  # extra callbacks (tests)
    trainer_overrides: dict[str, Any] | None = None,  # extra Trainer arguments (tests)
    kfp_run_id: str | None = None,  # the KFP run that launched this (a lineage tag)
) -> TrainingResult:
    """Train the layout-to-image GAN and export its EMA generator.

    `metrics` holds the final train/* losses, `iterations` and `train_images_per_s`."""
    tp = params.train_image
    run = TrainingRun("train_image", data_url, out_dir, params, tp.generator, kfp_run_id)
    vocab = run.vocab
    train = run.datamodule.dataset("train")
    if not len(train):
        raise ModelError(f"{data_url}: the train split is empty; nothing to train on")
    image_size = int(train[0]["image"].shape[-1])
    if tp.g.gt_masks and not bool(train[0]["has_masks"]):
        raise ConfigError(f"train_image.g.gt_masks is true but {data_url} has no masks (Visual "
                          "Genome has none); set train_image.g.gt_masks=false (LostGAN's "
                          "default: masks regressed)")
    module = image_gan_module(tp, vocab, image_size)
    losses = module.gan.losses

    throughput = Throughput()
    overrides: dict[str, Any] = {"strategy": ddp_strategy(params.trainer.strategy)}
    on_cpu = params.trainer.accelerator == "cpu" or (
        params.trainer.accelerator == "auto" and not torch.cuda.is_available())
    if params.trainer.sync_batchnorm and on_cpu:
        log.warning("trainer.sync_batchnorm: SyncBatchNorm needs GPUs; on the CPU each DDP "
                    "process keeps its own batch statistics")
        overrides["sync_batchnorm"] = False
    overrides.update(trainer_overrides or {})
    trainer = run.start(module, resume, hyperparams={
        "train_image": dataclasses.asdict(tp), "image_size": image_size,
        "vocab": {"objects": vocab.num_objects, "attributes": vocab.num_attributes}},
        max_steps=2 * tp.max_steps, callbacks=[throughput, *(callbacks or [])],
        progress=progress, tags={"train_image.losses": "+".join(losses),
                                 "train_image.masks": masks_source(tp.g.gt_masks)},
        limit_val_batches=0, **overrides)
    log.info("training the %s image GAN (%d px) on %s for %d iterations", tp.generator,
             image_size, data_url, tp.max_steps)
    # Checkpoints load with weights_only=True; DataPosition stores numpy's RNG state (arrays).
    with torch.serialization.safe_globals(NUMPY_ARRAY_GLOBALS), warnings.catch_warnings():
        # expected here: the EMA generator stays in eval mode; checkpoints are post-update
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode")
        warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
        run.fit(trainer, module)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    metrics.update({"iterations": int(trainer.global_step // 2),
                    "train_images_per_s": round(throughput.rate(), 3)})

    def export(path: Path) -> None:
        G_ema, batch_norm = ema_for_export(module, train, tp, image_size, vocab)
        export_generator(path, G_ema, tp.generator, image_size, tp.g, vocab,
                         max_objects=params.data.max_objects,
                         provenance={"weights": f"ema (decay {tp.ema_decay})",
                                     "batch_norm": batch_norm, "losses": losses},
                         extra={"params": dataclasses.asdict(tp), "metrics": metrics,
                                "mlflow_run_id": run.run_id, "data": str(data_url)})
        log.info("image GAN: %d iterations -> %s", metrics["iterations"], path)

    return run.finish(trainer, IMAGE_MODEL_FILE, metrics, export)


def ema_for_export(module: ImageGANModule, train: SceneGraphDataset, tp: TrainImageParams,
                   image_size: int, vocab: Vocab) -> tuple[nn.Module, str]:
    """A plain copy of the EMA generator (no SyncBatchNorm) with its batch-norm statistics
    recomputed on the training device over the first `ema_bn_batches` training batches, and how
    they were made.

    `update_ema` copies the trained G's running statistics, which belong to G's weights; the EMA
    weights normalise other activations, so their statistics are measured again here.
    """
    G = build_generator(tp.generator, vocab.num_objects, vocab.num_attributes, image_size, tp.g)
    G.load_state_dict({k: v.detach().cpu() for k, v in module.G_ema.state_dict().items()})
    G.eval()
    if tp.ema_bn_batches <= 0:
        return G, "copied from the trained generator"
    G.to(module.device)
    loader = DataLoader(train, batch_size=tp.batch_size, shuffle=False)
    batches = ({k: v.to(module.device) for k, v in b.items()}
               for _, b in zip(range(tp.ema_bn_batches), loader, strict=False))
    gan = LayoutGANLoss(G, module.D, gt_masks=tp.g.gt_masks)
    count = gan.recompute_batch_norm(G, batches, torch.Generator().manual_seed(tp.seed + 7))
    log.info("EMA generator: batch-norm statistics recomputed over %d training batches", count)
    return G.cpu(), f"recomputed over {count} training batches"
