"""Stage `train_layout`: end to end (CLI, export, MLflow), the exported model on a scene graph,
bad scene graphs in data loading, exact resume, bf16, and DDP on two CPU processes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from scene2img.cli import main
from scene2img.config import load_params
from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.vocab import Vocab
from scene2img.errors import SceneGraphError
from scene2img.serving.schema import SceneGraph, SceneObject
from scene2img.serving.tensors import graph_tensors, predict_layout
from scene2img.stages.train_layout import layout_module, train_layout
from scene2img.training.export import LAYOUT_MODEL_FILE, load_layout_model
from scene2img.training.runtime import build_trainer, seed_everything
from scene2img.training.sampling import DataPosition, ResumableDataModule
from tests.unit.training import bad_checkpoints

TINY = ["train_layout.embed_dim=16", "train_layout.gconv_dim=16", "train_layout.gconv_hidden=32",
        "train_layout.gconv_layers=2", "train_layout.box_hidden=32", "train_layout.mask_dim=8",
        "train_layout.d_dim=16", "train_layout.batch_size=8", "train_layout.layout_images=2",
        "train_layout.lr=0.001", "train_layout.d_lr=0.001", "trainer.accelerator=cpu",
        "trainer.log_every_n_steps=1", "data.num_workers=0"]


def tiny_params(tmp_path: Path, *extra: str):
    return load_params(experiment="toyworld", overrides=[
        *TINY, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *extra])


pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------------------------
# the stage, end to end through the CLI


def _cli_args(data: Path, out: Path, tracking_uri: str) -> list[str]:
    return ["train-layout", "--data", str(data), "--out", str(out), "-e", "toyworld", "-q",
            "--max-steps", "4", *(a for kv in TINY for a in ("-S", kv)),
            "-S", f"tracking.uri={tracking_uri}", "-S", "train_layout.val_every_n_steps=2"]


@pytest.fixture(scope="module")
def trained(toy_vg, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layout")
    out = tmp / "model"
    args = _cli_args(toy_vg, out, f"sqlite:///{tmp}/mlflow.db")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(threads)
    return out, f"sqlite:///{tmp}/mlflow.db"


def test_stage_writes_model_metrics_and_an_mlflow_run(trained):
    from mlflow.tracking import MlflowClient

    out, uri = trained
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("val/box_iou", "val/recall_at_0.3", "val/recall_at_0.5", "test/recall_at_0.5",
                "baseline/val/recall_at_0.5", "baseline/test/recall_at_0.5"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["steps"] == 4
    payload = torch.load(out / LAYOUT_MODEL_FILE, map_location="cpu", weights_only=True)
    assert payload["format"] == "scene2img.layout" and payload["config"]["max_objects"] == 16
    assert payload["vocab"]["object_idx_to_name"][0] == "__image__"

    client = MlflowClient(uri)
    run = client.get_run((out / "mlflow_run_id").read_text().strip())
    assert {"train/loss_box", "val/recall_at_0.5", "val/box_iou",
            "baseline/val/recall_at_0.5"} <= set(run.data.metrics)
    assert run.data.params["train_layout/gconv_layers"] == "2"
    drawings = [f.path for f in client.list_artifacts(run.info.run_id, "layouts")]
    assert drawings and all(p.endswith(".png") for p in drawings)
    assert "recall_by_class.json" in {f.path for f in client.list_artifacts(run.info.run_id)}


def test_recall_by_class_adds_up_to_the_val_figures(trained):
    out, _ = trained
    metrics = json.loads((out / "metrics.json").read_text())
    by_class = json.loads((out / "recall_by_class.json").read_text())
    assert "sky" in by_class and "__image__" not in by_class
    n = sum(row["objects"] for row in by_class.values())
    for who, key in (("model", "val/recall_at_0.5"), ("baseline", "baseline/val/recall_at_0.5")):
        overall = sum(row[who] * row["objects"] for row in by_class.values()) / n
        assert overall == pytest.approx(metrics[key], abs=1e-6), who


def test_exported_model_predicts_layouts(trained):
    model, vocab, config = load_layout_model(trained[0] / LAYOUT_MODEL_FILE)
    assert not model.training and config["max_objects"] == 16
    names = [n for n in vocab.object_idx_to_name[1:] if n][:3]
    pred = vocab.pred_idx_to_name[1]
    graph = SceneGraph([SceneObject(names[0], [vocab.attribute_idx_to_name[0]]),
                        SceneObject(names[1], []), SceneObject(names[2], None)],
                       [(0, pred, 1), (2, pred, 0)])
    boxes, masks = predict_layout(model, graph_tensors(graph, vocab, config["max_objects"]))
    assert boxes.shape == (1, 4, 4) and masks.shape == (1, 4, 16, 16)
    assert ((boxes >= 0) & (boxes <= 1)).all()
    assert (boxes[..., :2] + boxes[..., 2:] <= 1 + 1e-6).all()
    assert boxes[0, 3].tolist() == [0.0, 0.0, 1.0, 1.0] and float(masks[0, 3].abs().max()) == 0.0


# --------------------------------------------------------------------------------------------
# bad scene graphs in training data


class _EditedReader:
    def __init__(self, reader, **changes):
        self.reader, self.changes = reader, changes

    def __len__(self):
        return len(self.reader)

    def __getitem__(self, i):
        return dataclasses.replace(self.reader[i], **self.changes)


def test_bad_scene_graphs_in_data_loading(toy_vg, tmp_path):
    with pytest.raises(SceneGraphError, match="at most 3"):
        SceneGraphDataset(toy_vg, "train", max_objects=3)[0]
    ds = SceneGraphDataset(toy_vg, "train", 16)
    ds.reader = _EditedReader(ds.reader, triples=np.array([[0, 1, 40]]))
    with pytest.raises(SceneGraphError, match="points at object 40"):
        ds[0]
    small = Vocab(ds.vocab.object_idx_to_name[:1], ds.vocab.pred_idx_to_name,
                  ds.vocab.attribute_idx_to_name)
    with pytest.raises(SceneGraphError, match="unknown object class index"):
        SceneGraphDataset(toy_vg, "train", 16, vocab=small)[0]
    # ... and the stage stops with the same error.
    with pytest.raises(SceneGraphError, match="at most 3"):
        train_layout(toy_vg, tmp_path / "m", tiny_params(tmp_path, "data.max_objects=3",
                                                         "train_layout.max_steps=2"),
                     progress=False)


# --------------------------------------------------------------------------------------------
# exact resume


class LossRecorder(pl.Callback):
    def __init__(self):
        self.losses: dict[int, float] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses[trainer.global_step] = float(outputs["loss"])


def test_resume_continues_exactly(toy_vg, tmp_path):
    """6 steps in one go == 3 steps, then resume from last.ckpt for 3 more (flips, GAN on)."""
    def run(out: Path, steps: int, resume: bool) -> tuple[dict, dict]:
        rec = LossRecorder()
        params = tiny_params(tmp_path, f"train_layout.max_steps={steps}",
                             "train_layout.val_every_n_steps=1000",
                             "trainer.checkpoint_every_n_steps=3", "data.flip=true")
        train_layout(toy_vg, out, params, resume=resume, progress=False, callbacks=[rec],
                     trainer_overrides={"num_sanity_val_steps": 0})
        return rec.losses, torch.load(out / LAYOUT_MODEL_FILE, weights_only=True)["state_dict"]

    straight, w_straight = run(tmp_path / "a", 6, False)
    first, _ = run(tmp_path / "b", 3, False)
    second, w_resumed = run(tmp_path / "b", 6, True)
    assert sorted(first) == [1, 2, 3] and sorted(second) == [4, 5, 6]
    assert {**first, **second} == straight
    assert w_straight.keys() == w_resumed.keys()
    assert all(torch.equal(w_straight[k], w_resumed[k]) for k in w_straight)


@pytest.mark.parametrize("kind", bad_checkpoints.KINDS)
def test_resume_from_a_bad_checkpoint_is_refused_before_the_run(trained, toy_vg, tmp_path, kind,
                                                                capsys):
    out, uri = trained
    bad_checkpoints.check_resume_is_refused(out, uri, LAYOUT_MODEL_FILE, kind,
                                            lambda folder: _cli_args(toy_vg, folder, uri),
                                            tmp_path, capsys)


# --------------------------------------------------------------------------------------------
# DDP on two CPU processes


class GradGrab(pl.Callback):
    """Saves the (all-reduced) gradients of the first optimiser step from rank 0."""

    def __init__(self, path: Path):
        self.path = path

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_rank == 0 and trainer.global_step == 0:
            grads = {n: p.grad.detach().clone() for n, p in pl_module.named_parameters()
                     if p.grad is not None}
            torch.save(grads, self.path)


def _first_step_grads(data: Path, out: Path, params, devices: int, batch_size: int) -> dict:
    out.mkdir(parents=True)
    seed_everything(0)
    datamodule = ResumableDataModule(data, params.data, batch_size, seed=0)
    module = layout_module(params.train_layout, datamodule.vocab)
    trainer_params = dataclasses.replace(params.trainer, devices=devices, accelerator="cpu",
                                         strategy="ddp_spawn" if devices > 1 else "auto")
    trainer = build_trainer(trainer_params, out, max_steps=1,
                            callbacks=[DataPosition(), GradGrab(out / "grads.pt")],
                            use_distributed_sampler=False, limit_val_batches=0,
                            num_sanity_val_steps=0, enable_progress_bar=False)
    trainer.fit(module, datamodule=datamodule)
    return torch.load(out / "grads.pt", weights_only=True)


def test_bf16_mixed_precision_trains_and_exports_fp32(toy_vg, tmp_path):
    """`trainer.precision=bf16-mixed` (what GPU nodes use) runs under CPU autocast: the losses
    are finite, the model learns, and the exported weights stay fp32."""
    rec = LossRecorder()
    params = tiny_params(tmp_path, "trainer.precision=bf16-mixed", "train_layout.max_steps=8",
                         "train_layout.val_every_n_steps=4")
    result = train_layout(toy_vg, tmp_path / "bf16", params, progress=False, callbacks=[rec])
    assert sorted(rec.losses) == list(range(1, 9))
    assert all(np.isfinite(v) for v in rec.losses.values())
    assert 0.0 <= result.metrics["val/recall_at_0.5"] <= 1.0
    weights = torch.load(result.model_path, weights_only=True)["state_dict"]
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float32}


def test_ddp_on_two_cpu_processes_matches_one(toy_vg, tmp_path):
    """The same global batch of 8: two gloo ranks of 4 vs one process of 8 -> the same gradient.

    The mask head runs without batch norm here: its statistics are per rank by design."""
    params = tiny_params(tmp_path, "train_layout.mask_norm=none", "data.flip=true")
    one = _first_step_grads(toy_vg, tmp_path / "one", params, devices=1, batch_size=8)
    two = _first_step_grads(toy_vg, tmp_path / "two", params, devices=2, batch_size=4)
    assert one.keys() == two.keys() and any(k.startswith("disc.") for k in one)
    for k in one:
        assert torch.allclose(one[k], two[k], rtol=1e-4, atol=1e-6), k
