"""`scene2img pipeline run --local`: the DAG with the KFP local runner on a tiny toy world.

One run of the whole DAG (ingest -> ... -> promote, with a tiny train-upscaler; it ends in a
registered version in MLflow that upscales), shared by the tests: again with nothing changed,
everything up to evaluate comes from the cache; again with `train_image.lr_g` changed (up to
train-image), ingest, preprocess and train-layout come from the cache and train-image runs.
Every MLflow run a task makes is
tagged with the KFP run id of the pipeline run that made it. Evaluation on the CPU dominates
(the InceptionV3 backbone at 299 px, even with random weights).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import mlflow
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
    "train_upscaler.scale=2", "train_upscaler.rdn.blocks=1", "train_upscaler.rdn.layers=1",
    "train_upscaler.rdn.growth=4", "train_upscaler.rdn.features=4", "train_upscaler.patch=16",
    "train_upscaler.eval_size=64", "train_upscaler.batch_size=4", "train_upscaler.max_steps=2",
    "train_upscaler.val_every_n_steps=2", "train_upscaler.strip_images=1",
    "register.upscaler_margin_db=-100",  # 2 steps leave RDN at bicubic (gate: test_register.py)
)]


def _run(root, *args: str) -> str:
    """Run the DAG with the CLI (in `root`: MLflow's ./mlruns lands there); its output."""
    argv = ["pipeline", "run", "--local", "--root", str(root / "kfp"),
            f"-Stracking.uri=sqlite:///{root}/mlflow.db", *TINY, *args]
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.chdir(root)
        assert main(argv) == 0
    return out.getvalue()


def _steps(out: str, start: str) -> set[str]:
    """The tasks a summary line lists ("  ran: a, b" / "  reused cached outputs of: a, b (...)")."""
    line = next(line for line in out.splitlines() if line.startswith("  " + start))
    return {name.strip() for name in line.split(":", 1)[1].split("(")[0].split(",")}


def _kfp_run_id(out: str) -> str:
    return re.search(r"KFP run id (local-[0-9a-f-]+)\)", out).group(1)


def _tagged(root) -> dict[str, list[str]]:
    """stage -> the KFP run ids its MLflow runs are tagged with, oldest first."""
    client = mlflow.MlflowClient(f"sqlite:///{root}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              order_by=["attributes.start_time ASC"])
    out: dict[str, list[str]] = {}
    for run in runs:
        out.setdefault(run.data.tags["scene2img.stage"], []).append(
            run.data.tags["scene2img.kfp_run_id"])
    return out


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """The whole DAG, once: (the folder it ran in, its output)."""
    root = tmp_path_factory.mktemp("dag")
    return root, _run(root)


def test_local_dag_registers_then_reuses_the_cache(first_run):
    root, first = first_run
    assert "data version toyworld:" in first
    assert "train-layout metrics:" in first and "train-image metrics:" in first
    assert "train-upscaler metrics:" in first
    assert "gate: pass" in first
    assert "registered: scene2img version 1" in first
    assert "alias: @champion (first-champion)" in first
    assert "reused cached outputs" not in first
    # the terminal: a line per task as it starts and ends; kfp.local's output in the log file
    assert re.search(r"^\d\d:\d\d:\d\d  train-image    started$", first, re.MULTILINE)
    assert re.search(r"^\d\d:\d\d:\d\d  register       done in [\dm]+s  scene2img version 1$", first,
                     re.MULTILINE)
    assert "executor_input" not in first
    log = Path(re.search(r"full log: (\S+)", first).group(1))
    assert "Got executor_input" in log.read_text()
    assert _steps(first, "ran:") == {"ingest", "preprocess", "train-layout", "train-image",
                                     "train-upscaler", "evaluate", "register", "promote"}
    run_1 = _kfp_run_id(first)
    stages = ("train_layout", "train_image", "train_upscaler", "evaluate", "register")
    assert {s: ids for s, ids in _tagged(root).items() if s in stages} == {
        stage: [run_1] for stage in stages}
    # register got train-upscaler's model folder: the registered model upscales
    version = mlflow.MlflowClient(f"sqlite:///{root}/mlflow.db").get_model_version("scene2img", "1")
    assert version.description.endswith("upscaler x2"), version.description

    second = _run(root)  # nothing changed: everything up to evaluate is reused
    assert _steps(second, "reused cached outputs of:") == {
        "ingest", "preprocess", "train-layout", "train-image", "train-upscaler", "evaluate"}
    assert re.search(r"^\d\d:\d\d:\d\d  evaluate       cached  gate pass; fid_", second,
                     re.MULTILINE)
    assert "registered: scene2img version 2" in second  # register is never cached
    assert f"mlflow ui --backend-store-uri sqlite:///{root}/mlflow.db" in second
    assert _tagged(root)["register"] == [run_1, _kfp_run_id(second)]


def test_a_changed_training_param_reruns_only_the_steps_it_reaches(first_run):
    root, first = first_run
    # up to train-image: evaluation (four FIDs on 2048-d features) would add two minutes, and
    # that a task whose input artifact changed reruns is kfp.local's cache key, not ours
    out = _run(root, "-Strain_image.lr_g=0.002", "--until", "train_image")
    assert _steps(out, "reused cached outputs of:") == {"ingest", "preprocess", "train-layout"}
    assert _steps(out, "ran:") == {"train-image"}
    run_1, run_3 = _kfp_run_id(first), _kfp_run_id(out)
    tagged = _tagged(root)
    assert tagged["train_layout"] == [run_1]  # reused, never retrained
    assert tagged["train_image"] == [run_1, run_3]


def test_unknown_step_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        main(["pipeline", "run", "--local", "--root", str(tmp_path), "--until", "serve"])
