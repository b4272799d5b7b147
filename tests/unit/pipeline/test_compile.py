"""The compiled DAG: committed YAML up to date, task graph, per-step params, image, GPUs, node
pool, retries, caching, the KFP run id."""

from __future__ import annotations

import json

import yaml
from pipelines.scene2img_pipeline import COMPILED, make_pipeline

from scene2img.cli import main
from scene2img.config import load_params
from scene2img.pipeline.local import compile_pipeline
from scene2img.pipeline.params import KFP_RUN_ID_ENV, argument, dag_steps, step_params


def _compile(tmp_path, params):
    return compile_pipeline(make_pipeline, params, tmp_path / "p.yaml")


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
    fresh = _compile(tmp_path, load_params())
    assert fresh.read_text() == COMPILED.read_text(), (
        "pipelines/scene2img_pipeline.yaml is stale: run `scene2img pipeline compile` and "
        "commit the diff")


def test_dag_shape_and_per_step_params(tmp_path):
    params = load_params()
    pipeline, _ = _load(_compile(tmp_path, params))
    tasks = _tasks(pipeline)
    STEPS = dag_steps(params)  # noqa: N806 (the lostgan family's, with the upscaler)
    assert set(tasks) == {step.replace("_", "-") for step in STEPS}
    deps = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert deps["ingest"] == set()
    assert deps["preprocess"] == {"ingest"}
    assert deps["train-layout"] == deps["train-image"] == {"preprocess"}  # in parallel
    assert deps["train-upscaler"] == {"ingest", "preprocess"}  # also the raw images
    assert deps["evaluate"] == {"preprocess", "train-layout", "train-image"}
    upscaler = tasks["register"]["inputs"]["artifacts"]["upscaler_model"]
    assert upscaler["componentInputArtifact"] == "pipelinechannel--train-upscaler-model"
    assert deps["promote"] == {"register"}
    condition = next(t for n, t in pipeline["root"]["dag"]["tasks"].items()
                     if n.startswith("condition-"))
    assert "evaluate" in condition["dependentTasks"]
    assert "train-upscaler" in condition["dependentTasks"]  # register waits for the upscaler
    assert "evaluate-Output" in condition["triggerPolicy"]["condition"]
    assert "== 'pass'" in condition["triggerPolicy"]["condition"]
    # one parameter per step, defaulting to only the keys that step reads
    inputs = pipeline["root"]["inputDefinitions"]["parameters"]
    assert set(inputs) == {argument(step) for step in STEPS}
    for step in STEPS:
        assert inputs[argument(step)]["defaultValue"] == step_params(params, step)
    assert set(json.loads(inputs["preprocess_params"]["defaultValue"])) == {"preprocess"}
    ingest = json.loads(inputs["ingest_params"]["defaultValue"])
    assert ingest["preprocess"] == {"source": params.preprocess.source}
    assert set(ingest["pipeline"]) == {"ingest"}
    # each task reads its own step's parameter, and no other
    for name, task in tasks.items():
        wired = task["inputs"]["parameters"]["params"]["componentInputParameter"]
        assert wired.removeprefix("pipelinechannel--") == argument(name.replace("-", "_"))


def test_without_the_upscaler_the_dag_has_no_step_and_register_no_input(tmp_path):
    params = load_params(overrides=["pipeline.upscaler=false"])
    pipeline, platform = _load(_compile(tmp_path, params))
    tasks = _tasks(pipeline)
    assert set(tasks) == {step.replace("_", "-") for step in dag_steps(params)}
    assert "train-upscaler" not in tasks
    assert "upscaler_model" not in tasks["register"]["inputs"]["artifacts"]
    assert "train-upscaler" not in json.dumps(pipeline["root"])
    assert argument("train_upscaler") not in pipeline["root"]["inputDefinitions"]["parameters"]
    assert "exec-train-upscaler" not in platform


