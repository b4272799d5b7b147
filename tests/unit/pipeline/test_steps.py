"""What the components call: the gate, scalar metrics from stage results, the upscaler's steps."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from scene2img.config import load_params
from scene2img.pipeline import steps
from scene2img.pipeline.params import step_params
from scene2img.pipeline.steps import gate, scalars
from scene2img.training.export import METRICS_FILE, UPSCALER_MODEL_FILE
from tests.unit.stages.test_train_upscaler import TINY


def test_gate():
    assert gate({"fid": 10.0, "kid": 0.1}, {})[0]
    assert gate({"fid": 10.0}, {"fid": 20.0}) == (True, "all 1 metrics finite; fid 10 <= 20")
    assert gate({"fid": 30.0}, {"fid": 20.0}) == (False, "fid 30 > 20")
    assert not gate({"fid": float("nan")}, {})[0]
    assert "missing" in gate({"kid": 1.0}, {"fid": 20.0})[1]
    assert gate({}, {}) == (False, "evaluation produced no metrics")


def test_scalars_flattens_results():
    assert scalars({"a": 1, "b": {"c": 2.5, "d": "x"}, "e": True, "f": float("inf")}) == {
        "a": 1.0, "b.c": 2.5}


@pytest.mark.usefixtures("one_thread")
def test_train_upscaler_then_register_with_it(toy_vg, toy_model, tmp_path):
    """The two steps as their components call them, each with only its step's keys (the raw
    images are read through the source reader, whose options it is given too): the upscaler's
    model folder goes to register, and the registered model upscales."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    params = load_params(experiment="toyworld", overrides=[
        *TINY, "train_upscaler.max_steps=2", "train_upscaler.val_every_n_steps=2",
        f"tracking.uri={uri}", "tracking.experiment=steps-test", "register.name=steps-test",
        # 2 steps leave RDN at bicubic's PSNR; the gate itself is tested in test_register.py
        "register.upscaler_margin_db=-100"])
    out = steps.train_upscaler(step_params(params, "train_upscaler"), str(toy_vg),
                               str(toy_vg.parent / "raw"), str(tmp_path / "upscaler"))
    assert out["metadata"]["scale"] == 2 and out["metadata"]["mlflow_run_id"]
    assert {"steps", "test/x2/psnr/rdn", "test/x2/psnr/bicubic"} <= set(out["metrics"])

    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    (evaluation / METRICS_FILE).write_text(json.dumps({
        "protocols": {"pred-layout": {"backbone": "random-inception", "split": "test"}},
        "metrics": {"fid_random-inception_test_predlayout": 123.0}}))
    reg = steps.register(step_params(params, "register"), str(toy_model), str(toy_model),
                         str(toy_vg), str(evaluation), str(tmp_path / "upscaler"))
    assert reg["upscaler"] == str(tmp_path / "upscaler" / UPSCALER_MODEL_FILE)
    version = MlflowClient(uri).get_model_version(reg["name"], reg["version"])
    assert version.description.endswith("upscaler x2"), version.description
