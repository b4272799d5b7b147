"""Stage `register`: log the end-to-end model (scene graph -> layout -> image, and optionally
-> upscaled image) as an MLflow pyfunc and register a version whose tags carry the evaluation
metrics, protocol and lineage.

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
from scene2img.serving.pipeline import SceneToImage
from scene2img.serving.pyfunc import pyfunc_arguments
from scene2img.serving.schema import SceneGraph, SceneObject
from scene2img.tracking.experiments import training_experiment
from scene2img.tracking.lineage import lineage_tags, run_name
from scene2img.tracking.promotion import TAG_GATE_METRIC, TAG_METRIC_PREFIX, TAG_PROTOCOL
from scene2img.training.export import ATTRIBUTE_STATS_FILE, upscaler_record

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


def example_graph(model: SceneToImage, data_url: str) -> SceneGraph:
    """A real scene graph from the dataset's val split, as the input example."""
    from scene2img.data.processed import split_url
    from scene2img.data.shards import ShardReader

    rec = ShardReader(split_url(data_url, "val"))[0]
    v = model.vocab
    n = len(rec.objects) - 1  # without __image__
    objects = [SceneObject(v.object_idx_to_name[c], [v.attribute_idx_to_name[a] for a in attrs])
               for c, attrs in zip(rec.objects[:n].tolist(), rec.attributes[:n], strict=True)]
    rels = [(s, v.pred_idx_to_name[p], o) for s, p, o in rec.triples.tolist() if p != 0]
    return SceneGraph(objects[: model.max_objects - 1],
                      [r for r in rels if max(r[0], r[2]) < model.max_objects - 1])


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
    try:
        report = json.loads(Path(evaluation).read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise DataError(f"{evaluation}: evaluation results not readable ({exc}); run "
                        "`scene2img evaluate` first") from None
    mode = params.register.gate_mode
    protocol = report.get("protocols", {}).get(mode)
    if protocol is None:
        raise DataError(f"{evaluation}: no {mode!r} evaluation; register.gate_mode needs it")
    suffix = "_predlayout" if mode == "pred-layout" else ""
    gate = f"{params.register.gate_metric}_{protocol['backbone']}_{protocol['split']}{suffix}"
    metrics = report["metrics"]
    if gate not in metrics:
        raise DataError(f"{evaluation}: gate metric {gate!r} missing; has {sorted(metrics)}")
    upscaler_figures = None if upscaler_model is None \
        else check_upscaler(Path(upscaler_model), params.register.upscaler_margin_db)

    model = SceneToImage.from_files(layout_model, image_model, limits=params.serve,
                                    upscaler_path=upscaler_model)
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = Path(tmp) / ATTRIBUTE_STATS_FILE
        stats_path.write_text(json.dumps(attribute_statistics(data_url, model.vocab)))
        model.attribute_stats = json.loads(stats_path.read_text())
        graph = example_graph(model, data_url)

        mlflow.set_tracking_uri(params.tracking.uri)
        mlflow.set_experiment(experiment_id=training_experiment(MlflowClient(params.tracking.uri),
                                                          params.tracking.experiment))
        tags = lineage_tags(params.to_dict(), data_url, stage="register",
                            kfp_run_id=kfp_run_id)
        name = run_name(f"register {model.generator_config['generator']}", params.tracking.config,
                        tags)
        with mlflow.start_run(run_name=name, tags=tags) as run:
            mlflow.log_metrics(metrics)
            info = mlflow.pyfunc.log_model(
                name="model",
                **pyfunc_arguments(model, graph, layout_model, image_model, stats_path,
                                   upscaler_model),
            )
    version_tags = {**tags, TAG_GATE_METRIC: gate,
                    TAG_PROTOCOL: json.dumps(protocol, sort_keys=True),
                    **{TAG_METRIC_PREFIX + k: repr(float(v)) for k, v in metrics.items()}}
    if upscaler_figures is not None:
        version_tags[TAG_UPSCALER] = json.dumps(upscaler_figures, sort_keys=True)
    try:
        mv = mlflow.register_model(info.model_uri, params.register.name, tags=version_tags)
    except mlflow.exceptions.MlflowException as exc:
        raise TrackingError(f"registering {params.register.name!r} failed: {exc.message}") \
            from None
    client = MlflowClient(params.tracking.uri)
    upscaler = f"x{model.upscale_factor}" if model.upscaler is not None else "none"
    client.update_model_version(params.register.name, mv.version,
                                f"{gate} = {metrics[gate]:.4f}; dataset {data_url}; "
                                f"upscaler {upscaler}")
    log.info("registered %s v%s (%s = %.4f)", params.register.name, mv.version, gate,
             metrics[gate])
    return RegisterResult(params.register.name, str(mv.version), run.info.run_id,
                          f"models:/{params.register.name}/{mv.version}", gate,
                          float(metrics[gate]))
