"""DVC on the team stack's S3: `stack.configure_dvc_remote`, then real `dvc push` / `dvc pull`."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from scene2img.data.toyworld import generate_toyworld
from scene2img.tracking import stack
from tests.conftest import toy_params

DVC = str(Path(sys.executable).with_name("dvc"))


def dvc(*args: str, cwd: Path) -> str:
    out = subprocess.run([DVC, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_push_and_pull_raw_data(team_stack, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc("init", "-q", cwd=repo)
    stack.configure_dvc_remote(team_stack, repo, prefix="tests/push-pull")
    generate_toyworld("vg", repo / "raw", toy_params("vg", images=8).toyworld)
    before = digest(repo / "raw")
    dvc("add", "-q", "raw", cwd=repo)
    dvc("push", cwd=repo)

    shutil.rmtree(repo / "raw")
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc("pull", cwd=repo)
    assert digest(repo / "raw") == before
    assert "endpointurl" in (repo / ".dvc" / "config").read_text()
    assert "secret_access_key" in (repo / ".dvc" / "config.local").read_text()
    assert "secret_access_key" not in (repo / ".dvc" / "config").read_text()  # not committed
