"""Spoiled `last.ckpt` files for the resume tests of both trainings, and what a refused resume
must leave as it was."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# empty, cut short, not a torch file, an exported model (a torch file, but no training state), a
# Lightning checkpoint of another model, and one of this model trained with other sizes
KINDS = ("empty", "truncated", "random", "export", "foreign", "other-sizes")


def spoil(ckpt: Path, kind: str, export: Path) -> None:
    """Replace the checkpoint `ckpt` by a bad one of `kind` (`export`: the run's exported model)."""
    good = ckpt.read_bytes()
    if kind == "empty":
        ckpt.write_bytes(b"")
    elif kind == "truncated":
        ckpt.write_bytes(good[: len(good) // 2])
    elif kind == "random":
        ckpt.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                       dtype=torch.uint8).numpy().tobytes())
    elif kind == "export":
        shutil.copyfile(export, ckpt)
    elif kind == "foreign":
        other = torch.load(ckpt, weights_only=True)  # the training state of a Linear layer
        other["state_dict"] = torch.nn.Linear(3, 2).state_dict()
        torch.save(other, ckpt)
    elif kind == "other-sizes":
        other = torch.load(ckpt, weights_only=True)
        name = next(k for k, v in other["state_dict"].items() if v.ndim == 2)
        other["state_dict"][name] = torch.zeros(other["state_dict"][name].shape[0] + 1,
                                                other["state_dict"][name].shape[1])
        torch.save(other, ckpt)
    else:
        raise ValueError(kind)


def check_resume_is_refused(
    trained: Path,  # a model folder the CLI trained (last.ckpt, mlflow_run_id, the export)
    tracking_uri: str,  # where its MLflow run is
    export_name: str,  # the export's file name in the folder
    kind: str,  # one of KINDS
    cli_args: Callable[[Path], list[str]],  # the training's CLI arguments for a model folder
    work: Path,  # an empty folder for the copy
    capsys: pytest.CaptureFixture,
) -> None:
    """`--resume` from a spoiled last.ckpt (in a copy of `trained`) is refused in the CLI's
    error form, the MLflow run is left as it was (not FAILED), and the file is left alone."""
    from scene2img.cli import main

    out = work / "model"
    shutil.copytree(trained, out)
    ckpt = out / "checkpoints" / "last.ckpt"
    spoil(ckpt, kind, export=out / export_name)
    spoiled, before = ckpt.read_bytes(), run_status(tracking_uri, out)
    assert before[0] == "FINISHED"
    capsys.readouterr()
    rc = main([*cli_args(out), "--resume"])
    _assert_refused_in_one_line(rc, capsys.readouterr().err, ckpt)
    assert run_status(tracking_uri, out) == before
    assert ckpt.read_bytes() == spoiled  # the user decides what to do with it


def _assert_refused_in_one_line(rc: int, stderr: str, ckpt: Path) -> None:
    """The CLI's error form: exit 2, one line naming the file and what to do."""
    lines = stderr.strip().splitlines()
    assert rc == 2 and len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith(f"scene2img: error: {ckpt}: "), lines
    assert "delete it" in lines[0] and "resume from another checkpoint" in lines[0], lines


def run_status(tracking_uri: str, out: Path) -> tuple[str, int]:
    """(status, number of runs in the experiment) of the MLflow run recorded in `out`."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    run = client.get_run((out / "mlflow_run_id").read_text().strip())
    return run.info.status, len(client.search_runs([run.info.experiment_id]))
