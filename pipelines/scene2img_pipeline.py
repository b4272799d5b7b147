"""The retraining DAG:

    ingest -> preprocess -> train-layout || train-image -> evaluate -> [gate] register -> promote
                         || train-upscaler (+ ingest's raw) ----------------> register

(train-upscaler only with `pipeline.upscaler`.) With `pipeline.family: bachgan` (an ADE20K dataset
with label maps, e.g. the toyworld_bachgan experiment) the DAG trains BachGAN instead:

    ingest -> preprocess -> train-bachgan -> evaluate -> [gate] register -> promote

(evaluate: gt-layout only, backgrounds retrieved from the model's memory bank; register: under
`register.bachgan_name`.)

Components come from `components/`. The pipeline has one parameter per step, `<step>_params`:
the JSON of only the params keys that step's stage reads (`scene2img.pipeline.params`), defaults
from params.yaml, so a changed key reruns only the steps that read it. Each task's image and its
Kubernetes settings (GPUs, node pool, /dev/shm, secrets, retries, caching) come from the
`pipeline` section of the params it is compiled with, and so does whether it has the
train-upscaler step (`pipeline.upscaler`: register then logs the model with its upscaler).

This file is a driver, like the CLI: `scene2img pipeline compile | run --local` run it (the
library never imports it). Run alone, it compiles params.yaml's defaults:

    python pipelines/scene2img_pipeline.py [OUT.yaml]
"""


import inspect
import json
import logging
import sys
from pathlib import Path

from kfp import dsl, kubernetes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `components` from the checkout

from components.evaluate import evaluate  # noqa: E402
from components.ingest import ingest  # noqa: E402
from components.preprocess import preprocess  # noqa: E402
from components.promote import promote  # noqa: E402
from components.register import register  # noqa: E402
from components.train import train_bachgan, train_image, train_layout, train_upscaler  # noqa: E402

from scene2img.config import Params, PipelineParams, load_params, params_from_dict  # noqa: E402
from scene2img.errors import Scene2ImgError  # noqa: E402
from scene2img.pipeline import local  # noqa: E402
from scene2img.pipeline.params import (  # noqa: E402
    KFP_RUN_ID_ENV,
    KFP_RUN_ID_LABEL,
    argument,
    dag_steps,
    pipeline_arguments,
)

COMPILED = Path(__file__).with_name("scene2img_pipeline.yaml")

# Secret key -> environment variable, for the Secrets in infra/k8s/secrets/ (templates).
S3_ENV = {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY":
          "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL"}
MLFLOW_ENV = {"MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME",
              "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD"}


def _common(task: dsl.PipelineTask, step: str, cfg: PipelineParams, transient: bool,
            s3: bool = True, mlflow: bool = False) -> dsl.PipelineTask:
    task.set_display_name(step.replace("_", "-"))
    task.set_container_image(cfg.image)
    task.set_caching_options(enable_caching=cfg.caching[step])
    if transient and cfg.retries:
        task.set_retry(num_retries=cfg.retries, backoff_duration=cfg.retry_backoff)
    if s3:
        kubernetes.use_secret_as_env(task, secret_name=cfg.secrets["s3"], secret_key_to_env=S3_ENV)
    if mlflow:
        kubernetes.use_secret_as_env(task, secret_name=cfg.secrets["mlflow"],
                                     secret_key_to_env=MLFLOW_ENV)
        # The run id for the MLflow runs' lineage tags, from the pod's label: as a task input
        # it would enter the cache key and no run would ever reuse a cached task.
        kubernetes.use_field_path_as_env(task, env_name=KFP_RUN_ID_ENV,
                                         field_path=f"metadata.labels['{KFP_RUN_ID_LABEL}']")
    return task


def _on_gpu_pool(task: dsl.PipelineTask, cfg: PipelineParams) -> dsl.PipelineTask:
    task.set_accelerator_type(cfg.gpu_type).set_accelerator_limit(cfg.gpus)
    task.set_cpu_request(cfg.cpu_request).set_memory_request(cfg.memory_request)
    for key, value in sorted(cfg.node_selector.items()):
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for tol in cfg.tolerations:
        kubernetes.add_toleration(task, key=tol.get("key"), operator=tol.get("operator"),
                                  value=tol.get("value"), effect=tol.get("effect"),
                                  toleration_seconds=tol.get("toleration_seconds"))
    kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory",
                               size_limit=cfg.shm_size)
    return task


