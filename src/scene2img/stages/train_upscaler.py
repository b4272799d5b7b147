"""Stage `train_upscaler`: the raw images of a processed dataset's splits -> the RDN upscaler.

The processed dataset names the images of each split; the raw dataset it was made from holds them
at full size (`data.superres`). Writes into `out_dir`:

    upscaler_model.pt   the exported model (fp32 state dict + RDN sizes; weights_only-safe); its
                        `extra` holds the metrics below and the run id (register's gate reads it)
    metrics.json        val PSNR, and test PSNR / SSIM of RDN, bicubic and nearest (for DVC)
    checkpoints/        Lightning checkpoints; `last.ckpt` is what `resume=True` continues from
    mlflow_run_id       the MLflow run, continued on resume

The MLflow run holds params, the L1 loss, validation PSNR and strips LR | bicubic | ours | HR.
The test scores include LPIPS (`test/x{s}/lpips-alex/rdn`, ...) when `evaluate.lpips_weights`
names a local weights file (the same setting as the evaluation's diversity); otherwise the log
says it was skipped.
On the CPU the same seed gives the same model, and a resumed run continues exactly.

Given the generator (`image_model`), the upscaler is also scored on generated images: the
generator's image of each test layout, upscaled, against the real image of that layout resized
from the raw file to `scale` times the generator's size (`test/generated/x{s}/psnr/rdn`, ...,
bicubic's beside it). With `train_upscaler.finetune_generated` it is then fine-tuned on the same
kind of pairs from the training layouts (`finetune_steps`, L1, a plain loop that is not resumed:
a resumed run fine-tunes again from the real-image checkpoint), so that it learns the generator's
artefacts; the scores before fine-tuning are kept as `prefinetune/...`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from scene2img.config import Params
from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.processed import SPLITS, load_vocab
from scene2img.data.superres import (
    PairedCrops,
    SuperResDataset,
    raw_image_paths,
    raw_resized,
    split_image_ids,
)
from scene2img.errors import ConfigError, DataError
from scene2img.evaluation.diversity import load_lpips
from scene2img.evaluation.images import to_uint8
from scene2img.evaluation.superres import upscaler_scores
from scene2img.stages._training import TrainingResult, TrainingRun
from scene2img.training.export import (
    UPSCALER_MODEL_FILE,
    export_upscaler,
    load_generator,
    takes_masks,
)
from scene2img.training.upscaler_module import (
    SuperResDataModule,
    UpscalerModule,
    build_rdn,
    finetune,
)

log = logging.getLogger(__name__)

__all__ = ["generated_pairs", "superres_datasets", "train_upscaler"]


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


@torch.no_grad()
def generated_pairs(
    image_model: str | Path,  # image_model.pt: the generator whose images are taken up
    data_url: str | Path,  # its processed dataset: the layouts
    raw_dir: str | Path,  # the raw dataset: the real images at the upscaled size
    split: str,
    params: Params,  # train_upscaler (scale, patch, seed, batch_size), preprocess (source)
) -> PairedCrops:
    """The generator's image of each layout of `split` (ground-truth boxes, seeded latents,
    rounded to 8 bits as served) and the real image of that layout, resized from the raw file
    to `scale` times the generator's size as preprocess resizes (`data.encode.load_resized`)."""
    tp = params.train_upscaler
    G, vocab, config = load_generator(image_model)
    dataset = SceneGraphDataset(data_url, split, config["max_objects"], vocab=vocab)
    side = config["image_size"] * tp.scale
    lr = []
    with torch.random.fork_rng():
        torch.manual_seed(tp.seed)
        for batch in DataLoader(dataset, batch_size=tp.batch_size, shuffle=False):
            b, o = batch["objects"].shape
            z_img, z_obj = G.sample_latents(b, o)
            masks = batch["masks"] if takes_masks(config) else None
            lr.append(to_uint8(G(batch["objects"], batch["boxes"], batch["obj_valid"],
                                 batch["attributes"], z_img, z_obj, masks)))  # [B, 3, S, S]
    paths = raw_image_paths(raw_dir, params.preprocess, split_image_ids(data_url, split))
    hr = torch.stack([raw_resized(path, side) for path in paths])  # [N, 3, sS, sS] uint8
    return PairedCrops(torch.cat(lr), hr, tp.scale, tp.patch, tp.seed)


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
    image_model: str | Path | None = None,  # the generator: scores on (and fine-tuning with)
                                            # its images
) -> TrainingResult:
    """Train RDN on raw-image crops, score it against bicubic and nearest, export it.

    `metrics` holds val/psnr*, test/x{s}/{psnr,ssim}/{rdn,bicubic,nearest} and `steps`; with
    `image_model`, test/generated/x{s}/... too (and prefinetune/... when fine-tuned)."""
    tp = params.train_upscaler
    if tp.finetune_generated and image_model is None:
        raise ConfigError("train_upscaler.finetune_generated needs the generator: give "
                          "--image-model image_model.pt (or set it to false)")
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
        score = _scorer(net, params)
        metrics.update(score(run.datamodule.test_dataloader(), "test"))
        if image_model is not None:
            metrics.update(_finetuned(net, image_model, data_url, raw_dir, params, run, score))
        run.logger.log_metrics({k: v for k, v in metrics.items() if k.startswith("test/")},
                               step=trainer.global_step)
    metrics["steps"] = int(trainer.global_step)
    result = run.finish(trainer, UPSCALER_MODEL_FILE, metrics, lambda path: export_upscaler(
        path, net, load_vocab(data_url),
        extra={"params": dataclasses.asdict(tp), "metrics": metrics, "mlflow_run_id": run.run_id,
               "data": str(data_url), "raw": str(raw_dir),
               "image_model": None if image_model is None else str(image_model)}))
    if trainer.is_global_zero:
        s = tp.scale
        log.info("upscaler x%d: test PSNR %.2f dB (bicubic %.2f, nearest %.2f) -> %s", s,
                 metrics[f"test/x{s}/psnr/rdn"], metrics[f"test/x{s}/psnr/bicubic"],
                 metrics[f"test/x{s}/psnr/nearest"], result.model_path)
    return result


