"""The model's life against the real team stack: train (tiny), evaluate, register, promote, serve
with `mlflow models serve`, and generate / edit from the registered model."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from scene2img.config import load_params
from scene2img.serving.loadtest import ModelServer, post
from scene2img.stages.evaluate import evaluate
from scene2img.stages.promote import promote
from scene2img.stages.register import register
from scene2img.stages.train_image import train_image
from scene2img.stages.train_layout import train_layout
from scene2img.tracking.experiments import KIND_TAG, MODEL_TRAINING, ui_url
from tests.chromium import render

CLI = str(Path(sys.executable).with_name("scene2img"))


def tiny_params(tracking_uri: str, name: str):
    return load_params(experiment="toyworld", overrides=[
        f"tracking.uri={tracking_uri}", "tracking.experiment=lifecycle-test",
        "trainer.accelerator=cpu", "trainer.checkpoint_every_n_steps=1000",
        "trainer.log_every_n_steps=1",
        "train_layout.max_steps=6", "train_layout.val_every_n_steps=3",
        "train_layout.batch_size=8", "train_image.max_steps=6", "train_image.batch_size=4",
        "train_image.grid_every_n_steps=3",
        "evaluate.backbone=random-inception", "evaluate.max_images=8", "evaluate.batch_size=8",
        "evaluate.kid_subset_size=4", "evaluate.kid_subsets=2", "evaluate.is_splits=2",
        f"register.name={name}", "promote.margin=0.0",
    ])


@pytest.fixture(scope="module")
def lifecycle(team_stack, toy_vg: Path, tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle")
    params = tiny_params(team_stack.tracking_uri, "toy-lifecycle")
    lay = train_layout(toy_vg, root / "layout", params, progress=False)
    img = train_image(toy_vg, root / "image", params, progress=False)
    ev = evaluate(str(toy_vg), img.model_path, lay.model_path, root / "eval", params)
    reg = register(lay.model_path, img.model_path, str(toy_vg), ev.metrics_path, params)
    return {"root": root, "params": params, "layout": lay, "image": img, "eval": ev, "reg": reg,
            "data": toy_vg}


def test_runs_carry_metrics_protocol_and_lineage(lifecycle, team_stack) -> None:
    client = MlflowClient(team_stack.tracking_uri)
    ev = client.get_run(lifecycle["eval"].run_id)
    assert any(k.startswith("fid_random-inception_test") for k in ev.data.metrics)
    assert ev.data.tags["eval.pred-layout.backbone"] == "random-inception"
    assert ev.data.tags["scene2img.dataset_manifest_sha256"]
    assert len(ev.data.tags["scene2img.git_commit"]) in (40, 7) or \
        ev.data.tags["scene2img.git_commit"] == "unknown"
    arts = {a.path for a in client.list_artifacts(ev.info.run_id, "evaluation")}
    assert {"evaluation/metrics.json", "evaluation/report_pred-layout.html",
            "evaluation/samples_gt-layout.png"} <= arts
    for stage in ("layout", "image"):
        run = client.get_run(lifecycle[stage].run_id)
        assert run.data.metrics, f"{stage} run logged no metrics"
        assert "scene2img.git_commit" in run.data.tags, f"{stage} run has no lineage tags"


def test_the_ui_opens_the_runs_in_the_model_training_view(lifecycle, team_stack,
                                                          tmp_path) -> None:
    client = MlflowClient(team_stack.tracking_uri)
    exp = client.get_experiment_by_name(lifecycle["params"].tracking.experiment)
    assert exp.tags.get(KIND_TAG) == MODEL_TRAINING
    shot = tmp_path / "mlflow_ui.png"
    dom = render(ui_url(team_stack.tracking_uri, exp.experiment_id), tmp_path / "profile", shot)
    assert Image.open(shot).size == (1400, 900)
    # the model-training view: its runs table with our runs, not GenAI's traces and judges
    assert "train_image" in dom and "train_layout" in dom and "evaluate test" in dom
    assert "Model registry" in dom and "Evaluation runs" not in dom and "Judges" not in dom


def test_registered_version_and_gate(lifecycle, team_stack) -> None:
    reg, params = lifecycle["reg"], lifecycle["params"]
    client = MlflowClient(team_stack.tracking_uri)
    mv = client.get_model_version(reg.name, reg.version)
    assert mv.tags["scene2img.gate_metric"] == reg.gate_metric
    assert reg.gate_metric.endswith("_predlayout")
    assert json.loads(mv.tags["scene2img.protocol"])["mode"] == "pred-layout"
    assert promote(params, reg.version).outcome == "first-champion"
    # the same model registered again is not better: it becomes @challenger
    again = register(lifecycle["layout"].model_path, lifecycle["image"].model_path,
                     str(lifecycle["data"]), lifecycle["eval"].metrics_path, params)
    result = promote(params, again.version)
    assert result.outcome in {"challenger", "promoted"}
    if result.outcome == "challenger":
        assert "not better by the margin" in result.summary()


def _post(url: str, body: bytes) -> tuple[int, dict]:
    status, answer, _ = post(url, body)
    return status, answer


def test_serving_answers_good_and_bad_requests(lifecycle, team_stack, tmp_path) -> None:
    reg = lifecycle["reg"]
    client = MlflowClient(team_stack.tracking_uri)
    client.set_registered_model_alias(reg.name, "champion", reg.version)
    with ModelServer(f"models:/{reg.name}@champion", tmp_path / "serve.log",
                     env={"MLFLOW_TRACKING_URI": team_stack.tracking_uri}) as server:
        url = server.url
        example = json.loads(client.get_model_version(reg.name, reg.version).tags.get(
            "scene2img.example", "null")) or _example(lifecycle)
        good = json.dumps({"dataframe_records": [{"scene_graph": json.dumps(example), "seed": 3}]})
        status, body = _post(f"{url}/invocations", good.encode())
        assert status == 200, body
        row = body["predictions"][0]
        image = Image.open(io.BytesIO(base64.b64decode(row["image_png_base64"])))
        assert image.size == (64, 64)
        assert len(json.loads(row["layout"])) == len(example["objects"])

        bad_graphs = {
            "unknown class": {"objects": [{"name": "unicorn"}]},
            "missing object": {"objects": [{"name": example["objects"][0]["name"]}],
                               "relationships": [{"subject": 0, "predicate": "on",
                                                  "object": 5}]},
            "no objects": {"objects": []},
            "too many objects": {"objects": [example["objects"][0]["name"]] * 40},
        }
        for what, graph in bad_graphs.items():
            body = json.dumps({"dataframe_records": [{"scene_graph": json.dumps(graph)}]})
            status, answer = _post(f"{url}/invocations", body.encode())
            assert status == 400, (what, status, answer)
            assert "scene_graph[0]" in answer.get("message", ""), (what, answer)
        status, _ = _post(f"{url}/invocations", b"{not json")
        assert status == 400
        huge = json.dumps({"dataframe_records": [{"scene_graph": " " * 200_000}]})
        status, answer = _post(f"{url}/invocations", huge.encode())
        assert status == 400 and "bytes" in answer.get("message", "")
        # the registered version serves under the limits it was registered with
        limits = json.dumps({"dataframe_records": [{"scene_graph": json.dumps(example)}] * 17})
        status, answer = _post(f"{url}/invocations", limits.encode())
        assert status == 400 and "at most 16" in answer.get("message", ""), answer
        # and it keeps serving
        status, body = _post(f"{url}/invocations", good.encode())
        assert status == 200


def _example(lifecycle) -> dict:
    from scene2img.serving.pipeline import SceneToImage
    from scene2img.stages.register import example_graph

    model = SceneToImage.from_files(lifecycle["layout"].model_path,
                                    lifecycle["image"].model_path)
    return example_graph(model, str(lifecycle["data"])).to_json()


def test_generate_and_edit_from_the_registry(lifecycle, team_stack, tmp_path) -> None:
    reg = lifecycle["reg"]
    MlflowClient(team_stack.tracking_uri).set_registered_model_alias(reg.name, "champion",
                                                                     reg.version)
    example = _example(lifecycle)
    graph = tmp_path / "scene.json"
    graph.write_text(json.dumps(example))
    env = {**os.environ, "MLFLOW_TRACKING_URI": team_stack.tracking_uri}
    out = subprocess.run([CLI, "generate", "--graph", str(graph), "--model",
                          f"models:/{reg.name}@champion", "--out", str(tmp_path / "a.png"),
                          "--layout-out", str(tmp_path / "layout.png"), "--state-out",
                          str(tmp_path / "state.json"), "--seed", "1"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert np.asarray(Image.open(tmp_path / "a.png")).shape == (64, 64, 3)
    assert Image.open(tmp_path / "layout.png").size == (256, 256)
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps([{"op": "remove", "index": 0}]))
    out = subprocess.run([CLI, "edit", "--graph", str(graph), "--state",
                          str(tmp_path / "state.json"), "--ops", str(ops), "--model",
                          f"models:/{reg.name}@champion", "--out", str(tmp_path / "b.png"),
                          "--in-place"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(graph.read_text())["objects"]) == len(example["objects"]) - 1
    bad = subprocess.run([CLI, "generate", "--text", "a flying unicorn", "--model",
                          f"models:/{reg.name}@champion", "--out", str(tmp_path / "c.png")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown word" in bad.stderr
    assert "Traceback" not in bad.stderr
