"""evaluate: both models on the test split (BachGAN: its one model, no layout model) -> Metrics,
an HTML report, and the registry gate ("pass" / "fail"; the reason is in the evaluation
artifact's metadata)."""

from typing import Optional

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from components._base import COMPONENT


@dsl.component(**COMPONENT)
def evaluate(params: str, processed: Input[Dataset], image_model: Input[Model],
             evaluation: Output[Artifact], metrics: Output[Metrics], report: Output[HTML],
             layout_model: Optional[Input[Model]] = None,  # noqa: UP045 (KFP knows Optional)
             ) -> str:
    import html
    import os
    import shutil

    from scene2img.pipeline import steps

    out = steps.evaluate(params, processed.path, layout_model.path if layout_model else None,
                         image_model.path, evaluation.path)
    evaluation.metadata.update({**dict(processed.metadata), "gate": out["reason"]})
    steps.record_metrics(metrics, out["metrics"])
    page = os.path.join(evaluation.path, "report_pred-layout.html")
    if not os.path.isfile(page):  # BachGAN: gt-layout only
        page = os.path.join(evaluation.path, "report_gt-layout.html")
    if os.path.isfile(page):
        shutil.copyfile(page, report.path)
    else:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.6g}</td></tr>"
                       for k, v in sorted(out["metrics"].items()))
        with open(report.path, "w") as f:
            f.write(f"<h1>evaluate</h1><p>{html.escape(out['reason'])}</p><table>{rows}</table>")
    return "pass" if out["passed"] else "fail"  # one plain output: dsl.If reads it everywhere
