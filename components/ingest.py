"""ingest: the raw dataset at a data version (DVC) or the toy world -> a Dataset artifact."""

from kfp import dsl
from kfp.dsl import Dataset, Markdown, Output

from components._base import COMPONENT


@dsl.component(**COMPONENT)
def ingest(params: str, raw: Output[Dataset], report: Output[Markdown]):
    from scene2img.pipeline import steps

    out = steps.ingest(params, raw.path)
    raw.metadata.update(out["metadata"])
    with open(report.path, "w") as f:
        f.write(out["report"])
