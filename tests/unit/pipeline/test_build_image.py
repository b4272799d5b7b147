"""`make image`'s logic (infra/docker/build_image.py), without building: the tag, the host's pip
settings as the build sees them, the engine command, the limits check, the weights check, and
that the script and the Dockerfile agree. Building the image takes minutes; the README says how
it was checked."""

from __future__ import annotations

import doctest
import hashlib
import importlib.util
import re
import sys

import pytest

from tests.conftest import PROJECT_ROOT

_SPEC = importlib.util.spec_from_file_location(
    "build_image", PROJECT_ROOT / "infra" / "docker" / "build_image.py")
bi = importlib.util.module_from_spec(_SPEC)
sys.modules["build_image"] = bi  # dataclasses look their module up
_SPEC.loader.exec_module(bi)

DOCKERFILE = bi.DOCKERFILE.read_text()

# what `pip config list` says on this kind of machine
HOST_PIP = (
    ":env:.cert='/etc/ssl/certs/ca-certificates.crt'\n"
    ":env:.find-links='/opt/wheels'\n"
    "global.cert='/etc/ssl/certs/old.crt'\n"
    "global.constraint='/etc/xdg/pip/constraints.txt'\n"
    "global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple "
    "https://example.org/simple'\n"
    "global.find-links='/srv/elsewhere'\n"
    "global.cache-dir='/root/.cache/pip'\n"
    "install.requirement='/opt/pypi/reqs.txt'\n"
    "global.timeout='60'\n"
)


def test_docstring_examples():
    assert doctest.testmod(bi).failed == 0


def test_tag_names_the_commit_and_the_constraints():
    commit = "ae71e4026da06ebaeeedd2a7a48beafaa664e91a"
    pins = b"torch==2.14.1\n"
    tag = bi.image_tag(commit, pins, dirty=False)
    assert tag == f"ae71e4026da0-constraints-{hashlib.sha256(pins).hexdigest()[:12]}"
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag)  # a valid image tag
    assert bi.image_tag(commit, b"torch==2.14.2\n", dirty=False) != tag
    assert bi.image_tag(commit, pins, dirty=True) == tag + "-dirty"
    # an image with the FID weights is told apart from one without
    assert bi.image_tag(commit, pins, dirty=True, weights_sha256="6726825d0af5") == (
        tag + "-fid6726825d-dirty")


def test_dockerfile_defaults_are_read_from_the_dockerfile():
    assert bi.dockerfile_arg(DOCKERFILE, "CUDA_IMAGE").startswith("docker.io/nvidia/cuda:")
    sha = bi.dockerfile_arg(DOCKERFILE, "INCEPTION_WEIGHTS_SHA256")
    assert re.fullmatch(r"6726825d[0-9a-f]{56}", sha)  # the file name carries its first 8 digits
    with pytest.raises(bi.BuildError, match="ARG NOPE"):
        bi.dockerfile_arg(DOCKERFILE, "NOPE")


def test_debian_base_reference_follows_its_recipe():
    ref = bi.debian_base_ref(bi.DEBIAN_BASE)
    assert ref.startswith("localhost/scene2img-base:bookworm-py3.11-")
    changed = {**bi.DEBIAN_BASE, "packages": [*bi.DEBIAN_BASE["packages"], "curl"]}
    assert bi.debian_base_ref(changed) != ref
    assert {"python3.11", "python3.11-venv"} <= set(bi.DEBIAN_BASE["packages"])


def test_host_pip_settings_are_rewritten_for_the_build():
    sections = bi.parse_pip_config_list(HOST_PIP)
    present = {"/opt/wheels", "/opt/pypi/simple", "/opt/pypi-more/simple",
               "/etc/xdg/pip/constraints.txt", "/opt/pypi/reqs.txt", "/root/.cache/pip"}
    pip = bi.pip_config_for_build(sections, exists=present.__contains__)
    conf = bi.configparser.ConfigParser(interpolation=None)
    conf.read_string(pip.text)
    g = conf["global"]
    # PIP_* variables override the files; the CA bundle becomes the secret
    assert pip.ca_bundle == "/etc/ssl/certs/ca-certificates.crt"
    assert g["cert"] == bi.PIP_CA_SECRET
    assert g["find-links"] == "/run/build-host/opt/wheels"
    assert g["extra-index-url"].split() == ["file:///run/build-host/opt/pypi/simple",
                                            "file:///run/build-host/opt/pypi-more/simple",
                                            "https://example.org/simple"]
    assert g["constraint"] == "/run/build-host/etc/xdg/pip/constraints.txt"
    assert g["timeout"] == "60"
    assert conf["install"]["requirement"] == "/run/build-host/opt/pypi/reqs.txt"
    # an index's parent is mounted (its pages link to ../../files); nested mounts are dropped
    assert pip.mounts == ["/etc/xdg/pip/constraints.txt", "/opt/pypi", "/opt/pypi-more",
                          "/opt/wheels"]
    # a host-only path (the cache) never reaches the build
    assert "cache-dir" not in g and any(s.startswith("global.cache-dir=") for s in pip.left_out)


def test_missing_local_paths_and_docker_leave_settings_out():
    sections = bi.parse_pip_config_list(HOST_PIP)
    pip = bi.pip_config_for_build(sections, exists=lambda p: p != "/etc/xdg/pip/constraints.txt")
    assert "constraint" not in pip.text and "/etc/xdg/pip/constraints.txt" not in pip.mounts
    docker = bi.pip_config_for_build(sections, with_mounts=False, exists=lambda p: True)
    assert docker.mounts == [] and "/run/build-host" not in docker.text
    assert "cert = /run/secrets/pip-ca" in docker.text  # the CA still goes as a secret


