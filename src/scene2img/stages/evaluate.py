"""Stage `evaluate`: FID and friends on a split, under a recorded protocol, in two modes:
ground-truth layout -> image, and scene graph -> predicted layout -> image.

A BachGAN export (`bachgan_model.pt` as the image model) is evaluated in the gt-layout mode only
(its input is the layout): each test layout's backgrounds are retrieved from the export's memory
bank, as served (`models.bachgan.BachGANWithMemory`); its protocol records
`masks: retrieved-backgrounds` and `latents: none` (the generator has no latent).

Writes `metrics.json` (a DVC metric): all metrics (names carry backbone, split and mode), the
protocol of each mode, per-class SceneFID and notes; and per mode a sample grid and an HTML
report, all logged to MLflow with the protocol as tags.

With an upscaler (`upscaler_model`, and the raw dataset the processed one was made from), each
mode is measured a second time at the upscaled size under its own protocol
(`{mode}_512_rdn_x4`): the same generated images (same seed, same latents), taken up by the
upscaler as serving does, against the split's real images resized from the raw files to 512 px as
preprocess resizes them to 128 (`fid_512_rdn_x4_inception_test_predlayout` beside
`fid_inception_test_predlayout`). Only the metrics named with the upscaler are kept from it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import torch
from mlflow import MlflowClient
from torch.utils.data import DataLoader

from scene2img.config import Params
from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.processed import manifest_sha256, read_manifest
from scene2img.data.superres import raw_image_paths, raw_resized, split_image_ids
from scene2img.errors import ConfigError, DataError
from scene2img.evaluation.backbones import build_backbone, sha256_state
from scene2img.evaluation.evaluator import (
    Generated,
    RealFeatures,
    build_protocol,
    evaluate_images,
)
from scene2img.evaluation.images import to_uint8
from scene2img.evaluation.protocol import RETRIEVED_BACKGROUNDS
from scene2img.evaluation.report import write_grid, write_report
from scene2img.files import atomic_write_json
from scene2img.models.bachgan import BachGANWithMemory
from scene2img.serving.tensors import predict_layout
from scene2img.tracking.experiments import training_experiment
from scene2img.tracking.lineage import flatten_params, lineage_tags, run_name
from scene2img.training.export import (
    BACHGAN,
    METRICS_FILE,
    BachGANExport,
    check_mask_sizes,
    export_kind,
    load_bachgan,
    load_generator,
    load_layout_model,
    load_upscaler,
    report_file,
    samples_file,
    takes_masks,
)

log = logging.getLogger(__name__)


@dataclass
class EvaluateResult:
    metrics: dict[str, float]
    metrics_path: Path
    run_id: str | None


def mask_source(given_masks: bool, mode: str) -> str:
    """The protocol's `masks`: what the generator draws with in `mode`."""
    if not given_masks:
        return "regressed"
    return "ground-truth" if mode == "gt-layout" else "layout-model"


def generate_fn(
    generator: torch.nn.Module,  # exported image generator (eval mode)
    layout_model: torch.nn.Module | None,  # needed in pred-layout mode
    mode: str,  # gt-layout | pred-layout
    given_masks: bool,  # the generator was trained on given masks (export config `masks`)
    truncation: float | None,  # latents truncated at +-this (LostGAN: 2.0); None: N(0, 1)
):
    """(batch, sample) -> images (gt-layout) or Generated(images, predicted boxes).

    A generator trained with ground-truth masks is given the data's masks in gt-layout mode and
    the layout model's predicted masks in pred-layout mode; others regress their own.
    """

    @torch.no_grad()
    def generate(batch: dict[str, torch.Tensor], sample: int):
        b, o = batch["objects"].shape
        z_img, z_obj = generator.sample_latents(b, o, device=batch["objects"].device,
                                                truncation=truncation)
        boxes, masks = batch["boxes"], None
        if given_masks and mode == "gt-layout":
            if not bool(batch["has_masks"].all()):
                raise DataError("the image model takes ground-truth masks but this split has "
                                "images without masks; evaluate it on data with masks")
            masks = batch["masks"]
        if mode == "pred-layout":  # as served: `serving.tensors.predict_layout`
            boxes, pred_masks = predict_layout(layout_model, batch)
            masks = pred_masks if given_masks else None
        images = generator(batch["objects"], boxes, batch["obj_valid"], batch["attributes"],
                           z_img, z_obj, masks)
        return Generated(images, boxes) if mode == "pred-layout" else images

    return generate


