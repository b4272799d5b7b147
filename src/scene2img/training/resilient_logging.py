"""MLflow logging that survives the tracking server going away.

Lightning's `MLFlowLogger` sends every metric batch, param and image through an `MlflowClient`
(its `experiment`). `SpoolingClient` wraps that client: a call that fails because the server is
unreachable is kept, in order, in memory and in a spool folder on disk, and training goes on.
Kept calls are sent again (in order, before any new call) once the server answers; whatever is
still kept when training ends stays on disk and is reported, and `flush_spool` sends it later.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
from pytorch_lightning.loggers import MLFlowLogger

from scene2img.files import atomic_write_bytes

log = logging.getLogger(__name__)
SPOOL_FILE = "pending.pkl"
# Calls that only record something: safe to keep and replay later.
_SPOOLED = {"log_batch", "log_metric", "log_param", "set_tag", "set_experiment_tag", "log_artifact", "log_image",
            "set_terminated"}
RETRY_EVERY_S = 5.0  # while the server is away, try again at most this often


def _unreachable(exc: BaseException) -> bool:
    """A transport failure (server away), not a bad request that a retry would repeat."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, MlflowException):
        text = str(exc)
        return any(s in text for s in ("Max retries exceeded", "Connection refused",
                                       "Failed to establish", "Read timed out", "503", "502"))
    return False


class SpoolingClient:
    """An `MlflowClient` proxy that keeps failed recording calls and replays them in order."""

    def __init__(self, client: Any, spool_dir: Path) -> None:
        self._client = client
        self._dir = Path(spool_dir)
        self._pending: list[tuple[str, tuple, dict]] = []
        self._next_try = 0.0
        self._images = 0
        path = self._dir / SPOOL_FILE
        if path.exists():  # a previous run's leftovers go first
            self._pending = pickle.loads(path.read_bytes())

    @property
    def pending(self) -> int:
        return len(self._pending)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in _SPOOLED:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "log_image":  # images are kept as files, replayed as artifacts
                name_, args, kwargs = self._image_as_artifact(*args, **kwargs)
            else:
                name_ = name
            if self._pending and not self.flush():
                self._keep(name_, args, kwargs)
                return None
            try:
                return getattr(self._client, name_)(*args, **kwargs)
            except Exception as exc:
                if not _unreachable(exc):
                    raise
                log.warning("MLflow tracking server unreachable (%s); keeping %s calls in %s "
                            "and training on", type(exc).__name__, name_, self._dir)
                self._keep(name_, args, kwargs)
                return None

        return call

    def _image_as_artifact(self, run_id: str, image: Any, artifact_file: str, **_: Any):
        from PIL import Image

        self._images += 1
        folder = self._dir / "images" / f"{self._images:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / Path(artifact_file).name
        img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        img.save(path)
        parent = str(Path(artifact_file).parent)
        return "log_artifact", (run_id, str(path)), {"artifact_path": None if parent == "." else
                                                     parent}

    def _keep(self, name: str, args: tuple, kwargs: dict) -> None:
        self._pending.append((name, args, kwargs))
        self._save()

    def _save(self) -> None:
        atomic_write_bytes(self._dir / SPOOL_FILE, pickle.dumps(self._pending))

    def flush(self, force: bool = False) -> bool:
        """Send kept calls in order; True when none is left."""
        if not self._pending:
            return True
        now = time.monotonic()
        if not force and now < self._next_try:
            return False
        while self._pending:
            name, args, kwargs = self._pending[0]
            try:
                getattr(self._client, name)(*args, **kwargs)
            except Exception as exc:
                if not _unreachable(exc):
                    log.error("dropping an MLflow %s call the server refused: %s", name, exc)
                else:
                    self._next_try = now + RETRY_EVERY_S
                    self._save()
                    return False
            self._pending.pop(0)
        self._save()
        log.info("MLflow tracking server is back: kept calls sent")
        return True


class SpoolingMLFlowLogger(MLFlowLogger):
    """`MLFlowLogger` whose client keeps and replays calls while the server is away."""

    def __init__(self, *args: Any, spool_dir: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spool_dir = Path(spool_dir)
        self._spooling: SpoolingClient | None = None
        # Fail fast instead of MLflow's minutes of retries: the spool retries for us.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

    @property
    def experiment(self) -> Any:
        client = super().experiment
        if self._spooling is None:
            self._spooling = SpoolingClient(client, self._spool_dir)
        return self._spooling

    def finalize(self, status: str = "success") -> None:
        client = self.experiment
        client.flush(force=True)
        super().finalize(status)
        if client.pending:
            log.warning("%d MLflow calls could not be sent; they are kept in %s and are sent by "
                        "the next run that logs from this folder (or flush_spool)",
                        client.pending, self._spool_dir)


def flush_spool(spool_dir: Path, tracking_uri: str) -> int:
    """Send a spool folder's kept calls; returns how many are still kept."""
    from mlflow import MlflowClient

    client = SpoolingClient(MlflowClient(tracking_uri), spool_dir)
    client.flush(force=True)
    return client.pending
