"""train-layout, train-image, train-upscaler and (the bachgan family) train-bachgan: processed
Dataset -> Model (exported model + checkpoints); the upscaler also reads the raw Dataset it was
preprocessed from (full-size images).

One node: the stage function runs in this pod (on its GPUs). `pipeline.train_nodes` > 1: the
layout, image and BachGAN steps create a Kubeflow Trainer `TrainJob` and wait for it
(scene2img.pipeline.trainjob); the upscaler, small and reading the raw folder, stays in its pod.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components._base import COMPONENT


@dsl.component(**COMPONENT)
def train_layout(params: str, processed: Input[Dataset], model: Output[Model],
                 metrics: Output[Metrics]):
    from scene2img.pipeline import steps

    steps.train_task("train_layout", params, processed, model, metrics)


@dsl.component(**COMPONENT)
def train_image(params: str, processed: Input[Dataset], model: Output[Model],
                metrics: Output[Metrics]):
    from scene2img.pipeline import steps

    steps.train_task("train_image", params, processed, model, metrics)


@dsl.component(**COMPONENT)
def train_upscaler(params: str, processed: Input[Dataset], raw: Input[Dataset],
                   model: Output[Model], metrics: Output[Metrics]):
    from scene2img.pipeline import steps

    out = steps.train_upscaler(params, processed.path, raw.path, model.path)
    model.metadata.update({**dict(processed.metadata), **out["metadata"]})
    steps.record_metrics(metrics, out["metrics"])


@dsl.component(**COMPONENT)
def train_bachgan(params: str, processed: Input[Dataset], model: Output[Model],
                  metrics: Output[Metrics]):
    from scene2img.pipeline import steps

    steps.train_task("train_bachgan", params, processed, model, metrics)
