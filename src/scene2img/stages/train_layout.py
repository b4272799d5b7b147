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
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from scene2img.config import Params, TrainLayoutParams
from scene2img.data.vocab import Vocab
from scene2img.evaluation.layout_metrics import (
    LayoutMetrics,
    class_mean_baseline,
    class_mean_boxes,
    recall_by_class,
)
from scene2img.files import atomic_write_json
from scene2img.stages._training import TrainingResult, TrainingRun
from scene2img.training.export import LAYOUT_MODEL_FILE, export_layout_model
from scene2img.training.layout_module import (
    LayoutModule,
    build_layout_discriminator,
    build_layout_model,
)

log = logging.getLogger(__name__)

__all__ = ["layout_module", "train_layout"]

BY_CLASS_FILE = "recall_by_class.json"


def layout_module(params: TrainLayoutParams, vocab: Vocab) -> LayoutModule:
    """The layout model, its discriminator and their metrics, in their LightningModule."""
    model = build_layout_model(params, vocab)
    disc = build_layout_discriminator(params, vocab)
    metrics = {s: LayoutMetrics(vocab.num_objects) for s in ("val", "test")}
    return LayoutModule(model, disc, params, vocab.object_idx_to_name, metrics)


def train_layout(
    data_url: str | Path,  # processed dataset folder or URL (s3://...)
    out_dir: str | Path,  # model folder: export, metrics.json, checkpoints
    params: Params,  # uses train_layout, data, trainer, tracking
    resume: bool | str | Path = False,  # True: out_dir/checkpoints/last.ckpt; or a checkpoint path
    progress: bool = True,  # Lightning's progress bar
    callbacks: list[pl.Callback] | None = None,  # extra callbacks (tests)
    trainer_overrides: dict[str, Any] | None = None,  # extra Trainer arguments (tests)
    kfp_run_id: str | None = None,  # the KFP run that launched this (a lineage tag)
) -> TrainingResult:
    """Train the layout model, evaluate it and the class-mean baseline, export it.

    `metrics` holds the final val/*, test/* and baseline/* figures and `steps`."""
    tp = params.train_layout
    run = TrainingRun("train_layout", data_url, out_dir, params, kfp_run_id)
    datamodule, vocab = run.datamodule, run.vocab
    module = layout_module(tp, vocab)
    trainer = run.start(module, resume, hyperparams={
        "train_layout": dataclasses.asdict(tp),
        "vocab": {"objects": vocab.num_objects, "predicates": vocab.num_predicates,
                  "attributes": vocab.num_attributes}},
        max_steps=tp.max_steps, callbacks=callbacks or [], progress=progress,
        val_check_interval=tp.val_every_n_steps, **(trainer_overrides or {}))
    log.info("training the layout model on %s for %d steps", data_url, tp.max_steps)
    run.fit(trainer, module)
    val = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    test = trainer.test(module, datamodule=datamodule, verbose=False)[0]

    means = class_mean_boxes(datamodule.dataset("train"))
    base = {split: class_mean_baseline(means, datamodule.dataset(split)) for split in ("val", "test")}
    baseline = {f"baseline/{split}/{k}": float(v)
                for split, metric in base.items() for k, v in metric.compute().items()}
    metrics = {**{k: float(v) for k, v in {**val, **test}.items()}, **baseline,
               "steps": int(trainer.global_step)}
    result = run.finish(trainer, LAYOUT_MODEL_FILE, metrics, lambda path: export_layout_model(
        path, module.model, vocab, params.data.max_objects,
        extra={"params": dataclasses.asdict(tp), "metrics": metrics,
               "mlflow_run_id": run.run_id, "data": str(data_url)}))
    if trainer.is_global_zero:
        run.logger.log_metrics(baseline, step=trainer.global_step)
        by_class = atomic_write_json(run.out_dir / BY_CLASS_FILE, recall_by_class(
            module.by_class["val"], base["val"].by_class(), vocab.object_idx_to_name))
        run.logger.experiment.log_artifact(run.logger.run_id, str(by_class))
        log.info("layout model: val R@0.5 %.3f (class-mean baseline %.3f) -> %s",
                 metrics.get("val/recall_at_0.5", float("nan")),
                 baseline["baseline/val/recall_at_0.5"], result.model_path)
    return result
