"""BachGAN through evaluate, register and promote, against the embedded MLflow (a SQLite file):
a tiny BachGAN trained for one iteration on the toy ADE20K world (the settings of
test_train_bachgan.py) is evaluated under the recorded protocol (gt-layout, backgrounds retrieved
from its memory bank), registers under its own name with lineage tags, passes through the
promotion gate, loads as a pyfunc from the registry and answers a foreground-only layout."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from scene2img.cli import main
from scene2img.errors import ConfigError
from scene2img.serving.bachgan import LayoutToImage
from scene2img.serving.loading import load_scene_to_image
from scene2img.stages.evaluate import evaluate
from scene2img.stages.promote import promote
from scene2img.stages.register import register_bachgan
from scene2img.stages.train_bachgan import train_bachgan
from scene2img.tracking.promotion import TAG_GATE_METRIC, TAG_PROTOCOL
from scene2img.training.export import BACHGAN_MODEL_FILE, load_bachgan
from tests.unit.stages.test_train_bachgan import TINY, TOY, _preprocessed

pytestmark = pytest.mark.usefixtures("one_thread")

EVALUATE = ["evaluate.max_images=2", "evaluate.batch_size=2", "evaluate.report_samples=1",
            "evaluate.kid_subsets=2"]


def test_a_tiny_bachgan_evaluates_registers_promotes_and_serves(tmp_path, monkeypatch):
    from scene2img.config import load_params

    monkeypatch.chdir(tmp_path)  # MLflow's artifacts land here
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for models:/ in load_scene_to_image
    data = _preprocessed(tmp_path / "toy")
    params = load_params(experiment="toyworld_bachgan", overrides=[
        *TOY, *TINY, *EVALUATE, f"tracking.uri={uri}", "train_bachgan.max_steps=1"])
    model_path = train_bachgan(data, tmp_path / "model", params, progress=False).model_path

    result = evaluate(str(data), model_path, None, tmp_path / "eval", params)
    report = json.loads(result.metrics_path.read_text())
    assert list(report["protocols"]) == ["gt-layout"]  # its only mode: the layout is the input
    protocol = report["protocols"]["gt-layout"]
    assert protocol["masks"] == "retrieved-backgrounds" and protocol["latents"] == "none"
    assert protocol["generator_weights"].startswith("weights ema (decay 0.98)")
    assert result.metrics["fid_random-inception_test"] > 0
    with pytest.raises(ConfigError, match="no predicted-layout mode"):
        evaluate(str(data), model_path, model_path, tmp_path / "eval2", params)

    registered = register_bachgan(model_path, str(data), result.metrics_path, params)
    assert registered.name == "scene2img-bachgan"  # register.bachgan_name: its own model
    assert registered.gate_metric == "fid_random-inception_test"
    client = MlflowClient(uri)
    version = client.get_model_version(registered.name, registered.version)
    assert version.tags["scene2img.family"] == "bachgan"
    assert version.tags["scene2img.stage"] == "register"
    assert version.tags["scene2img.dataset_url"] == str(data)
    assert json.loads(version.tags[TAG_PROTOCOL])["masks"] == "retrieved-backgrounds"
    assert version.tags[TAG_GATE_METRIC] == registered.gate_metric
    assert "memory bank" in version.description and "m 3" in version.description

    # the gate: first champion, then a second version of the same protocol is compared with it
    promote(params, registered.version, registered.name)
    second = register_bachgan(model_path, str(data), result.metrics_path, params)
    outcome = promote(params, second.version, second.name)
    assert outcome.outcome == "challenger"  # the same FID is not better by the margin
    assert outcome.comparison["reasons"] == [
        f"not better by the margin: {registered.gate_value:.4f} > "
        f"{registered.gate_value:.4f} - {params.promote.margin}"]

    # served from the registry: a foreground-only layout in, the image and its background out
    exported = load_bachgan(model_path)
    names = exported.vocab.object_idx_to_name
    foreground = [names[c] for c in exported.config["foreground"][:2]]
    background = next(n for i, n in enumerate(names)
                      if i and n and i not in set(exported.config["foreground"]))
    layout = {"objects": [{"name": foreground[0], "box": [0.1, 0.5, 0.3, 0.4]},
                          {"name": foreground[1], "box": [0.6, 0.4, 0.3, 0.5]}]}
    served = mlflow.pyfunc.load_model(f"models:/{registered.name}@champion")
    rows = served.predict(pd.DataFrame({"scene_graph": [json.dumps(layout)]}))
    assert rows["image_size"].tolist() == [64]
    retrieved = json.loads(rows["retrieved"][0])
    assert len(retrieved) == 3 and all(r["image_id"] in exported.bank.image_ids for r in retrieved)
    bad = {"objects": [*layout["objects"], {"name": background, "box": [0, 0, 1, 0.3]}]}
    with pytest.raises(MlflowException, match=f"'{background}' is a background class"):
        served.predict(pd.DataFrame({"scene_graph": [json.dumps(bad)]}))

    # `generate --model models:/...@champion` loads the same model
    assert isinstance(load_scene_to_image(f"models:/{registered.name}@champion"), LayoutToImage)
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    assert main(["generate", "--model", f"models:/{registered.name}@champion", "--layout",
                 str(tmp_path / "layout.json"), "--out", str(tmp_path / "out.png")]) == 0
    # the CLI: one family per registered model
    assert main(["register", "--bachgan-model", str(model_path), "--image-model",
                 str(model_path), "--data", str(data), "--evaluation",
                 str(result.metrics_path)]) == 2
    assert (tmp_path / "model" / BACHGAN_MODEL_FILE).exists()
