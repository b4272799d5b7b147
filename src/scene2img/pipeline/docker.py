"""Run the DAG's components in the project's image: KFP's local `DockerRunner` against podman's
Docker-compatible API (or a running docker), the `--runner docker` of `scene2img pipeline run`.

- The API: `DOCKER_HOST` when it is set and answers; else podman's socket, served by
  `infra/podman/socket.sh` (with the project's containers.conf / storage.conf): a service that
  already answers is reused, one started here is stopped when the run ends.
- The image: a local build (`make image`; default `localhost/scene2img:latest`) runs every
  component in place of `pipeline.image` (the registry name the cluster pulls). Its name and
  image ID reach the components as `SCENE2IMG_IMAGE` / `SCENE2IMG_IMAGE_ID`, and become lineage
  tags of every MLflow run and registered version; the run's KFP run id arrives as `KFP_RUN_ID`,
  as it does in a pod.
- The network, as on a cluster: MLflow (and through it the artifact store) and S3 are reached
  over HTTP, with the host's network (`network_mode=host`: the team stack listens on loopback);
  credentials are environment variables. The only host folder a container sees is the one KFP's
  local runner itself mounts: the pipeline root, where tasks hand artifacts to each other (on a
  cluster, the KFP launcher copies them to and from S3 instead). Containers run as the calling
  user so that what they write there stays the caller's.
- podman 4 answers 500 ("no such container") where Docker answers 404 for a container that has
  exited and been removed, and KFP's handler expects the 404. `PodmanTolerantClient` turns that
  500 into docker-py's `NotFound`, and removes each container itself after reading its exit
  code, so that the code is never lost to the race in the first place. It also polls each
  container's state instead of podman 4.3's compat log stream and wait, which can stay open
  after the container has exited.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from scene2img.config import PROJECT_ROOT, Params
from scene2img.pipeline import PipelineError
from scene2img.tracking.lineage import IMAGE_ENV, IMAGE_ID_ENV

log = logging.getLogger(__name__)
DEFAULT_IMAGE = "localhost/scene2img:latest"  # what `make image` tags last
SOCKET_SCRIPT = PROJECT_ROOT / "infra" / "podman" / "socket.sh"
# Passed from this environment to every component: the S3 and MLflow credentials and endpoints
# (on a cluster: the Kubernetes Secrets named by pipeline.secrets).
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
              "AWS_DEFAULT_REGION", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
              "MLFLOW_TRACKING_TOKEN")


# --------------------------------------------------------------------------------------------
# podman's 500 for a removed container


def is_removed_container(exc: Exception) -> bool:
    """podman 4's answer for a container that no longer exists: HTTP 500, "no such container"."""
    import docker.errors

    response = getattr(exc, "response", None)
    return (isinstance(exc, docker.errors.APIError) and not isinstance(exc, docker.errors.NotFound)
            and getattr(response, "status_code", None) == 500
            and "no such container" in str(getattr(exc, "explanation", "") or "").lower())


def _as_docker_error(exc: Exception) -> Exception:
    """The error Docker would have raised: `NotFound` for podman's removed-container 500."""
    import docker.errors

    if is_removed_container(exc):
        return docker.errors.NotFound(str(exc), response=exc.response,  # type: ignore[attr-defined]
                                      explanation=exc.explanation)  # type: ignore[attr-defined]
    return exc


class _Container:
    """A docker-py container whose calls fail like Docker's, read without podman's compat
    streams, and removed once its exit code is read.

    podman 4.3's Docker-compatible `logs?follow=1` and `wait` can stay open after the container
    has exited (seen here: a training task's log stream never ended), so this polls the
    container's state (`inspect`, which answers at once) and reads its logs without following.
    """

    POLL_S = 1.0

    def __init__(self, container: Any, remove: bool) -> None:
        self._container = container
        self._remove = remove

    def logs(self, **kwargs: Any) -> Any:
        if kwargs.pop("stream", False):
            return self._stream(kwargs)
        try:
            return self._container.logs(**kwargs)
        except Exception as exc:
            raise _as_docker_error(exc) from exc

    def _stream(self, kwargs: dict[str, Any]) -> Iterator[bytes]:
        """What has been logged since the last poll, until the container has exited."""
        kwargs = {k: v for k, v in kwargs.items() if k != "follow"}
        shown = 0
        while True:
            try:
                running = self._running()
                text = self._container.logs(stream=False, **kwargs)
            except Exception as exc:
                raise _as_docker_error(exc) from exc
            if len(text) > shown:
                yield text[shown:]
                shown = len(text)
            if not running:
                return
            time.sleep(self.POLL_S)

    def _running(self) -> bool:
        self._container.reload()
        return self._container.attrs["State"]["Status"] not in ("exited", "dead", "stopped")

    def wait(self, **kwargs: Any) -> dict[str, Any]:
        """{"StatusCode": exit code} once the container has exited, like Docker's wait."""
        try:
            while self._running():
                time.sleep(self.POLL_S)
            return {"StatusCode": int(self._container.attrs["State"]["ExitCode"])}
        except Exception as exc:
            raise _as_docker_error(exc) from exc
        finally:
            if self._remove:
                with contextlib.suppress(Exception):  # gone already: nothing to remove
                    self._container.remove(force=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)


