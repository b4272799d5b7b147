"""Stage `train_layout`: a processed dataset -> the layout model (scene graph -> boxes + masks).

Writes into `out_dir`:

    layout_model.pt     the exported model (state dict + config + vocab; weights_only-safe)
    metrics.json        final val / test metrics and the class-mean-box baseline (for DVC)
    recall_by_class.json  val R@0.5 per class, model and class-mean baseline (also in MLflow)
    checkpoints/        Lightning checkpoints; `last.ckpt` is what `resume=True` continues from
    mlflow_run_id       the MLflow run, continued on resume

Every run is an MLflow run (params, losses, validation metrics, layout drawings) on the configured
tracking URI. On the CPU the same seed gives the same model, and a resumed run continues exactly
where the interrupted one stopped (see `scene2img.training.sampling`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from scene2img.config import Params
from scene2img.files import atomic_write_json
from scene2img.stages._training import training_logger
from scene2img.training.layout_export import (
    export_layout_model,
    load_layout_model,
    predict_layout,
    prepare_graph,
)
from scene2img.training.layout_module import LayoutModule
from scene2img.training.metrics import class_mean_baseline, class_mean_boxes, recall_by_class
from scene2img.training.runtime import (
    build_trainer,
    resume_checkpoint,
    seed_everything,
)
from scene2img.training.sampling import DataPosition, ResumableDataModule

log = logging.getLogger(__name__)

__all__ = ["MODEL_FILE", "TrainLayoutResult", "load_layout_model", "predict_layout",
           "prepare_graph", "train_layout"]

MODEL_FILE = "layout_model.pt"
METRICS_FILE = "metrics.json"
BY_CLASS_FILE = "recall_by_class.json"


@dataclass
class TrainLayoutResult:
    out_dir: Path
    model_path: Path
    metrics_path: Path
    metrics: dict[str, float]  # final val/*, test/*, baseline/* figures
    run_id: str | None  # the MLflow run


def train_layout(
    data_url: str | Path,  # processed dataset folder or URL (s3://...)
    out_dir: str | Path,  # model folder: export, metrics.json, checkpoints
    params: Params,  # uses train_layout, data, trainer, tracking
    resume: bool | str | Path = False,  # True: out_dir/checkpoints/last.ckpt; or a checkpoint path
    progress: bool = True,  # Lightning's progress bar
    callbacks: list[pl.Callback] | None = None,  # extra callbacks (tests)
    trainer_overrides: dict[str, Any] | None = None,  # extra Trainer arguments (tests)
    kfp_run_id: str | None = None,  # the KFP run that launched this (a lineage tag)
) -> TrainLayoutResult:
    """Train the layout model, evaluate it and the class-mean baseline, export it."""
    tp = params.train_layout
    out_dir = Path(out_dir)
    seed_everything(tp.seed)
    datamodule = ResumableDataModule(data_url, params.data, tp.batch_size, seed=tp.seed)
    vocab = datamodule.vocab
    module = LayoutModule(tp, vocab)
    ckpt = resume_checkpoint(out_dir, resume, module)  # before the MLflow run is touched

    logger, run_id = training_logger("train_layout", params, data_url, out_dir, resumed=bool(ckpt),
                                     hyperparams={
        "train_layout": dataclasses.asdict(tp),
        "vocab": {"objects": vocab.num_objects, "predicates": vocab.num_predicates,
                  "attributes": vocab.num_attributes}},
        kfp_run_id=kfp_run_id)

    trainer = build_trainer(
        params.trainer, out_dir, max_steps=tp.max_steps, logger=logger,
        callbacks=[DataPosition(), *(callbacks or [])],
        val_check_interval=tp.val_every_n_steps,
        use_distributed_sampler=False,  # ResumableBatchSampler splits batches across ranks
        enable_progress_bar=progress,
        **(trainer_overrides or {}),
    )
    log.info("training the layout model on %s for %d steps", data_url, tp.max_steps)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)
    val = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    test = trainer.test(module, datamodule=datamodule, verbose=False)[0]

    means = class_mean_boxes(datamodule.dataset("train"))
    base = {split: class_mean_baseline(means, datamodule.dataset(split)) for split in ("val", "test")}
    baseline = {f"baseline/{split}/{k}": float(v)
                for split, metric in base.items() for k, v in metric.compute().items()}
    metrics = {**{k: float(v) for k, v in {**val, **test}.items()}, **baseline,
               "steps": int(trainer.global_step)}
    model_path, metrics_path = out_dir / MODEL_FILE, out_dir / METRICS_FILE
    if trainer.is_global_zero:
        logger.log_metrics(baseline, step=trainer.global_step)
        export_layout_model(model_path, module.model, vocab, params.data.max_objects,
                            extra={"params": dataclasses.asdict(tp), "metrics": metrics,
                                   "mlflow_run_id": run_id, "data": str(data_url)})
        atomic_write_json(metrics_path, metrics)
        by_class = atomic_write_json(out_dir / BY_CLASS_FILE, recall_by_class(
            module.by_class["val"], base["val"].by_class(), vocab.object_idx_to_name))
        logger.experiment.log_artifact(logger.run_id, str(by_class))
        log.info("layout model: val R@0.5 %.3f (class-mean baseline %.3f) -> %s",
                 metrics.get("val/recall_at_0.5", float("nan")),
                 baseline["baseline/val/recall_at_0.5"], model_path)
    return TrainLayoutResult(out_dir, model_path, metrics_path, metrics, run_id)
