"""Compile the DAG, and run it on this machine with the KFP local runner.

`run_local` runs every task as a subprocess of this Python environment
(`kfp.local.SubprocessRunner(use_venv=False)`: scene2img is installed here, nothing is downloaded)
and caches task outputs with kfp.local's own content-addressed cache: a task's key is the
component (its code and image), its inputs (parameters, and upstream artifacts by URI and
metadata) and its environment, so a second run with nothing changed reuses every cached task
(those with `pipeline.caching.<step>: true`) and says so. One limit: the key sees the component,
not the scene2img library it calls, so after changing library code run with `--no-cache`.

`runner="docker"` runs every task in the project's image instead (scene2img.pipeline.docker):
the same DAG and outputs, and the same cache kept per image (`cache/image-<id>`), so the key
does see the library: a new build of the image starts a fresh cache.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from scene2img.config import PROJECT_ROOT, Params
from scene2img.pipeline import PipelineError
from scene2img.pipeline.steps import STAGES, missing_stages

log = logging.getLogger(__name__)
PIPELINE_FILE = PROJECT_ROOT / "pipelines" / "scene2img_pipeline.py"
STEPS = tuple(STAGES)


def load_pipeline_module(path: Path = PIPELINE_FILE) -> ModuleType:
    """Import `pipelines/scene2img_pipeline.py` from the checkout."""
    if not path.is_file():
        raise PipelineError(f"{path}: pipeline definition not found; run from a scene2img "
                            "checkout (the pipeline and its components are not in the wheel)")
    spec = importlib.util.spec_from_file_location("scene2img_pipeline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def compile_pipeline(out: Path, params: Params) -> Path:
    """Write the pipeline YAML for these params (their values become its defaults)."""
    from kfp import compiler

    module = load_pipeline_module()
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(module.make_pipeline(params), package_path=str(out))
    return out


@dataclass
class LocalRun:
    root: Path  # pipeline_root of this run's tasks
    steps: list[str]  # the steps in the DAG that ran
    cached: list[str] = field(default_factory=list)  # tasks whose outputs came from the cache
    executed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> executor output
    image: str | None = None  # runner docker: "<ref> (<image id>)" the tasks ran in


class _TaskLog(logging.Filter):
    """Collects kfp.local's "Task X cache hit" and "Executing task" lines. A filter on the root
    logger, not a handler: kfp.local replaces the root logger's handlers while it runs."""

    HIT = re.compile(r"Task (\S+) cache hit")
    RUN = re.compile(r"Executing task '?([\w-]+)'?")

    def __init__(self) -> None:
        super().__init__()
        self.cached: list[str] = []
        self.executed: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        msg = _plain(record.getMessage())
        if m := self.HIT.search(msg):
            self.cached.append(m.group(1).strip("'"))
        elif m := self.RUN.search(msg):
            self.executed.append(m.group(1))
        return True


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def run_local(
    params: Params,  # resolved params: become the run's `params` argument and task settings
    until: str = "promote",  # last step to run
    root: Path | None = None,  # outputs and cache (default: pipeline.local_root)
    cache: bool = True,  # reuse cached task outputs
    runner: str = "subprocess",  # subprocess | docker (every task in the image)
    image: str | None = None,  # runner docker: the local image (default: the latest build)
) -> LocalRun:
    """Run the DAG (up to `until`) with the KFP local runner; stop first if a stage is missing."""
    from kfp import local

    if until not in STEPS:
        raise PipelineError(f"--until {until!r}: choose one of {', '.join(STEPS)}")
    steps = list(STEPS[: STEPS.index(until) + 1])
    missing = missing_stages(steps)
    if missing:
        ready = [s for s in STEPS if s not in missing_stages([s])]
        last_ready = next((s for s in reversed(STEPS[:STEPS.index(min(
            missing, key=STEPS.index))]) if s in ready), None)
        hint = (f"; run the steps that exist with --until {last_ready}" if last_ready else "")
        raise PipelineError("cannot run the DAG: " + "; ".join(missing.values()) + hint)
    root = Path(root or params.pipeline.local_root).resolve()
    module = load_pipeline_module()
    pipeline = module.make_pipeline(params, until=until)
    opened = ExitStack()
    if runner == "docker":
        from scene2img.pipeline.docker import docker_runner

        kfp_runner, built = opened.enter_context(docker_runner(params, image))
    elif runner == "subprocess":
        kfp_runner, built = local.SubprocessRunner(use_venv=False), None
    else:
        raise PipelineError(f"runner {runner!r}: choose subprocess or docker")
    # kfp.local's key holds the component's image name, not the image that runs: one cache per build
    cache_root = root / "cache" / (f"image-{built.id.removeprefix('sha256:')[:12]}" if built else "")
    local.init(runner=kfp_runner, pipeline_root=str(root / "runs"),
               enable_caching=cache, cache_root=str(cache_root), raise_on_error=True)
    handler = _TaskLog()
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(min(level, logging.INFO))  # kfp.local reports cache hits at INFO
    root_logger.addFilter(handler)
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            # The local runner ignores accelerators, node selectors and secrets (cluster-only
            # settings) and warns about the non-"python" image name: both expected here.
            warnings.filterwarnings("ignore", message=".*no effect in the current local runner.*")
            warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
            pipeline(params=json.dumps(params.to_dict(), sort_keys=True))
    except Exception as exc:
        raise PipelineError(f"local pipeline run failed: {exc}; task logs are above, outputs "
                            f"under {root / 'runs'}") from exc
    finally:
        root_logger.removeFilter(handler)
        root_logger.setLevel(level)
        opened.close()
    run = LocalRun(root=root, steps=steps, cached=handler.cached,
                   executed=[t for t in handler.executed if t not in handler.cached],
                   seconds=time.monotonic() - started,
                   image=f"{built.ref} ({built.id})" if built else None)
    run.outputs = _latest_outputs(root / "runs", steps)
    return run


