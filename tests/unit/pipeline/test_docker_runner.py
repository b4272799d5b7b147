"""The docker runner's pieces that need no container engine: podman's removed-container 500, the
exit code read before removal, and what is refused before anything starts.

The 500 is a real `requests.Response` with podman 4.3's body, turned into an error by docker-py's
own `create_api_error_from_http_exception`, as a client talking to podman sees it. The real run
(tests/e2e/test_docker_pipeline.py) proves the rest against podman.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docker.errors
import pytest
import requests

from scene2img.config import load_params
from scene2img.pipeline import PipelineError
from scene2img.pipeline.docker import (
    PodmanTolerantClient,
    _Container,
    check_reachable,
    docker_runner,
    is_removed_container,
)

GONE = 'no container with name or ID "3f2c9a" found: no such container'


def _http_error(status: int, message: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"cause": "no such container", "message": message,
                                    "response": status}).encode()
    response.url = "http+docker://localhost/v1.41/containers/3f2c9a/wait"
    try:
        docker.errors.create_api_error_from_http_exception(requests.HTTPError(response=response))
    except docker.errors.APIError as exc:
        return exc
    raise AssertionError("docker-py raised nothing")


class FakeContainer:
    """A container seen through docker-py: each `reload` (inspect) moves to the next state;
    `logs` returns everything logged by then. An exception in `states` is what inspect raises."""

    def __init__(self, states=("running", "exited"), exit_code=0, logs=(b"line\n",)) -> None:
        self._states, self._logs, self._exit_code = list(states), list(logs), exit_code
        self.polls, self.removed, self.log_kwargs = 0, False, []

    def reload(self):
        self.polls += 1
        state = self._states[min(self.polls, len(self._states)) - 1]
        if isinstance(state, Exception):
            raise state

    @property
    def attrs(self):
        state = self._states[min(self.polls, len(self._states)) - 1]
        return {"State": {"Status": state, "ExitCode": self._exit_code}}

    def logs(self, **kwargs):
        self.log_kwargs.append(kwargs)
        return self._logs[min(self.polls, len(self._logs)) - 1]

    def remove(self, **kwargs):
        self.removed = True


class FakeContainers:
    def __init__(self, container: FakeContainer) -> None:
        self.container, self.kwargs = container, {}

    def run(self, **kwargs):
        self.kwargs = kwargs
        return self.container


class FakeClient:
    def __init__(self, container: FakeContainer) -> None:
        self.containers = FakeContainers(container)
        self.images = "images"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(_Container, "POLL_S", 0.0)


def _run(fake: FakeContainer) -> _Container:
    client = PodmanTolerantClient(FakeClient(fake))
    return client.containers.run(image="i", command=["c"], detach=True, auto_remove=True)


def test_podmans_500_is_what_docker_py_makes_of_it():
    exc = _http_error(500, GONE)
    assert type(exc) is docker.errors.APIError  # not NotFound: KFP's handler would not catch it
    assert is_removed_container(exc)
    assert not is_removed_container(_http_error(500, "OCI runtime error: permission denied"))
    assert not is_removed_container(_http_error(404, GONE))  # Docker's answer is fine as it is


def test_wait_on_a_removed_container_raises_docker_not_found():
    container = _run(FakeContainer(states=("running", _http_error(500, GONE))))
    with pytest.raises(docker.errors.NotFound, match="no such container"):
        container.wait()


def test_streamed_logs_of_a_removed_container_raise_docker_not_found():
    container = _run(FakeContainer(states=("running", _http_error(500, GONE)), logs=(b"a\n",)))
    lines = container.logs(stream=True)
    assert next(lines) == b"a\n"
    with pytest.raises(docker.errors.NotFound):
        next(lines)


def test_other_errors_pass_unchanged():
    error = _http_error(500, "OCI runtime error: permission denied")
    with pytest.raises(docker.errors.APIError) as raised:
        _run(FakeContainer(states=(error,))).wait()
    assert raised.value is error


def test_logs_stream_until_the_container_has_exited_each_line_once():
    fake = FakeContainer(states=("running", "running", "exited"),
                         logs=(b"a\n", b"a\nb\n", b"a\nb\nc\n"))
    assert list(_run(fake).logs(stream=True, stdout=True)) == [b"a\n", b"b\n", b"c\n"]
    assert all(not k.get("follow") and k.get("stream") is False for k in fake.log_kwargs)


def test_exit_code_is_read_before_the_container_is_removed():
    fake = FakeContainer(states=("running", "running", "exited"), exit_code=3)
    client = PodmanTolerantClient(FakeClient(fake))
    container = client.containers.run(image="i", command=["c"], detach=True, auto_remove=True)
    assert client.containers._containers.kwargs["auto_remove"] is False  # the engine keeps it
    assert not fake.removed
    assert container.wait() == {"StatusCode": 3}  # a failed task stays failed
    assert fake.removed and fake.polls == 3
    assert client.images == "images"  # everything else is the wrapped client's


def test_kfp_sees_the_failure_of_a_task_whose_container_podman_removed(capsys):
    """KFP's own run_docker_container, with the wrapped client: exit code 3 -> 3 (not 0)."""
    from kfp.local.docker_task_handler import run_docker_container

    class Images:
        def list(self):
            image = type("I", (), {"tags": ["localhost/scene2img:t"], "attrs": {"RepoDigests": []}})
            return [image()]

    fake = FakeClient(FakeContainer(states=("running", "exited"), exit_code=3,
                                    logs=(b"boom\n",)))
    fake.images = Images()
    assert run_docker_container(PodmanTolerantClient(fake), "localhost/scene2img:t", ["c"], {}) == 3
    assert "boom" in capsys.readouterr().out


