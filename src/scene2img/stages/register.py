"""Stage `register`: log the end-to-end model (scene graph -> layout -> image, and optionally
-> upscaled image) as an MLflow pyfunc and register a version whose tags carry the evaluation
metrics, protocol and lineage.

BachGAN (`register_bachgan`) registers under its own name (`register.bachgan_name`), with the
same tags (and `scene2img.family`), so that the promotion gate, which compares versions of one
registered model, never compares the two families. Its gate is its gt-layout evaluation (a
BachGAN model's input is a layout: there is no predicted-layout mode); `evaluate` measures it
with the test layouts' backgrounds retrieved from the export's memory bank.

An upscaler is registered with the model only if it beats bicubic: its test PSNR, recorded in its
export by `train_upscaler`, must exceed bicubic's on the same images by more than
`register.upscaler_margin_db`; otherwise nothing is registered (`check_upscaler`).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from scene2img.config import Params
from scene2img.errors import DataError, ModelError, TrackingError
from scene2img.serving.attributes import attribute_statistics
from scene2img.serving.bachgan import LayoutToImage
from scene2img.serving.pipeline import SceneToImage
from scene2img.serving.pyfunc import bachgan_pyfunc_arguments, pyfunc_arguments
from scene2img.serving.schema import SceneGraph, SceneObject
from scene2img.tracking.experiments import training_experiment
from scene2img.tracking.lineage import lineage_tags, run_name
from scene2img.tracking.promotion import TAG_GATE_METRIC, TAG_METRIC_PREFIX, TAG_PROTOCOL
from scene2img.training.export import ATTRIBUTE_STATS_FILE, upscaler_record

LOSTGAN, BACHGAN = "lostgan", "bachgan"  # the model families (tag `scene2img.family`)
BACHGAN_GATE_MODE = "gt-layout"  # BachGAN is given the layout: its one evaluation mode

log = logging.getLogger(__name__)
TAG_UPSCALER = "scene2img.upscaler"  # the upscaler's run and test PSNR, JSON (a version tag)


@dataclass
class RegisterResult:
    name: str
    version: str
    run_id: str
    model_uri: str  # models:/NAME/VERSION
    gate_metric: str
    gate_value: float


def _val_record(data_url: str):
    from scene2img.data.processed import split_url
    from scene2img.data.shards import ShardReader

    return ShardReader(split_url(data_url, "val"))[0]


def example_layout(model: LayoutToImage, data_url: str) -> SceneGraph:
    """A real foreground layout (names and boxes) from the dataset's val split, as BachGAN's
    input example: the first record's foreground objects (all of them in a salient-only
    dataset)."""
    rec = _val_record(data_url)
    names = model.vocab.object_idx_to_name
    objects = [SceneObject(names[c], None, tuple(round(float(v), 4) for v in box))
               for c, box in zip(rec.objects.tolist(), rec.boxes, strict=True)
               if c in model.foreground][: model.max_objects - 1]
    if not objects:
        raise DataError(f"{data_url}: the first val record (image {rec.image_id}) has no "
                        "foreground object for BachGAN's input example; preprocess with "
                        "preprocess.ade20k.salient_only=true")
    return SceneGraph(objects)


def example_graph(model: SceneToImage, data_url: str) -> SceneGraph:
    """A real scene graph from the dataset's val split, as the input example."""
    rec = _val_record(data_url)
    v = model.vocab
    n = len(rec.objects) - 1  # without __image__
    objects = [SceneObject(v.object_idx_to_name[c], [v.attribute_idx_to_name[a] for a in attrs])
               for c, attrs in zip(rec.objects[:n].tolist(), rec.attributes[:n], strict=True)]
    rels = [(s, v.pred_idx_to_name[p], o) for s, p, o in rec.triples.tolist() if p != 0]
    return SceneGraph(objects[: model.max_objects - 1],
                      [r for r in rels if max(r[0], r[2]) < model.max_objects - 1])


