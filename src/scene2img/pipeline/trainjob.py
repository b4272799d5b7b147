"""Multi-node training as a Kubeflow Trainer v2 `TrainJob` (trainer.kubeflow.org/v1alpha1).

When `pipeline.train_nodes` > 1 the training component does not train in its own pod: it builds a
TrainJob from the config (`build_trainjob`, a plain function, checked in the tests), creates it and
waits for it (`apply_and_wait`). The TrainJob uses the `torch-distributed` runtime, which starts
`torchrun` on every node with the rendezvous set through `PET_*` variables; each node runs

    python -m scene2img.pipeline.trainjob STEP DATA_URI OUT_URI

with the step's params as JSON in `SCENE2IMG_PARAMS` and the KFP run id in `KFP_RUN_ID`. Lightning sees the torchrun environment and trains
with DDP on `train_nodes` x `gpus` processes; rank 0 uploads the output folder to `OUT_URI` (the
KFP output artifact on the cluster's S3). Node selector, tolerations and /dev/shm go in a runtime
patch of the `node` job (Trainer >= 2.2 `runtimePatches`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scene2img.config import Params, TrainJobParams
from scene2img.pipeline import PipelineError
from scene2img.pipeline.params import (
    KFP_RUN_ID_ENV,
    TRAINJOB_STEPS,
    current_kfp_run_id,
    progress_bars,
    typed,
)

log = logging.getLogger(__name__)
API_GROUP = "trainer.kubeflow.org"
API_VERSION = "v1alpha1"
PLURAL = "trainjobs"
NODE_JOB = "node"  # the torch-distributed runtime's replicated job and container
PARAMS_ENV = "SCENE2IMG_PARAMS"
PATCH_MANAGER = "scene2img.pipeline"


def build_trainjob(
    step: str,  # train_layout | train_image | train_bachgan
    params: Params,  # resolved params; `pipeline` says how many nodes, GPUs, where
    data_uri: str,  # the processed dataset, readable from every node (s3://...)
    out_uri: str,  # where rank 0 uploads the output folder (s3://...)
    name: str | None = None,  # default: derived from step, data and output
    kfp_run_id: str | None = None,  # the KFP run, for the training run's lineage tags
) -> dict[str, Any]:
    """The TrainJob manifest (a plain dict) for one training step on `train_nodes` nodes."""
    if step not in TRAINJOB_STEPS:
        raise PipelineError(f"TrainJob step {step!r}: expected one of {', '.join(TRAINJOB_STEPS)}")
    cfg = params.pipeline
    if cfg.train_nodes < 2:
        raise PipelineError(f"pipeline.train_nodes={cfg.train_nodes}: a TrainJob is for 2+ nodes")
    # Each node trains with DDP over its GPUs; Lightning reads ranks from torchrun's environment.
    run_params = copy.deepcopy(params)
    run_params.trainer.num_nodes = cfg.train_nodes
    run_params.trainer.devices = cfg.gpus
    run_params.trainer.accelerator = "gpu"
    if run_params.trainer.strategy == "auto":
        run_params.trainer.strategy = "ddp"
    params_json = json.dumps(run_params.to_dict(), sort_keys=True)
    if name is None:
        digest = hashlib.sha256(f"{step}\0{data_uri}\0{out_uri}\0{params_json}".encode())
        name = f"scene2img-{step.replace('_', '-')}-{digest.hexdigest()[:10]}"
    env = [{"name": PARAMS_ENV, "value": params_json},
           *([{"name": KFP_RUN_ID_ENV, "value": kfp_run_id}] if kfp_run_id else []),
           *_secret_env(cfg.secrets["s3"], ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_ENDPOINT_URL"]),
           *_secret_env(cfg.secrets["mlflow"], ["MLFLOW_TRACKING_USERNAME",
                                                "MLFLOW_TRACKING_PASSWORD"])]
    resources = {"limits": {cfg.gpu_type: str(cfg.gpus)},
                 "requests": {"cpu": cfg.cpu_request, "memory": cfg.memory_request,
                              cfg.gpu_type: str(cfg.gpus)}}
    pod_spec = {
        "nodeSelector": dict(cfg.node_selector),
        "tolerations": [{k: v for k, v in t.items() if v is not None} for t in cfg.tolerations],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": cfg.shm_size}}],
        "containers": [{"name": NODE_JOB,
                        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]}],
    }
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": cfg.trainjob.namespace,
                     "labels": {"app.kubernetes.io/part-of": "scene2img",
                                "scene2img/step": step.replace("_", "-")}},
        "spec": {
            "runtimeRef": {"name": cfg.trainjob.runtime, "apiGroup": API_GROUP,
                           "kind": "ClusterTrainingRuntime"},
            "trainer": {
                "image": cfg.image,
                "command": ["torchrun", "--nproc-per-node", str(cfg.gpus), "-m",
                            "scene2img.pipeline.trainjob"],
                "args": [step, data_uri, out_uri],
                "env": env,
                "numNodes": cfg.train_nodes,
                "resourcesPerNode": resources,
            },
            "runtimePatches": [{
                "manager": PATCH_MANAGER,
                "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [{
                    "name": NODE_JOB,
                    "template": {"spec": {"template": {"spec": pod_spec}}},
                }]}}},
            }],
        },
    }


def _secret_env(secret: str, keys: list[str]) -> list[dict[str, Any]]:
    return [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for key in keys]


def apply_and_wait(manifest: dict[str, Any], cfg: TrainJobParams) -> str:
    """Create the TrainJob (or find it from an earlier attempt) and wait until it ends."""
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.CustomObjectsApi()
    ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    try:
        api.create_namespaced_custom_object(API_GROUP, API_VERSION, ns, PLURAL, manifest)
        log.info("created TrainJob %s/%s", ns, name)
    except ApiException as exc:
        if exc.status != 409:  # 409: already exists (a retried step): wait for that one
            raise PipelineError(f"creating TrainJob {ns}/{name} failed: {exc.status} "
                                f"{exc.reason}: {exc.body}") from None
    deadline = time.monotonic() + cfg.timeout_s
    while time.monotonic() < deadline:
        obj = api.get_namespaced_custom_object(API_GROUP, API_VERSION, ns, PLURAL, name)
        state = trainjob_state(obj)
        if state == "Complete":
            return state
        if state == "Failed":
            raise PipelineError(f"TrainJob {ns}/{name} failed: {_conditions(obj)}; "
                                f"kubectl -n {ns} describe trainjob {name}")
        time.sleep(cfg.poll_s)
    raise PipelineError(f"TrainJob {ns}/{name} still running after {cfg.timeout_s}s "
                        "(pipeline.trainjob.timeout_s); it was left running")


def trainjob_state(obj: dict[str, Any]) -> str:
    """Complete | Failed | Running, from the TrainJob's status conditions."""
    for cond in obj.get("status", {}).get("conditions", []):
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"]
    return "Running"