def test_a_tracking_uri_only_the_host_can_read_is_refused():
    params = load_params(overrides=["tracking.uri=sqlite:///mlflow.db"])
    with pytest.raises(PipelineError, match="scene2img stack up"):
        check_reachable(params)
    check_reachable(load_params(overrides=["tracking.uri=http://127.0.0.1:5000"]))


def test_a_data_registry_on_a_host_path_is_refused():
    params = load_params(overrides=["tracking.uri=http://127.0.0.1:5000",
                                    "pipeline.ingest.source=dvc", "pipeline.ingest.repo=/srv/data"])
    with pytest.raises(PipelineError, match="git URL"):
        check_reachable(params)


def test_an_unknown_runner_is_refused(tmp_path):
    from scene2img.pipeline.local import run_local

    with pytest.raises(PipelineError, match="choose subprocess or docker"):
        run_local(lambda params, until: None, load_params(), until="ingest", root=tmp_path,
                  runner="kubernetes")


def test_cli_without_podman_says_so_in_one_line(tmp_path, monkeypatch, capfd):
    from scene2img.cli import main

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no podman on it
    assert main(["pipeline", "run", "--local", "--runner", "docker", "--root", str(tmp_path),
                 "-S", "tracking.uri=http://127.0.0.1:5000"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert err == ["scene2img: error: --runner docker needs podman (`make image-tools`) or a "
                   "running docker with DOCKER_HOST set"]


class _Engine(BaseHTTPRequestHandler):
    """podman 4.3's Docker API, as far as `docker_runner` asks it: the version, a ping, and the
    image (`image`: its inspect JSON; None: the 404 podman gives for an image never built, whose
    "image not known" is not Docker's "No such image", so docker-py raises NotFound, not
    ImageNotFound)."""

    image: dict | None = None

    def do_GET(self):
        if self.path.endswith("/version"):
            self._answer(200, {"ApiVersion": "1.41", "Version": "4.3.1"})
        elif self.path.endswith("/_ping"):
            self._answer(200, "OK")
        elif self.image is not None:
            self._answer(200, self.image)
        else:
            ref = "localhost/scene2img:latest"
            self._answer(404, {"cause": "image not known", "response": 404,
                               "message": f"failed to find image {ref}: {ref}: image not known"})

    def _answer(self, status, body):
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def engine(monkeypatch):
    """An `_Engine` on loopback, as DOCKER_HOST; set `engine.image` to have the image."""
    handler = type("Engine", (_Engine,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{server.server_address[1]}")
    yield handler
    server.shutdown()
    server.server_close()


def test_an_image_never_built_is_refused_in_one_line(engine):
    params = load_params(overrides=["tracking.uri=http://127.0.0.1:5000"])
    refused = pytest.raises(PipelineError,
                            match=r"image 'localhost/scene2img:latest' not found.*make image")
    with refused, docker_runner(params):
        pass


def test_run_local_in_the_image_a_cache_per_build_and_the_run_id_in_the_containers(engine,
                                                                                    tmp_path):
    """run_local's side of --runner docker, up to the tasks: nothing runs in a container here."""
    import io

    from kfp.local import config, docker_task_handler

    from scene2img.pipeline.local import run_local

    image_id = "sha256:" + "ab12" * 16
    engine.image = {"Id": image_id, "RepoTags": ["localhost/scene2img:latest",
                                                 "localhost/scene2img:c0ffee-constraints-12"]}
    original = docker_task_handler.run_docker_container
    seen = {}

    def make_pipeline(params, until):
        def pipeline(**arguments):  # what the tasks would start with
            cfg = config.LocalExecutionConfig.instance
            seen.update(env=cfg.runner.container_run_args["environment"], cache=cfg.cache_root,
                        patched=docker_task_handler.run_docker_container is not original)
        return pipeline

    out = io.StringIO()
    run = run_local(make_pipeline, load_params(overrides=["tracking.uri=http://127.0.0.1:5000"]),
                    until="ingest", root=tmp_path, out=out, runner="docker")
    ref = "localhost/scene2img:c0ffee-constraints-12"
    assert run.image == f"{ref} ({image_id})"
    assert f"  in the image {ref} ({image_id})" in out.getvalue().splitlines()
    assert seen["cache"] == str(tmp_path / "cache" / "image-ab12ab12ab12")
    assert seen["env"]["KFP_RUN_ID"] == run.kfp_run_id
    assert seen["env"]["SCENE2IMG_IMAGE"] == ref and seen["env"]["SCENE2IMG_IMAGE_ID"] == image_id
    assert "SCENE2IMG_PROGRESS" not in seen["env"]  # no bars in a log read back whole
    assert seen["patched"] and docker_task_handler.run_docker_container is original