def test_no_pip_settings_use_the_system_bundle_or_none():
    assert bi.pip_config_for_build({}, default_ca="/etc/ssl/ca.pem").ca_bundle == "/etc/ssl/ca.pem"
    bare = bi.pip_config_for_build({}, default_ca=None)
    assert bare.ca_bundle is None and bare.text == "" and bare.mounts == []


def test_build_command_podman_and_docker(tmp_path):
    kwargs = dict(refs=["localhost/scene2img:t", "localhost/scene2img:latest"],
                  build_args={"CUDA_IMAGE": "localhost/base:1"}, labels={"a": "b"},
                  pip_conf="/tmp/pip.conf", ca_bundle=None, empty_file="/tmp/empty",
                  mounts=["/opt/pypi"], weights_dir="/tmp/w", iidfile="/tmp/iid")
    podman = bi.build_command("podman", **kwargs)
    text = " ".join(podman)
    assert podman[:2] == ["podman", "build"] and podman[-1] == str(PROJECT_ROOT)
    assert "--format docker" in text and f"--ignorefile {bi.IGNOREFILE}" in text
    assert "--secret id=pip-conf,src=/tmp/pip.conf" in text
    assert "--secret id=pip-ca,src=/tmp/empty" in text  # no CA bundle: an empty stand-in
    assert "-v /opt/pypi:/run/build-host/opt/pypi:ro" in text
    assert "--build-context weights=/tmp/w" in text and "--build-arg CUDA_IMAGE=localhost/base:1" in text
    assert text.count(" -t ") == 2
    docker = " ".join(bi.build_command("docker", **kwargs))
    assert " -v " not in docker and "--format" not in docker and "--secret id=pip-ca" in docker


def test_the_dockerfile_uses_what_the_script_passes():
    secrets = set(re.findall(r"--mount=type=secret,id=([\w-]+)", DOCKERFILE))
    assert secrets == {"pip-conf", "pip-ca"}
    assert f"PIP_CONFIG_FILE={bi.PIP_CONF_SECRET} pip install" in DOCKERFILE
    # every pip install in the Dockerfile sees the configuration
    for run in re.split(r"\n(?=[A-Z]+ )", DOCKERFILE):
        if re.search(r"pip install", run):
            assert "id=pip-conf" in run and "id=pip-ca" in run, run
    assert "from=weights" in DOCKERFILE and "FROM scratch AS weights" in DOCKERFILE
    for arg in ("CUDA_IMAGE", "GIT_COMMIT", "INCEPTION_WEIGHTS", "INCEPTION_WEIGHTS_SHA256"):
        assert f"ARG {arg}=" in DOCKERFILE


def test_nothing_is_downloaded_or_left_in_the_image():
    runs_and_copies = [line for line in DOCKERFILE.splitlines() if not line.startswith("#")]
    text = "\n".join(runs_and_copies)
    assert not re.search(r"\b(curl|wget)\b|^ADD ", text, re.MULTILINE)
    assert "pip.conf" not in text and ".crt" not in text  # config and CA only as secrets


def test_the_context_holds_every_copy_source():
    allowed = {line[1:].rstrip("/") for line in bi.IGNOREFILE.read_text().splitlines()
               if line.startswith("!")}
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert source.rstrip("/") in allowed, f"{source} is excluded from the context"


def test_limits_check():
    conf = bi.CONTAINERS_CONF.read_text()
    asked = dict(re.findall(r'"(\w+)=\d+:(\d+)"', conf))
    assert set(asked) == {"nofile", "nproc"}  # the check reads the project's file
    assert bi.ulimit_problems(conf, {"nofile": 20000, "nproc": 96362}) == []
    problems = bi.ulimit_problems(conf, {"nofile": 4096, "nproc": 96362})
    assert problems == [f"nofile hard limit {asked['nofile']} > 4096 granted here"]
    assert bi.ulimit_problems(conf, {"nofile": bi.resource.RLIM_INFINITY}) == []


def test_weights_are_checked_before_the_build(tmp_path):
    weights = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    weights.write_bytes(b"not the weights")
    with pytest.raises(bi.BuildError, match=r"weights-inception.*sha256 [0-9a-f]{64}, expected"):
        bi.stage_weights(str(weights), "0" * 64, tmp_path)
    with pytest.raises(bi.BuildError, match="no such file"):
        bi.stage_weights(str(tmp_path / "absent.pth"), "0" * 64, tmp_path)
    folder = bi.stage_weights(str(weights), bi.sha256_file(weights), tmp_path)
    assert [p.name for p in folder.iterdir()] == [weights.name]
    assert (folder / weights.name).read_bytes() == b"not the weights"


def test_engine_choice_is_checked():
    with pytest.raises(bi.BuildError, match="expected podman or docker"):
        bi.pick_engine("buildkit")


def test_podman_gets_the_project_settings_unless_the_caller_has_its_own(monkeypatch):
    monkeypatch.delenv("CONTAINERS_STORAGE_CONF", raising=False)
    monkeypatch.setenv("CONTAINERS_CONF", "/elsewhere/containers.conf")
    env = bi.engine_env("podman")
    assert env["CONTAINERS_STORAGE_CONF"] == str(bi.STORAGE_CONF)
    assert env["CONTAINERS_CONF"] == "/elsewhere/containers.conf"
    assert 'driver = "overlay"' in bi.STORAGE_CONF.read_text()  # never vfs: full copies per layer
    docker = bi.engine_env("docker")
    assert "CONTAINERS_STORAGE_CONF" not in docker and docker["DOCKER_BUILDKIT"] == "1"