def test_the_bachgan_family_trains_evaluates_and_registers_bachgan(tmp_path):
    params = load_params(experiment="toyworld_bachgan", overrides=["pipeline.family=bachgan"])
    pipeline, platform = _load(_compile(tmp_path, params))
    tasks = _tasks(pipeline)
    assert set(tasks) == {"ingest", "preprocess", "train-bachgan", "evaluate", "register",
                          "promote"}
    deps = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert deps["train-bachgan"] == {"preprocess"}
    assert deps["evaluate"] == {"preprocess", "train-bachgan"}
    assert set(tasks["evaluate"]["inputs"]["artifacts"]) == {"processed", "image_model"}
    assert set(tasks["register"]["inputs"]["artifacts"]) == {"processed", "bachgan_model",
                                                             "evaluation"}
    model = tasks["register"]["inputs"]["artifacts"]["bachgan_model"]
    assert model["componentInputArtifact"] == "pipelinechannel--train-bachgan-model"
    assert deps["promote"] == {"register"}
    inputs = pipeline["root"]["inputDefinitions"]["parameters"]
    assert set(inputs) == {argument(step) for step in dag_steps(params)}
    assert json.loads(inputs["train_bachgan_params"]["defaultValue"]) == \
        json.loads(step_params(params, "train_bachgan"))
    acc = pipeline["deploymentSpec"]["executors"]["exec-train-bachgan"]["container"]
    assert acc["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"  # the GPU pool
    (env,) = platform["exec-train-bachgan"]["fieldPathAsEnv"]
    assert env["name"] == KFP_RUN_ID_ENV


def test_until_builds_the_dag_up_to_that_step(tmp_path):
    compiled = compile_pipeline(lambda p, until: make_pipeline(p, "train_image"), load_params(),
                                tmp_path / "p.yaml")
    assert set(_tasks(_load(compiled)[0])) == {"ingest", "preprocess", "train-layout",
                                               "train-image"}


def test_task_settings_follow_the_pipeline_section(tmp_path):
    params = load_params(overrides=["pipeline.gpus=4", "pipeline.retries=3",
                                    "pipeline.caching.evaluate=false", "pipeline.shm_size=32Gi"])
    cfg = params.pipeline
    pipeline, platform = _load(_compile(tmp_path, params))
    tasks = _tasks(pipeline)
    for name, task in tasks.items():
        step = name.replace("-", "_")
        assert task.get("cachingOptions", {}).get("enableCache", False) is cfg.caching[step], name
        retried = step in ("ingest", "preprocess", "promote")
        assert task.get("retryPolicy", {}).get("maxRetryCount", 0) == (3 if retried else 0), name
    executors = pipeline["deploymentSpec"]["executors"]
    for name in ("train-layout", "train-image", "train-upscaler", "evaluate"):
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


def test_kfp_run_id_comes_from_the_pod_label_not_a_task_input(tmp_path):
    """A task input would enter KFP's cache key (the backend resolves the run-id placeholder
    first), so no run would reuse a cached training task: the tasks that log to MLflow read
    the run id from their pod's `pipeline/runid` label instead."""
    compiled = _compile(tmp_path, load_params())
    assert "pipeline_job_uuid" not in compiled.read_text()
    pipeline, platform = _load(compiled)
    for step in ("train-layout", "train-image", "train-upscaler", "evaluate", "register",
                 "promote"):
        (env,) = platform[f"exec-{step}"]["fieldPathAsEnv"]
        assert env == {"name": KFP_RUN_ID_ENV, "fieldPath": "metadata.labels['pipeline/runid']"}
    for step in ("ingest", "preprocess"):
        assert "fieldPathAsEnv" not in platform[f"exec-{step}"]


def test_cli_compile_takes_the_image_and_experiment_from_the_params(tmp_path, capfd):
    out = tmp_path / "custom.yaml"
    assert main(["pipeline", "compile", "--out", str(out), "--experiment", "demo",
                 "-S", "pipeline.image=registry.example/scene2img@sha256:abc"]) == 0
    assert f"wrote {out}" in capfd.readouterr().out
    pipeline, _ = _load(out)
    images = {e["container"]["image"] for e in pipeline["deploymentSpec"]["executors"].values()}
    assert images == {"registry.example/scene2img@sha256:abc"}
    defaults = pipeline["root"]["inputDefinitions"]["parameters"]
    demo = load_params(experiment="demo")
    train_image = json.loads(defaults["train_image_params"]["defaultValue"])
    assert train_image["train_image"]["max_steps"] == demo.train_image.max_steps == 150


def test_cli_compile_reports_bad_params_in_one_line(tmp_path, capfd):
    out = tmp_path / "never.yaml"
    assert main(["pipeline", "compile", "--out", str(out), "-S", "pipeline.caching.serve=true"]) == 2
    err = capfd.readouterr().err
    assert "pipeline.caching" in err and "unknown: ['serve']" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_run_until_a_step_the_dag_lacks_says_why(tmp_path, capfd):
    assert main(["pipeline", "run", "--local", "--root", str(tmp_path), "--until",
                 "train_upscaler", "-S", "pipeline.upscaler=false"]) == 2
    err = capfd.readouterr().err
    assert "pipeline.upscaler is false: the DAG has no train_upscaler step" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()