def make_pipeline(params: Params, until: str = "promote"):
    """The pipeline for these params (defaults and task settings), up to step `until`."""
    cfg = params.pipeline
    runs = set(dag_steps(params, until))
    defaults = pipeline_arguments(params)

    def scene2img_pipeline(*values: str) -> None:
        arg = dict(zip(defaults, values, strict=True))
        raw = _common(ingest(params=arg[argument("ingest")]), "ingest", cfg, transient=True)
        data = _common(preprocess(params=arg[argument("preprocess")], raw=raw.outputs["raw"]),
                       "preprocess", cfg, transient=True)
        models = {}
        for step, component in (("train_layout", train_layout), ("train_image", train_image),
                                ("train_upscaler", train_upscaler),
                                ("train_bachgan", train_bachgan)):
            if step not in runs:
                continue
            # the upscaler crops the full-size raw images the processed dataset names
            raw_input = {"raw": raw.outputs["raw"]} if step == "train_upscaler" else {}
            task = component(params=arg[argument(step)], processed=data.outputs["processed"],
                             **raw_input)
            models[step] = _on_gpu_pool(_common(task, step, cfg, transient=False, mlflow=True),
                                        cfg)
        if "evaluate" not in runs:
            return
        if "train_bachgan" in models:  # its one model, evaluated on the data's layouts
            trained = {"image_model": models["train_bachgan"].outputs["model"]}
        else:
            trained = {"layout_model": models["train_layout"].outputs["model"],
                       "image_model": models["train_image"].outputs["model"]}
        ev = evaluate(params=arg[argument("evaluate")], processed=data.outputs["processed"],
                      **trained)
        ev = _on_gpu_pool(_common(ev, "evaluate", cfg, transient=False, mlflow=True), cfg)
        if "register" not in runs:
            return
        with dsl.If(ev.outputs["Output"] == "pass", name="gate-passed"):
            if "train_bachgan" in models:
                trained = {"bachgan_model": models["train_bachgan"].outputs["model"]}
            else:
                trained = {"layout_model": models["train_layout"].outputs["model"],
                           "image_model": models["train_image"].outputs["model"],
                           **({"upscaler_model": models["train_upscaler"].outputs["model"]}
                              if "train_upscaler" in models else {})}
            reg = register(params=arg[argument("register")], processed=data.outputs["processed"],
                           evaluation=ev.outputs["evaluation"], **trained)
            # Not retried: a retry after a half-done registration could add a second version.
            reg = _common(reg, "register", cfg, transient=False, mlflow=True)
            if "promote" not in runs:
                return
            pro = promote(params=arg[argument("promote")], model_name=reg.outputs["model_name"],
                          version=reg.outputs["version"])
            _common(pro, "promote", cfg, transient=True, mlflow=True)

    # KFP reads a pipeline's parameters from its signature (and passes them by position): one
    # `<step>_params: str` per step, defaulting to that step's params.
    scene2img_pipeline.__signature__ = inspect.Signature([
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=value,
                          annotation=str) for name, value in defaults.items()])
    return dsl.pipeline(name=cfg.name if until == "promote" else f"{cfg.name}-until-{until}",
                        description="scene graphs -> images: data, training, evaluation, "
                                    "registry")(scene2img_pipeline)


def main(argv: list[str]) -> int:
    """Compile params.yaml's defaults to OUT (default: the checked-in YAML); or, as
    `scene2img pipeline compile | run --local` call it, do what the request on stdin says:
    {"command": "compile" | "run", "params": {...resolved...}, "out" | "until", "root",
    "cache", "live" (the CLI's stdout is a terminal), "runner", "image", "debug", "log_level"}."""
    if argv != ["-"]:
        out = Path(argv[0]) if argv else COMPILED
        print(local.compile_pipeline(make_pipeline, load_params(), out))
        return 0
    request = json.load(sys.stdin)
    logging.basicConfig(level=request["log_level"], format="%(levelname)s %(name)s: %(message)s")
    try:
        params = params_from_dict(request["params"], where="scene2img pipeline")
        if request["command"] == "compile":
            print(f"wrote {local.compile_pipeline(make_pipeline, params, Path(request['out']))}")
        else:
            root = Path(request["root"]) if request.get("root") else None
            run = local.run_local(make_pipeline, params, until=request["until"], root=root,
                                  cache=request["cache"],
                                  verbose=request["log_level"] <= logging.INFO,
                                  live=request.get("live", False),
                                  runner=request.get("runner", "subprocess"),
                                  image=request.get("image"))
            print(local.summary(run, params))
    except Scene2ImgError as exc:
        if request.get("debug"):
            raise
        print(f"scene2img: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
