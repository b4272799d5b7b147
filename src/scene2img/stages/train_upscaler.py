"""Stage `train_upscaler`: the raw images of a processed dataset's splits -> the RDN upscaler.

The processed dataset names the images of each split; the raw dataset it was made from holds them
at full size (`data.superres`). Writes into `out_dir`:

    upscaler_model.pt   the exported model (fp32 state dict + RDN sizes; weights_only-safe); its
                        `extra` holds the metrics below and the run id (register's gate reads it)
    metrics.json        val PSNR, and test PSNR / SSIM of RDN, bicubic and nearest (for DVC)
    checkpoints/        Lightning checkpoints; `last.ckpt` is what `resume=True` continues from
    mlflow_run_id       the MLflow run, continued on resume

The MLflow run holds params, the L1 loss, validation PSNR and strips LR | bicubic | ours | HR.
On the CPU the same seed gives the same model, and a resumed run continues exactly.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from scene2img.config import Params
from scene2img.data.processed import SPLITS, load_vocab
from scene2img.data.superres import SuperResDataset, raw_image_paths, split_image_ids
from scene2img.errors import DataError
from scene2img.evaluation.superres import upscaler_scores
from scene2img.stages._training import TrainingResult, TrainingRun
from scene2img.training.export import UPSCALER_MODEL_FILE, export_upscaler
from scene2img.training.upscaler_module import SuperResDataModule, UpscalerModule, build_rdn

log = logging.getLogger(__name__)

__all__ = ["superres_datasets", "train_upscaler"]


def superres_datasets(data_url: str | Path, raw_dir: str | Path,
                      params: Params) -> dict[str, SuperResDataset]:
    """One `SuperResDataset` per split: the processed split's images, read from `raw_dir`."""
    tp = params.train_upscaler
    ids = {split: split_image_ids(data_url, split) for split in SPLITS}
    paths = raw_image_paths(raw_dir, params.preprocess, [i for s in SPLITS for i in ids[s]])
    out, start = {}, 0
    for split in SPLITS:
        if not ids[split]:
            raise DataError(f"{data_url}: the {split} split is empty; the upscaler needs images "
                            "in train, val and test")
        out[split] = SuperResDataset(paths[start:start + len(ids[split])], tp.scale, tp.patch,
                                     tp.eval_size, seed=tp.seed, augment=tp.augment)
        start += len(ids[split])
    return out


def train_upscaler(
    data_url: str | Path,  # processed dataset: names the images of each split
    raw_dir: str | Path,  # the raw dataset it was preprocessed from (preprocess.source format)
    out_dir: str | Path,  # model folder: export, metrics.json, checkpoints
    params: Params,  # uses train_upscaler, preprocess (source), data, trainer, tracking
    resume: bool | str | Path = False,  # True: out_dir/checkpoints/last.ckpt; or a checkpoint path
    progress: bool = True,  # Lightning's progress bar
    callbacks: list[pl.Callback] | None = None,  # extra callbacks (tests)
    trainer_overrides: dict[str, Any] | None = None,  # extra Trainer arguments (tests)
    kfp_run_id: str | None = None,  # the KFP run that launched this (a lineage tag)
) -> TrainingResult:
    """Train RDN on raw-image crops, score it against bicubic and nearest, export it.

    `metrics` holds val/psnr*, test/x{s}/{psnr,ssim}/{rdn,bicubic,nearest} and `steps`."""
    tp = params.train_upscaler
    datasets = superres_datasets(data_url, raw_dir, params)
    run = TrainingRun("train_upscaler", data_url, out_dir, params, "rdn", kfp_run_id,
                      datamodule=SuperResDataModule(datasets, tp.batch_size, tp.seed,
                                                    params.data.flip, params.data.num_workers))
    module = UpscalerModule(build_rdn(tp), tp)
    trainer = run.start(module, resume, hyperparams={
        "train_upscaler": dataclasses.asdict(tp), "raw_dir": str(raw_dir),
        "images": {s: len(d) for s, d in datasets.items()}},
        max_steps=tp.max_steps, callbacks=callbacks or [], progress=progress,
        val_check_interval=tp.val_every_n_steps, **(trainer_overrides or {}))
    log.info("training the x%d upscaler on %s (raw images %s) for %d steps", tp.scale, data_url,
             raw_dir, tp.max_steps)
    run.fit(trainer, module)
    val = trainer.validate(module, datamodule=run.datamodule, verbose=False)[0]

    metrics = {k: float(v) for k, v in val.items()}
    net = module.net.float().eval()
    if trainer.is_global_zero:
        metrics.update(upscaler_scores(net, run.datamodule.test_dataloader(), tp.scale, "test"))
        run.logger.log_metrics({k: v for k, v in metrics.items() if k.startswith("test/")},
                               step=trainer.global_step)
    metrics["steps"] = int(trainer.global_step)
    result = run.finish(trainer, UPSCALER_MODEL_FILE, metrics, lambda path: export_upscaler(
        path, net, load_vocab(data_url),
        extra={"params": dataclasses.asdict(tp), "metrics": metrics, "mlflow_run_id": run.run_id,
               "data": str(data_url), "raw": str(raw_dir)}))
    if trainer.is_global_zero:
        s = tp.scale
        log.info("upscaler x%d: test PSNR %.2f dB (bicubic %.2f, nearest %.2f) -> %s", s,
                 metrics[f"test/x{s}/psnr/rdn"], metrics[f"test/x{s}/psnr/bicubic"],
                 metrics[f"test/x{s}/psnr/nearest"], result.model_path)
    return result