class _Containers:
    def __init__(self, containers: Any) -> None:
        self._containers = containers

    def run(self, **kwargs: Any) -> _Container:
        # Removed by _Container.wait after the exit code is read, not by the engine on exit.
        remove = bool(kwargs.pop("auto_remove", False))
        try:
            return _Container(self._containers.run(auto_remove=False, **kwargs), remove)
        except Exception as exc:
            raise _as_docker_error(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._containers, name)


class PodmanTolerantClient:
    """Wraps a `docker.DockerClient` for KFP's `run_docker_container`: the same calls, with
    podman's removed-container 500 answered as Docker's 404 and exit codes never lost."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.containers = _Containers(client.containers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


# --------------------------------------------------------------------------------------------
# the API socket, the image, the runner


@contextlib.contextmanager
def container_api() -> Iterator[str]:
    """Yield the `DOCKER_HOST` of an answering Docker-compatible API (see the module docstring)."""
    previous = os.environ.get("DOCKER_HOST")
    if previous and _answers():
        yield previous
        return
    if not shutil.which("podman"):
        raise PipelineError("--runner docker needs podman (`make image-tools`) or a running docker "
                            "with DOCKER_HOST set")
    started = subprocess.run([str(SOCKET_SCRIPT), "status"], capture_output=True).returncode != 0
    out = subprocess.run([str(SOCKET_SCRIPT), "start"], capture_output=True, text=True)
    if out.returncode != 0:
        raise PipelineError(f"podman's API did not start: {out.stderr.strip()}")
    host = out.stdout.strip().removeprefix("export DOCKER_HOST=")
    os.environ["DOCKER_HOST"] = host
    log.info("podman's API: %s (%s)", host, "started for this run" if started else "reused")
    try:
        yield host
    finally:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous
        if started:
            subprocess.run([str(SOCKET_SCRIPT), "stop"], capture_output=True)


def _answers() -> bool:
    import docker

    try:
        client = docker.from_env()
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@dataclass
class Image:
    ref: str  # the tag the containers run (the most specific one of the image)
    id: str  # sha256:... of its configuration: what exactly ran


def resolve_image(ref: str) -> Image:
    """The local image `ref` names; a `PipelineError` saying how to build it if there is none."""
    import docker
    import docker.errors

    client = docker.from_env()
    try:
        image = client.images.get(ref)
    except docker.errors.NotFound:  # podman 4's "image not known" is no ImageNotFound to docker-py
        raise PipelineError(f"image {ref!r} not found in the engine at {os.environ['DOCKER_HOST']}; "
                            "build it with `make image` or name another with --image") from None
    finally:
        client.close()
    tags = [t for t in image.tags if not t.endswith(":latest")] or image.tags or [ref]
    return Image(ref=sorted(tags)[0], id=image.id)


def check_reachable(params: Params) -> None:
    """Containers reach MLflow and the data over the network: refuse host-only locations."""
    uri = params.tracking.uri
    if not uri.startswith(("http://", "https://")):
        raise PipelineError(f"tracking.uri={uri!r} is not reachable from the containers; start "
                            "the team stack (`scene2img stack up`) and pass "
                            "-S tracking.uri=http://127.0.0.1:5000 (its MLflow server)")
    ingest = params.pipeline.ingest
    if ingest.source == "dvc" and ingest.repo and "://" not in ingest.repo:
        raise PipelineError(f"pipeline.ingest.repo={ingest.repo!r} is a host path; the containers "
                            "need a git URL (e.g. https:// or git://) of the data registry")


def kfp_runner(image: Image, environment: dict[str, str] | None = None) -> Any:
    """KFP's DockerRunner: host network, the caller's uid, credentials, the image and
    `environment` (the run's KFP run id) as env vars. kfp.local's cache key does not see these."""
    from kfp import local

    env = {name: os.environ[name] for name in SECRET_ENV if name in os.environ}
    env.update({**(environment or {}), IMAGE_ENV: image.ref, IMAGE_ID_ENV: image.id})
    return local.DockerRunner(network_mode="host", user=f"{os.getuid()}:{os.getgid()}",
                              environment=env)


@contextlib.contextmanager
def docker_runner(
    params: Params,  # the run's resolved params (tracking.uri, pipeline.ingest are checked)
    image_ref: str | None = None,  # the local image (default: DEFAULT_IMAGE)
    environment: dict[str, str] | None = None,  # more env vars for every container
) -> Iterator[tuple[Any, Image]]:
    """Yield (KFP runner, image) for a run whose components all run in the image; while it is
    open, KFP's container calls go through `PodmanTolerantClient` with the image in place of
    `pipeline.image`."""
    from kfp.local import docker_task_handler

    check_reachable(params)
    with container_api():
        built = resolve_image(image_ref or DEFAULT_IMAGE)
        original = docker_task_handler.run_docker_container

        def run_in_image(client: Any, image: str, command: list[str], volumes: dict,
                         **kwargs: Any) -> int:  # KFP's call, by keyword; `image`: pipeline.image
            return original(client=PodmanTolerantClient(client), image=built.ref,
                            command=command, volumes=volumes, **kwargs)

        docker_task_handler.run_docker_container = run_in_image
        log.info("components run in %s (%s) in place of %s", built.ref, built.id,
                 params.pipeline.image)
        try:
            yield kfp_runner(built, environment), built
        finally:
            docker_task_handler.run_docker_container = original
