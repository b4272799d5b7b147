"""Stage `train_bachgan` on the toy world in ADE20K's format (salient-only layouts, 16 px label
maps, 64 px images, tiny widths): the retrieval index, training through the CLI, the export
generating from a foreground layout and retrieved maps, both losses, exact resume, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch

from scene2img.cli import main
from scene2img.config import load_params
from scene2img.data.dataset import SceneGraphDataset
from scene2img.errors import ConfigError, DataError
from scene2img.models.bachgan import layout_label_map, one_hot_maps
from scene2img.stages.train_bachgan import train_bachgan
from scene2img.training.bachgan_data import BachGANDataModule
from scene2img.training.export import BACHGAN_MODEL_FILE, load_bachgan

pytestmark = pytest.mark.usefixtures("one_thread")

TOY = ["toyworld.images=40", "toyworld.width=320", "toyworld.height=240", "preprocess.workers=1",
       "preprocess.ade20k.val_size=4", "preprocess.ade20k.segmap_size=16"]
TINY = ["train_bachgan.ngf=1", "train_bachgan.spade_hidden=2", "train_bachgan.ndf=2",
        "train_bachgan.n_layers_d=2", "train_bachgan.num_d=1", "train_bachgan.batch_size=2",
        "train_bachgan.grid_images=2", "train_bachgan.grid_every_n_steps=100",
        "train_bachgan.ema_bn_batches=2",
        "trainer.accelerator=cpu", "trainer.log_every_n_steps=1"]


def _preprocessed(root: Path, *extra: str) -> Path:
    from scene2img.data.toyworld import generate_toyworld
    from scene2img.stages.preprocess import preprocess

    params = load_params(experiment="toyworld_bachgan", overrides=[*TOY, *extra])
    if not (root / "raw").exists():
        generate_toyworld("ade20k", root / "raw", params.toyworld)
    out = root / ("processed" + "".join(f"-{e.split('=')[-1]}" for e in extra))
    preprocess(root / "raw", out, params.preprocess, progress=False)
    return out


@pytest.fixture(scope="module")
def toy_world(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("toy-ade20k")


@pytest.fixture(scope="module")
def toy_ade20k(toy_world) -> Path:
    """A processed toy ADE20K dataset: salient-only layouts, 16 x 16 label maps, 64 px."""
    return _preprocessed(toy_world)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> str:
    """One MLflow store for the module (its tables are made once)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's artifacts (./mlruns) land here


def tiny_params(tracking: str, *extra: str):
    return load_params(experiment="toyworld_bachgan",
                       overrides=[*TINY, f"tracking.uri={tracking}", *extra])


def test_every_record_gets_its_retrieved_maps_without_its_own(toy_ade20k, tracking):
    params = tiny_params(tracking)
    dm = BachGANDataModule(toy_ade20k, params.data, 2, params.train_bachgan.retrieval)
    train, val = dm.dataset("train"), dm.dataset("val")
    index = dm.index
    assert index.bank.shape == (len(train), 16, 16) and index.bank.dtype == torch.uint8
    own = torch.arange(len(train))[:, None]
    assert index.retrieved["train"].shape == (len(train), 3)
    assert not (index.retrieved["train"] == own).any()  # the query's own image is excluded
    assert (index.scores["train"][:, :-1] >= index.scores["train"][:, 1:]).all()  # best first
    assert index.retrieved["val"].shape == (len(val), 3)
    item = train.item(5, flip=True)
    maps = index.bank[index.retrieved["train"][5]]
    assert torch.equal(item["backgrounds"], maps.flip(-1))  # a mirrored query, mirrored maps
    assert torch.equal(train.item(5)["backgrounds"], maps)
    # foreground only: salient-only layouts hold no background class
    fg = set(dm.foreground)
    objects = [int(o) for i in range(len(train)) for o, v in
               zip(train[i]["objects"], train[i]["obj_valid"], strict=True) if v and o > 0]
    assert objects and set(objects) <= fg