def bachgan_generate_fn(exported: BachGANExport, device: str | torch.device):
    """(batch, sample) -> images: BachGAN on the batch's layouts, backgrounds retrieved from its
    memory bank (no latent: every sample of a layout is the same image)."""
    painter = BachGANWithMemory(exported.generator.to(device), exported.bank.maps,
                                exported.config["retrieval"]["m"],
                                exported.config["retrieval"]["grid"])

    def generate(batch: dict[str, torch.Tensor], sample: int) -> torch.Tensor:
        return painter(batch["objects"], batch["boxes"], batch["obj_valid"])[0]

    return generate


def upscaled_generate_fn(generate, upscaler: torch.nn.Module):
    """`generate` with its images taken up by `upscaler`, as serving does
    (`SceneToImage.upscaled`): rounded to 8 bits first (the image as it would be saved)."""

    @torch.no_grad()
    def generate_up(batch: dict[str, torch.Tensor], sample: int):
        out = generate(batch, sample)
        images = out.images if isinstance(out, Generated) else out  # [B, 3, S, S], [-1, 1]
        lr = to_uint8(images).float() / 255  # [B, 3, S, S] in [0, 1], 8-bit
        sr = upscaler(lr).clamp(0, 1) * 2 - 1  # [B, 3, fS, fS] in [-1, 1]
        return Generated(sr, out.boxes) if isinstance(out, Generated) else sr

    return generate_up


def raw_batches(loader: DataLoader, paths: list[Path], size: int
                ) -> Iterator[dict[str, torch.Tensor]]:
    """`loader`'s batches with `image` replaced by the raw image of each record (by its `index`
    in the split), resized to `size` x `size` as preprocess resizes (`data.encode`)."""
    for batch in loader:
        images = torch.stack([raw_resized(paths[i], size) for i in batch["index"].tolist()])
        yield {**batch, "image": images.float() / 127.5 - 1}  # [B, 3, size, size] in [-1, 1]


