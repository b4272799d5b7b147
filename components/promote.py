"""promote: the promotion gate moves @challenger, or @champion when the candidate is better."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Markdown, Output

from components._base import COMPONENT


@dsl.component(**COMPONENT)
def promote(params: str, model_name: str, version: str, report: Output[Markdown],
            ) -> NamedTuple("PromoteOutputs", [("alias", str), ("outcome", str)]):
    import json
    from collections import namedtuple

    from scene2img.pipeline import steps

    out = steps.promote(params, model_name, version)
    with open(report.path, "w") as f:
        f.write(f"# promote\n\n{out['summary']}\n\n```json\n{json.dumps(out, indent=1)}\n```\n")
    return namedtuple("PromoteOutputs", ["alias", "outcome"])(out["alias"], out["outcome"])
