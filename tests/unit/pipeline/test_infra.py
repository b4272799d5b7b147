"""The image's Dockerfile (hadolint) and the cluster manifests (Kubernetes schemas, kustomize)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import PROJECT_ROOT

K8S = PROJECT_ROOT / "infra" / "k8s"
KUSTOMIZATIONS = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
K8S_VERSION = "1.33.0"


def test_dockerfile_lints_clean():
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.exists():
        hadolint = Path(shutil.which("hadolint") or "hadolint")
    result = subprocess.run([str(hadolint), str(PROJECT_ROOT / "infra/docker/Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_pins_and_user():
    text = (PROJECT_ROOT / "infra/docker/Dockerfile").read_text()
    assert "-c constraints.txt" in text
    assert "sha256sum -c" in text and "ARG INCEPTION_WEIGHTS_SHA256" in text
    assert "\nUSER 1000:1000\n" in text
    base = next(line for line in text.splitlines() if line.startswith("ARG CUDA_IMAGE="))
    assert "nvidia/cuda:" in base and ":latest" not in base and "runtime" in base


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _resources(folder: Path) -> list[dict]:
    """The kustomization's resources, resolved in Python (files and nested kustomizations)."""
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    out = []
    for entry in kust.get("resources", []):
        target = folder / entry
        assert target.exists(), f"{folder}/kustomization.yaml: resource {entry!r} not found"
        out += _resources(target) if target.is_dir() else _docs(target)
    return out


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_manifests_validate_against_the_schemas(folder):
    docs = _resources(folder)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_kustomization_builds(folder):
    kubectl = shutil.which("kubectl")
    if kubectl is None:  # resources resolve (above); nothing more to check without a binary
        assert _resources(folder)
        return
    built = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    for doc in yaml.safe_load_all(built.stdout):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_secret_templates_hold_no_values():
    for path in (K8S / "secrets").glob("*.yaml"):
        for doc in _docs(path):
            if doc.get("kind") == "Secret":
                assert "data" not in doc
                assert all(v == "" for v in doc["stringData"].values()), path


def test_mlflow_server_settings():
    docs = _resources(K8S / "mlflow")
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    args = " ".join(deploy["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "--app-name basic-auth" in args and "--allowed-hosts" in args
    assert "postgresql://" in args and "--artifacts-destination" in args
    kust = yaml.safe_load((K8S / "mlflow" / "kustomization.yaml").read_text())
    literals = dict(x.split("=", 1) for x in kust["configMapGenerator"][0]["literals"])
    assert literals["ARTIFACTS_DESTINATION"].startswith("s3://")
    assert "seaweedfs" in literals["MLFLOW_S3_ENDPOINT_URL"]
