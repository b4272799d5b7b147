"""The multi-node TrainJob manifest built from the config."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from scene2img.config import load_params
from scene2img.pipeline import PipelineError
from scene2img.pipeline.params import KFP_RUN_ID_ENV, step_params, typed
from scene2img.pipeline.trainjob import build_trainjob, trainjob_state

K8S = "1.33.0"


@pytest.fixture()
def params():
    """What the train-image step receives: only its keys."""
    full = load_params(overrides=["pipeline.train_nodes=4", "pipeline.gpus=8"])
    return typed("train_image", step_params(full, "train_image"))


def test_manifest_structure(params):
    job = build_trainjob("train_image", params, "s3://bucket/data", "s3://bucket/out",
                         kfp_run_id="run-7")
    assert job["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and job["kind"] == "TrainJob"
    assert set(job["spec"]) == {"runtimeRef", "trainer", "runtimePatches"}
    assert job["spec"]["runtimeRef"] == {"name": "torch-distributed",
                                         "apiGroup": "trainer.kubeflow.org",
                                         "kind": "ClusterTrainingRuntime"}
    trainer = job["spec"]["trainer"]
    assert set(trainer) == {"image", "command", "args", "env", "numNodes", "resourcesPerNode"}
    assert trainer["numNodes"] == 4
    assert trainer["image"] == params.pipeline.image
    assert trainer["command"][:3] == ["torchrun", "--nproc-per-node", "8"]
    assert trainer["args"] == ["train_image", "s3://bucket/data", "s3://bucket/out"]
    assert trainer["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": "8"}
    run = json.loads(next(e["value"] for e in trainer["env"] if e["name"] == "SCENE2IMG_PARAMS"))
    assert run["trainer"]["num_nodes"] == 4 and run["trainer"]["devices"] == 8
    assert run["trainer"]["strategy"] == "ddp"
    assert set(run) == {"train_image", "data", "trainer", "tracking", "pipeline"}  # the step's
    assert typed("train_image", json.dumps(run)).train_image == params.train_image  # node reads
    assert {"name": KFP_RUN_ID_ENV, "value": "run-7"} in trainer["env"]
    secret_refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in trainer["env"]
                   if "valueFrom" in e}
    assert secret_refs == {"scene2img-s3", "scene2img-mlflow"}
    assert not any("value" in e and "valueFrom" in e for e in trainer["env"])
    (patch,) = job["spec"]["runtimePatches"]
    (rjob,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert rjob["name"] == "node"
    pod = rjob["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == params.pipeline.node_selector
    assert pod["tolerations"] == params.pipeline.tolerations
    assert pod["volumes"][0]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    # a valid DNS-1123 name, stable for the same inputs (a retried step finds its TrainJob)
    name = job["metadata"]["name"]
    assert len(name) <= 63 and name == name.lower() and "_" not in name
    assert build_trainjob("train_image", params, "s3://bucket/data",
                          "s3://bucket/out")["metadata"]["name"] == name
    assert KFP_RUN_ID_ENV not in {e["name"] for e in build_trainjob(
        "train_image", params, "s3://b/d", "s3://b/o")["spec"]["trainer"]["env"]}


def test_embedded_kubernetes_types_validate(params):
    """Env, resources, tolerations, volumes and mounts, checked as a Pod against the schemas."""
    job = build_trainjob("train_layout", params, "s3://b/d", "s3://b/o")
    trainer = job["spec"]["trainer"]
    pod_patch = (job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
                 ["replicatedJobs"][0]["template"]["spec"]["template"]["spec"])
    container = {"name": "node", "image": trainer["image"], "command": trainer["command"],
                 "args": trainer["args"], "env": trainer["env"],
                 "resources": trainer["resourcesPerNode"],
                 "volumeMounts": pod_patch["containers"][0]["volumeMounts"]}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": job["metadata"],
           "spec": {"containers": [container], "nodeSelector": pod_patch["nodeSelector"],
                    "tolerations": pod_patch["tolerations"], "volumes": pod_patch["volumes"]}}
    kubernetes_validate.validate(pod, K8S, strict=True)


def test_refuses_single_node_and_unknown_steps():
    with pytest.raises(PipelineError, match="2\\+ nodes"):
        build_trainjob("train_layout", load_params(), "s3://b/d", "s3://b/o")
    with pytest.raises(PipelineError, match="expected one of train_layout, train_image, "
                                            "train_bachgan"):
        build_trainjob("evaluate", load_params(overrides=["pipeline.train_nodes=2"]), "a", "b")
    job = build_trainjob("train_bachgan", load_params(overrides=["pipeline.train_nodes=2"]),
                         "s3://b/d", "s3://b/o")
    assert "train_bachgan" in json.dumps(job)  # BachGAN trains on several nodes too


def test_state_from_conditions():
    assert trainjob_state({}) == "Running"
    done = {"status": {"conditions": [{"type": "Created", "status": "True"},
                                      {"type": "Complete", "status": "True"}]}}
    assert trainjob_state(done) == "Complete"
    assert trainjob_state({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}) \
        == "Failed"
