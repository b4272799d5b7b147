from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from scene2img.tracking.experiments import KIND_TAG, MODEL_TRAINING, training_experiment, ui_url


def test_experiments_are_created_or_marked_as_model_training(tmp_path: Path) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    old = client.create_experiment("made-elsewhere")  # e.g. by Lightning's logger: no kind
    assert training_experiment(client, "made-elsewhere") == old
    new = training_experiment(client, "fresh")
    assert training_experiment(client, "fresh") == new
    for exp_id in (old, new):
        assert client.get_experiment(exp_id).tags[KIND_TAG] == MODEL_TRAINING


def test_ui_links_open_the_model_training_view() -> None:
    assert ui_url("http://h:5000/", "3") == \
        "http://h:5000/#/experiments/3?workflowType=machine_learning"
    assert ui_url("http://h:5000", "3", "ab") == \
        "http://h:5000/#/experiments/3/runs/ab?workflowType=machine_learning"
