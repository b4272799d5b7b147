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


@pytest.fixture(scope="session")
def toy_vg(tmp_path_factory) -> Path:
    """A processed toy-world Visual Genome dataset (64 px, attributes, annotated relations)."""
    return _processed(tmp_path_factory, "vg")


@pytest.fixture(scope="session")
def toy_coco(tmp_path_factory) -> Path:
    """A processed toy-world COCO-Stuff dataset (64 px, masks, geometric relations)."""
    return _processed(tmp_path_factory, "coco-stuff")
