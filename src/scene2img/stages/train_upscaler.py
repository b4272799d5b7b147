"""Stage `train_upscaler`: the raw images of a processed dataset's splits -> the RDN upscaler.

The processed dataset names the images of each split; the raw dataset it was made from holds them
at full size (`data.superres`). Writes into `out_dir`:

    upscaler_model.pt   the exported model (fp32 state dict + RDN sizes; weights_only-safe)
    metrics.json        val PSNR, and test PSNR / SSIM of RDN, bicubic and nearest (for DVC)
    checkpoints/        Lightning checkpoints; `last.ckpt` is what `resume=True` continues from
    mlflow_run_id       the MLflow run, continued on resume

The MLflow run holds params, the L1 loss, validation PSNR and strips LR | bicubic | ours | HR.
On the CPU the same seed gives the same model, and a resumed run continues exactly.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from scene2img.config import Params
from scene2img.data.processed import SPLITS, load_vocab
from scene2img.data.superres import SuperResDataset, raw_image_paths, split_image_ids
from scene2img.errors import DataError
from scene2img.evaluation.superres import upscaler_scores
from scene2img.files import atomic_write_json
from scene2img.stages._training import training_logger
from scene2img.training.runtime import build_trainer, resume_checkpoint, seed_everything
from scene2img.training.sampling import DataPosition
from scene2img.training.upscaler_module import (
    SuperResDataModule,
    UpscalerModule,
    build_rdn,
    export_upscaler,
)

log = logging.getLogger(__name__)

__all__ = ["MODEL_FILE", "TrainUpscalerResult", "train_upscaler"]

MODEL_FILE = "upscaler_model.pt"
METRICS_FILE = "metrics.json"


@dataclass
class TrainUpscalerResult:
    out_dir: Path
    model_path: Path
    metrics_path: Path
    metrics: dict[str, float]  # val/psnr*, test/x{s}/{psnr,ssim}/{rdn,bicubic,nearest}, steps
    run_id: str | None  # the MLflow run


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
) -> TrainUpscalerResult:
    """Train RDN on raw-image crops, score it against bicubic and nearest, export it."""
    tp = params.train_upscaler
    out_dir = Path(out_dir)
    seed_everything(tp.seed)
    datasets = superres_datasets(data_url, raw_dir, params)
    datamodule = SuperResDataModule(datasets, tp.batch_size, tp.seed, params.data.flip,
                                    params.data.num_workers)
    module = UpscalerModule(build_rdn(tp), tp)
    ckpt = resume_checkpoint(out_dir, resume, module)  # before the MLflow run is touched

    logger, run_id = training_logger(
        "train_upscaler", params, data_url, out_dir, resumed=bool(ckpt),
        hyperparams={"train_upscaler": dataclasses.asdict(tp), "raw_dir": str(raw_dir),
                     "images": {s: len(d) for s, d in datasets.items()}})
    trainer = build_trainer(
        params.trainer, out_dir, max_steps=tp.max_steps, logger=logger,
        callbacks=[DataPosition(), *(callbacks or [])],
        val_check_interval=tp.val_every_n_steps,
        use_distributed_sampler=False,  # ResumableBatchSampler splits batches across ranks
        enable_progress_bar=progress,
        **(trainer_overrides or {}),
    )
    log.info("training the x%d upscaler on %s (raw images %s) for %d steps", tp.scale, data_url,
             raw_dir, tp.max_steps)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)
    val = trainer.validate(module, datamodule=datamodule, verbose=False)[0]

    model_path, metrics_path = out_dir / MODEL_FILE, out_dir / METRICS_FILE
    metrics = {k: float(v) for k, v in val.items()}
    if trainer.is_global_zero:
        net = module.net.float().eval()
        metrics.update(upscaler_scores(net, datamodule.test_dataloader(), tp.scale, "test"))
        metrics["steps"] = int(trainer.global_step)
        logger.log_metrics({k: v for k, v in metrics.items() if k.startswith("test/")},
                           step=trainer.global_step)
        export_upscaler(model_path, net, load_vocab(data_url),
                        extra={"params": dataclasses.asdict(tp), "metrics": metrics,
                               "mlflow_run_id": run_id, "data": str(data_url),
                               "raw": str(raw_dir)})
        atomic_write_json(metrics_path, metrics)
        s = tp.scale
        log.info("upscaler x%d: test PSNR %.2f dB (bicubic %.2f, nearest %.2f) -> %s", s,
                 metrics[f"test/x{s}/psnr/rdn"], metrics[f"test/x{s}/psnr/bicubic"],
                 metrics[f"test/x{s}/psnr/nearest"], model_path)
    return TrainUpscalerResult(out_dir, model_path, metrics_path, metrics, run_id)
