from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from scene2img.config import load_params
from scene2img.data.processed import manifest_sha256
from scene2img.data.toyworld import generate_toyworld
from scene2img.stages.preprocess import preprocess
from scene2img.tracking.lineage import flatten_params, lineage_tags, run_name
from tests.conftest import toy_params

DVC = str(Path(sys.executable).with_name("dvc"))


def run(*cmd: str, cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def test_raw_dvc_hash_reaches_the_manifest_and_the_tags(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    run("git", "init", "-q", cwd=repo)
    run(DVC, "init", "-q", cwd=repo)
    params = toy_params("vg", images=16)
    generate_toyworld("vg", repo / "raw", params.toyworld)
    run(DVC, "add", "-q", "raw", cwd=repo)
    md5 = yaml.safe_load((repo / "raw.dvc").read_text())["outs"][0]["md5"]

    preprocess(repo / "raw", repo / "processed", params.preprocess, progress=False)
    tags = lineage_tags(params.to_dict(), repo / "processed", stage="test")
    assert tags["scene2img.raw_dvc_hash"] == md5
    assert tags["scene2img.dataset_manifest_sha256"] == manifest_sha256(repo / "processed")
    assert tags["scene2img.stage"] == "test"
    assert len(tags["scene2img.git_commit"]) == 40  # the project checkout's commit
    assert tags["scene2img.git_dirty"] in {"true", "false"}
    assert tags["scene2img.accelerator"].startswith(("cpu", "1 x", "2 x"))

    shutil.rmtree(repo / ".dvc")  # untracked raw data is said to be untracked
    (repo / "raw.dvc").unlink()
    preprocess(repo / "raw", repo / "p2", params.preprocess, progress=False)
    assert lineage_tags({}, repo / "p2")["scene2img.raw_dvc_hash"] == "untracked"


def test_kfp_run_id_and_params(monkeypatch) -> None:
    params = load_params().to_dict()
    tags = lineage_tags(params, kfp_run_id="run-123")
    assert tags["scene2img.kfp_run_id"] == "run-123"
    assert tags["scene2img.image"] == "none (not run in a container)"
    monkeypatch.setenv("KFP_RUN_ID", "run-9")  # an argument only: the environment is not read
    assert lineage_tags(params)["scene2img.kfp_run_id"] == "none (not run by KFP)"
    assert tags["scene2img.params_sha256"] != lineage_tags({"x": 1})["scene2img.params_sha256"]
    flat = flatten_params(params)
    assert flat["preprocess.vg.min_object_instances"] == "2000"
    assert flat["preprocess.vg.split_file"] == "null"


def test_the_image_a_container_ran_is_a_tag(monkeypatch) -> None:
    monkeypatch.setenv("SCENE2IMG_IMAGE", "localhost/scene2img:abc-constraints-def")
    monkeypatch.setenv("SCENE2IMG_IMAGE_ID", "sha256:" + "0" * 64)
    tags = lineage_tags({})
    assert tags["scene2img.image"] == "localhost/scene2img:abc-constraints-def"
    assert tags["scene2img.image_id"] == "sha256:" + "0" * 64


def test_full_params_travel_as_a_tag() -> None:
    import json

    params = load_params(experiment="toyworld").to_dict()
    tags = lineage_tags(params)
    assert json.loads(tags["scene2img.params"]) == json.loads(json.dumps(params))


def test_run_names_say_what_ran_with_which_config_on_which_data() -> None:
    tags = {"scene2img.dataset_manifest_sha256": "3f2a9c1d" + "0" * 56}
    assert run_name("train_image lostgan", "toyworld", tags) == \
        "train_image lostgan · toyworld · data 3f2a9c1"
    assert run_name("register lostgan", "default", {}) == "register lostgan · default"
