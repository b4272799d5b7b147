"""What the training stages share: their opening and closing around the stage's own module.

    run = TrainingRun("train_layout", data_url, out_dir, params)  # seed, data
    module = ...                                                     # the stage's own
    trainer = run.start(module, resume, hyperparams, max_steps=..., ...)  # resume, MLflow, Trainer
    run.fit(trainer, module)
    ...                                                              # the stage's own figures
    return run.finish(trainer, LAYOUT_MODEL_FILE, metrics, export)   # export, metrics.json

The MLflow run is lineage-tagged, spools while the server is away, and is continued on resume
(its id is kept in the model folder).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only

from scene2img.config import Params
from scene2img.files import atomic_write_bytes, atomic_write_json
from scene2img.tracking.experiments import KIND_TAG, MODEL_TRAINING
from scene2img.tracking.lineage import lineage_tags, run_name
from scene2img.training.export import METRICS_FILE
from scene2img.training.runtime import (
    build_trainer,
    mlflow_logger,
    resume_checkpoint,
    seed_everything,
)
from scene2img.training.sampling import DataPosition, ResumableDataModule

RUN_ID_FILE = "mlflow_run_id"  # in the model folder: the run a resume continues
SPOOL_DIR = "mlflow_spool"  # in the model folder: calls kept while the server is away
# what a GAN stage's checkpoints hold besides tensors (DataPosition's numpy RNG state), for
# loading them with weights_only=True
NUMPY_ARRAY_GLOBALS = [np._core.multiarray._reconstruct, np.ndarray, np.dtype,
                       type(np.dtype(np.uint32))]


def ddp_strategy(strategy: str) -> str:
    """The DDP strategy for a GAN stage: two backward passes per step (D, then G) leave each net
    unused in the other's pass."""
    if strategy in ("ddp", "ddp_spawn"):
        return f"{strategy}_find_unused_parameters_true"
    return strategy


class Throughput(pl.Callback):
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


@dataclass
class TrainingResult:
    out_dir: Path
    model_path: Path  # the export
    metrics_path: Path  # metrics.json
    metrics: dict[str, float]  # the stage's final figures
    run_id: str | None  # the MLflow run


class TrainingRun:
    """One run of a training stage: seeded, on its resumable data, logged to its MLflow run."""

    def __init__(
        self,
        stage: str,  # train_layout | train_image | train_bachgan | train_upscaler: params
        #              section, run name, tag
        data_url: str | Path,  # processed dataset folder or URL (s3://...)
        out_dir: str | Path,  # model folder: export, metrics.json, checkpoints, run id
        params: Params,  # the stage's section (seed, batch_size), data, trainer, tracking
        family: str,  # the model family (sg2im, lostgan, crn, bachgan, rdn): in the run's name
        kfp_run_id: str | None = None,  # the KFP run that launched the stage (a lineage tag)
        datamodule: pl.LightningDataModule | None = None,  # default: ResumableDataModule(data_url)
    ) -> None:
        self.stage, self.data_url, self.out_dir, self.params = stage, data_url, Path(out_dir), \
            params
        self.family, self.kfp_run_id = family, kfp_run_id
        section = getattr(params, stage)
        seed_everything(section.seed)
        # any other data module must resume exactly too (DataPosition's state_dict protocol)
        self.datamodule = datamodule or ResumableDataModule(data_url, params.data,
                                                            section.batch_size, seed=section.seed)
        self.vocab = getattr(self.datamodule, "vocab", None)
        self.checkpoint: str | None = None
        self.logger: MLFlowLogger | None = None
        self.run_id: str | None = None

    def start(
        self,
        module: pl.LightningModule,  # the stage's module, built
        resume: bool | str | Path,  # True: out_dir/checkpoints/last.ckpt; or a checkpoint path
        hyperparams: dict[str, Any],  # the stage's own section and figures (data/trainer added)
        max_steps: int,  # optimiser steps
        callbacks: list[pl.Callback],  # the stage's and the caller's (DataPosition is added)
        progress: bool,  # Lightning's progress bar
        tags: dict[str, str] | None = None,  # stage-specific run tags, beside the lineage
        **trainer_args: Any,  # any other Trainer argument
    ) -> pl.Trainer:
        """The checkpoint to resume from, the MLflow run, and the `Trainer`."""
        # checked before the MLflow run is touched: a resume that never starts leaves it as it was
        self.checkpoint = resume_checkpoint(self.out_dir, resume, module)
        self.logger, self.run_id = self._logger(bool(self.checkpoint), hyperparams, tags)
        return build_trainer(
            self.params.trainer, self.out_dir, max_steps=max_steps, logger=self.logger,
            callbacks=[DataPosition(), *callbacks],
            use_distributed_sampler=False,  # ResumableBatchSampler splits batches across ranks
            enable_progress_bar=progress,
            **trainer_args,
        )

    def fit(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        trainer.fit(module, datamodule=self.datamodule, ckpt_path=self.checkpoint)

    def finish(
        self,
        trainer: pl.Trainer,
        model_file: str,  # the export's name in out_dir (`training.export`)
        metrics: dict[str, float],  # written to out_dir/metrics.json
        export: Callable[[Path], Any],  # writes the export to the path it is given
    ) -> TrainingResult:
        """Export and write the metrics (rank 0 only)."""
        model_path, metrics_path = self.out_dir / model_file, self.out_dir / METRICS_FILE
        if trainer.is_global_zero:
            export(model_path)
            atomic_write_json(metrics_path, metrics)
        return TrainingResult(self.out_dir, model_path, metrics_path, metrics, self.run_id)

    def _logger(self, resumed: bool, hyperparams: dict[str, Any],
                tags: dict[str, str] | None) -> tuple[MLFlowLogger, str | None]:
        """The stage's MLflow run (continued from the one recorded in out_dir when `resumed`,
        then no params are logged again) and its id."""
        params = self.params
        data_url = self.data_url
        run_file = self.out_dir / RUN_ID_FILE
        run_id = run_file.read_text().strip() if resumed and run_file.is_file() else None
        tags = {**lineage_tags(params.to_dict(), data_url, stage=self.stage,
                               kfp_run_id=self.kfp_run_id), **(tags or {})}
        name = run_name(f"{self.stage} {self.family}", params.tracking.config, tags)
        logger = mlflow_logger(params.tracking, run_name=name, run_id=run_id,
                               spool_dir=self.out_dir / SPOOL_DIR, tags=tags)
        if rank_zero_only.rank == 0:
            run_id = logger.run_id
            atomic_write_bytes(run_file, f"{run_id}\n".encode())
            if not resumed:
                # the UI's model-training view (tracking.experiments); spooled if the server is away
                logger.experiment.set_experiment_tag(logger.experiment_id, KIND_TAG, MODEL_TRAINING)
                logger.log_hyperparams({**hyperparams, "data": dataclasses.asdict(params.data),
                                        "trainer": dataclasses.asdict(params.trainer),
                                        "data_url": str(data_url)})
        return logger, run_id
