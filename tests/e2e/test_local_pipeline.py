"""`scene2img pipeline run --local`: the DAG with the KFP local runner on a tiny toy world.

The test runs the whole DAG, ingest -> preprocess -> train-layout || train-image -> evaluate ->
register -> promote, ending in a registered, promoted version in MLflow, with tiny params; then
again with nothing changed: every task up to evaluate comes from the cache, and register (never
cached) registers version 2.
"""

from __future__ import annotations

import pytest

from scene2img.cli import main

TINY = [f"-S{o}" for o in (
    "toyworld.images=40", "toyworld.width=320", "toyworld.height=240", "preprocess.image_size=64",
    "preprocess.workers=1", "data.num_workers=0", "trainer.accelerator=cpu",
    "trainer.log_every_n_steps=1",
    "train_layout.embed_dim=16", "train_layout.gconv_dim=16", "train_layout.gconv_hidden=32",
    "train_layout.gconv_layers=2", "train_layout.box_hidden=32", "train_layout.mask_dim=8",
    "train_layout.d_dim=16", "train_layout.batch_size=8", "train_layout.layout_images=2",
    "train_layout.max_steps=2",
    "train_image.g.ch=1", "train_image.d.ch=1", "train_image.g.z_img=8", "train_image.g.z_obj=8",
    "train_image.g.class_dim=8", "train_image.g.attr_dim=4", "train_image.batch_size=4",
    "train_image.grid_images=2", "train_image.max_steps=2",
    "evaluate.backbone=random-inception", "evaluate.batch_size=8", "evaluate.kid_subsets=2",
    "evaluate.kid_subset_size=2", "evaluate.is_splits=1", "evaluate.report_samples=2",
    "evaluate.scenefid_crop_size=32",
)]


def _run(tmp_path, *args: str) -> list[str]:
    root = str(tmp_path / "kfp")
    tracking = f"-Stracking.uri=sqlite:///{tmp_path}/mlflow.db"
    return ["pipeline", "run", "--local", "--root", root, tracking, *TINY, *args]


def test_local_dag_registers_then_reuses_the_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's artifacts (./mlruns) land here
    assert main(_run(tmp_path)) == 0
    first = capsys.readouterr().out
    assert "data version toyworld:" in first
    assert "train-layout metrics:" in first and "train-image metrics:" in first
    assert "gate: pass" in first
    assert "registered: scene2img version 1" in first
    assert "alias: @champion (first-champion)" in first
    assert "reused cached outputs" not in first

    assert main(_run(tmp_path)) == 0  # nothing changed: everything up to evaluate is reused
    second = capsys.readouterr().out
    reused = second[second.index("reused cached outputs of:"):].splitlines()[0]
    for step in ("ingest", "preprocess", "train-layout", "train-image", "evaluate"):
        assert step in reused, reused
    assert "registered: scene2img version 2" in second  # register is never cached
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db" in second


def test_unknown_step_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(_run(tmp_path, "--until", "serve"))
