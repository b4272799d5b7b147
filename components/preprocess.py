"""preprocess: raw Dataset -> processed Dataset (shards, vocab.json, manifest.json)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Output

from components._base import COMPONENT


@dsl.component(**COMPONENT)
def preprocess(params: str, raw: Input[Dataset], processed: Output[Dataset],
               report: Output[Markdown]):
    from scene2img.pipeline import steps

    out = steps.preprocess(params, raw.path, processed.path, dict(raw.metadata))
    processed.metadata.update(out["metadata"])
    with open(report.path, "w") as f:
        f.write(out["report"])
