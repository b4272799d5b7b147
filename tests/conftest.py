"""Shared fixtures: the reference data in ../shared/data and small processed datasets."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (PROJECT_ROOT / ".." / "shared" / "data").resolve()

import pytest  # noqa: E402

from scene2img.config import load_params  # noqa: E402


def toy_params(fmt: str, images: int = 48, image_size: int = 64, **extra: str):
    """Toy-world params for tests: small scenes, 64 px, toy thresholds."""
    overrides = [f"toyworld.images={images}", "toyworld.width=320", "toyworld.height=240",
                 f"preprocess.image_size={image_size}", "preprocess.workers=1",
                 f"preprocess.source={fmt}", "preprocess.coco_stuff.val_size=4",
                 "preprocess.ade20k.val_size=4", *(f"{k}={v}" for k, v in extra.items())]
    return load_params(experiment="toyworld", overrides=overrides)


def _processed(tmp_path_factory, fmt: str):
    from scene2img.data.toyworld import generate_toyworld
    from scene2img.stages.preprocess import preprocess

    root = tmp_path_factory.mktemp(f"toy-{fmt}")
    params = toy_params(fmt)
    generate_toyworld(fmt, root / "raw", params.toyworld)
    preprocess(root / "raw", root / "processed", params.preprocess, progress=False)
    return root / "processed"


# Python source run first in `run_killed_in_the_rename_window`'s child: the child dies (SIGKILL,
# no cleanup) right after it moves a folder aside to `.NAME.old-PID`, the window between
# `files.atomic_dir`'s two renames.
_DIE_IN_THE_RENAME_WINDOW = """
import os, signal
from pathlib import Path

_rename = Path.rename
def _rename_then_die(self, target):
    done = _rename(self, target)
    if ".old-" in Path(target).name:
        os.kill(os.getpid(), signal.SIGKILL)
    return done
Path.rename = _rename_then_die
"""


def run_killed_in_the_rename_window(code: str, *args: str) -> int:
    """Run `code` (with `sys.argv[1:] == args`) in a Python child that is killed in the rename
    window; asserts it really died that way and returns its pid."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", _DIE_IN_THE_RENAME_WINDOW + code, *args],
                             cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == -9, stderr[-2000:]  # killed, not a clean exit or an error
    return child.pid


@pytest.fixture(scope="session")
def toy_vg(tmp_path_factory) -> Path:
    """A processed toy-world Visual Genome dataset (64 px, attributes, annotated relations)."""
    return _processed(tmp_path_factory, "vg")


@pytest.fixture(scope="session")
def toy_coco(tmp_path_factory) -> Path:
    """A processed toy-world COCO-Stuff dataset (64 px, masks, geometric relations)."""
    return _processed(tmp_path_factory, "coco-stuff")


def _model(data: Path, root: Path) -> Path:
    """A model folder (layout_model.pt, image_model.pt, attribute_stats.json) trained for a few
    steps on `data`: real weights through the real stages, tiny and fast."""
    import json

    from scene2img.data.processed import load_vocab
    from scene2img.serving.attributes import attribute_statistics
    from scene2img.stages.train_image import train_image
    from scene2img.stages.train_layout import train_layout
    from scene2img.training.export import ATTRIBUTE_STATS_FILE, IMAGE_MODEL_FILE, LAYOUT_MODEL_FILE

    params = load_params(experiment="toyworld", overrides=[
        f"tracking.uri=sqlite:///{root}/mlflow.db", "trainer.accelerator=cpu",
        "trainer.checkpoint_every_n_steps=1000", "train_layout.max_steps=6",
        "train_layout.val_every_n_steps=6", "train_layout.batch_size=8",
        "train_image.max_steps=6", "train_image.batch_size=4", "train_image.ema_bn_batches=2"])
    lay = train_layout(data, root / "layout", params, progress=False)
    img = train_image(data, root / "image", params, progress=False)
    model = root / "model"
    model.mkdir()
    (model / LAYOUT_MODEL_FILE).write_bytes(lay.model_path.read_bytes())
    (model / IMAGE_MODEL_FILE).write_bytes(img.model_path.read_bytes())
    stats = attribute_statistics(str(data), load_vocab(data))
    (model / ATTRIBUTE_STATS_FILE).write_text(json.dumps(stats))
    return model


@pytest.fixture(scope="session")
def toy_model(toy_vg: Path, tmp_path_factory) -> Path:
    """A model folder trained for a few steps on `toy_vg` (see `_model`)."""
    return _model(toy_vg, tmp_path_factory.mktemp("toy-model"))


@pytest.fixture(scope="session")
def toy_coco_model(toy_coco: Path, tmp_path_factory) -> Path:
    """A model folder trained for a few steps on `toy_coco` (masks regressed, as LostGAN's)."""
    return _model(toy_coco, tmp_path_factory.mktemp("toy-coco-model"))


@pytest.fixture(scope="session")
def vgg_weights(tmp_path_factory) -> Path:
    """A file shaped like torchvision's vgg19-dcbb9e9d.pth with seeded random weights, holding
    only the layers the perceptual loss reads (`features.0` ... `features.28`; no classifier)."""
    import torch

    from scene2img.models.perceptual import vgg19_features

    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in vgg19_features().state_dict().items()}
    path = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    torch.save(state, path)
    return path


@pytest.fixture
def one_thread():
    """Small tensors: one thread is faster, and much faster on a busy machine (use it with
    `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
