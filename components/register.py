"""register: the end-to-end model (graph -> layout -> image, and -> upscaled image when the DAG
has train-upscaler) into the MLflow registry; in the bachgan family's DAG, BachGAN (given
`bachgan_model` instead of the layout and image models), under its own registered name."""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components._base import COMPONENT


@dsl.component(**COMPONENT)
def register(params: str, processed: Input[Dataset], evaluation: Input[Artifact],
             report: Output[Markdown],
             layout_model: Optional[Input[Model]] = None,  # noqa: UP045 (KFP knows Optional)
             image_model: Optional[Input[Model]] = None,  # noqa: UP045
             upscaler_model: Optional[Input[Model]] = None,  # noqa: UP045
             bachgan_model: Optional[Input[Model]] = None,  # noqa: UP045
             ) -> NamedTuple("RegisterOutputs", [("model_name", str), ("version", str)]):
    import json
    from collections import namedtuple

    from scene2img.pipeline import steps

    if bachgan_model:
        out = steps.register_bachgan(params, bachgan_model.path, processed.path, evaluation.path)
    else:
        out = steps.register(params, layout_model.path, image_model.path, processed.path,
                             evaluation.path, upscaler_model.path if upscaler_model else None)
    out["data_version"] = processed.metadata.get("data_version", "unknown")
    with open(report.path, "w") as f:
        f.write(f"# register\n\n```json\n{json.dumps(out, indent=1)}\n```\n")
    outputs = namedtuple("RegisterOutputs", ["model_name", "version"])
    return outputs(str(out["name"]), str(out["version"]))
