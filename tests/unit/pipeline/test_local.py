"""What `pipeline run --local` shows: one line per task as it starts and ends, the running
task's progress bar redrawn in place, everything else in the log file; `-v` shows it all."""

from __future__ import annotations

import io
import json
import logging

from scene2img.pipeline.local import _Console, _TaskLog, headline

OUTPUTS = {
    "ingest": {"artifacts": {"raw": {"artifacts": [{"metadata": {
        "files": 47, "data_version": "toyworld:e110184116bc76657a8b270fa65852e55e2bb"}}]}}},
    "preprocess": {"artifacts": {"processed": {"artifacts": [{"metadata": {
        "count_train": 26, "count_val": 3, "count_test": 3, "source": "vg"}}]}}},
    "train-layout": {"artifacts": {"metrics": {"artifacts": [{"metadata": {
        "val/box_iou": 0.1, "test/box_iou": 0.25}}]}}},
    "train-image": {"artifacts": {"metrics": {"artifacts": [{"metadata": {
        "train/d_loss": 5.2, "train/g_loss": -0.138}}]}}},
    "train-upscaler": {"artifacts": {"metrics": {"artifacts": [{"metadata": {
        "val/psnr": 27.0, "test/x4/psnr/rdn": 28.7, "test/x4/psnr/bicubic": 28.16}}]}}},
    "evaluate": {"parameterValues": {"Output": "pass"}, "artifacts": {"metrics": {"artifacts": [
        {"metadata": {"kid_x_test": 0.01, "fid_x_test": 6.176, "fid_x_test_predlayout": 4.46}}]}}},
    "register": {"parameterValues": {"model_name": "scene2img", "version": "3"}},
    "promote": {"parameterValues": {"alias": "challenger", "outcome": "kept-champion"}},
}


def test_headline_figures():
    assert [headline(task, OUTPUTS) for task in OUTPUTS] == [
        "47 files, data version toyworld:e110184116bc",
        "train 26, val 3, test 3 images",
        "test/box_iou=0.25",
        "train/g_loss=-0.138",
        "test/x4/psnr/rdn=28.7 (bicubic 28.16)",
        "gate pass; fid_x_test=6.176, fid_x_test_predlayout=4.46",
        "scene2img version 3",
        "@challenger (kept-champion)",
    ]
    assert headline("train-image", {}) == ""  # no output (yet): no figure


def _console(tmp_path, verbose=False, live=True):
    runs = tmp_path / "runs"
    task_dir = runs / "scene2img-retrain-1" / "train-image"
    task_dir.mkdir(parents=True)
    (task_dir / "executor_output.json").write_text(json.dumps(OUTPUTS["train-image"]))
    out, log = io.StringIO(), io.StringIO()
    return _Console(log, out, verbose=verbose, live=live, runs=runs), out, log


def _log(console, message):
    """A kfp.local log record, through the task filter as the root logger would pass it."""
    record = logging.LogRecord("root", logging.INFO, __file__, 1, message, None, None)
    _TaskLog(console).filter(record)


def test_one_line_per_task_a_live_bar_and_the_rest_in_the_log(tmp_path):
    console, out, log = _console(tmp_path)
    _log(console, "Executing task \x1b[96m'train-image'\x1b[0m")
    console.write("    [KFP Executor] Got executor_input:\n    {\"inputs\": {}}\n")
    console.write("    Epoch 0:  40%|####      | 2/5 [00:01<00:02,  1.50it/s]\n")
    console.write("    Epoch 0: 100%|##########| 5/5 [00:03<00:00,  1.50it/s]\n")
    console.write("    partial line without its end")
    _log(console, "Task \x1b[96m'train-image'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m")
    _log(console, "Task ingest cache hit (key=b0c168e0b102); skipping execution.")
    shown = out.getvalue()
    lines = shown.split("\n")
    assert lines[0].endswith("  train-image    started")
    assert "\r\x1b[K" in shown and "train-image    Epoch 0  40% (2/5, 00:01 elapsed, 00:02 left)" in shown
    assert "done in 0s  train/g_loss=-0.138" in shown
    assert lines[-2].endswith("  ingest         cached")  # no output under runs/: no figure
    assert "executor_input" not in shown
    written = log.getvalue()
    assert "Got executor_input" in written and "\x1b[" not in written
    assert "40%" not in written and "Epoch 0: 100%|##########| 5/5" in written  # last state only
    assert "train-image    started" in written  # the task lines too, in order


def test_verbose_shows_everything_and_no_redraws(tmp_path):
    console, out, _ = _console(tmp_path, verbose=True)
    _log(console, "Executing task 'train-image'")
    console.write("    Got executor_input:\n    Epoch 0:  40%|####      | 2/5 [00:01<00:02]\n")
    shown = out.getvalue()
    assert "Got executor_input" in shown and "2/5 [00:01<00:02]" in shown
    assert "train-image    started" in shown and "\x1b[K" not in shown


def test_not_a_terminal_no_bars(tmp_path):
    console, out, _ = _console(tmp_path, live=False)
    _log(console, "Executing task 'train-image'")
    console.write("    Epoch 0:  40%|####      | 2/5 [00:01<00:02]\n")
    _log(console, "Task 'train-image' finished with status FAILURE")
    assert "40%" not in out.getvalue() and "\r" not in out.getvalue()
    assert out.getvalue().split("\n")[1].endswith("train-image    failed in 0s")
    assert console.failed == ["train-image"]
    _log(console, "Skipping conditional task register: condition is false")
    assert out.getvalue().split("\n")[2].endswith("register       skipped")


def test_run_local_wiring_with_the_subprocess_runner(tmp_path):
    """run_local up to the tasks (a pipeline that starts none): one cache, the log, no image."""
    from kfp.local import config

    from scene2img.config import load_params
    from scene2img.pipeline.local import run_local

    seen = {}

    def make_pipeline(params, until):
        def pipeline(**arguments):
            cfg = config.LocalExecutionConfig.instance
            seen.update(runner=type(cfg.runner).__name__, cache=cfg.cache_root,
                        arguments=sorted(arguments))
        return pipeline

    out = io.StringIO()
    run = run_local(make_pipeline, load_params(), until="ingest", root=tmp_path, out=out)
    assert seen["runner"] == "SubprocessRunner" and seen["cache"] == str(tmp_path / "cache")
    assert "ingest_params" in seen["arguments"]
    assert out.getvalue().startswith(f"pipeline: ingest; full log: {run.log}")
    assert run.log.is_file() and run.image is None and run.kfp_run_id.startswith("local-")
