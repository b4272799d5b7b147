"""`scene2img pipeline submit`: the KFP API requests it makes, against a local HTTP server that
records them (no cluster, nothing of ours replaced)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from scene2img.cli import main
from scene2img.config import load_params
from scene2img.pipeline.params import argument, dag_steps
from tests.conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "pipelines" / "scene2img_pipeline.yaml"
LOSTGAN = dag_steps(load_params())  # the checked-in package's steps (params.yaml's family)


class _Recorder(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict]] = []

    def _reply(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.requests.append((method, self.path, body))
        path = self.path.split("?")[0]
        if path.endswith("/experiments") and method == "GET":
            self._reply({"experiments": [{"experiment_id": "exp-1",
                                          "display_name": "scene2img"}], "total_size": 1})
        elif path.endswith("/experiments"):
            self._reply({"experiment_id": "exp-1", "display_name": body.get("display_name")})
        elif path.endswith("/runs"):
            self._reply({"run_id": "run-1", "display_name": body.get("display_name")})
        elif path.endswith("/recurringruns"):
            self._reply({"recurring_run_id": "rr-1", "display_name": body.get("display_name")})
        else:
            self._reply({})

    def do_GET(self) -> None:  # noqa: N802
        self._record("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._record("POST")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def kfp_api():
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", _Recorder.requests
    finally:
        server.shutdown()


def _posted(requests, suffix):
    return [body for method, path, body in requests
            if method == "POST" and path.split("?")[0].endswith(suffix)]


def test_submit_creates_a_run_with_the_params(kfp_api, capsys):
    host, requests = kfp_api
    assert main(["pipeline", "submit", "--host", host, "--package", str(PACKAGE),
                 "-S", "tracking.uri=http://mlflow.mlflow:5000", "--run-name", "nightly"]) == 0
    assert "created run run-1" in capsys.readouterr().out
    (run,) = _posted(requests, "/runs")
    assert run["display_name"] == "nightly"
    assert run["experiment_id"] == "exp-1"
    arguments = run["runtime_config"]["parameters"]
    assert set(arguments) == {argument(step) for step in LOSTGAN}  # each step's own params
    for step in ("train_layout", "train_image", "evaluate", "register", "promote"):
        assert json.loads(arguments[argument(step)])["tracking"]["uri"] == \
            "http://mlflow.mlflow:5000"
    assert "tracking" not in json.loads(arguments["preprocess_params"])
    spec = json.dumps(run["pipeline_spec"])
    name = next(yaml.safe_load_all(PACKAGE.read_text()))["pipelineInfo"]["name"]
    assert f'"{name}"' in spec
    assert "scene2img-s3" in spec and "nvidia.com/gpu.present" in spec  # the platform spec too


def test_submit_with_a_schedule_creates_a_recurring_run(kfp_api, capsys):
    host, requests = kfp_api
    assert main(["pipeline", "submit", "--host", host, "--package", str(PACKAGE),
                 "--schedule", "0 0 3 * * *"]) == 0
    assert "created recurring-run rr-1" in capsys.readouterr().out
    (job,) = _posted(requests, "/recurringruns")
    assert job["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert job["experiment_id"] == "exp-1"
    assert set(job["runtime_config"]["parameters"]) == {argument(step) for step in LOSTGAN}
    assert not _posted(requests, "/runs")


def test_submit_without_a_package_says_what_to_do(tmp_path, capsys):
    assert main(["pipeline", "submit", "--host", "http://127.0.0.1:9",
                 "--package", str(tmp_path / "missing.yaml")]) == 2
    assert "scene2img pipeline compile" in capsys.readouterr().err


def test_submit_refuses_a_package_compiled_for_other_steps(tmp_path, capsys):
    """The checked-in package has train-upscaler; params without it would not fit its arguments."""
    assert main(["pipeline", "submit", "--host", "http://127.0.0.1:9", "--package", str(PACKAGE),
                 "-S", "pipeline.upscaler=false"]) == 2
    err = capsys.readouterr().err
    assert "only in the package: ['train_upscaler_params']" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("just: text\n")
    assert main(["pipeline", "submit", "--host", "http://127.0.0.1:9", "--package", str(bad)]) == 2
    assert "not a compiled scene2img pipeline" in capsys.readouterr().err
