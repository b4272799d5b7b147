"""What the training stages share: seeding, the Lightning `Trainer` from `TrainerParams`, the
MLflow logger from `TrackingParams` and the checkpoint to resume from. (Exported models:
`scene2img.training.export`.)
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import MLFlowLogger

from scene2img.config import TrackingParams, TrainerParams
from scene2img.errors import ModelError

log = logging.getLogger(__name__)
LAST_CHECKPOINT = "last.ckpt"
# what Lightning needs in a checkpoint to resume training, not only load weights
_TRAINING_STATE = frozenset({"state_dict", "optimizer_states", "loops", "global_step"})


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


def resume_checkpoint(
    out_dir: Path,  # the model folder; `resume=True` means its checkpoints/last.ckpt
    resume: bool | str | Path,  # False, True, or a checkpoint path
    module: pl.LightningModule,  # the module to resume: the checkpoint must hold its weights
) -> str | None:
    """The checkpoint to resume from, checked before anything starts.

    It must be a Lightning training checkpoint (weights and training state) holding `module`'s
    weights, by name and shape; otherwise a `ModelError` names the file and what to do. The
    stages call this before they continue the MLflow run, so a resume that never started leaves
    the run as it was (Lightning would mark it FAILED).
    """
    if not resume:
        return None
    path = Path(out_dir) / "checkpoints" / LAST_CHECKPOINT if resume is True else Path(resume)
    if not path.is_file():
        raise ModelError(f"{path}: no checkpoint to resume from; run without --resume first")
    _check_checkpoint(path, module)
    return str(path)


def _check_checkpoint(path: Path, module: pl.LightningModule) -> None:
    fix = "delete it (and train without --resume) or resume from another checkpoint"
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: the checkpoint is empty; {fix}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its index is at the end
        raise ModelError(f"{path}: not a torch checkpoint, or one cut short (truncated or "
                         f"corrupt); {fix}")
    try:  # mmap: tensors are not read, only their names and shapes
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {first}); "
                         f"{fix}") from None
    lacks = sorted(_TRAINING_STATE - ckpt.keys()) if isinstance(ckpt, dict) else ["a dict"]
    if lacks:
        export = isinstance(ckpt, dict) and str(ckpt.get("format", "")).startswith("scene2img.")
        what = "an exported model" if export else "a torch file"
        raise ModelError(f"{path}: {what}, not a training checkpoint (it has no "
                         f"{', '.join(lacks)}); {fix}")
    theirs, ours = ckpt["state_dict"], module.state_dict()
    missing, unknown = sorted(ours.keys() - theirs.keys()), sorted(theirs.keys() - ours.keys())
    if missing or unknown:
        raise ModelError(f"{path}: a checkpoint of another model ({len(missing)} of this model's "
                         f"{len(ours)} weights missing, {len(unknown)} unknown, e.g. "
                         f"{(missing or unknown)[0]!r}); {fix}")
    resized = [k for k in ours if _shape(theirs[k]) != _shape(ours[k])]
    if resized:
        k = resized[0]
        raise ModelError(f"{path}: a checkpoint of this model with other sizes (weights of "
                         f"another size: {len(resized)}, e.g. {k}: {_shape(theirs[k])} there, "
                         f"{_shape(ours[k])} here); train with the params it was made "
                         f"with, or {fix}")


def _shape(value: Any) -> list[int] | None:
    return list(value.shape) if isinstance(value, torch.Tensor) else None
