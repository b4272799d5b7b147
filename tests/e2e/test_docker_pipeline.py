"""`scene2img pipeline run --local --runner docker`: every task of the DAG in the project's image
(`make image`), through podman's Docker API, against the real team stack (SeaweedFS S3 +
`mlflow server`) reached over the network, compared with a subprocess run of the same inputs.

The data comes as on a cluster: a DVC data registry (a git repository served by `git daemon` on
loopback, its DVC remote on the stack's S3) at a commit, fetched by the ingest task.

Runs with SCENE2IMG_E2E_DOCKER=1 (it needs podman, a 7 GB image and minutes: `make test` leaves
it out), and then needs `make image` first. The image runs the code it was built from: after
changing src/, rebuild it (a code-only rebuild reuses the dependency layers).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scene2img.cli import main
from scene2img.config import PROJECT_ROOT, load_params
from scene2img.data.toyworld import generate_toyworld
from scene2img.pipeline.docker import DEFAULT_IMAGE
from scene2img.tracking import stack
from tests.e2e.test_local_pipeline import TINY

pytestmark = [
    # two DAG runs to the registry on the CPU (measured: see the README); opt-in below rather
    # than `slow`, which `make test` deselects
    pytest.mark.timeout(1800),
    pytest.mark.skipif(os.environ.get("SCENE2IMG_E2E_DOCKER") != "1",
                       reason="the DAG in containers: set SCENE2IMG_E2E_DOCKER=1 (after make image)"),
]
PODMAN_ENV = {"CONTAINERS_CONF": str(PROJECT_ROOT / "infra/podman/containers.conf"),
              "CONTAINERS_STORAGE_CONF": str(PROJECT_ROOT / "infra/podman/storage.conf")}
# What must be the same when the inputs are: the data's hashes and the params.
SAME = ("dataset_manifest_sha256", "raw_dvc_hash", "dataset_source", "params_sha256", "params",
        "stage")


@pytest.fixture(scope="module")
def image_id() -> str:
    """The ID of the image the containers run; skips (before the stack starts) without it."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed: `make image-tools`, then `make image`")
    out = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", DEFAULT_IMAGE],
                         env={**os.environ, **PODMAN_ENV}, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"no image {DEFAULT_IMAGE} in podman's storage: run `make image` first")
    return out.stdout.strip()


@pytest.fixture(scope="module")
def team_stack(tmp_path_factory):
    # module-scoped, not the integration tests' session stack: `image_id` can then skip first
    with stack.running(tmp_path_factory.mktemp("stack")) as cfg:
        yield cfg


@pytest.fixture(scope="module")
def data_registry(team_stack, tmp_path_factory):
    """git://127.0.0.1:PORT/registry: a toy VG dataset at data/raw/vg, DVC-tracked, on the S3."""
    served = tmp_path_factory.mktemp("git")
    repo = served / "registry"
    repo.mkdir()
    dvc = str(Path(sys.executable).with_name("dvc"))

    def run(*args: str) -> None:
        subprocess.run(args, cwd=repo, check=True, capture_output=True, timeout=300)

    run("git", "init", "-q")
    run("git", "config", "user.email", "ci@scene2img"), run("git", "config", "user.name", "ci")
    run(dvc, "init", "-q")
    stack.configure_dvc_remote(team_stack, repo, prefix="registry")
    params = load_params(experiment="toyworld", overrides=[o[2:] for o in TINY])
    generate_toyworld(params.preprocess.source, repo / "data/raw/vg", params.toyworld)
    run(dvc, "add", "-q", "data/raw/vg")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "raw data v1")
    run(dvc, "push", "-q")
    shutil.rmtree(repo / ".dvc" / "cache")  # the data is on the S3 only
    port = stack.free_port()
    daemon = subprocess.Popen(["git", "daemon", "--export-all", f"--base-path={served}",
                               "--reuseaddr", "--listen=127.0.0.1", f"--port={port}", str(served)])
    time.sleep(0.5)
    try:
        yield f"git://127.0.0.1:{port}/registry"
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_dag_in_containers_registers_the_lineage_of_a_subprocess_run(image_id, tmp_path,
                                                                      team_stack, data_registry,
                                                                      monkeypatch, capsys):
    from mlflow import MlflowClient

    key, secret = stack.credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)  # handed to the containers as env variables
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.chdir(tmp_path)
    uri = team_stack.tracking_uri
    common = ["pipeline", "run", "--local", "--until", "register", f"-Stracking.uri={uri}", *TINY,
              "-Spipeline.ingest.source=dvc", f"-Spipeline.ingest.repo={data_registry}",
              "-Spipeline.ingest.path=data/raw/vg"]

    assert main([*common, "--root", str(tmp_path / "subprocess")]) == 0
    here = capsys.readouterr().out
    assert main([*common, "--root", str(tmp_path / "docker"), "--runner", "docker"]) == 0
    there = capsys.readouterr().out

    assert "in the image localhost/scene2img:" in there and image_id in there
    assert "registered: scene2img version 1" in here
    assert "registered: scene2img version 2" in there
    # ingest's headline: "<its output folder> (data version <commit>:data/raw/vg@<dvc md5>)"
    version = {re.search(r"\(data version (\S+)\)", line).group(1)
               for line in here.splitlines() + there.splitlines() if line.startswith("  ingest: ")}
    assert len(version) == 1, version  # the same data version in both runs
    assert "data/raw/vg@" in version.pop()

    client = MlflowClient(uri)
    local_tags = client.get_model_version("scene2img", "1").tags
    container_tags = client.get_model_version("scene2img", "2").tags
    for name in SAME:
        assert local_tags[f"scene2img.{name}"] == container_tags[f"scene2img.{name}"], name
    # the Docker API's form of the ID (podman's `image inspect` prints it without the prefix)
    assert container_tags["scene2img.image_id"] == f"sha256:{image_id.removeprefix('sha256:')}"
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
