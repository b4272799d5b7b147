"""Stage `train_image` on the toy world, in Visual Genome's format (no masks) and COCO-Stuff's
(masks): export, metrics, MLflow grids and tags, masks learned end to end or given, the L1 and
VGG terms, resume, DDP, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import pytorch_lightning as pl
import torch

from scene2img.cli import main
from scene2img.config import load_params
from scene2img.errors import ConfigError, ModelError
from scene2img.stages.train_image import train_image
from scene2img.training.export import IMAGE_MODEL_FILE, load_generator
from tests.unit.training import bad_checkpoints

TINY = ["train_image.g.ch=1", "train_image.d.ch=1", "train_image.g.z_img=8",
        "train_image.g.z_obj=8", "train_image.g.class_dim=8", "train_image.g.attr_dim=4",
        "train_image.g.attr_hidden=[8]", "train_image.g.mask_width=8",
        "train_image.g.stage_mask_dim=4", "train_image.ema_bn_batches=2",
        "train_image.batch_size=4", "train_image.grid_images=2", "trainer.accelerator=cpu",
        "trainer.log_every_n_steps=1"]
DATA = pytest.mark.parametrize("data", ["toy_vg", "toy_coco"])  # without and with masks


def tiny_params(tmp_path: Path, *extra: str):
    return load_params(experiment="toyworld", overrides=[
        *TINY, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *extra])


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's artifacts (./mlruns) land here


@DATA
def test_stage_writes_model_metrics_and_grids(data, request, tmp_path):
    params = tiny_params(tmp_path, "train_image.max_steps=2", "train_image.grid_every_n_steps=1")
    result = train_image(request.getfixturevalue(data), tmp_path / "out", params, progress=False)

    metrics = json.loads(result.metrics_path.read_text())
    assert metrics["iterations"] == 2
    assert {"train/d_loss", "train/g_loss", "train/d_object"} <= set(metrics)

    payload = torch.load(result.model_path, weights_only=True)
    assert payload["format"] == "scene2img.image"
    G, vocab, config = load_generator(result.model_path)
    assert config["image_size"] == 64 and vocab.num_attributes == config["num_attributes"]
    assert ("train/d_attribute" in metrics) == (vocab.num_attributes > 0) == (data == "toy_vg")
    assert config["masks"] == "regressed" and config["weights"] == "ema (decay 0.99)"
    assert config["batch_norm"] == "recomputed over 2 training batches"
    assert config["losses"] == ["image", "object", "attribute"]  # toyworld: L1 and VGG off
    z_img, z_obj = G.sample_latents(1, 3)
    objects = torch.tensor([[1, 2, 0]])
    boxes = torch.tensor([[[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.4, 0.4], [0, 0, 1, 1]]])
    with torch.no_grad():
        image = G(objects, boxes, torch.ones(1, 3, dtype=torch.bool),
                  torch.zeros(1, 3, vocab.num_attributes), z_img, z_obj)
    assert image.shape == (1, 3, 64, 64) and torch.isfinite(image).all()

    client = mlflow.MlflowClient(params.tracking.uri)
    grids = [a.path for a in client.list_artifacts(result.run_id, "grids")]
    assert "grids/step_0000001.png" in grids and "grids/step_0000002.png" in grids
    run = client.get_run(result.run_id).data
    assert run.params["train_image/generator"] == "lostgan"
    assert run.tags["train_image.losses"] == "image+object+attribute"
    assert run.tags["train_image.masks"] == "regressed"


class _MaskRegressorWatch(pl.Callback):
    """Records, after each training batch, whether G's mask regressor had gradients."""

    def __init__(self) -> None:
        self.start: list[torch.Tensor] = []
        self.grads: list[bool] = []
        self.end: list[torch.Tensor] = []

    def on_train_start(self, trainer, module) -> None:
        self.start = [p.detach().clone() for p in module.G.mask_regress.parameters()]

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.grads.append(all(p.grad is not None and bool(p.grad.abs().sum() > 0)
                              for p in module.G.mask_regress.parameters()))

    def on_train_end(self, trainer, module) -> None:
        self.end = [p.detach().clone() for p in module.G.mask_regress.parameters()]

    def changed(self) -> bool:
        return all(not torch.equal(a, b) for a, b in zip(self.start, self.end, strict=True))


def test_masks_are_learned_end_to_end_on_coco_stuff(toy_coco, tmp_path):
    """LostGAN's default on data with masks: the mask regressor is trained (not bypassed)."""
    watch = _MaskRegressorWatch()
    train_image(toy_coco, tmp_path / "out", tiny_params(tmp_path, "train_image.max_steps=3"),
                progress=False, callbacks=[watch])
    assert watch.grads == [True, True, True]
    assert watch.changed()


def test_ground_truth_masks_are_an_explicit_option(toy_coco, toy_vg, tmp_path):
    watch = _MaskRegressorWatch()
    result = train_image(toy_coco, tmp_path / "out", tiny_params(
        tmp_path, "train_image.max_steps=2", "train_image.g.gt_masks=true"), progress=False,
        callbacks=[watch])
    assert watch.grads == [False, False] and not watch.changed()
    _, _, config = load_generator(result.model_path)
    assert config["masks"] == "ground-truth"
    with pytest.raises(ConfigError, match="gt_masks is true but .* has no masks"):
        train_image(toy_vg, tmp_path / "vg", tiny_params(tmp_path, "train_image.g.gt_masks=true"),
                    progress=False)


