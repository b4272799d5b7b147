"""The promotion gate against a real MLflow registry (SQLite store)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import NamedTuple

import mlflow
import pytest
from mlflow import MlflowClient

from scene2img.errors import TrackingError
from scene2img.evaluation.protocol import Protocol
from scene2img.tracking.promotion import (
    TAG_GATE_METRIC,
    TAG_METRIC_PREFIX,
    TAG_PROTOCOL,
    promote,
    rollback,
)

METRIC = "fid_random-inception_test"
PROTOCOL = Protocol(backbone="random-inception", backbone_sha256="ab", image_size=64,
                    split="test", dataset_sha256="cd", samples_per_layout=1)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite store for the module (creating one takes seconds); a model per test."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


class Registry(NamedTuple):
    client: MlflowClient
    name: str  # a registered model of its own for each test


@pytest.fixture()
def reg(store: str, request) -> Registry:
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    mlflow.set_experiment("promotion-test")  # not an experiment id left active by another test
    client = MlflowClient(store, store)
    client.create_registered_model(request.node.name)
    yield Registry(client, request.node.name)
    mlflow.set_tracking_uri(None)


def add_version(reg: Registry, tmp_path: Path, fid: float, protocol=PROTOCOL) -> str:
    with mlflow.start_run() as run:
        art = tmp_path / "model"
        art.mkdir(exist_ok=True)
        (art / "MLmodel").write_text("flavors: {}\n")
        mlflow.log_artifacts(str(art), "model")
    mv = reg.client.create_model_version(reg.name, f"{run.info.artifact_uri}/model", run.info.run_id,
                                     tags={TAG_PROTOCOL: json.dumps(protocol.to_dict()),
                                           TAG_GATE_METRIC: METRIC,
                                           TAG_METRIC_PREFIX + METRIC: str(fid)})
    return str(mv.version)


def aliases(reg: Registry) -> dict[str, str]:
    return {k: str(v) for k, v in reg.client.get_registered_model(reg.name).aliases.items()}


def test_gate_moves_champion_only_when_better(reg, tmp_path) -> None:
    v1 = add_version(reg, tmp_path, 50.0)
    assert promote(*reg, v1, margin=1.0).outcome == "first-champion"
    v2 = add_version(reg, tmp_path, 49.5)  # better, but not by the margin
    r = promote(*reg, v2, margin=1.0)
    assert r.outcome == "challenger" and "not better by the margin" in r.summary()
    assert aliases(reg) == {"champion": v1, "challenger": v2}
    v3 = add_version(reg, tmp_path, 40.0)
    r = promote(*reg, v3, margin=1.0)
    assert r.outcome == "promoted"
    assert aliases(reg)["champion"] == v3 and aliases(reg)["previous"] == v1
    tags = reg.client.get_model_version(reg.name, v3).tags
    assert tags["scene2img.last_move.from_version"] == v1
    assert tags["scene2img.last_move.reason"] == "passed the gate"
    assert tags["scene2img.last_move.by"] and tags["scene2img.last_move.at"]


def test_different_protocol_is_refused_with_reasons(reg, tmp_path) -> None:
    promote(*reg, add_version(reg, tmp_path, 50.0), margin=1.0)
    other = dataclasses.replace(PROTOCOL, image_size=128, dataset_sha256="zz")
    v2 = add_version(reg, tmp_path, 10.0, other)
    r = promote(*reg, v2, margin=1.0)
    assert r.outcome == "challenger"
    text = r.summary()
    assert "image_size: 128 != 64" in text and "dataset_sha256" in text


def test_force_needs_a_reason_and_rollback_restores(reg, tmp_path) -> None:
    v1 = add_version(reg, tmp_path, 50.0)
    promote(*reg, v1, margin=1.0)
    v2 = add_version(reg, tmp_path, 60.0)
    with pytest.raises(TrackingError, match="--force needs --reason"):
        promote(*reg, v2, margin=1.0, force=True)
    r = promote(*reg, v2, margin=1.0, force=True, reason="hotfix for a serving bug")
    assert r.outcome == "forced" and aliases(reg)["champion"] == v2
    assert reg.client.get_model_version(reg.name, v2).tags["scene2img.last_move.reason"] == \
        "hotfix for a serving bug"
    r = rollback(*reg, reason="quality regression")
    assert aliases(reg)["champion"] == v1 and aliases(reg)["previous"] == v2
    history = json.loads(reg.client.get_model_version(reg.name, v1).tags["scene2img.alias_history"])
    assert [e["action"] for e in history] == ["champion (first)", "previous",
                                              "champion (rollback)"]
    with pytest.raises(TrackingError, match="no version 99"):
        promote(*reg, 99, margin=1.0)
