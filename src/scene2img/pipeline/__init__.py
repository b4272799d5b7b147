"""The Kubeflow pipeline's library side: what the components call (`steps`), the multi-node
`TrainJob` (`trainjob`), and the drivers' helpers to compile, run locally and submit (`build`,
`local`, `submit`). The DAG itself is `pipelines/scene2img_pipeline.py`; its components are in
`components/`.
"""

from __future__ import annotations

from scene2img.errors import Scene2ImgError


class PipelineError(Scene2ImgError):
    """The pipeline could not be compiled, run or submitted; the message says what to do."""
