"""The real team stack (SeaweedFS S3 + mlflow server on loopback), started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scene2img.tracking import stack


@pytest.fixture(scope="session")
def team_stack(tmp_path_factory) -> Iterator[stack.StackConfig]:
    with stack.running(tmp_path_factory.mktemp("stack")) as cfg:
        yield cfg


@pytest.fixture()
def s3_env(team_stack, monkeypatch) -> stack.StackConfig:
    """Client environment for the stack's S3 (fsspec / boto3 / DVC read these)."""
    key, secret = stack.credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL", team_stack.s3_endpoint)
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", team_stack.s3_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return team_stack
