"""The Kubeflow pipeline's library side: what each step receives (`params`: the step names, the
params keys each one reads, the KFP run id), what the components call (`steps`), the multi-node
`TrainJob` (`trainjob`), and the helpers to compile, run locally (`local`) and submit (`submit`).
The DAG itself is `pipelines/scene2img_pipeline.py` and its components are in `components/`:
drivers, which pass the DAG in; nothing here imports them.
"""

from __future__ import annotations

from scene2img.errors import Scene2ImgError

# The kfp.local runners of `pipeline run --local`: tasks as subprocesses of this environment, or
# each in the project's image (scene2img.pipeline.docker).
RUNNERS = ("subprocess", "docker")


class PipelineError(Scene2ImgError):
    """The pipeline could not be compiled, run or submitted; the message says what to do."""
