"""Issue 16: `register` with an upscaler, against the embedded MLflow (a SQLite file): the logged
model carries it, the registered version says so, and the loaded pyfunc and `generate` from the
registry upscale. The evaluation's metrics.json is written by hand (the register stage reads
only its protocol and metrics; the evaluation itself is tested in test_evaluate.py)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from scene2img.config import load_params
from scene2img.models.upscaler import RDN
from scene2img.serving.loading import load_scene_to_image
from scene2img.stages.register import register
from scene2img.training.export import (
    IMAGE_MODEL_FILE,
    LAYOUT_MODEL_FILE,
    UPSCALER_MODEL_FILE,
    export_upscaler,
    load_layout_model,
)

pytestmark = pytest.mark.usefixtures("one_thread")

GRAPH = {"objects": [{"name": "car"}, {"name": "tree"}]}


def test_register_with_an_upscaler_serves_upscale(toy_model: Path, toy_vg: Path,
                                                  tmp_path: Path, monkeypatch) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for models:/ in load_scene_to_image
    params = load_params(experiment="toyworld", overrides=[
        f"tracking.uri={uri}", "tracking.experiment=register-test", "register.name=upscaling"])
    gate = "fid_random-inception_test_predlayout"
    evaluation = tmp_path / "metrics.json"
    evaluation.write_text(json.dumps({
        "protocols": {"pred-layout": {"backbone": "random-inception", "split": "test"}},
        "metrics": {gate: 123.0}}))
    upscaler = tmp_path / UPSCALER_MODEL_FILE
    torch.manual_seed(0)
    export_upscaler(upscaler, RDN(scale=2, blocks=1, layers=1, growth=4, features=4,
                                  bicubic_skip=True),
                    load_layout_model(toy_model / LAYOUT_MODEL_FILE)[1])

    result = register(toy_model / LAYOUT_MODEL_FILE, toy_model / IMAGE_MODEL_FILE, str(toy_vg),
                      evaluation, params, upscaler_model=upscaler)
    version = MlflowClient(uri).get_model_version(result.name, result.version)
    assert version.description.endswith("upscaler x2"), version.description

    served = mlflow.pyfunc.load_model(result.model_uri)
    assert served.metadata.metadata["upscaler"] == {"file": UPSCALER_MODEL_FILE, "scale": 2}
    rows = served.predict(pd.DataFrame({"scene_graph": [json.dumps(GRAPH)] * 2,
                                        "upscale": [2, None]}))
    assert rows["image_size"].tolist() == [128, 64] and rows["upscale"].tolist() == [2, 1]

    model = load_scene_to_image(result.model_uri)  # what `generate --model models:/...` loads
    assert model.upscale_factor == 2

    plain = register(toy_model / LAYOUT_MODEL_FILE, toy_model / IMAGE_MODEL_FILE, str(toy_vg),
                     evaluation, params)
    assert mlflow.pyfunc.load_model(plain.model_uri).metadata.metadata["upscaler"] is None
    assert load_scene_to_image(plain.model_uri).upscale_factor is None
