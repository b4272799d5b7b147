"""Stage `register`: log the end-to-end model (scene graph -> layout -> image, and optionally
-> upscaled image) as an MLflow pyfunc and register a version whose tags carry the evaluation
metrics, protocol and lineage.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from scene2img.config import Params
from scene2img.errors import DataError, TrackingError
from scene2img.serving.attributes import attribute_statistics
from scene2img.serving.pipeline import SceneToImage
from scene2img.serving.pyfunc import pyfunc_arguments
from scene2img.serving.schema import SceneGraph, SceneObject
from scene2img.tracking.experiments import training_experiment
from scene2img.tracking.lineage import lineage_tags, run_name
from scene2img.tracking.promotion import TAG_GATE_METRIC, TAG_METRIC_PREFIX, TAG_PROTOCOL
from scene2img.training.export import ATTRIBUTE_STATS_FILE

log = logging.getLogger(__name__)


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
    `upscaler_model`, the model also upscales its images when a request asks (`upscale`)."""
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
