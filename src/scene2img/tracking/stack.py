"""The team stack on loopback: a SeaweedFS S3 server and an `mlflow server` whose artifacts go
to a bucket on that S3, plus the DVC remote on the same S3.

`scene2img stack up|down|status` drives it. Processes run detached in their own sessions; their
pids, ports and the URIs clients need are kept in `<dir>/state.json`, logs in `<dir>/logs/`.
Credentials come from the environment (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`); the local
defaults below are for loopback only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from scene2img.errors import Scene2ImgError

log = logging.getLogger(__name__)
LOCAL_ACCESS_KEY = "scene2img"
LOCAL_SECRET_KEY = "scene2img-local-secret"
BUCKETS = ("mlflow-artifacts", "dvc-store")


class StackError(Scene2ImgError):
    """The stack could not start, stop or be reached."""


@dataclass
class StackConfig:
    dir: Path = Path(".stack")  # data, logs and state
    s3_port: int = 8333
    mlflow_port: int = 5000
    backend_store_uri: str | None = None  # default: sqlite in dir; PostgreSQL URI accepted
    host: str = "127.0.0.1"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def weed_ports(self) -> dict[str, int]:
        """SeaweedFS's internal ports, derived from the S3 port so two stacks can coexist."""
        base = self.s3_port
        return {"master": base + 1, "volume": base + 2, "filer": base + 3, "admin": base + 4}


def credentials() -> tuple[str, str]:
    return (os.environ.get("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY),
            os.environ.get("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_KEY))


def _bin(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if not path:
        raise StackError(f"`{name}` not found; install the project (make install) first")
    return path


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait(check, what: str, timeout: float, log_file: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text()[-2000:] if log_file.exists() else ""
            raise StackError(f"{what} exited with code {proc.returncode}; log {log_file}:\n{tail}")
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.25)
    raise StackError(f"{what} not ready after {timeout:.0f}s; see {log_file}")


def _s3_ready(cfg: StackConfig) -> bool:
    import boto3
    from botocore.config import Config

    key, secret = credentials()
    s3 = boto3.client("s3", endpoint_url=cfg.s3_endpoint, aws_access_key_id=key,
                      aws_secret_access_key=secret, region_name="us-east-1",
                      config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2))
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    return set(BUCKETS) <= names


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (loopback URL we built)
        return r.status == 200


def _start(cmd: list[str], log_file: Path, env: dict[str, str]) -> subprocess.Popen:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_file, "ab")  # noqa: SIM115 (the child keeps it)
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, stdin=subprocess.DEVNULL)


def up(cfg: StackConfig, timeout: float = 60.0) -> dict:
    """Start S3 and the tracking server (if not running) and return the state."""
    state = status(cfg)
    if state.get("running"):
        return state
    cfg.dir.mkdir(parents=True, exist_ok=True)
    ports = {"s3": cfg.s3_port, "mlflow": cfg.mlflow_port, **cfg.weed_ports}
    taken = [f"{name} port {p}" for name, p in ports.items() if not _port_free(cfg.host, p)]
    if taken:
        raise StackError(f"{', '.join(taken)} already in use on {cfg.host}; stop what uses it or "
                         "choose other ports (--s3-port / --mlflow-port)")
    key, secret = credentials()
    logs = cfg.dir / "logs"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    wp = cfg.weed_ports
    weed = _start([
        _bin("weed"), "mini", f"-dir={cfg.dir.resolve() / 's3'}", f"-ip={cfg.host}",
        f"-ip.bind={cfg.host}", "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.port={cfg.s3_port}",
        f"-master.port={wp['master']}", f"-volume.port={wp['volume']}",
        f"-filer.port={wp['filer']}", f"-admin.port={wp['admin']}",
        f"-bucket={','.join(BUCKETS)}",
    ], logs / "seaweedfs.log", env)
    (cfg.dir / "s3").mkdir(exist_ok=True)
    try:
        _wait(lambda: _s3_ready(cfg), "SeaweedFS S3", timeout, logs / "seaweedfs.log", weed)
        backend = cfg.backend_store_uri or f"sqlite:///{(cfg.dir / 'mlflow.db').resolve()}"
        server = _start_mlflow(cfg, backend, env, timeout)
    except BaseException:
        _kill(weed.pid)
        raise
    state = {"running": True, "pids": {"seaweedfs": weed.pid, "mlflow": server.pid},
             "s3_endpoint": cfg.s3_endpoint, "tracking_uri": cfg.tracking_uri,
             "backend_store_uri": backend, "logs": str(logs.resolve()),
             "config": {k: str(v) for k, v in asdict(cfg).items()}}
    (cfg.dir / "state.json").write_text(json.dumps(state, indent=2))
    return state


def _start_mlflow(cfg: StackConfig, backend: str, env: dict[str, str],
                  timeout: float) -> subprocess.Popen:
    log_file = cfg.dir / "logs" / "mlflow.log"
    mlflow_env = {**env, "MLFLOW_S3_ENDPOINT_URL": cfg.s3_endpoint,
                  "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = _start([
        _bin("mlflow"), "server", "--backend-store-uri", backend,
        "--artifacts-destination", "s3://mlflow-artifacts", "--host", cfg.host,
        "--port", str(cfg.mlflow_port), "--workers", "1",
    ], log_file, mlflow_env)
    try:
        _wait(lambda: _http_ok(f"{cfg.tracking_uri}/health"), "mlflow server", timeout, log_file,
              server)
    except BaseException:
        _kill(server.pid)
        raise
    return server


