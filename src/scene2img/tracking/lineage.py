"""Lineage: what made a run, as MLflow tags, so a reviewer can tell from the run alone.

Every training, evaluation and pipeline run carries: the git commit and whether the tree was
dirty, the processed dataset's manifest hash and the raw data's DVC hash, the full resolved params
(a `scene2img.params` JSON tag and its hash; a pipeline step's run: the keys its step received),
the KFP run id when KFP runs it (an argument: the pipeline steps pass it), the host and the
accelerator, and the image (tag and ID) when the process runs in the project's image under
`pipeline run --local --runner docker`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from scene2img.config import PROJECT_ROOT

PREFIX = "scene2img."
NOT_KFP = "none (not run by KFP)"
# Set by the runner that starts a component's container (scene2img.pipeline.docker): the image's
# name and its ID (sha256 of its configuration), so a run says exactly which build it ran in.
# Read here like the host and the accelerator: a fact of the process, not of what it was asked.
IMAGE_ENV = "SCENE2IMG_IMAGE"
IMAGE_ID_ENV = "SCENE2IMG_IMAGE_ID"
NOT_CONTAINER = "none (not run in a container)"


def git_state(repo: Path = PROJECT_ROOT) -> dict[str, str]:
    """Commit and dirtiness of the code that runs ("unknown" outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": os.environ.get("SCENE2IMG_GIT_COMMIT", "unknown"),
                "git_dirty": "unknown"}
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower()}


MAX_TAG_CHARS = 7500  # MLflow keeps tag values up to 8000 characters


def _params_json(params: dict[str, Any]) -> str:
    """The full resolved params as compact JSON (the hash tag identifies them if too long)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    if len(text) > MAX_TAG_CHARS:
        return text[: MAX_TAG_CHARS - 40] + "... (truncated; see params_sha256)"
    return text


def accelerator() -> str:
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        return f"{n} x {torch.cuda.get_device_name(0)}"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def params_sha256(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def dataset_lineage(dataset_url: str | Path | None) -> dict[str, str]:
    """Manifest hash and the raw data's DVC hash recorded at preprocessing."""
    if dataset_url is None:
        return {}
    from scene2img.data.processed import manifest_sha256, read_manifest

    manifest = read_manifest(dataset_url)
    return {
        "dataset_url": str(dataset_url),
        "dataset_manifest_sha256": manifest_sha256(dataset_url),
        "dataset_source": manifest.get("source", "unknown"),
        "raw_dvc_hash": manifest.get("raw_dvc_hash") or "untracked",
    }


def lineage_tags(
    params: dict[str, Any],  # the full resolved params
    dataset_url: str | Path | None = None,  # processed dataset the run read
    stage: str | None = None,  # train_layout, train_image, evaluate, ...
    kfp_run_id: str | None = None,  # the KFP run that launched this one (None: not KFP)
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The lineage tags for one run, keys prefixed `scene2img.`."""
    tags = {
        **git_state(),
        **dataset_lineage(dataset_url),
        "params_sha256": params_sha256(params),
        "params": _params_json(params),
        "host": socket.gethostname(),
        "accelerator": accelerator(),
        "kfp_run_id": kfp_run_id or NOT_KFP,
        "image": os.environ.get(IMAGE_ENV, NOT_CONTAINER),
        "image_id": os.environ.get(IMAGE_ID_ENV, NOT_CONTAINER),
    }
    if stage:
        tags["stage"] = stage
    tags.update(extra or {})
    return {PREFIX + k: str(v) for k, v in tags.items()}


def flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"a": {"b": 1}}` -> `{"a.b": "1"}`, for `mlflow.log_params` (values are strings)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_params(value, name + "."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, type(None))) else str(value)
    return out


def run_name(what: str, config: str, tags: dict[str, str]) -> str:
    """A run's name for the runs table: what ran, with which configuration, on which data.

    `run_name("train_image lostgan", "toyworld", tags)` -> "train_image lostgan · toyworld ·
    data 3f2a9c1", the data version being the first characters of the processed dataset's
    manifest hash (`tags` are `lineage_tags`)."""
    data = tags.get(PREFIX + "dataset_manifest_sha256")
    return " · ".join([what, config, *([f"data {data[:7]}"] if data else [])])
