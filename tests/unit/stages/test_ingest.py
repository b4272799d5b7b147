"""Stage `ingest`: the toy world, and a DVC-tracked folder at a git revision from its remote."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scene2img.config import IngestParams
from scene2img.errors import ConfigError, DataError
from scene2img.stages.ingest import ingest
from tests.conftest import toy_params

DVC = str(Path(sys.executable).with_name("dvc"))


def _run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def data_registry(tmp_path_factory) -> Path:
    """A git + DVC repo tracking data/raw/vg, two versions (tags v1, v2) pushed to a remote."""
    assert shutil.which("git"), "git is needed: DVC data versions are git revisions"
    root = tmp_path_factory.mktemp("registry")
    repo, remote = root / "repo", root / "remote"
    repo.mkdir()
    remote.mkdir()
    _run(["git", "init", "-q"], repo)
    _run(["git", "config", "user.email", "ci@example.com"], repo)
    _run(["git", "config", "user.name", "ci"], repo)
    _run([DVC, "init", "-q"], repo)
    _run([DVC, "remote", "add", "-d", "store", str(remote)], repo)
    data = repo / "data" / "raw" / "vg"
    data.mkdir(parents=True)
    (data / "image_data.json").write_text("[1]")
    for version, extra in (("v1", None), ("v2", "VG_100K/1.jpg")):
        if extra:
            (data / "objects.json").write_text("[2]")
            (data / extra).parent.mkdir()
            (data / extra).write_bytes(b"jpeg")
        _run([DVC, "add", "-q", "data/raw/vg"], repo)
        _run(["git", "add", "-A"], repo)
        _run(["git", "commit", "-qm", version], repo)
        _run(["git", "tag", version], repo)
        _run([DVC, "push", "-q"], repo)
    shutil.rmtree(repo / ".dvc" / "cache")  # only the remote has the data now
    return repo


def _dvc(repo, rev):
    return IngestParams(source="dvc", repo=str(repo), path="data/raw/vg", rev=rev, remote=None)


def test_dvc_at_a_revision(data_registry, tmp_path):
    v1 = ingest(tmp_path / "v1", _dvc(data_registry, "v1"), "vg")
    v2 = ingest(tmp_path / "v2", _dvc(data_registry, "v2"), "vg")
    assert sorted(p.name for p in (tmp_path / "v1").iterdir()) == ["image_data.json"]
    assert sorted(str(p.relative_to(tmp_path / "v2")) for p in (tmp_path / "v2").rglob("*")) \
        == ["VG_100K", "VG_100K/1.jpg", "image_data.json", "objects.json"]
    assert (tmp_path / "v2" / "VG_100K" / "1.jpg").read_bytes() == b"jpeg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1", "v1.ingest.json", "v2",
                                                          "v2.ingest.json"]
    assert v1.rev != v2.rev and len(v1.rev) == 40
    assert v1.dvc_hash != v2.dvc_hash
    assert v1.data_version == f"{v1.rev}:data/raw/vg@{v1.dvc_hash}"
    assert v1.metadata()["data_version"] == v1.data_version
    assert (tmp_path / "v1.ingest.json").exists()


def test_dvc_errors_name_the_problem(data_registry, tmp_path):
    with pytest.raises(DataError, match="not tracked"):
        ingest(tmp_path / "x", IngestParams("dvc", str(data_registry), "data/nope", "v1", None),
               "vg")
    with pytest.raises(ConfigError, match="pipeline.ingest.repo"):
        ingest(tmp_path / "y", IngestParams("dvc", None, "data/raw/vg", None, None), "vg")


def test_toyworld_version_is_the_params_hash(tmp_path):
    params = toy_params("vg", images=6)
    a = ingest(tmp_path / "a", params.pipeline.ingest, "vg", params.toyworld)
    b = ingest(tmp_path / "b", params.pipeline.ingest, "vg", params.toyworld)
    assert a.data_version == b.data_version and a.data_version.startswith("toyworld:")
    assert (tmp_path / "a" / "image_data.json").exists()
    with pytest.raises(DataError, match="not empty"):
        ingest(tmp_path / "a", params.pipeline.ingest, "vg", params.toyworld)
    with pytest.raises(ConfigError, match="preprocess.source"):
        ingest(tmp_path / "c", params.pipeline.ingest, "svg", params.toyworld)