def stop_tracking_server(cfg: StackConfig) -> None:
    """Stop only the tracking server (S3 stays up), e.g. for maintenance or a fault drill."""
    state = json.loads((cfg.dir / "state.json").read_text())
    _kill(state["pids"]["mlflow"])


def start_tracking_server(cfg: StackConfig, timeout: float = 60.0) -> None:
    """Start the tracking server again on the same port and backend store."""
    path = cfg.dir / "state.json"
    state = json.loads(path.read_text())
    if _alive(state["pids"]["mlflow"]):
        return
    key, secret = credentials()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    state["pids"]["mlflow"] = _start_mlflow(cfg, state["backend_store_uri"], env, timeout).pid
    path.write_text(json.dumps(state, indent=2))


def configure_dvc_remote(cfg: StackConfig, repo: Path, prefix: str = "scene2img") -> None:
    """Point the repo's default DVC remote at the stack's S3 (credentials in .dvc/config.local)."""
    key, secret = credentials()
    dvc = _bin("dvc")
    for args in (["remote", "add", "-d", "-f", "store", f"s3://dvc-store/{prefix}"],
                 ["remote", "modify", "store", "endpointurl", cfg.s3_endpoint],
                 ["remote", "modify", "--local", "store", "access_key_id", key],
                 ["remote", "modify", "--local", "store", "secret_access_key", secret]):
        result = subprocess.run([dvc, *args], cwd=repo, capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"dvc {' '.join(args[:3])} failed in {repo}: {result.stderr.strip()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _kill(pid: int, grace: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def status(cfg: StackConfig) -> dict:
    """The saved state, with `running` true only if every process is alive and healthy."""
    path = cfg.dir / "state.json"
    if not path.exists():
        return {"running": False}
    state = json.loads(path.read_text())
    alive = {name: _alive(pid) for name, pid in state["pids"].items()}
    state["alive"] = alive
    healthy = False
    if all(alive.values()):
        try:
            healthy = _http_ok(f"{state['tracking_uri']}/health")
        except Exception:
            healthy = False
    state["running"] = healthy
    return state


def down(cfg: StackConfig) -> bool:
    """Stop the stack's processes; data stays in `dir`. Returns whether anything was stopped."""
    path = cfg.dir / "state.json"
    if not path.exists():
        return False
    state = json.loads(path.read_text())
    for pid in state["pids"].values():
        _kill(pid)
    path.unlink()
    return True


@contextlib.contextmanager
def running(folder: Path) -> Iterator[StackConfig]:
    """A throwaway stack in `folder` on free loopback ports, stopped on exit (tests, benchmarks)."""
    cfg = StackConfig(dir=Path(folder), s3_port=free_port(), mlflow_port=free_port())
    up(cfg)
    try:
        yield cfg
    finally:
        down(cfg)
