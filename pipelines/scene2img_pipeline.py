"""The retraining DAG:

    ingest -> preprocess -> train-layout || train-image -> evaluate -> [gate] register -> promote

Components come from `components/`; parameters default from params.yaml (`params`: the whole
resolved configuration as JSON, one definition of each value; JSON because KFP's struct
parameters cannot hold the nulls params.yaml uses), and the Kubernetes settings of each task
(GPUs, node pool, /dev/shm, secrets, retries, caching) from its `pipeline` section.

    python pipelines/scene2img_pipeline.py            # = scene2img pipeline compile
"""


import json
import sys
from pathlib import Path

from kfp import compiler, dsl, kubernetes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `components` from the checkout

from components import (  # noqa: E402
    evaluate,
    ingest,
    preprocess,
    promote,
    register,
    train_image,
    train_layout,
)

from scene2img.config import Params, PipelineParams, load_params  # noqa: E402

STEPS = ("ingest", "preprocess", "train_layout", "train_image", "evaluate", "register", "promote")
COMPILED = Path(__file__).with_name("scene2img_pipeline.yaml")

# Secret key -> environment variable, for the Secrets in infra/k8s/secrets/ (templates).
S3_ENV = {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY":
          "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL"}
MLFLOW_ENV = {"MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME",
              "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD"}


def _common(task: dsl.PipelineTask, step: str, cfg: PipelineParams, transient: bool,
            s3: bool = True, mlflow: bool = False) -> dsl.PipelineTask:
    task.set_display_name(step.replace("_", "-"))
    task.set_caching_options(enable_caching=cfg.caching[step])
    if transient and cfg.retries:
        task.set_retry(num_retries=cfg.retries, backoff_duration=cfg.retry_backoff)
    if s3:
        kubernetes.use_secret_as_env(task, secret_name=cfg.secrets["s3"], secret_key_to_env=S3_ENV)
    if mlflow:
        kubernetes.use_secret_as_env(task, secret_name=cfg.secrets["mlflow"],
                                     secret_key_to_env=MLFLOW_ENV)
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
    if until not in STEPS:
        raise ValueError(f"until={until!r}: choose one of {STEPS}")
    cfg = params.pipeline
    last = STEPS.index(until)

    @dsl.pipeline(name=cfg.name if until == "promote" else f"{cfg.name}-until-{until}",
                  description="scene graphs -> images: data, training, evaluation, registry")
    def scene2img_pipeline(params: str = json.dumps(params.to_dict(), sort_keys=True)):
        raw = _common(ingest(params=params), "ingest", cfg, transient=True)
        data = _common(preprocess(params=params, raw=raw.outputs["raw"]), "preprocess", cfg,
                       transient=True)
        if last < STEPS.index("train_layout"):
            return
        models = {}
        for step, component in (("train_layout", train_layout), ("train_image", train_image)):
            task = component(params=params, processed=data.outputs["processed"])
            models[step] = _on_gpu_pool(_common(task, step, cfg, transient=False, mlflow=True),
                                        cfg)
        if last < STEPS.index("evaluate"):
            return
        ev = evaluate(params=params, processed=data.outputs["processed"],
                      layout_model=models["train_layout"].outputs["model"],
                      image_model=models["train_image"].outputs["model"])
        ev = _on_gpu_pool(_common(ev, "evaluate", cfg, transient=False, mlflow=True), cfg)
        if last < STEPS.index("register"):
            return
        with dsl.If(ev.outputs["Output"] == "pass", name="gate-passed"):
            reg = register(params=params, processed=data.outputs["processed"],
                           layout_model=models["train_layout"].outputs["model"],
                           image_model=models["train_image"].outputs["model"],
                           evaluation=ev.outputs["evaluation"],
                           kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
            # Not retried: a retry after a half-done registration could add a second version.
            reg = _common(reg, "register", cfg, transient=False, mlflow=True)
            if last < STEPS.index("promote"):
                return
            pro = promote(params=params, model_name=reg.outputs["model_name"],
                          version=reg.outputs["version"],
                          kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
            _common(pro, "promote", cfg, transient=True, mlflow=True)

    return scene2img_pipeline


scene2img_pipeline = make_pipeline(load_params())


def compile_pipeline(out: Path = COMPILED, params: Params | None = None) -> Path:
    pipeline = scene2img_pipeline if params is None else make_pipeline(params)
    compiler.Compiler().compile(pipeline, package_path=str(out))
    return out


if __name__ == "__main__":
    print(compile_pipeline(Path(sys.argv[1]) if len(sys.argv) > 1 else COMPILED))
