"""`scene2img pipeline run --local --runner docker`: every task of the DAG in the project's image
(`make image`), through podman's Docker API, against the real team stack (SeaweedFS S3 +
`mlflow server`) reached over the network, compared with a subprocess run of the same inputs.

Needs podman and a built image (`make image`); skipped without them. The image runs the code it
was built from: after changing src/, rebuild it (`make image`, a code-only rebuild reuses the
dependency layers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from scene2img.cli import main
from scene2img.config import PROJECT_ROOT
from scene2img.pipeline.docker import DEFAULT_IMAGE
from scene2img.tracking import stack
from tests.e2e.test_local_pipeline import TINY

pytestmark = pytest.mark.slow  # two DAG runs to the registry on the CPU (measured: see README)
PODMAN_ENV = {"CONTAINERS_CONF": str(PROJECT_ROOT / "infra/podman/containers.conf"),
              "CONTAINERS_STORAGE_CONF": str(PROJECT_ROOT / "infra/podman/storage.conf")}
# What must be the same when the inputs are: the data's hashes and the params.
SAME = ("dataset_manifest_sha256", "raw_dvc_hash", "dataset_source", "params_sha256", "params",
        "stage")


def _image_id(ref: str) -> str | None:
    if not shutil.which("podman"):
        return None
    out = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", ref],
                         env={**os.environ, **PODMAN_ENV}, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="module")
def team_stack(tmp_path_factory):
    cfg = stack.StackConfig(dir=tmp_path_factory.mktemp("stack"), s3_port=stack.free_port(),
                            mlflow_port=stack.free_port())
    stack.up(cfg)
    try:
        yield cfg
    finally:
        stack.down(cfg)


def test_dag_in_containers_registers_the_lineage_of_a_subprocess_run(tmp_path, team_stack,
                                                                      monkeypatch, capsys):
    from mlflow import MlflowClient

    image_id = _image_id(DEFAULT_IMAGE)
    if image_id is None:
        pytest.skip(f"no podman or no {DEFAULT_IMAGE}: run `make image` first")
    key, secret = stack.credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)  # handed to the containers as env variables
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.chdir(tmp_path)
    uri = team_stack.tracking_uri
    common = ["pipeline", "run", "--local", "--until", "register", f"-Stracking.uri={uri}", *TINY]

    assert main([*common, "--root", str(tmp_path / "subprocess")]) == 0
    here = capsys.readouterr().out
    assert main([*common, "--root", str(tmp_path / "docker"), "--runner", "docker"]) == 0
    there = capsys.readouterr().out

    assert "in the image localhost/scene2img:" in there and image_id in there
    assert "registered: scene2img version 1" in here
    assert "registered: scene2img version 2" in there
    version = {line.split(": ")[1] for line in here.splitlines() + there.splitlines()
               if line.startswith("  ingest: ")}
    assert len(version) == 1, version  # the same data version (toyworld:<params sha256>)

    client = MlflowClient(uri)
    local_tags = client.get_model_version("scene2img", "1").tags
    container_tags = client.get_model_version("scene2img", "2").tags
    for name in SAME:
        assert local_tags[f"scene2img.{name}"] == container_tags[f"scene2img.{name}"], name
    assert container_tags["scene2img.image_id"] == image_id
    assert container_tags["scene2img.image"].startswith("localhost/scene2img:")
    assert local_tags["scene2img.image"] == "none (not run in a container)"
    assert container_tags["scene2img.kfp_run_id"] != local_tags["scene2img.kfp_run_id"]
    # The registered model's files went through the MLflow server to S3, not to a host folder.
    source = client.get_model_version("scene2img", "2").source
    assert source.startswith(("mlflow-artifacts:", "models:/")), source
    json.loads(container_tags["scene2img.params"])  # the full params, readable
    containers = subprocess.run(["podman", "ps", "-a", "--format", "{{.ID}}"],
                                env={**os.environ, **PODMAN_ENV}, capture_output=True, text=True)
    assert containers.stdout.strip() == ""  # every task's container removed