def test_cli_trains_and_the_export_generates(toy_ade20k, tracking, capsys):
    out = Path("model")
    args = ["train-bachgan", "--data", str(toy_ade20k), "--out", str(out), "--max-steps", "2",
            "-q", "-e", "toyworld_bachgan", *(f"-S{o}" for o in TINY),
            "-Strain_bachgan.grid_every_n_steps=1", f"-Stracking.uri={tracking}"]
    assert main(args) == 0
    assert "BachGAN model written to" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 2
    assert {"train/d_loss", "train/g_loss", "train/g_feat", "train/g_adversarial"} <= set(metrics)
    assert "train/d_gp" not in metrics  # hinge, the default
    assert 0 < metrics["retrieval/train_top1_score"] <= 1

    exported = load_bachgan(out / BACHGAN_MODEL_FILE)
    G, vocab, config = exported.generator, exported.vocab, exported.config
    assert config["image_size"] == 64 and config["segmap_size"] == 16
    assert config["losses"] == ["hinge", "feat"] and config["weights"] == "ema (decay 0.98)"
    assert config["class_split"] == "sceneparsing-stuff35-ours-v1"
    assert config["batch_norm"] == "recomputed over 2 training batches"
    # a foreground layout (two objects) and three retrieved maps -> one 64 px image
    fg = config["foreground"]
    objects = torch.tensor([[fg[0], fg[1]]])
    boxes = torch.tensor([[[0.1, 0.5, 0.3, 0.4], [0.6, 0.4, 0.3, 0.5]]])
    layout = layout_label_map(objects, boxes, torch.ones(1, 2, dtype=torch.bool),
                              vocab.num_objects, config["segmap_size"])
    train = SceneGraphDataset(toy_ade20k, "train", 16)
    # the export carries the memory bank: the training split's maps and image ids, in order
    bank = exported.bank
    assert bank.maps.shape == (len(train), 16, 16) and bank.maps.dtype == torch.uint8
    assert bank.image_ids == [train.reader[i].image_id for i in range(len(train))]
    assert config["retrieval"]["m"] == 3
    maps = bank.maps[:3]
    assert torch.equal(maps[2], torch.from_numpy(train.reader[2].segmap.copy()))
    with torch.no_grad():
        image = G(layout, one_hot_maps(maps[None], vocab.num_objects))
    assert image.shape == (1, 3, 64, 64) and torch.isfinite(image).all()

    client = mlflow.MlflowClient(tracking)
    run_id = (out / "mlflow_run_id").read_text().strip()
    grids = [a.path for a in client.list_artifacts(run_id, "grids")]
    assert {"grids/step_0000001.png", "grids/step_0000002.png"} <= set(grids)
    run = client.get_run(run_id).data
    assert run.tags["train_bachgan.losses"] == "hinge+feat"
    assert run.params["train_bachgan/loss"] == "hinge"


def test_wgan_gp_resumes_exactly(toy_ade20k, tracking, tmp_path):
    """The Wasserstein loss with its penalty (random interpolation weights) and flips: an
    interrupted run continues as an uninterrupted one."""
    steps = ["train_bachgan.loss=wgan-gp", "trainer.checkpoint_every_n_steps=2", "data.flip=true"]
    straight = train_bachgan(toy_ade20k, tmp_path / "a", tiny_params(
        tracking, "train_bachgan.max_steps=2", *steps), progress=False)
    train_bachgan(toy_ade20k, tmp_path / "b", tiny_params(
        tracking, "train_bachgan.max_steps=1", *steps), progress=False)
    resumed = train_bachgan(toy_ade20k, tmp_path / "b", tiny_params(
        tracking, "train_bachgan.max_steps=2", *steps), resume=True, progress=False)
    assert resumed.metrics["iterations"] == 2 and straight.metrics["train/d_gp"] > 0
    for key in ("train/d_loss", "train/d_gp", "train/g_loss", "train/g_feat"):
        assert resumed.metrics[key] == straight.metrics[key], key
    a = torch.load(straight.model_path, weights_only=True)["state_dict"]
    b = torch.load(resumed.model_path, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_bachgan(resumed.model_path).config["losses"] == ["wgan-gp", "feat"]


def test_vgg_loss_from_a_local_file(toy_ade20k, tracking, vgg_weights, tmp_path):
    result = train_bachgan(toy_ade20k, tmp_path / "out", tiny_params(
        tracking, "train_bachgan.max_steps=1", "train_bachgan.lambda_vgg=10.0",
        f"train_bachgan.vgg_weights={vgg_weights}"), progress=False)
    assert result.metrics["train/g_vgg"] > 0
    assert load_bachgan(result.model_path).config["losses"] == ["hinge", "feat", "vgg"]
    checkpoint = torch.load(tmp_path / "out" / "checkpoints" / "last.ckpt", weights_only=False)
    assert {k.split(".")[0] for k in checkpoint["state_dict"]} == {"G", "D", "G_ema"}  # no VGG


def _one_line(info: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(info.value)
    assert "\n" not in message and all(p in message for p in parts), message


def test_bad_data_and_config_are_one_line_errors(toy_world, toy_ade20k, tracking, tmp_path):
    no_maps = _preprocessed(toy_world, "preprocess.ade20k.segmap_size=0")
    with pytest.raises(DataError) as info:
        train_bachgan(no_maps, tmp_path / "a", tiny_params(tracking), progress=False)
    _one_line(info, "has no label map", "preprocess.ade20k.segmap_size > 0")
    cases = [("train_bachgan.image_size=128", "are 64 px"),
             ("train_bachgan.retrieval.m=500", "label maps"),
             ("train_bachgan.retrieval.grid=5", "16 px"),
             ("train_bachgan.lambda_vgg=10.0", "train_bachgan.vgg_weights is not set")]
    for folder, (override, part) in zip("bcde", cases, strict=True):
        with pytest.raises(ConfigError) as info:
            train_bachgan(toy_ade20k, tmp_path / folder, tiny_params(tracking, override),
                          progress=False)
        _one_line(info, override.split("=")[0], part)  # the key named
    assert not any((tmp_path / d / BACHGAN_MODEL_FILE).exists() for d in "abcde")