def test_l1_and_vgg_losses_from_a_local_file(toy_coco, vgg_weights, tmp_path):
    with pytest.raises(ConfigError, match="train_image.vgg_weights is not set"):
        train_image(toy_coco, tmp_path / "none", tiny_params(tmp_path, "train_image.w_vgg=1.0"),
                    progress=False)
    assert not (tmp_path / "none" / IMAGE_MODEL_FILE).exists()
    params = tiny_params(tmp_path, "train_image.max_steps=1", "train_image.w_l1=1.0",
                         "train_image.w_vgg=1.0", f"train_image.vgg_weights={vgg_weights}",
                         "train_image.batch_size=2")
    result = train_image(toy_coco, tmp_path / "out", params, progress=False)
    assert result.metrics["train/g_vgg"] > 0 and result.metrics["train/g_l1"] > 0
    _, _, config = load_generator(result.model_path)
    assert config["losses"] == ["image", "object", "attribute", "l1", "vgg"]
    run = mlflow.MlflowClient(params.tracking.uri).get_run(result.run_id).data
    assert run.tags["train_image.losses"] == "image+object+attribute+l1+vgg"
    checkpoint = torch.load(tmp_path / "out" / "checkpoints" / "last.ckpt", weights_only=False)
    assert {k.split(".")[0] for k in checkpoint["state_dict"]} == {"G", "D", "G_ema"}  # no VGG


def test_mapping_trains_at_a_tenth_of_the_learning_rate():
    from scene2img.models.generator import LostGANGenerator
    from scene2img.training.image_module import generator_param_groups

    G = LostGANGenerator(5, 0, 64, ch=1, z_img=8, z_obj=8, class_dim=8, mask_width=8,
                         mapping="mlp")
    groups = generator_param_groups(G, 1e-4, 0.1)
    assert [g["lr"] for g in groups] == [1e-4, pytest.approx(1e-5)]
    assert len(groups[1]["params"]) == len(list(G.style.mapping.parameters()))
    identity = LostGANGenerator(5, 0, 64, ch=1, z_img=8, z_obj=8, class_dim=8, mask_width=8)
    assert len(generator_param_groups(identity, 1e-4, 0.1)) == 1  # LostGAN-v2: nothing to scale


@DATA
def test_crn_generator_trains(data, request, tmp_path):
    params = tiny_params(tmp_path, "train_image.generator=crn", "train_image.max_steps=1")
    result = train_image(request.getfixturevalue(data), tmp_path / "out", params, progress=False)
    G, _, config = load_generator(result.model_path)
    assert config["generator"] == "crn" and type(G).__name__ == "CRNGenerator"


@DATA
def test_resume_continues_exactly(data, request, tmp_path):
    data = request.getfixturevalue(data)
    steps = ["trainer.checkpoint_every_n_steps=2", "data.flip=true"]
    straight = train_image(data, tmp_path / "a", tiny_params(
        tmp_path, "train_image.max_steps=4", *steps), progress=False)
    train_image(data, tmp_path / "b", tiny_params(
        tmp_path, "train_image.max_steps=2", *steps), progress=False)
    resumed = train_image(data, tmp_path / "b", tiny_params(
        tmp_path, "train_image.max_steps=4", *steps), resume=True, progress=False)
    assert resumed.metrics["iterations"] == 4
    for key in ("train/d_loss", "train/g_loss", "train/d_object", "train/g_object"):
        assert resumed.metrics[key] == straight.metrics[key], key
    a = torch.load(straight.model_path, weights_only=True)["state_dict"]
    b = torch.load(resumed.model_path, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_without_checkpoint_is_an_error(toy_vg, tmp_path):
    with pytest.raises(ModelError, match="no checkpoint"):
        train_image(toy_vg, tmp_path / "none", tiny_params(tmp_path), resume=True)


def _cli_args(data: Path, out: Path, tracking_uri: str) -> list[str]:
    return ["train-image", "--data", str(data), "--out", str(out), "--max-steps", "2", "-q",
            "-e", "toyworld", *(f"-S{o}" for o in TINY), f"-Stracking.uri={tracking_uri}"]


@pytest.fixture(scope="module")
def trained(toy_vg, tmp_path_factory):
    """A model folder trained for 2 steps through the CLI (its last.ckpt, its MLflow run)."""
    tmp = tmp_path_factory.mktemp("image")
    uri = f"sqlite:///{tmp}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # MLflow's artifacts (./mlruns) land here
        assert main(_cli_args(toy_vg, tmp / "model", uri)) == 0
    return tmp / "model", uri


@pytest.mark.parametrize("kind", bad_checkpoints.KINDS)
def test_resume_from_a_bad_checkpoint_is_refused_before_the_run(trained, toy_vg, tmp_path, kind,
                                                                capsys):
    out, uri = trained
    bad_checkpoints.check_resume_is_refused(out, uri, IMAGE_MODEL_FILE, kind,
                                            lambda folder: _cli_args(toy_vg, folder, uri),
                                            tmp_path, capsys)


@DATA
def test_ddp_two_processes_on_cpu_via_cli(data, request, tmp_path):
    """`scene2img train-image` with DDP over two gloo processes and synchronised batch norm."""
    out = tmp_path / "ddp"
    data = request.getfixturevalue(data)
    cmd = [sys.executable, "-m", "scene2img.cli", "train-image", "--data", str(data),
           "--out", str(out), "--max-steps", "2", "--quiet", "-e", "toyworld",
           *(f"-S{o}" for o in TINY), f"-Stracking.uri=sqlite:///{tmp_path}/mlflow.db",
           "-Strainer.devices=2", "-Strainer.strategy=ddp", "-Strainer.sync_batchnorm=true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 2
    G, _, _ = load_generator(out / IMAGE_MODEL_FILE)
    assert not any("SyncBatchNorm" in type(m).__name__ for m in G.modules())