def _gate(evaluation: Path, mode: str, metric: str) -> tuple[str, dict, dict[str, float]]:
    """From evaluate's metrics.json: the gate metric's full name for `mode`, the mode's
    protocol, and all metrics."""
    try:
        report = json.loads(Path(evaluation).read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise DataError(f"{evaluation}: evaluation results not readable ({exc}); run "
                        "`scene2img evaluate` first") from None
    protocol = report.get("protocols", {}).get(mode)
    if protocol is None:
        raise DataError(f"{evaluation}: no {mode!r} evaluation; the gate needs it")
    suffix = "_predlayout" if mode == "pred-layout" else ""
    gate = f"{metric}_{protocol['backbone']}_{protocol['split']}{suffix}"
    metrics = report["metrics"]
    if gate not in metrics:
        raise DataError(f"{evaluation}: gate metric {gate!r} missing; has {sorted(metrics)}")
    return gate, protocol, metrics


def _log_and_register(
    params: Params,
    name: str,  # the registered model
    family: str,  # lostgan | bachgan (a tag)
    what: str,  # the run's name starts with it
    data_url: str,
    arguments: dict,  # mlflow.pyfunc.log_model's, but `name`
    gate: tuple[str, dict, dict[str, float]],  # `_gate`
    description: str,  # the version's, after the gate's value
    kfp_run_id: str | None,
    version_tags: dict[str, str] | None = None,  # more tags of the version
) -> RegisterResult:
    """Log the pyfunc in a `register` run and register it as a version of `name` whose tags
    carry the gate metric, the protocol, every metric and the lineage."""
    gate_metric, protocol, metrics = gate
    mlflow.set_tracking_uri(params.tracking.uri)
    mlflow.set_experiment(experiment_id=training_experiment(MlflowClient(params.tracking.uri),
                                                            params.tracking.experiment))
    tags = lineage_tags(params.to_dict(), data_url, stage="register", kfp_run_id=kfp_run_id,
                        extra={"family": family})
    with mlflow.start_run(run_name=run_name(what, params.tracking.config, tags), tags=tags) as run:
        mlflow.log_metrics(metrics)
        info = mlflow.pyfunc.log_model(name="model", **arguments)
    version_tags = {**tags, TAG_GATE_METRIC: gate_metric,
                    TAG_PROTOCOL: json.dumps(protocol, sort_keys=True),
                    **{TAG_METRIC_PREFIX + k: repr(float(v)) for k, v in metrics.items()},
                    **(version_tags or {})}
    try:
        mv = mlflow.register_model(info.model_uri, name, tags=version_tags)
    except mlflow.exceptions.MlflowException as exc:
        raise TrackingError(f"registering {name!r} failed: {exc.message}") from None
    value = float(metrics[gate_metric])
    MlflowClient(params.tracking.uri).update_model_version(
        name, mv.version, f"{gate_metric} = {value:.4f}; dataset {data_url}; {description}")
    log.info("registered %s v%s (%s = %.4f)", name, mv.version, gate_metric, value)
    return RegisterResult(name, str(mv.version), run.info.run_id, f"models:/{name}/{mv.version}",
                          gate_metric, value)


def check_upscaler(
    path: Path,  # upscaler_model.pt from train-upscaler
    margin_db: float,  # register.upscaler_margin_db
) -> dict[str, object]:
    """The upscaler's recorded test figures, if its PSNR beats bicubic's by more than
    `margin_db`; otherwise `ModelError`, one line naming the file, its run and its figures."""
    config, extra = upscaler_record(path)
    s, run_id = config.get("scale"), extra.get("mlflow_run_id")
    who = f"upscaler {path}" + (f" (MLflow run {run_id})" if run_id else "")
    metrics = extra.get("metrics") if isinstance(extra.get("metrics"), dict) else {}
    ours, bicubic = metrics.get(f"test/x{s}/psnr/rdn"), metrics.get(f"test/x{s}/psnr/bicubic")
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (ours, bicubic)):
        raise ModelError(f"{who}: no recorded x{s} test PSNR of the upscaler and bicubic "
                         f"(test/x{s}/psnr/rdn, test/x{s}/psnr/bicubic in the export); export "
                         "it with `scene2img train-upscaler`, which scores it")
    if ours - bicubic <= margin_db:
        raise ModelError(f"{who}: x{s} test PSNR {ours:.2f} dB vs bicubic {bicubic:.2f} dB "
                         f"({ours - bicubic:+.2f} dB), not more than register.upscaler_margin_db "
                         f"= {margin_db:g} dB above; nothing registered (train it longer, or "
                         "register without --upscaler-model)")
    return {"scale": s, "mlflow_run_id": run_id, "test_psnr": float(ours),
            "test_psnr_bicubic": float(bicubic)}