def _latest_outputs(runs: Path, steps: list[str]) -> dict[str, dict[str, Any]]:
    """Each task's newest executor output (cached tasks keep theirs from the run that made it)."""
    found: dict[str, tuple[float, dict[str, Any]]] = {}
    for path in runs.glob("*/*/executor_output.json"):
        task = path.parent.name
        mtime = path.stat().st_mtime
        if task.replace("-", "_") in steps and mtime > found.get(task, (0.0, {}))[0]:
            try:
                found[task] = (mtime, json.loads(path.read_text()))
            except json.JSONDecodeError:
                continue
    return {task: out for task, (_, out) in found.items()}


def summary(run: LocalRun, params: Params) -> str:
    """A few lines: what ran, what came from the cache, metrics, registry, where to look."""
    lines = [f"pipeline: {' -> '.join(run.steps)} in {run.seconds:.0f}s "
             f"(outputs under {run.root / 'runs'})"]
    if run.cached:
        lines.append(f"  reused cached outputs of: {', '.join(run.cached)} (nothing changed "
                     "in their inputs; --no-cache reruns them)")
    if run.executed:
        lines.append(f"  ran: {', '.join(run.executed)}")
    if run.image:
        lines.append(f"  in the image {run.image}")
    order = {step.replace("_", "-"): i for i, step in enumerate(STEPS)}
    for task, out in sorted(run.outputs.items(), key=lambda item: order.get(item[0], 99)):
        for name, artifacts in out.get("artifacts", {}).items():
            for art in artifacts.get("artifacts", []):
                meta = art.get("metadata", {})
                if name == "metrics" and meta:
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(meta.items())
                                      if isinstance(v, (int, float)))
                    lines.append(f"  {task} metrics: {shown}")
                elif name in ("raw", "processed") and meta.get("data_version"):
                    lines.append(f"  {task}: {art.get('uri')} (data version "
                                 f"{meta['data_version']})")
        params_out = out.get("parameterValues", {})
        if task == "evaluate" and params_out:
            evaluation = out.get("artifacts", {}).get("evaluation", {}).get("artifacts", [{}])
            reason = evaluation[0].get("metadata", {}).get("gate", "")
            lines.append(f"  gate: {params_out.get('Output')} ({reason})")
        if task == "register" and params_out:
            lines.append(f"  registered: {params_out.get('model_name')} version "
                         f"{params_out.get('version')}")
        if task == "promote" and params_out:
            lines.append(f"  alias: @{params_out.get('alias')} ({params_out.get('outcome')})")
    uri = params.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    lines.append(f"  MLflow: mlflow ui --backend-store-uri {uri}")
    return "\n".join(lines)
