"""train-layout and train-image: processed Dataset -> Model (exported model + checkpoints).

One node: the stage function runs in this pod (on its GPUs). `pipeline.train_nodes` > 1: the
step creates a Kubeflow Trainer `TrainJob` and waits for it (scene2img.pipeline.trainjob).
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components._base import COMPONENT


@dsl.component(**COMPONENT)
def train_layout(params: str, processed: Input[Dataset], model: Output[Model],
                 metrics: Output[Metrics]):
    from scene2img.pipeline import steps

    out = steps.train("train_layout", params, processed.path, processed.uri, model.path,
                      model.uri)
    model.metadata.update({**dict(processed.metadata), **out["metadata"]})
    steps.record_metrics(metrics, out["metrics"])


@dsl.component(**COMPONENT)
def train_image(params: str, processed: Input[Dataset], model: Output[Model],
                metrics: Output[Metrics]):
    from scene2img.pipeline import steps

    out = steps.train("train_image", params, processed.path, processed.uri, model.path,
                      model.uri)
    model.metadata.update({**dict(processed.metadata), **out["metadata"]})
    steps.record_metrics(metrics, out["metrics"])