def _conditions(obj: dict[str, Any]) -> str:
    return "; ".join(f"{c.get('type')}={c.get('status')} {c.get('reason', '')}: "
                     f"{c.get('message', '')}" for c in obj.get("status", {}).get("conditions", []))


def train_here(step: str, params: Params, data_url: str, out_dir: str,
               run_id: str | None) -> Any:
    """Run the training stage of `step` in this process: the one pod, or one TrainJob node."""
    from scene2img.stages.train_bachgan import train_bachgan
    from scene2img.stages.train_image import train_image
    from scene2img.stages.train_layout import train_layout

    stage = {"train_layout": train_layout, "train_image": train_image,
             "train_bachgan": train_bachgan}[step]
    return stage(data_url, Path(out_dir), params, progress=progress_bars(), kfp_run_id=run_id)


def main(argv: list[str] | None = None) -> int:
    """One TrainJob process: train with the stage function; rank 0 uploads the outputs."""
    import fsspec

    step, data_uri, out_uri = (argv if argv is not None else sys.argv[1:])
    params = typed(step, os.environ[PARAMS_ENV])
    with tempfile.TemporaryDirectory(prefix="scene2img-trainjob-") as out_dir:
        train_here(step, params, data_uri, out_dir, current_kfp_run_id())
        if int(os.environ.get("RANK", "0")) == 0:
            fs, path = fsspec.core.url_to_fs(out_uri)
            fs.put(out_dir.rstrip("/") + "/", path, recursive=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
