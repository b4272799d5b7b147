"""KFP lightweight components, one per pipeline step. Each is a thin call of
`scene2img.pipeline.steps`, which calls the stage function; they run in the project image
(`pipeline.image` in params.yaml, built from infra/docker/), where scene2img is installed, or
with the local runner in this checkout's environment.
"""

from components.evaluate import evaluate
from components.ingest import ingest
from components.preprocess import preprocess
from components.promote import promote
from components.register import register
from components.train import train_image, train_layout

__all__ = ["evaluate", "ingest", "preprocess", "promote", "register", "train_image",
           "train_layout"]
