"""`compare` against the real tracking server, rendered in a real headless browser."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from PIL import Image

from scene2img.tracking.compare import compare_runs, log_comparison
from tests.chromium import render


def _make_run(client: MlflowClient, exp_id: str, tmp: Path, lr: str, fid: float, colour) -> str:
    run = client.create_run(exp_id, run_name=f"lr {lr}",
                            tags={"eval.backbone": "random-inception", "eval.image_size": "64"})
    rid = run.info.run_id
    client.log_param(rid, "train_image.lr", lr)
    client.log_param(rid, "train_image.batch_size", "8")
    client.log_metric(rid, "fid_random-inception_test", fid)
    img = tmp / f"grid-{lr}.png"
    Image.fromarray(np.full((32, 64, 3), colour, np.uint8)).save(img)
    client.log_artifact(rid, str(img), "images")
    client.set_terminated(rid)
    return rid


def test_compare_page_renders_in_a_browser(team_stack, tmp_path: Path) -> None:
    client = MlflowClient(team_stack.tracking_uri)
    exp_id = client.create_experiment("compare-test")
    a = _make_run(client, exp_id, tmp_path, "1e-4", 40.0, (200, 30, 30))
    b = _make_run(client, exp_id, tmp_path, "2e-4", 35.5, (30, 30, 200))
    page = compare_runs(client, [a, b], tmp_path / "compare.html")
    text = page.read_text()
    assert "train_image.lr" in text and "train_image.batch_size" not in text  # only what differs
    assert "<b>35.5</b>" in text  # the better FID is marked
    log_id = log_comparison(client, "compare-test", [a, b], page)
    assert [f.path for f in client.list_artifacts(log_id, "compare")] == ["compare/compare.html"]

    dom = render(page.as_uri(), tmp_path / "profile", wait_ms=3000)
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-images-ok="true"' in body and 'data-images-count="2"' in body
