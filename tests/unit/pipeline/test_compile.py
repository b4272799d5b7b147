"""The compiled DAG: committed YAML up to date, task graph, GPUs, node pool, retries, caching."""

from __future__ import annotations

import yaml

from scene2img.config import load_params
from scene2img.pipeline.local import compile_pipeline, load_pipeline_module

COMMITTED = load_pipeline_module().COMPILED


def _load(path):
    pipeline, platform = yaml.safe_load_all(path.read_text())
    return pipeline, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def _tasks(pipeline):
    tasks = dict(pipeline["root"]["dag"]["tasks"])
    for name, task in list(tasks.items()):
        if name.startswith("condition-"):
            component = pipeline["components"][task["componentRef"]["name"]]
            tasks.update(component["dag"]["tasks"])
            del tasks[name]
    return tasks


def test_committed_yaml_matches_a_fresh_compile(tmp_path):
    fresh = compile_pipeline(tmp_path / "p.yaml", load_params())
    assert fresh.read_text() == COMMITTED.read_text(), (
        "pipelines/scene2img_pipeline.yaml is stale: run `scene2img pipeline compile` and "
        "commit the diff")


def test_dag_shape(tmp_path):
    pipeline, _ = _load(compile_pipeline(tmp_path / "p.yaml", load_params()))
    tasks = _tasks(pipeline)
    assert set(tasks) == {"ingest", "preprocess", "train-layout", "train-image", "evaluate",
                          "register", "promote"}
    deps = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert deps["ingest"] == set()
    assert deps["preprocess"] == {"ingest"}
    assert deps["train-layout"] == deps["train-image"] == {"preprocess"}  # in parallel
    assert deps["evaluate"] == {"preprocess", "train-layout", "train-image"}
    assert deps["promote"] == {"register"}
    condition = next(t for n, t in pipeline["root"]["dag"]["tasks"].items()
                     if n.startswith("condition-"))
    assert "evaluate" in condition["dependentTasks"]
    assert "evaluate-Output" in condition["triggerPolicy"]["condition"]
    assert "== 'pass'" in condition["triggerPolicy"]["condition"]
    # parameters default from params.yaml: the whole resolved configuration
    default = pipeline["root"]["inputDefinitions"]["parameters"]["params"]["defaultValue"]
    assert yaml.safe_load(default) == load_params().to_dict()


def test_task_settings_follow_the_pipeline_section(tmp_path):
    params = load_params(overrides=["pipeline.gpus=4", "pipeline.retries=3",
                                    "pipeline.caching.evaluate=false", "pipeline.shm_size=32Gi"])
    cfg = params.pipeline
    pipeline, platform = _load(compile_pipeline(tmp_path / "p.yaml", params))
    tasks = _tasks(pipeline)
    for name, task in tasks.items():
        step = name.replace("-", "_")
        assert task.get("cachingOptions", {}).get("enableCache", False) is cfg.caching[step], name
        retried = step in ("ingest", "preprocess", "promote")
        assert task.get("retryPolicy", {}).get("maxRetryCount", 0) == (3 if retried else 0), name
    executors = pipeline["deploymentSpec"]["executors"]
    for name in ("train-layout", "train-image", "evaluate"):
        acc = executors[f"exec-{name}"]["container"]["resources"]["accelerator"]
        assert acc["resourceType"] == "nvidia.com/gpu" and acc["resourceCount"] == "4"
        k8s = platform[f"exec-{name}"]
        assert k8s["nodeSelector"]["labels"] == cfg.node_selector
        assert k8s["tolerations"] == cfg.tolerations
        assert k8s["emptyDirMounts"] == [{"medium": "Memory", "mountPath": "/dev/shm",
                                          "sizeLimit": "32Gi", "volumeName": "dshm"}]
        secrets = {s["secretName"] for s in k8s["secretAsEnv"]}
        assert secrets == {cfg.secrets["s3"], cfg.secrets["mlflow"]}
    for name in ("ingest", "preprocess"):
        assert "accelerator" not in executors[f"exec-{name}"]["container"].get("resources", {})
        assert "nodeSelector" not in platform[f"exec-{name}"]
    for executor in executors.values():
        assert executor["container"]["image"] == cfg.image
