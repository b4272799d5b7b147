"""What each KFP component calls: one function per pipeline step, a thin call of the stage function.

Components (`components/`) only turn KFP artifacts into paths and back; these functions take the
resolved params as a plain dict (what a KFP pipeline parameter carries), build the typed params,
call the stage function from `scene2img.stages` and return a small JSON-able dict: metadata for the
output artifacts, scalar metrics, a Markdown report. Stage modules are imported when the step runs,
so a step whose stage has not been written yet fails with a `PipelineError` naming it, and the rest
of the DAG still compiles.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scene2img.config import Params, params_from_dict
from scene2img.pipeline import PipelineError

log = logging.getLogger(__name__)

# step -> (module, function): the stage function each component calls.
STAGES: dict[str, tuple[str, str]] = {
    "ingest": ("scene2img.stages.ingest", "ingest"),
    "preprocess": ("scene2img.stages.preprocess", "preprocess"),
    "train_layout": ("scene2img.stages.train_layout", "train_layout"),
    "train_image": ("scene2img.stages.train_image", "train_image"),
    "evaluate": ("scene2img.stages.evaluate", "evaluate"),
    "register": ("scene2img.stages.register", "register"),
    "promote": ("scene2img.stages.promote", "promote"),
}
KFP_RUN_ID_ENV = "SCENE2IMG_KFP_RUN_ID"  # read by scene2img.tracking.lineage


def stage_function(step: str) -> Callable[..., Any]:
    """The stage function behind `step`; a `PipelineError` if it does not exist (yet)."""
    module_name, func_name = STAGES[step]
    if importlib.util.find_spec(module_name) is None:
        path = "src/" + module_name.replace(".", "/") + ".py"
        raise PipelineError(f"pipeline step {step!r} needs the stage function {module_name}."
                            f"{func_name}, and {path} does not exist in this checkout yet")
    func = getattr(importlib.import_module(module_name), func_name, None)
    if func is None:
        raise PipelineError(f"pipeline step {step!r}: {module_name} has no function {func_name!r}")
    return func


def missing_stages(steps: list[str] | tuple[str, ...] = tuple(STAGES)) -> dict[str, str]:
    """{step: why} for every step whose stage function cannot be found."""
    missing = {}
    for step in steps:
        try:
            stage_function(step)
        except PipelineError as exc:
            missing[step] = str(exc)
    return missing


def typed(params: str | dict[str, Any]) -> Params:
    """The typed params from the pipeline parameter (JSON of the resolved params.yaml)."""
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except json.JSONDecodeError as exc:
            raise PipelineError(f"pipeline parameter `params` is not JSON: {exc}") from None
    return params_from_dict(params, where="pipeline parameter `params`")


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
    p = typed(params)
    result = stage_function("ingest")(Path(out_dir), p.pipeline.ingest, p.preprocess.source,
                                      p.toyworld)
    meta = result.metadata()
    report = "\n".join([f"# ingest: {result.source} ({result.format})", "",
                        f"- data version: `{result.data_version}`", f"- files: {result.files}"])
    return {"metadata": meta, "report": report}


def preprocess(params: str | dict[str, Any], raw_dir: str, out_dir: str,
               raw_metadata: dict[str, Any]) -> dict[str, Any]:
    """Raw dataset -> processed dataset; the raw data version travels on in the metadata."""
    from scene2img.data.summary import format_summary

    p = typed(params)
    result = stage_function("preprocess")(Path(raw_dir), Path(out_dir), p.preprocess,
                                          progress=False)
    meta = {**{k: v for k, v in raw_metadata.items() if k in ("data_version", "rev", "dvc_hash")},
            "source": result.source, "manifest_sha256": result.manifest_sha256,
            **{f"count_{k}": v for k, v in result.counts.items()}}
    report = f"# preprocess\n\n```\n{format_summary(result.out_dir)}\n```\n"
    return {"metadata": meta, "report": report}


def train(step: str, params: str | dict[str, Any], data_dir: str, data_uri: str, out_dir: str,
          out_uri: str) -> dict[str, Any]:
    """train_layout / train_image: in this process, or as a multi-node `TrainJob`."""
    p = typed(params)
    if p.pipeline.train_nodes > 1:
        from scene2img.pipeline import trainjob

        manifest = trainjob.build_trainjob(step, p, data_uri=data_uri, out_uri=out_uri)
        status = trainjob.apply_and_wait(manifest, p.pipeline.trainjob)
        return {"metadata": {"trainjob": manifest["metadata"]["name"], "status": status},
                "metrics": {}}
    result = run_training(step, p, data_dir, out_dir)
    return {"metadata": {"stage": step, "mlflow_run_id": result.run_id or ""},
            "metrics": scalars(result.metrics)}


def run_training(step: str, p: Params, data_dir: str, out_dir: str) -> Any:
    """Call the training stage function (also what each TrainJob node runs)."""
    return stage_function(step)(data_dir, Path(out_dir), p, progress=False)


def _model_file(step: str, folder: str) -> Path:
    """The exported model inside a training step's output folder."""
    from scene2img.training.export import IMAGE_MODEL_FILE, LAYOUT_MODEL_FILE

    return Path(folder) / {"train_layout": LAYOUT_MODEL_FILE, "train_image": IMAGE_MODEL_FILE}[step]


def evaluate(params: str | dict[str, Any], data_dir: str, layout_dir: str, image_dir: str,
             out_dir: str) -> dict[str, Any]:
    """Measure the candidate on the test split; say whether it passes the gate to the registry."""
    p = typed(params)
    result = stage_function("evaluate")(data_dir, _model_file("train_image", image_dir),
                                        _model_file("train_layout", layout_dir), Path(out_dir), p)
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
             eval_dir: str, kfp_run_id: str) -> dict[str, Any]:
    """Register the end-to-end model (graph -> layout -> image) in the MLflow registry."""
    os.environ[KFP_RUN_ID_ENV] = kfp_run_id
    p = typed(params)
    from scene2img.training.export import METRICS_FILE

    result = stage_function("register")(_model_file("train_layout", layout_dir),
                                        _model_file("train_image", image_dir), data_dir,
                                        Path(eval_dir) / METRICS_FILE, p)
    return _jsonable(result)


def promote(params: str | dict[str, Any], model_name: str, version: str,
            kfp_run_id: str) -> dict[str, Any]:
    """The promotion gate: @champion moves to `version` only if it is better on the same
    protocol; otherwise the version stays a challenger."""
    os.environ[KFP_RUN_ID_ENV] = kfp_run_id
    p = typed(params)
    result = stage_function("promote")(p, version=version, name=model_name)
    out = _jsonable(result)
    out["alias"] = "champion" if str(result.champion) == str(version) else "challenger"
    out["summary"] = result.summary()
    return out
