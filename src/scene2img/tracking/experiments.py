"""The MLflow experiments scene2img logs to, marked as model-training experiments.

MLflow 3's UI has two views: GenAI (traces, evaluations, prompts) and model training (runs, metric
charts, artifacts, models). It picks the view from the `workflowType` URL parameter, else from the
choice the browser last made (the GenAI view on a fresh browser); the experiment's
`mlflow.experimentKind` tag names what the experiment holds, and stops the UI asking. So every
experiment we create or write to carries the tag, and the links we print carry the parameter.
"""

from __future__ import annotations

from urllib.parse import quote

from mlflow import MlflowClient

KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"  # MLflow's value for classical ML / deep learning
UI_VIEW = "workflowType=machine_learning"  # the UI's model-training view


def training_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment `name`, created if missing, tagged as a model-training experiment."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, tags={KIND_TAG: MODEL_TRAINING})
    if exp.tags.get(KIND_TAG) != MODEL_TRAINING:
        client.set_experiment_tag(exp.experiment_id, KIND_TAG, MODEL_TRAINING)
    return exp.experiment_id


def ui_url(base: str, experiment_id: str, run_id: str | None = None) -> str:
    """A link into the MLflow UI at `base` (http://host:port) that opens the model-training view."""
    path = f"#/experiments/{quote(experiment_id)}"
    if run_id:
        path += f"/runs/{quote(run_id)}"
    return f"{base.rstrip('/')}/{path}?{UI_VIEW}"