def evaluate(
    data_url: str,  # processed dataset
    image_model: Path,  # image_model.pt (EMA generator)
    layout_model: Path | None,  # layout_model.pt; None: gt-layout only
    out_dir: Path,  # metrics.json, grids and reports
    params: Params,
    log_to_mlflow: bool = True,
    kfp_run_id: str | None = None,  # the KFP run that launched this (a lineage tag)
    upscaler_model: Path | None = None,  # upscaler_model.pt: also measured at the upscaled size
    raw_dir: Path | None = None,  # the raw dataset: the real images at the upscaled size
) -> EvaluateResult:
    """Evaluate the generator (and the layout model) on `params.evaluate.split`; with an
    upscaler, also its upscaled images against the raw images at that size."""
    p = params.evaluate
    if (upscaler_model is None) != (raw_dir is None):
        raise ConfigError("evaluate: --upscaler-model and --raw go together (the real images at "
                          "the upscaled size are read from the raw dataset)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bachgan = None
    if export_kind(image_model) == BACHGAN:
        if layout_model is not None:
            raise ConfigError(f"{layout_model}: a BachGAN model ({image_model}) is given its "
                              "layout; it has no predicted-layout mode: leave out the layout model")
        bachgan = load_bachgan(image_model)
        generator, vocab, gen_config = bachgan.generator, bachgan.vocab, bachgan.config
    else:
        generator, vocab, gen_config = load_generator(image_model)
        generator = generator.to(device)
    gt_masks = takes_masks(gen_config)
    layout = None
    modes = ["gt-layout"]
    if layout_model is not None:
        layout, _, layout_config = load_layout_model(layout_model)
        check_mask_sizes(gen_config, layout_config, f"{image_model} / {layout_model}")
        layout = layout.to(device)
        modes.append("pred-layout")
    weights = "; ".join(f"{k} {gen_config[k]}" for k in ("weights", "batch_norm")
                        if k in gen_config) or "unrecorded"
    backbone = build_backbone(p.backbone, p.inception_weights, p.random_inception_seed,
                              p.antialias)
    manifest = read_manifest(data_url)
    dataset = SceneGraphDataset(data_url, p.split, gen_config["max_objects"], vocab=vocab)
    loader = DataLoader(dataset, batch_size=p.batch_size, shuffle=False)
    upscaler, raw_paths = None, []
    if upscaler_model is not None:
        upscaler, up_config = load_upscaler(upscaler_model)
        upscaler = upscaler.to(device)
        up_tag = f"rdn_x{up_config['scale']}:{sha256_state(upscaler.state_dict())}"
        raw_paths = raw_image_paths(raw_dir, params.preprocess, split_image_ids(data_url, p.split))

    report: dict = {"metrics": {}, "protocols": {}, "per_class_scenefid": {}, "notes": {}}
    artifacts = []
    # The modes share the real images (and, upscaled, the raw ones): the backbone sees them once.
    real_features, real_upscaled = RealFeatures(), RealFeatures()
    for mode in modes:
        protocol = build_protocol(p, backbone, manifest["params"]["image_size"],
                                  manifest_sha256(data_url), manifest["source"], mode,
                                  masks=mask_source(gt_masks, mode), generator_weights=weights)
        if bachgan is not None:
            protocol = dataclasses.replace(protocol, masks=RETRIEVED_BACKGROUNDS, latents="none")
            generate = bachgan_generate_fn(bachgan, device)
        else:
            generate = generate_fn(generator, layout, mode, gt_masks, p.truncation)
        result = evaluate_images(loader, generate, protocol, device,
                                 backbone=backbone, class_names=vocab.object_idx_to_name,
                                 max_images=p.max_images, report_samples=p.report_samples,
                                 progress=True, real_features=real_features)
        report["metrics"].update(result.metrics)
        report["protocols"][mode] = result.protocol.to_dict()
        report["per_class_scenefid"][mode] = result.per_class_scenefid
        report["notes"][mode] = result.notes
        artifacts.append(write_grid(result, out_dir / samples_file(mode)))
        artifacts.append(write_report(result, out_dir / report_file(mode),
                                      title=f"scene2img evaluation ({mode}, {p.split})"))
        if upscaler is not None:
            up = dataclasses.replace(protocol, upscaler=up_tag,
                                     image_size=protocol.image_size * upscaler.scale)
            tag = f"{up.image_size}_{up_tag.split(':')[0]}"
            result = evaluate_images(raw_batches(loader, raw_paths, up.image_size),
                                     upscaled_generate_fn(generate, upscaler), up, device,
                                     backbone=backbone, class_names=vocab.object_idx_to_name,
                                     max_images=p.max_images, report_samples=1, progress=True,
                                     real_features=real_upscaled)
            report["metrics"].update({k: v for k, v in result.metrics.items() if f"_{tag}_" in k})
            report["protocols"][f"{mode}_{tag}"] = result.protocol.to_dict()
            report["notes"][f"{mode}_{tag}"] = result.notes
    metrics_path = atomic_write_json(out_dir / METRICS_FILE, report)

    run_id = None
    if log_to_mlflow:
        mlflow.set_tracking_uri(params.tracking.uri)
        mlflow.set_experiment(experiment_id=training_experiment(MlflowClient(params.tracking.uri),
                                                          params.tracking.experiment))
        tags = lineage_tags(params.to_dict(), data_url, stage="evaluate",
                            kfp_run_id=kfp_run_id)
        for mode, proto in report["protocols"].items():
            tags.update({f"eval.{mode}.{k}": str(v) for k, v in proto.items()})
        name = run_name(f"evaluate {p.split} {gen_config.get('generator', BACHGAN)}",
                        params.tracking.config, tags)
        with mlflow.start_run(run_name=name, tags=tags) as run:
            mlflow.log_params(flatten_params({"evaluate": params.to_dict()["evaluate"]}))
            mlflow.log_metrics(report["metrics"])
            for path in (*artifacts, metrics_path):
                mlflow.log_artifact(str(path), "evaluation")
            run_id = run.info.run_id
    for name, value in sorted(report["metrics"].items()):
        log.info("%s = %.4f", name, value)
    return EvaluateResult(report["metrics"], metrics_path, run_id)
