"""What each pipeline step receives: the step names, the params keys its stage reads, the KFP run id.

`STEP_PARAMS` is the one list of the DAG's steps, in order, and of the params each one reads
(`dag_steps`: a DAG has the training steps of `pipeline.family` only, lostgan's train_layout,
train_image and (when `pipeline.upscaler` is on) train_upscaler, or bachgan's train_bachgan). Each
KFP component gets one string parameter, `params`: the JSON of only its step's keys (JSON because
KFP struct parameters cannot hold the nulls params.yaml uses). As a DVC stage depends only on the
keys dvc.yaml lists for it, a task's inputs, and so its cache key, change only when one of its
keys does: a new `train_image.lr_g` reruns train-image and what follows, and reuses the cached
ingest, preprocess and train-layout tasks. Tests check this table against the keys the steps'
code reads, and dvc.yaml against it.

The KFP run id does not travel as a task input: KFP resolves it before computing the cache key,
so every run would miss the cache. On the cluster each pod reads it from its `pipeline/runid`
label (the Kubernetes downward API, set on the tasks that log to MLflow); the local runner's
tasks inherit it from `run_local`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from scene2img.config import Params, params_from_dict
from scene2img.errors import ConfigError
from scene2img.pipeline import PipelineError

# What a training step reads beyond its own sections: how many nodes, and the TrainJob it
# creates when there is more than one (scene2img.pipeline.trainjob).
_TRAINJOB_KEYS = ("pipeline.train_nodes", "pipeline.trainjob", "pipeline.image",
                  "pipeline.gpus", "pipeline.gpu_type", "pipeline.cpu_request",
                  "pipeline.memory_request", "pipeline.shm_size", "pipeline.node_selector",
                  "pipeline.tolerations", "pipeline.secrets")

# How a raw dataset of `preprocess.source`'s format is read (scene2img.data.sources).
_SOURCE_KEYS = ("preprocess.source", "preprocess.vg", "preprocess.coco_stuff",
                "preprocess.ade20k")

# step -> the params keys (sections, or dotted keys inside one) its stage and step function read.
STEP_PARAMS: dict[str, tuple[str, ...]] = {
    "ingest": ("pipeline.ingest", "preprocess.source", "toyworld"),
    "preprocess": ("preprocess",),
    "train_layout": ("train_layout", "data", "trainer", "tracking", *_TRAINJOB_KEYS),
    "train_image": ("train_image", "data", "trainer", "tracking", *_TRAINJOB_KEYS),
    # The raw images are read through the source reader: `source` and its options; LPIPS
    # scores use the evaluation's LPIPS weights when they are configured.
    "train_upscaler": ("train_upscaler", *_SOURCE_KEYS, "evaluate.lpips_weights",
                       "evaluate.lpips_net", "data", "trainer", "tracking"),
    "train_bachgan": ("train_bachgan", "data", "trainer", "tracking", *_TRAINJOB_KEYS),
    # With an upscaler, the real images at the upscaled size are read through it too.
    "evaluate": ("evaluate", *_SOURCE_KEYS, "tracking", "pipeline.gate"),
    "register": ("register", "serve", "tracking"),
    "promote": ("promote", "register.name", "tracking"),
}
STEPS = tuple(STEP_PARAMS)  # the DAG's steps, in order
# The training steps of each model family (`pipeline.family`); a DAG has its family's only.
_BACHGAN_STEPS = ("train_bachgan",)
FAMILY_STEPS = {"lostgan": tuple(s for s in STEPS if s.startswith("train_")
                                 and s not in _BACHGAN_STEPS),
                "bachgan": _BACHGAN_STEPS}
# The steps that can train on several nodes (a TrainJob): those given its keys.
TRAINJOB_STEPS = tuple(s for s in STEPS if _TRAINJOB_KEYS[0] in STEP_PARAMS[s])

# Sections that say where a step logs and runs, not what it computes: a DVC stage does not
# depend on them (dvc.yaml lists each stage's other keys from STEP_PARAMS; tests/unit/test_dvc.py).
RUN_SETTINGS = ("tracking", "pipeline")

KFP_RUN_ID_ENV = "KFP_RUN_ID"  # the pod's `pipeline/runid` label on the cluster
KFP_RUN_ID_LABEL = "pipeline/runid"
# Set by `run_local` (a terminal shows the bars): the steps draw their stages' progress bars.
# Unset on the cluster, where a bar's redraws would fill the pod log.
PROGRESS_ENV = "SCENE2IMG_PROGRESS"


def step_params(params: Params, step: str) -> str:
    """The `params` argument of `step`'s component: JSON of only the keys its stage reads."""
    full = params.to_dict()
    picked: dict[str, Any] = {}
    for key in STEP_PARAMS[step]:
        *parents, leaf = key.split(".")
        source, target = full, picked
        for name in parents:
            source, target = source[name], target.setdefault(name, {})
        target[leaf] = source[leaf]
    return json.dumps(picked, sort_keys=True)


