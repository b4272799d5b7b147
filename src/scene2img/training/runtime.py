"""What the training stages share: seeding, the Lightning `Trainer` from `TrainerParams`, the
MLflow logger from `TrackingParams` and the checkpoint to resume from. (Exported models:
`scene2img.training.export`.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import MLFlowLogger

from scene2img.config import TrackingParams, TrainerParams
from scene2img.errors import ModelError

log = logging.getLogger(__name__)
LAST_CHECKPOINT = "last.ckpt"


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (and DataLoader workers) for reproducible CPU runs."""
    pl.seed_everything(seed, workers=True, verbose=False)


def mlflow_logger(tracking: TrackingParams, run_name: str, tags: dict[str, str] | None = None,
                  run_id: str | None = None, spool_dir: Path | None = None) -> MLFlowLogger:
    """Lightning's MLflow logger on the configured tracking URI (no model logging here).

    With `spool_dir`, calls that fail while the tracking server is away are kept there and
    sent when it is back (`training.resilient_logging`): training does not stop for it.
    """
    kwargs = dict(experiment_name=tracking.experiment, run_name=run_name,
                  tracking_uri=tracking.uri, tags=tags, log_model=False, run_id=run_id)
    if spool_dir is None:
        return MLFlowLogger(**kwargs)
    from scene2img.training.resilient_logging import SpoolingMLFlowLogger

    return SpoolingMLFlowLogger(**kwargs, spool_dir=spool_dir)


def build_trainer(
    params: TrainerParams,  # the `trainer` section of params.yaml
    out_dir: Path,  # checkpoints go to out_dir/checkpoints
    max_steps: int,  # optimiser steps (manual optimisation: count each optimiser)
    logger: Any = False,  # a Lightning logger, or False
    callbacks: list[pl.Callback] | None = None,
    val_check_interval: int | None = None,  # validate every N training batches
    **overrides: Any,  # any other Trainer argument (tests: limit_val_batches, ...)
) -> pl.Trainer:
    """A `Trainer` from the config: accelerator, devices, nodes, strategy, precision."""
    checkpoint = ModelCheckpoint(
        dirpath=Path(out_dir) / "checkpoints",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=params.checkpoint_every_n_steps,
    )
    kwargs: dict[str, Any] = dict(
        accelerator=params.accelerator,
        devices=params.devices,
        num_nodes=params.num_nodes,
        strategy=params.strategy,
        precision=params.precision,
        sync_batchnorm=params.sync_batchnorm,
        max_steps=max_steps,
        logger=logger,
        callbacks=[checkpoint, *(callbacks or [])],
        log_every_n_steps=params.log_every_n_steps,
        enable_model_summary=False,
        deterministic=params.accelerator == "cpu",
        default_root_dir=str(out_dir),
        val_check_interval=val_check_interval,
        check_val_every_n_epoch=None if val_check_interval else 1,
    )
    kwargs.update(overrides)
    return pl.Trainer(**kwargs)


def resume_checkpoint(out_dir: Path, resume: bool | str | Path) -> str | None:
    """The checkpoint to resume from: `True` means `out_dir/checkpoints/last.ckpt`."""
    if not resume:
        return None
    path = Path(out_dir) / "checkpoints" / LAST_CHECKPOINT if resume is True else Path(resume)
    if not path.is_file():
        raise ModelError(f"{path}: no checkpoint to resume from; run without --resume first")
    return str(path)

