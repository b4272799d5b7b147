"""`scene2img stack up|status|down` as a user runs it, and a clear error when a port is taken."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scene2img.tracking.stack import free_port

CLI = str(Path(sys.executable).with_name("scene2img"))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "stack", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_up_status_down_and_port_taken(tmp_path: Path) -> None:
    ports = ["--s3-port", str(free_port()), "--mlflow-port", str(free_port())]
    up = run("up", "--dir", "a", *ports, cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        assert "team stack running" in up.stdout
        status = json.loads(run("status", "--dir", "a", cwd=tmp_path).stdout)
        assert status["running"] and Path(status["logs"], "mlflow.log").exists()
        again = run("up", "--dir", "a", *ports, cwd=tmp_path)  # already up: nothing to do
        assert again.returncode == 0
        clash = run("up", "--dir", "b", *ports, cwd=tmp_path)  # another stack, same ports
        assert clash.returncode == 2
        assert "already in use" in clash.stderr and "Traceback" not in clash.stderr
    finally:
        down = run("down", "--dir", "a", cwd=tmp_path)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert json.loads(run("status", "--dir", "a", cwd=tmp_path).stdout) == {"running": False}
