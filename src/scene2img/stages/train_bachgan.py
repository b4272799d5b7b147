"""Stage `train_bachgan`: a processed ADE20K dataset with label maps -> BachGAN's generator
(salient-object layout + retrieved backgrounds -> image).

The memory bank is the training split's label maps; every record's top `retrieval.m` maps are
retrieved once, before training (`training.bachgan_data`). Writes into `out_dir`:

    bachgan_model.pt    the EMA generator, its batch-norm statistics recomputed for its own weights
                        (state dict + config + vocab; weights_only-safe); the config holds its
                        sizes, its foreground classes and the class split they came from, the
                        label maps' side and the retrieval params; beside them the memory bank
                        (the training split's label maps and image ids), which serving and
                        evaluation retrieve from
    metrics.json        final training losses, iterations and throughput (for DVC)
    checkpoints/        Lightning checkpoints; `last.ckpt` is what `resume=True` continues from
    mlflow_run_id       the MLflow run, continued on resume

Every run is an MLflow run: params, losses (the tag `train_bachgan.losses` lists the terms that
were on), and grids (layout | retrieved background | fused map | EMA generated | real).
`train_bachgan.image_size` must be the data's. `train_bachgan.max_steps` counts iterations (one D
and one G update); Lightning's `global_step` and `trainer.checkpoint_every_n_steps` count
optimiser steps (two per iteration).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from scene2img.config import Params, TrainBachGANParams
from scene2img.data.processed import read_manifest
from scene2img.errors import ConfigError
from scene2img.models.bachgan import BachGANGenerator
from scene2img.models.gan_loss import recompute_batch_norm
from scene2img.models.patchgan import MultiscaleDiscriminator
from scene2img.models.perceptual import VGGPerceptualLoss, load_vgg19_features
from scene2img.stages._training import (
    NUMPY_ARRAY_GLOBALS,
    Throughput,
    TrainingResult,
    TrainingRun,
    ddp_strategy,
)
from scene2img.training.bachgan_data import BachGANDataModule
from scene2img.training.bachgan_module import BachGANModule
from scene2img.training.export import BACHGAN_MODEL_FILE, MemoryBankExport, export_bachgan

log = logging.getLogger(__name__)

__all__ = ["bachgan_module", "ema_for_export", "train_bachgan"]


def bachgan_module(params: TrainBachGANParams, num_classes: int, foreground: list[int],
                   segmap_size: int) -> BachGANModule:
    """The generator, the discriminator and the perceptual network, in their LightningModule."""
    perceptual = VGGPerceptualLoss(load_vgg19_features(params.vgg_weights, "train_bachgan",
                                                       "lambda_vgg")) \
        if params.lambda_vgg > 0 else None
    G = BachGANGenerator(num_classes, foreground, params.image_size, params.ngf,
                         params.spade_hidden)
    D = MultiscaleDiscriminator(num_classes, params.ndf, params.n_layers_d, params.num_d)
    return BachGANModule(G, D, params, segmap_size, perceptual)


def train_bachgan(
    data_url: str | Path,  # processed ADE20K dataset with label maps (folder or s3://...)
    out_dir: str | Path,  # model folder: export, metrics.json, checkpoints
    params: Params,  # uses train_bachgan, data, trainer, tracking
    resume: bool | str | Path = False,  # True: out_dir/checkpoints/last.ckpt; or a checkpoint path
    progress: bool = True,  # Lightning's progress bar
    callbacks: list[pl.Callback] | None = None,  # extra callbacks (tests)
    trainer_overrides: dict[str, Any] | None = None,  # extra Trainer arguments (tests)
    kfp_run_id: str | None = None,  # the KFP run that launched this (a lineage tag)
) -> TrainingResult:
    """Train BachGAN and export its EMA generator.

    `metrics` holds the final train/* losses, `iterations` and `train_images_per_s`."""
    tp = params.train_bachgan
    manifest = read_manifest(data_url)
    data_size = int(manifest.get("params", {}).get("image_size", 0))
    if data_size != tp.image_size:
        raise ConfigError(f"train_bachgan.image_size={tp.image_size} but the images of {data_url} "
                          f"are {data_size} px; set train_bachgan.image_size={data_size} or "
                          f"preprocess at preprocess.image_size={tp.image_size}")
    datamodule = BachGANDataModule(data_url, params.data, tp.batch_size, tp.retrieval, tp.seed)
    run = TrainingRun("train_bachgan", data_url, out_dir, params, "bachgan", kfp_run_id,
                      datamodule=datamodule)
    vocab, foreground = datamodule.vocab, datamodule.foreground
    module = bachgan_module(tp, vocab.num_objects, foreground, datamodule.segmap_size)
    losses = module.losses

    throughput = Throughput()
    overrides: dict[str, Any] = {"strategy": ddp_strategy(params.trainer.strategy),
                                 **(trainer_overrides or {})}
    bank = datamodule.index
    trainer = run.start(module, resume, hyperparams={
        "train_bachgan": dataclasses.asdict(tp), "segmap_size": datamodule.segmap_size,
        "memory_bank": {"maps": len(bank.bank), "foreground_classes": len(foreground)}},
        max_steps=2 * tp.max_steps, callbacks=[throughput, *(callbacks or [])],
        progress=progress, tags={"train_bachgan.losses": "+".join(losses)},
        limit_val_batches=0, **overrides)
    log.info("training BachGAN (%d px) on %s for %d iterations", tp.image_size, data_url,
             tp.max_steps)
    with torch.serialization.safe_globals(NUMPY_ARRAY_GLOBALS), warnings.catch_warnings():
        # expected here: the EMA generator stays in eval mode; checkpoints are post-update
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode")
        warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
        run.fit(trainer, module)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    train_scores = bank.scores["train"]
    metrics.update({"iterations": int(trainer.global_step // 2),
                    "train_images_per_s": round(throughput.rate(), 3),
                    "retrieval/train_top1_score": round(float(train_scores[:, 0].mean()), 6)})
    split = manifest["params"]["ade20k"]["class_split"]

    def export(path: Path) -> None:
        G, batch_norm = ema_for_export(module, datamodule, tp)
        config = {"num_classes": G.num_classes, "foreground": foreground,
                  "image_size": G.image_size, "ngf": tp.ngf, "spade_hidden": tp.spade_hidden,
                  "segmap_size": datamodule.segmap_size,
                  "retrieval": dataclasses.asdict(tp.retrieval), "class_split": split["name"],
                  "max_objects": params.data.max_objects,
                  "weights": f"ema (decay {tp.ema_decay})",
                  "batch_norm": batch_norm, "losses": losses}
        export_bachgan(path, G, vocab, config, MemoryBankExport(bank.bank, bank.image_ids),
                       extra={"params": dataclasses.asdict(tp), "metrics": metrics,
                              "mlflow_run_id": run.run_id, "data": str(data_url)})
        log.info("BachGAN: %d iterations -> %s", metrics["iterations"], path)

    return run.finish(trainer, BACHGAN_MODEL_FILE, metrics, export)


def ema_for_export(module: BachGANModule, datamodule: BachGANDataModule,
                   tp: TrainBachGANParams) -> tuple[BachGANGenerator, str]:
    """A plain CPU copy of the EMA generator (no SyncBatchNorm) with its batch-norm statistics
    recomputed over the first `ema_bn_batches` training batches (unflipped, with their retrieved
    maps), and how they were made. `update_ema` copies the trained G's statistics, which belong
    to G's weights, not the average's."""
    ema = module.G_ema
    G = BachGANGenerator(ema.num_classes, datamodule.foreground, ema.image_size, tp.ngf,
                         tp.spade_hidden)
    G.load_state_dict({k: v.detach().cpu() for k, v in ema.state_dict().items()})
    G.eval()
    if tp.ema_bn_batches <= 0:
        return G, "copied from the trained generator"
    G.to(module.device)
    loader = DataLoader(datamodule.dataset("train"), batch_size=tp.batch_size, shuffle=False)
    batches = ({k: v.to(module.device) for k, v in b.items()}
               for _, b in zip(range(tp.ema_bn_batches), loader, strict=False))
    count = recompute_batch_norm(G, batches, lambda b: G(*module.maps(b)))
    log.info("EMA generator: batch-norm statistics recomputed over %d training batches", count)
    return G.cpu(), f"recomputed over {count} training batches"
