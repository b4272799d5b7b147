"""Issue 16: `register` with an upscaler, against the embedded MLflow (a SQLite file): the logged
model carries it, the registered version says so, and the loaded pyfunc and `generate` from the
registry upscale; an upscaler that does not beat bicubic is refused and nothing is registered.
The evaluation's metrics.json is written by hand (the register stage reads only its protocol and
metrics; the evaluation itself is tested in test_evaluate.py), and so are the upscaler's test
figures in its export (what `train_upscaler` records; scored in test_train_upscaler.py)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from scene2img.config import load_params
from scene2img.errors import ModelError
from scene2img.models.upscaler import RDN
from scene2img.serving.loading import load_scene_to_image
from scene2img.stages.register import TAG_UPSCALER, register
from scene2img.training.export import (
    IMAGE_MODEL_FILE,
    LAYOUT_MODEL_FILE,
    UPSCALER_MODEL_FILE,
    export_upscaler,
    load_layout_model,
)

pytestmark = pytest.mark.usefixtures("one_thread")

GRAPH = {"objects": [{"name": "car"}, {"name": "tree"}]}
GATE = "fid_random-inception_test_predlayout"


def _setup(tmp_path: Path, monkeypatch, name: str, *overrides: str):
    """(tracking URI, params, the evaluation's metrics.json) in `tmp_path`."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for models:/ in load_scene_to_image
    params = load_params(experiment="toyworld", overrides=[
        f"tracking.uri={uri}", "tracking.experiment=register-test", f"register.name={name}", *overrides])
    evaluation = tmp_path / "metrics.json"
    evaluation.write_text(json.dumps({
        "protocols": {"pred-layout": {"backbone": "random-inception", "split": "test"}},
        "metrics": {GATE: 123.0}}))
    return uri, params, evaluation


def _upscaler(path: Path, toy_model: Path, figures: dict | None) -> Path:
    """A tiny x2 RDN export, with `figures` as the test metrics its training recorded."""
    torch.manual_seed(0)
    extra = None if figures is None else {"metrics": figures, "mlflow_run_id": "run-abc"}
    return export_upscaler(path, RDN(scale=2, blocks=1, layers=1, growth=4, features=4,
                                     bicubic_skip=True),
                           load_layout_model(toy_model / LAYOUT_MODEL_FILE)[1], extra)


def test_register_with_an_upscaler_serves_upscale(toy_model: Path, toy_vg: Path,
                                                  tmp_path: Path, monkeypatch) -> None:
    uri, params, evaluation = _setup(tmp_path, monkeypatch, "upscaling")
    upscaler = _upscaler(tmp_path / UPSCALER_MODEL_FILE, toy_model,
                         {"test/x2/psnr/rdn": 30.5, "test/x2/psnr/bicubic": 30.0})

    result = register(toy_model / LAYOUT_MODEL_FILE, toy_model / IMAGE_MODEL_FILE, str(toy_vg),
                      evaluation, params, upscaler_model=upscaler)
    version = MlflowClient(uri).get_model_version(result.name, result.version)
    assert version.description.endswith("upscaler x2"), version.description
    assert json.loads(version.tags[TAG_UPSCALER]) == {
        "scale": 2, "mlflow_run_id": "run-abc", "test_psnr": 30.5, "test_psnr_bicubic": 30.0}

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


@pytest.mark.parametrize(
    ("figures", "margin", "message"),
    [({"test/x2/psnr/rdn": 29.9, "test/x2/psnr/bicubic": 30.0}, 0.0,
      r"upscaler .*upscaler_model.pt \(MLflow run run-abc\): x2 test PSNR 29.90 dB vs bicubic "
      r"30.00 dB \(-0.10 dB\), not more than register.upscaler_margin_db = 0 dB above; nothing "
      "registered"),
     ({"test/x2/psnr/rdn": 30.2, "test/x2/psnr/bicubic": 30.0}, 0.5,  # the margin from params
      r"\+0.20 dB\), not more than register.upscaler_margin_db = 0.5 dB"),
     (None, 0.0, r"upscaler .*: no recorded x2 test PSNR of the upscaler and bicubic"),
     ({"test/x2/psnr/rdn": float("nan"), "test/x2/psnr/bicubic": 30.0}, 0.0,
      "no recorded x2 test PSNR")],
)
def test_an_upscaler_that_does_not_beat_bicubic_is_refused(toy_model: Path, tmp_path: Path,
                                                          monkeypatch, figures, margin,
                                                          message) -> None:
    uri, params, evaluation = _setup(tmp_path, monkeypatch, "refused",
                                     f"register.upscaler_margin_db={margin}")
    upscaler = _upscaler(tmp_path / UPSCALER_MODEL_FILE, toy_model, figures)
    with pytest.raises(ModelError, match=message) as exc:
        register(toy_model / LAYOUT_MODEL_FILE, toy_model / IMAGE_MODEL_FILE, "unused",
                 evaluation, params, upscaler_model=upscaler)
    assert "\n" not in str(exc.value)
    client = MlflowClient(uri)
    assert client.search_model_versions("name='refused'") == []
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []
