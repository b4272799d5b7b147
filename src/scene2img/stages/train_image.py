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
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from scene2img.config import ImageGeneratorParams, Params, TrainImageParams
from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.vocab import Vocab
from scene2img.errors import ConfigError, ModelError
from scene2img.files import atomic_write_json
from scene2img.models.gan_loss import LayoutGANLoss
from scene2img.models.perceptual import VGGPerceptualLoss, load_vgg19_features
from scene2img.stages._training import training_logger
from scene2img.training.image_module import (
    ImageGANModule,
    build_discriminator,
    build_generator,
    masks_source,
)
from scene2img.training.runtime import (
    build_trainer,
    load_export,
    resume_checkpoint,
    save_export,
    seed_everything,
)
from scene2img.training.sampling import DataPosition, ResumableDataModule

log = logging.getLogger(__name__)

__all__ = ["MODEL_FILE", "TrainImageResult", "generator_from_config", "load_generator",
           "train_image"]

MODEL_FILE = "image_model.pt"
METRICS_FILE = "metrics.json"
EXPORT_KIND = "image"


@dataclass
class TrainImageResult:
    out_dir: Path
    model_path: Path
    metrics_path: Path
    metrics: dict[str, float]  # final train/* losses, steps, images per second
    run_id: str | None


_NUMPY_ARRAY_GLOBALS = [np._core.multiarray._reconstruct, np.ndarray, np.dtype,
                        type(np.dtype(np.uint32))]


def _ddp_strategy(strategy: str) -> str:
    # Two backward passes per step (D, then G) leave each net unused in the other's pass.
    if strategy in ("ddp", "ddp_spawn"):
        return f"{strategy}_find_unused_parameters_true"
    return strategy