def dag_steps(params: Params, until: str = "promote") -> list[str]:
    """The steps of the DAG these params compile, in order, up to `until` (the last step to
    run): `STEPS`, with only `pipeline.family`'s training steps, less train_upscaler when
    `pipeline.upscaler` is off.

    Example:
        >>> from scene2img.config import load_params
        >>> dag_steps(load_params(overrides=["pipeline.upscaler=false"]), until="train_image")
        ['ingest', 'preprocess', 'train_layout', 'train_image']
        >>> dag_steps(load_params(overrides=["pipeline.family=bachgan"]))
        ['ingest', 'preprocess', 'train_bachgan', 'evaluate', 'register', 'promote']
    """
    family = params.pipeline.family
    other = {s for f, steps in FAMILY_STEPS.items() if f != family for s in steps}
    steps = [s for s in STEPS if s not in other
             and (s != "train_upscaler" or params.pipeline.upscaler)]
    if until not in steps:
        why = (f" (pipeline.family is {family}: the DAG has no {until} step)" if until in other
               else " (pipeline.upscaler is false: the DAG has no train_upscaler step)"
               if until == "train_upscaler" else "")
        raise PipelineError(f"--until {until!r}: choose one of {', '.join(steps)}{why}")
    return steps[: steps.index(until) + 1]


def pipeline_arguments(params: Params) -> dict[str, str]:
    """The pipeline's arguments: `<step>_params` for each step of its DAG (what `run` and
    `submit` pass). `pipeline.caching` has an entry for every step of `STEPS`, used or not."""
    caching = params.pipeline.caching
    if set(caching) != set(STEPS):
        raise ConfigError(f"pipeline.caching: expected one entry per step ({', '.join(STEPS)}); "
                          f"missing: {sorted(set(STEPS) - set(caching))}, unknown: "
                          f"{sorted(set(caching) - set(STEPS))}")
    return {argument(step): step_params(params, step) for step in dag_steps(params)}


def argument(step: str) -> str:
    """The pipeline parameter that carries `step`'s params."""
    return f"{step}_params"


def typed(step: str, params: str | dict[str, Any]) -> Params:
    """The typed params a step received (a partial load: reading a key not listed for the step
    in `STEP_PARAMS` raises a ConfigError that names it)."""
    where = f"pipeline parameter {argument(step)}"
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except json.JSONDecodeError as exc:
            raise PipelineError(f"{where} is not JSON: {exc}") from None
    if not isinstance(params, dict):
        raise PipelineError(f"{where}: expected a JSON object of params sections")
    return params_from_dict(params, where=where, partial=True)


def current_kfp_run_id() -> str | None:
    """The KFP run this process belongs to, if KFP (or `run_local`) started it."""
    return os.environ.get(KFP_RUN_ID_ENV) or None


def progress_bars() -> bool:
    """Whether this step draws its stage's progress bars (`run_local` asks for them)."""
    return os.environ.get(PROGRESS_ENV) == "1"
