"""What each KFP component calls: one function per pipeline step, a thin call of the stage function.

Components (`components/`) only turn KFP artifacts into paths and back; these functions take the
step's params (the JSON its component received: only the keys its stage reads, see
`scene2img.pipeline.params`), build the typed params, call the stage function from
`scene2img.stages` and return a small JSON-able dict: metadata for the output artifacts, scalar
metrics, a Markdown report. Each imports its stage when it runs, so a task loads only what its
step needs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from scene2img.pipeline import trainjob
from scene2img.pipeline.params import current_kfp_run_id, progress_bars, typed


def scalars(result: Any, prefix: str = "") -> dict[str, float]:
    """Finite numbers found in a stage result (dataclass, dict, nested), keys dotted."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    out: dict[str, float] = {}
    if isinstance(result, dict):
        for key, value in result.items():
            name = f"{prefix}{key}"
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                out[name] = float(value)
            elif isinstance(value, dict) or dataclasses.is_dataclass(value):
                out.update(scalars(value, name + "."))
    return out


def _jsonable(result: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    if not isinstance(result, dict):
        result = {"result": result}
    return json.loads(json.dumps(result, default=str))


# --------------------------------------------------------------------------------------------
# the steps


def record_metrics(artifact: Any, values: dict[str, float]) -> None:
    """Log scalar metrics on a KFP `Metrics` artifact, and write them to its file too: the local
    runner counts a Metrics artifact without a file as a cache miss."""
    for name, value in values.items():
        artifact.log_metric(name, value)
    with open(artifact.path, "w") as f:
        json.dump(values, f, indent=1, sort_keys=True)


def ingest(params: str | dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The raw dataset at `pipeline.ingest`'s data version (or the toy world) -> `out_dir`."""
    from scene2img.stages.ingest import ingest as stage

    p = typed("ingest", params)
    result = stage(Path(out_dir), p.pipeline.ingest, p.preprocess.source, p.toyworld)
    report = "\n".join([f"# ingest: {result.source} ({result.format})", "",
                        f"- data version: `{result.data_version}`", f"- files: {result.files}"])
    return {"metadata": result.metadata(), "report": report}


def preprocess(params: str | dict[str, Any], raw_dir: str, out_dir: str,
               raw_metadata: dict[str, Any]) -> dict[str, Any]:
    """Raw dataset -> processed dataset; the raw data version travels on in the metadata."""
    from scene2img.data.summary import format_summary
    from scene2img.stages.preprocess import preprocess as stage

    p = typed("preprocess", params)
    result = stage(Path(raw_dir), Path(out_dir), p.preprocess, progress=progress_bars())
    meta = {**{k: v for k, v in raw_metadata.items() if k in ("data_version", "rev", "dvc_hash")},
            "source": result.source, "manifest_sha256": result.manifest_sha256,
            **{f"count_{k}": v for k, v in result.counts.items()}}
    report = f"# preprocess\n\n```\n{format_summary(result.out_dir)}\n```\n"
    return {"metadata": meta, "report": report}


def train(step: str, params: str | dict[str, Any], data_dir: str, data_uri: str, out_dir: str,
          out_uri: str) -> dict[str, Any]:
    """train_layout / train_image / train_bachgan: in this process, or as a multi-node
    `TrainJob`."""
    p = typed(step, params)
    if p.pipeline.train_nodes > 1:
        manifest = trainjob.build_trainjob(step, p, data_uri=data_uri, out_uri=out_uri,
                                           kfp_run_id=current_kfp_run_id())
        status = trainjob.apply_and_wait(manifest, p.pipeline.trainjob)
        return {"metadata": {"trainjob": manifest["metadata"]["name"], "status": status},
                "metrics": {}}
    result = trainjob.train_here(step, p, data_dir, out_dir, current_kfp_run_id())
    return {"metadata": {"stage": step, "mlflow_run_id": result.run_id or ""},
            "metrics": scalars(result.metrics)}


def train_task(step: str, params: str | dict[str, Any], processed: Any, model: Any,
               metrics: Any) -> None:
    """A training component's body (train_layout, train_image, train_bachgan): `train`, then the
    model artifact's metadata (the dataset's and the run's) and the metrics artifact."""
    out = train(step, params, processed.path, processed.uri, model.path, model.uri)
    model.metadata.update({**dict(processed.metadata), **out["metadata"]})
    record_metrics(metrics, out["metrics"])


def train_upscaler(params: str | dict[str, Any], data_dir: str, raw_dir: str,
                   out_dir: str) -> dict[str, Any]:
    """train_upscaler: the RDN upscaler on crops of the raw images of the processed dataset's
    splits, always in this pod (it reads the raw folder, which a TrainJob's nodes do not have)."""
    from scene2img.stages.train_upscaler import train_upscaler as stage

    p = typed("train_upscaler", params)
    result = stage(data_dir, raw_dir, Path(out_dir), p, progress=progress_bars(),
                   kfp_run_id=current_kfp_run_id())
    return {"metadata": {"stage": "train_upscaler", "mlflow_run_id": result.run_id or "",
                         "scale": p.train_upscaler.scale},
            "metrics": scalars(result.metrics)}


def _model_files(layout_dir: str, image_dir: str) -> tuple[Path, Path]:
    """The exported models inside the training steps' output folders."""
    from scene2img.training.export import IMAGE_MODEL_FILE, LAYOUT_MODEL_FILE

    return Path(layout_dir) / LAYOUT_MODEL_FILE, Path(image_dir) / IMAGE_MODEL_FILE


def evaluate(params: str | dict[str, Any], data_dir: str, layout_dir: str | None, image_dir: str,
             out_dir: str) -> dict[str, Any]:
    """Measure the candidate on the test split; say whether it passes the gate to the registry.
    BachGAN (no `layout_dir`): train_bachgan's folder as `image_dir`, evaluated on the data's
    layouts."""
    from scene2img.stages.evaluate import evaluate as stage
    from scene2img.training.export import BACHGAN_MODEL_FILE

    p = typed("evaluate", params)
    if layout_dir is None:
        layout_model, image_model = None, Path(image_dir) / BACHGAN_MODEL_FILE
    else:
        layout_model, image_model = _model_files(layout_dir, image_dir)
    result = stage(data_dir, image_model, layout_model, Path(out_dir), p,
                   kfp_run_id=current_kfp_run_id())
    metrics = scalars(result.metrics)
    passed, reason = gate(metrics, p.pipeline.gate)
    return {"metrics": metrics, "passed": passed, "reason": reason,
            "run_id": result.run_id or ""}


def gate(metrics: dict[str, float], bounds: dict[str, float]) -> tuple[bool, str]:
    """Register only a candidate with metrics, all finite, each within its bound (lower is better).

    Example:
        >>> gate({"fid_inception_test": 40.0}, {"fid_inception_test": 50.0})
        (True, 'all 1 metrics finite; fid_inception_test 40 <= 50')
        >>> gate({}, {})[0]
        False
    """
    if not metrics:
        return False, "evaluation produced no metrics"
    bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    if bad:
        return False, f"not finite: {', '.join(bad)}"
    checks = []
    for name, bound in sorted(bounds.items()):
        if name not in metrics:
            return False, f"gate metric {name!r} missing from the evaluation ({sorted(metrics)})"
        if metrics[name] > bound:
            return False, f"{name} {metrics[name]:g} > {bound:g}"
        checks.append(f"{name} {metrics[name]:g} <= {bound:g}")
    return True, "; ".join([f"all {len(metrics)} metrics finite", *checks])


def register(params: str | dict[str, Any], layout_dir: str, image_dir: str, data_dir: str,
             eval_dir: str, upscaler_dir: str | None = None) -> dict[str, Any]:
    """Register the end-to-end model (graph -> layout -> image, and -> upscaled image when
    train_upscaler's folder is given) in the MLflow registry."""
    from scene2img.stages.register import register as stage
    from scene2img.training.export import METRICS_FILE, UPSCALER_MODEL_FILE

    p = typed("register", params)
    layout_model, image_model = _model_files(layout_dir, image_dir)
    upscaler = Path(upscaler_dir) / UPSCALER_MODEL_FILE if upscaler_dir else None
    result = stage(layout_model, image_model, data_dir, Path(eval_dir) / METRICS_FILE, p,
                   kfp_run_id=current_kfp_run_id(), upscaler_model=upscaler)
    return {**_jsonable(result), "upscaler": str(upscaler) if upscaler else None}


def register_bachgan(params: str | dict[str, Any], bachgan_dir: str, data_dir: str,
                     eval_dir: str) -> dict[str, Any]:
    """Register BachGAN (foreground layout -> retrieved background -> image) under
    `register.bachgan_name`."""
    from scene2img.stages.register import register_bachgan as stage
    from scene2img.training.export import BACHGAN_MODEL_FILE, METRICS_FILE

    result = stage(Path(bachgan_dir) / BACHGAN_MODEL_FILE, data_dir,
                   Path(eval_dir) / METRICS_FILE, typed("register", params),
                   kfp_run_id=current_kfp_run_id())
    return {**_jsonable(result), "upscaler": None}


def promote(params: str | dict[str, Any], model_name: str, version: str) -> dict[str, Any]:
    """The promotion gate: @champion moves to `version` only if it is better on the same
    protocol; otherwise the version stays a challenger."""
    from scene2img.stages.promote import promote as stage

    result = stage(typed("promote", params), version=version, name=model_name)
    out = _jsonable(result)
    out["alias"] = "champion" if str(result.champion) == str(version) else "challenger"
    out["summary"] = result.summary()
    return out