class _Throughput(pl.Callback):
    """Training images per second over the run (first iteration excluded: warm-up)."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.images = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is None:
            self.start = time.perf_counter()
        else:
            self.images += len(batch["image"]) * trainer.world_size

    def rate(self) -> float:
        if self.start is None or not self.images:
            return 0.0
        return self.images / (time.perf_counter() - self.start)


def train_image(
    data_url: str | Path,  # processed dataset folder or URL (s3://...)
    out_dir: str | Path,  # model folder: export, metrics.json, checkpoints
    params: Params,  # uses train_image, data, trainer, tracking
    resume: bool | str | Path = False,  # True: out_dir/checkpoints/last.ckpt; or a checkpoint path
    progress: bool = True,  # Lightning's progress bar
    callbacks: list[pl.Callback] | None = None,  # extra callbacks (tests)
    trainer_overrides: dict[str, Any] | None = None,  # extra Trainer arguments (tests)
    kfp_run_id: str | None = None,  # the KFP run that launched this (a lineage tag)
) -> TrainImageResult:
    """Train the layout-to-image GAN and export its EMA generator."""
    tp = params.train_image
    out_dir = Path(out_dir)
    seed_everything(tp.seed)
    datamodule = ResumableDataModule(data_url, params.data, tp.batch_size, seed=tp.seed)
    vocab = datamodule.vocab
    train = datamodule.dataset("train")
    if not len(train):
        raise ModelError(f"{data_url}: the train split is empty; nothing to train on")
    image_size = int(train[0]["image"].shape[-1])
    if tp.g.gt_masks and not bool(train[0]["has_masks"]):
        raise ConfigError(f"train_image.g.gt_masks is true but {data_url} has no masks (Visual "
                          "Genome has none); set train_image.g.gt_masks=false (LostGAN's "
                          "default: masks regressed)")
    perceptual = VGGPerceptualLoss(load_vgg19_features(tp.vgg_weights)) if tp.w_vgg > 0 else None
    G = build_generator(tp.generator, vocab.num_objects, vocab.num_attributes, image_size, tp.g)
    D = build_discriminator(vocab.num_objects, vocab.num_attributes, image_size, tp.d)
    if tp.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    module = ImageGANModule(G, D, tp, vocab.num_objects, perceptual)
    losses = module.gan.losses
    ckpt = resume_checkpoint(out_dir, resume, module)  # before the MLflow run is touched

    logger, run_id = training_logger("train_image", params, data_url, out_dir, resumed=bool(ckpt),
                                     hyperparams={
        "train_image": dataclasses.asdict(tp), "image_size": image_size,
        "vocab": {"objects": vocab.num_objects, "attributes": vocab.num_attributes}},
                                     kfp_run_id=kfp_run_id,
                                     tags={"train_image.losses": "+".join(losses),
                                           "train_image.masks": masks_source(tp.g.gt_masks)})

    throughput = _Throughput()
    overrides: dict[str, Any] = {"strategy": _ddp_strategy(params.trainer.strategy)}
    on_cpu = params.trainer.accelerator == "cpu" or (
        params.trainer.accelerator == "auto" and not torch.cuda.is_available())
    if params.trainer.sync_batchnorm and on_cpu:
        log.warning("trainer.sync_batchnorm: SyncBatchNorm needs GPUs; on the CPU each DDP "
                    "process keeps its own batch statistics")
        overrides["sync_batchnorm"] = False
    overrides.update(trainer_overrides or {})
    trainer = build_trainer(
        params.trainer, out_dir, max_steps=2 * tp.max_steps, logger=logger,
        callbacks=[DataPosition(), throughput, *(callbacks or [])],
        use_distributed_sampler=False,  # ResumableBatchSampler splits batches across ranks
        enable_progress_bar=progress,
        limit_val_batches=0,
        **overrides,
    )
    log.info("training the %s image GAN (%d px) on %s for %d iterations", tp.generator,
             image_size, data_url, tp.max_steps)
    # Checkpoints load with weights_only=True; DataPosition stores numpy's RNG state (arrays).
    with torch.serialization.safe_globals(_NUMPY_ARRAY_GLOBALS), warnings.catch_warnings():
        # expected here: the EMA generator stays in eval mode; checkpoints are post-update
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode")
        warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    metrics.update({"iterations": int(trainer.global_step // 2),
                    "train_images_per_s": round(throughput.rate(), 3)})
    model_path, metrics_path = out_dir / MODEL_FILE, out_dir / METRICS_FILE
    if trainer.is_global_zero:
        G_ema, batch_norm = ema_for_export(module, train, tp, image_size, vocab)
        export_generator(model_path, G_ema, tp.generator, image_size, tp.g, vocab,
                         max_objects=params.data.max_objects,
                         provenance={"weights": f"ema (decay {tp.ema_decay})",
                                     "batch_norm": batch_norm, "losses": losses},
                         extra={"params": dataclasses.asdict(tp), "metrics": metrics,
                                "mlflow_run_id": run_id, "data": str(data_url)})
        atomic_write_json(metrics_path, metrics)
        log.info("image GAN: %d iterations -> %s", metrics["iterations"], model_path)
    return TrainImageResult(out_dir, model_path, metrics_path, metrics, run_id)


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


# --------------------------------------------------------------------------------------------
# export and load


def export_generator(path: Path, G: nn.Module, kind: str, image_size: int,
                     g: ImageGeneratorParams, vocab: Vocab, max_objects: int,
                     provenance: dict | None = None, extra: dict | None = None) -> Path:
    """The generator as a weights_only-safe export (`runtime.save_export`, kind "image").

    The config records `masks` ("ground-truth": callers must give G masks, the data's or the
    layout model's; "regressed": G makes its own) and `provenance` (weights, batch norm, losses).
    """
    config = {"generator": kind, "image_size": image_size, "num_classes": vocab.num_objects,
              "num_attributes": vocab.num_attributes, "max_objects": max_objects,
              "g": dataclasses.asdict(g), "masks": masks_source(g.gt_masks),
              **(provenance or {})}
    state = {k: v.contiguous() for k, v in G.state_dict().items()}
    return save_export(path, EXPORT_KIND, state, config, vocab, extra)


def generator_from_config(config: dict) -> nn.Module:
    """A freshly initialised generator of an export's architecture (its `config`)."""
    return build_generator(config["generator"], config["num_classes"], config["num_attributes"],
                           config["image_size"], ImageGeneratorParams(**config["g"]))


def load_generator(path: str | Path) -> tuple[nn.Module, Vocab, dict]:
    """An exported image generator, in eval mode: `(generator, vocab, config)`.

    Example:
        >>> G, vocab, config = load_generator("models/image/image_model.pt")  # doctest: +SKIP
        >>> z_img, z_obj = G.sample_latents(1, config["max_objects"])  # doctest: +SKIP
    """
    payload = load_export(path, EXPORT_KIND)
    config = payload["config"]
    vocab = Vocab.from_json(payload["vocab"], where=str(path))
    try:
        G = generator_from_config(config)
        G.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"{path}: image model does not match this code ({exc}); re-export it") \
            from None
    return G.eval(), vocab, config