def register(
    layout_model: Path,  # layout_model.pt from train-layout
    image_model: Path,  # image_model.pt from train-image
    data_url: str,  # the processed dataset both were trained on
    evaluation: Path,  # metrics.json from evaluate
    params: Params,
    kfp_run_id: str | None = None,  # the KFP run that launched this (a lineage tag)
    upscaler_model: Path | None = None,  # upscaler_model.pt from train-upscaler: served `upscale`
) -> RegisterResult:
    """Log and register the end-to-end model; tags carry metrics, protocol and lineage. With
    `upscaler_model`, the model also upscales its images when a request asks (`upscale`); it
    must pass `check_upscaler` first."""
    gate = _gate(evaluation, params.register.gate_mode, params.register.gate_metric)
    upscaler_figures = None if upscaler_model is None \
        else check_upscaler(Path(upscaler_model), params.register.upscaler_margin_db)
    model = SceneToImage.from_files(layout_model, image_model, limits=params.serve,
                                    upscaler_path=upscaler_model)
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = Path(tmp) / ATTRIBUTE_STATS_FILE
        stats_path.write_text(json.dumps(attribute_statistics(data_url, model.vocab)))
        model.attribute_stats = json.loads(stats_path.read_text())
        graph = example_graph(model, data_url)
        arguments = pyfunc_arguments(model, graph, layout_model, image_model, stats_path,
                                     upscaler_model)
        upscaler = f"x{model.upscale_factor}" if model.upscaler is not None else "none"
        return _log_and_register(params, params.register.name, LOSTGAN,
                                 f"register {model.generator_config['generator']}", data_url,
                                 arguments, gate, f"upscaler {upscaler}", kfp_run_id,
                                 None if upscaler_figures is None else
                                 {TAG_UPSCALER: json.dumps(upscaler_figures, sort_keys=True)})


def register_bachgan(
    bachgan_model: Path,  # bachgan_model.pt from train-bachgan (generator + memory bank)
    data_url: str,  # the processed ADE20K dataset it was trained on
    evaluation: Path,  # metrics.json from evaluate (its gt-layout mode)
    params: Params,  # register.bachgan_name, register.gate_metric, serve, tracking
    kfp_run_id: str | None = None,  # the KFP run that launched this (a lineage tag)
) -> RegisterResult:
    """Log BachGAN (foreground layout -> retrieved background -> image) as a pyfunc and register
    it under `register.bachgan_name`, gated on its gt-layout evaluation."""
    gate = _gate(evaluation, BACHGAN_GATE_MODE, params.register.gate_metric)
    model = LayoutToImage.from_file(bachgan_model, limits=params.serve)
    arguments = bachgan_pyfunc_arguments(model, example_layout(model, data_url), bachgan_model)
    bank = (f"memory bank {len(model.image_ids)} maps, m {model.m}, class split "
            f"{model.config['class_split']}")
    return _log_and_register(params, params.register.bachgan_name, BACHGAN, "register bachgan",
                             data_url, arguments, gate, bank, kfp_run_id)