Scorer = Callable[[Iterable[dict[str, torch.Tensor]], str], dict[str, float]]


def _scorer(net: torch.nn.Module, params: Params) -> Scorer:
    """(batches, split) -> the upscaler's scores, with LPIPS when its weights are configured."""
    e, scale = params.evaluate, params.train_upscaler.scale
    if e.lpips_weights is None:
        log.info("upscaler LPIPS skipped: evaluate.lpips_weights is not set (a local copy of "
                 "torchvision's %s weights; nothing is downloaded)", e.lpips_net)
        return lambda batches, split: upscaler_scores(net, batches, scale, split)
    lpips = load_lpips(e.lpips_weights, e.lpips_net)
    return lambda batches, split: upscaler_scores(net, batches, scale, split, lpips,
                                                  f"lpips-{e.lpips_net}")


def _finetuned(net: torch.nn.Module, image_model: str | Path, data_url: str | Path,
               raw_dir: str | Path, params: Params, run: TrainingRun, score: Scorer
               ) -> dict[str, float]:
    """Scores on generated test images; with `finetune_generated`, fine-tune `net` (in place)
    on generated training images and score again (earlier scores become `prefinetune/...`)."""
    tp = params.train_upscaler
    test = generated_pairs(image_model, data_url, raw_dir, "test", params)
    scores = score(test.centre(tp.eval_size, tp.batch_size), "test/generated")
    if not tp.finetune_generated:
        return scores
    real_test = run.datamodule.test_dataloader()
    before = {**score(real_test, "test"), **scores}
    losses = finetune(net, generated_pairs(image_model, data_url, raw_dir, "train", params), tp)
    net.eval()
    log.info("fine-tuned on generated images: %d steps", len(losses))
    after = {**score(real_test, "test"),
             **score(test.centre(tp.eval_size, tp.batch_size), "test/generated")}
    loss = {"finetune/l1_first": losses[0], "finetune/l1_last": losses[-1]} if losses else {}
    return {**after, **{f"prefinetune/{k}": v for k, v in before.items()}, **loss}
