"""Training the RDN upscaler: the stage end to end (CLI, export, metrics, MLflow strip), a tiny
run that beats bicubic on the toy world, exact resume, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch

from scene2img.cli import main
from scene2img.config import load_params
from scene2img.errors import ConfigError, DataError, ModelError
from scene2img.stages.train_upscaler import train_upscaler
from scene2img.training.export import UPSCALER_MODEL_FILE, load_upscaler
from scene2img.training.upscaler_module import superres_strip
from tests.unit.stages.test_train_layout import LossRecorder

pytestmark = pytest.mark.usefixtures("one_thread")

# a tiny RDN at x2 on the toy world's 320 x 240 raw images (tests/conftest.py: toy_params)
TINY = ["toyworld.width=320", "toyworld.height=240", "preprocess.source=vg",
        "train_upscaler.scale=2", "train_upscaler.rdn.blocks=2", "train_upscaler.rdn.layers=2",
        "train_upscaler.rdn.growth=8", "train_upscaler.rdn.features=16",
        "train_upscaler.patch=16", "train_upscaler.eval_size=96", "train_upscaler.batch_size=8",
        "train_upscaler.strip_images=2", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1",
        "data.num_workers=0"]


def tiny_params(tmp_path: Path, *extra: str):
    return load_params(experiment="toyworld", overrides=[
        *TINY, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *extra])


def _raw(toy_vg: Path) -> Path:
    return toy_vg.parent / "raw"  # tests/conftest.py writes the raw toy world beside it


@pytest.fixture(scope="module")
def trained(toy_vg, tmp_path_factory):
    """A tiny upscaler trained through the CLI: (out_dir, tracking uri, printed output)."""
    tmp = tmp_path_factory.mktemp("upscaler")
    out, uri = tmp / "model", f"sqlite:///{tmp}/mlflow.db"
    args = ["train-upscaler", "--data", str(toy_vg), "--raw", str(_raw(toy_vg)), "--out",
            str(out), "--experiment", "toyworld", "--quiet", "--max-steps", "160",
            *(a for kv in TINY for a in ("-S", kv)), "-S", f"tracking.uri={uri}",
            "-S", "train_upscaler.val_every_n_steps=80"]
    return out, uri, args


def test_tiny_training_beats_bicubic_and_exports(trained, capsys):
    out, uri, args = trained
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "test x2 PSNR" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 160
    ours, bicubic = metrics["test/x2/psnr/rdn"], metrics["test/x2/psnr/bicubic"]
    assert ours > bicubic > metrics["test/x2/psnr/nearest"] - 3, metrics
    net, config = load_upscaler(out / UPSCALER_MODEL_FILE)
    assert config == {"scale": 2, "blocks": 2, "layers": 2, "growth": 8, "features": 16,
                      "bicubic_skip": True}  # the toy world's recipe
    assert net(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)

    run_id = (out / "mlflow_run_id").read_text().strip()
    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.data.metrics["test/x2/psnr/rdn"] == pytest.approx(ours)
    assert "train/l1" in run.data.metrics and "val/psnr_bicubic" in run.data.metrics
    strips = [f.path for f in client.list_artifacts(run_id, "strips")]
    assert strips and all(p.endswith(".png") for p in strips)


def test_strip_is_lr_bicubic_ours_hr():
    lr, hr = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 8, 8)
    strip = superres_strip(lr, hr, hr * 0.5, 2)
    assert strip.shape == (16, 32, 3) and strip.dtype.name == "uint8"
    assert strip[:, :16].max() == 0 and strip[:, 24:].min() == 255  # LR, bicubic | ... | HR
    assert abs(int(strip[0, 16, 0]) - 128) <= 1  # ours


def test_resume_continues_exactly(toy_vg, tmp_path):
    """4 steps in one go == 2 steps, then resume from last.ckpt for 2 more (crops, flips,
    rotations and the lr schedule included)."""
    def run(out: Path, steps: int, resume: bool) -> tuple[dict, dict]:
        rec = LossRecorder()
        params = tiny_params(tmp_path, f"train_upscaler.max_steps={steps}",
                             "train_upscaler.val_every_n_steps=1000",
                             "train_upscaler.lr_halve_every=3",
                             "trainer.checkpoint_every_n_steps=2", "data.flip=true")
        train_upscaler(toy_vg, _raw(toy_vg), out, params, resume=resume, progress=False,
                       callbacks=[rec], trainer_overrides={"num_sanity_val_steps": 0,
                                                           "limit_val_batches": 1})
        return rec.losses, torch.load(out / UPSCALER_MODEL_FILE, weights_only=True)["state_dict"]

    straight, w_straight = run(tmp_path / "a", 4, False)
    first, _ = run(tmp_path / "b", 2, False)
    second, w_resumed = run(tmp_path / "b", 4, True)
    assert sorted(first) == [1, 2] and sorted(second) == [3, 4]
    assert {**first, **second} == straight
    assert all(torch.equal(w_straight[k], w_resumed[k]) for k in w_straight)


def test_bad_inputs(toy_vg, tmp_path):
    params = tiny_params(tmp_path)
    with pytest.raises(ModelError, match="no checkpoint to resume from"):
        train_upscaler(toy_vg, _raw(toy_vg), tmp_path / "m", params, resume=True, progress=False)
    with pytest.raises(DataError, match="raw dataset folder not found|not found"):
        train_upscaler(toy_vg, tmp_path / "nowhere", tmp_path / "m", params, progress=False)
    with pytest.raises(ConfigError, match="train_upscaler.scale=3: choose 2 or 4"):
        tiny_params(tmp_path, "train_upscaler.scale=3")
    with pytest.raises(ConfigError, match="eval_size=30 must be a positive multiple"):
        tiny_params(tmp_path, "train_upscaler.scale=4", "train_upscaler.eval_size=30")
    (tmp_path / "wrong.pt").write_bytes(b"nope")
    with pytest.raises(ModelError, match="wrong.pt: not a loadable scene2img model"):
        load_upscaler(tmp_path / "wrong.pt")


def test_bf16_mixed_precision_trains_and_exports_fp32(toy_vg, tmp_path):
    params = tiny_params(tmp_path, "train_upscaler.max_steps=2", "trainer.precision=bf16-mixed",
                         "train_upscaler.val_every_n_steps=1000")
    result = train_upscaler(toy_vg, _raw(toy_vg), tmp_path / "m", params, progress=False,
                            trainer_overrides={"num_sanity_val_steps": 0, "limit_val_batches": 1})
    state = torch.load(result.model_path, weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float32 for v in state.values())
    assert all(v == v for k, v in result.metrics.items() if k.startswith("test/"))  # not NaN


def test_scores_on_generated_images_and_finetuning_on_them(toy_vg, toy_model, tmp_path):
    """With the generator, the upscaler is scored on its images of the test layouts; with
    `finetune_generated`, fine-tuned on those of the training layouts (scores before kept).
    LPIPS weights configured (AlexNet features, seeded random values): LPIPS scores too."""
    from torchvision.models import alexnet

    image_model = toy_model / "image_model.pt"
    lpips = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.manual_seed(0)
    torch.save({k: v for k, v in alexnet(weights=None).state_dict().items()
                if k.startswith("features.")}, lpips)
    params = tiny_params(tmp_path, "train_upscaler.max_steps=2", f"evaluate.lpips_weights={lpips}",
                         "train_upscaler.val_every_n_steps=1000",
                         "train_upscaler.finetune_generated=true",
                         "train_upscaler.finetune_steps=3")
    with pytest.raises(ConfigError, match="finetune_generated needs the generator: give "
                                          "--image-model"):
        train_upscaler(toy_vg, _raw(toy_vg), tmp_path / "m", params, progress=False)
    result = train_upscaler(toy_vg, _raw(toy_vg), tmp_path / "m", params, progress=False,
                            image_model=image_model,
                            trainer_overrides={"num_sanity_val_steps": 0, "limit_val_batches": 1})
    m = result.metrics
    for key in ("test/generated/x2/psnr/rdn", "test/generated/x2/psnr/bicubic",
                "prefinetune/test/generated/x2/psnr/rdn", "prefinetune/test/x2/psnr/rdn",
                "finetune/l1_first", "finetune/l1_last", "test/x2/lpips-alex/rdn",
                "test/generated/x2/lpips-alex/bicubic"):
        assert key in m and m[key] == m[key], key  # present, not NaN
    # fine-tuning changed the network: its scores moved
    assert m["test/generated/x2/psnr/rdn"] != m["prefinetune/test/generated/x2/psnr/rdn"]
    extra = torch.load(result.model_path, weights_only=True)["extra"]
    assert extra["metrics"]["test/generated/x2/psnr/rdn"] == m["test/generated/x2/psnr/rdn"]


def test_paired_crops_stay_aligned():
    from scene2img.data.superres import PairedCrops, nearest_upscale

    lr = torch.randint(0, 256, (3, 3, 12, 12), dtype=torch.uint8)
    hr = nearest_upscale(lr.float(), 2).to(torch.uint8)  # [3, 3, 24, 24]: exactly aligned
    pairs = PairedCrops(lr, hr, 2, 5, seed=1)
    for step in range(4):
        b = pairs.batch(step, 3)
        assert b["lr"].shape == (3, 3, 5, 5) and b["hr"].shape == (3, 3, 10, 10)
        assert torch.equal(nearest_upscale(b["lr"], 2), b["hr"])  # flips, rotations included
    assert torch.equal(pairs.batch(2, 3)["lr"], pairs.batch(2, 3)["lr"])  # (seed, step) only
    (centre,) = pairs.centre(16, 8)
    assert torch.equal(nearest_upscale(centre["lr"], 2), centre["hr"])
    assert centre["hr"].shape == (3, 3, 16, 16)
