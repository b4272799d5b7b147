"""`scene2img compare RUN_ID...`: one HTML page comparing MLflow runs side by side.

The page shows the params that differ, the metrics next to each other with the protocol each was
measured under (a metric from another protocol is marked, not silently compared), and each run's
image artifacts (sample grids, layout drawings) in columns. Images are embedded, so the page is
one self-contained file; it is also logged to MLflow as an artifact of a `compare` run.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

from mlflow import MlflowClient

from scene2img.errors import TrackingError
from scene2img.files import atomic_write_bytes
from scene2img.tracking.experiments import training_experiment

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGES_PER_RUN = 6
PROTOCOL_TAG_PREFIXES = ("eval.", "scene2img.protocol")


def _images(client: MlflowClient, run_id: str, path: str = "", out: list | None = None) -> list:
    out = [] if out is None else out
    for info in client.list_artifacts(run_id, path):
        if len(out) >= MAX_IMAGES_PER_RUN:
            break
        if info.is_dir:
            _images(client, run_id, info.path, out)
        elif info.path.lower().endswith(IMAGE_SUFFIXES):
            out.append(info.path)
    return out


def _embed(client: MlflowClient, run_id: str, path: str, tmp: Path) -> str:
    local = Path(client.download_artifacts(run_id, path, str(tmp)))
    kind = "png" if local.suffix.lower() == ".png" else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(local.read_bytes()).decode()}"


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><tr>{head}</tr>{body}</table>'


def compare_runs(client: MlflowClient, run_ids: list[str], out: Path) -> Path:
    """Write the comparison page for `run_ids` to `out` and return it."""
    if len(run_ids) < 2:
        raise TrackingError("compare needs at least two run ids")
    runs = []
    for rid in run_ids:
        try:
            runs.append(client.get_run(rid))
        except Exception as exc:
            raise TrackingError(f"run {rid!r} not found on {client.tracking_uri} ({exc})") \
                from None
    names = [r.info.run_name or r.info.run_id[:8] for r in runs]
    header = ["", *(f"{n}<br><small>{r.info.run_id}</small>" for n, r in zip(names, runs,
                                                                           strict=True))]
    esc = html.escape

    keys = sorted(set().union(*(r.data.params for r in runs)))
    differing = [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]
    param_rows = [[esc(k), *(esc(str(r.data.params.get(k, "—"))) for r in runs)]
                  for k in differing]

    protocols = [{k: v for k, v in r.data.tags.items() if k.startswith(PROTOCOL_TAG_PREFIXES)}
                 for r in runs]
    same_protocol = all(p == protocols[0] for p in protocols)
    metric_keys = sorted(set().union(*(r.data.metrics for r in runs)))
    metric_rows = []
    for k in metric_keys:
        values = [r.data.metrics.get(k) for r in runs]
        present = [v for v in values if v is not None]
        best = min(present) if present and ("fid" in k or "loss" in k) else None
        cells = []
        for v in values:
            text = "—" if v is None else f"{v:.4g}"
            cells.append(f"<b>{text}</b>" if best is not None and v == best else text)
        metric_rows.append([esc(k), *cells])
    proto_keys = sorted(set().union(*protocols))
    proto_rows = [[esc(k), *(esc(p.get(k, "—")) for p in protocols)] for k in proto_keys]

    with tempfile.TemporaryDirectory() as tmp:
        columns = []
        for r in runs:
            imgs = _images(client, r.info.run_id)
            cells = "".join(f'<figure><img src="{_embed(client, r.info.run_id, p, Path(tmp))}" '
                            f'alt="{esc(p)}"><figcaption>{esc(p)}</figcaption></figure>'
                            for p in imgs) or "<p>no image artifacts</p>"
            columns.append(f'<div class="col"><h3>{esc(r.info.run_name or "")}</h3>{cells}</div>')

    warning = "" if same_protocol else (
        '<p class="warn">The runs were not measured under the same protocol: metrics marked '
        "below are not comparable. See the protocol table.</p>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>scene2img: compare {len(runs)} runs</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }} table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; font-size: 13px; }}
.cols {{ display: flex; gap: 1em; }} .col {{ flex: 1; }} img {{ max-width: 100%; }}
.warn {{ background: #fee; padding: .5em; }}
</style></head>
<body>
<h1>Comparing {len(runs)} runs</h1>
<p>tracking server: {esc(client.tracking_uri)}</p>
{warning}
<h2>Params that differ ({len(differing)} of {len(keys)})</h2>
{_table(header, param_rows, "params")}
<h2>Metrics</h2>
{_table(header, metric_rows, "metrics")}
<h2>Protocols</h2>
{_table(header, proto_rows, "protocols")}
<h2>Samples</h2>
<div class="cols">{''.join(columns)}</div>
<script>
// A renderer check: every embedded image decoded (used by the tests in a real browser).
window.addEventListener("load", () => {{
  const imgs = [...document.images];
  document.body.dataset.imagesOk = String(imgs.every(i => i.complete && i.naturalWidth > 0));
  document.body.dataset.imagesCount = String(imgs.length);
}});
</script>
</body></html>
"""
    return atomic_write_bytes(out, page.encode())


def log_comparison(client: MlflowClient, experiment: str, run_ids: list[str], page: Path) -> str:
    """Log the page as an artifact of a new `compare` run; returns its run id."""
    exp_id = training_experiment(client, experiment)
    run = client.create_run(exp_id, run_name=f"compare {len(run_ids)} runs",
                            tags={"scene2img.stage": "compare",
                                  "scene2img.compared_runs": ",".join(run_ids)})
    client.log_artifact(run.info.run_id, str(page), "compare")
    client.set_terminated(run.info.run_id)
    return run.info.run_id
