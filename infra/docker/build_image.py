"""`make image`: build infra/docker/Dockerfile's image with podman (or docker), with no registry.

Standard library only: it runs before `make install`, with the host's Python 3.11.

- Engine: podman where installed (with the project's `infra/podman/containers.conf` and
  `storage.conf`, selected through `CONTAINERS_CONF` / `CONTAINERS_STORAGE_CONF`), otherwise a
  running docker; `ENGINE=podman|docker` picks one.
- Base: `CUDA_IMAGE` when given; else the Dockerfile's published CUDA base when it can be pulled;
  else a minimal Debian bookworm with Python 3.11, made with mmdebstrap and imported as a local
  image (made once, reused while its recipe is unchanged).
- pip: the host's pip configuration (`pip config list`, files and `PIP_*` variables) and CA bundle
  reach the build as secrets; the local folders and files it names (find-links, `file://`
  indexes, constraint files) as read-only bind mounts under /run/build-host (podman only). None
  of them is written into a layer.
- FID weights: `INCEPTION_WEIGHTS=PATH` bakes in a local file, checked by sha256 (here, then in
  the build); without it the image has none. Nothing is downloaded.
- Tag: `<git commit>-constraints-<constraints.txt sha256>[-dirty]`, and `latest`. It prints the
  size and the time taken, and writes them to outputs/image/build.json.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import hashlib
import io
import json
import os
import re
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
IGNOREFILE = ROOT / "infra" / "docker" / "Dockerfile.dockerignore"
CONTAINERS_CONF = ROOT / "infra" / "podman" / "containers.conf"
STORAGE_CONF = ROOT / "infra" / "podman" / "storage.conf"
RECORD = ROOT / "outputs" / "image" / "build.json"
IMAGE_NAME = "localhost/scene2img"
# What the image is built from (the Dockerfile's COPY sources and the Dockerfile itself): a change
# here that is not committed makes the tag `-dirty`.
CONTEXT_PATHS = ("pyproject.toml", "constraints.txt", "README.md", "params.yaml", "configs", "src",
                 "infra/docker")

BUILD_HOST = "/run/build-host"  # where podman mounts the local paths the pip configuration names
PIP_CONF_SECRET = "/run/secrets/pip-conf"  # the Dockerfile's RUN --mount=type=secret,id=pip-conf
PIP_CA_SECRET = "/run/secrets/pip-ca"
# pip options whose local paths are inputs the build must see; any other option naming a local
# path (cache-dir, log, target, ...) is a host setting and is left out.
PIP_INPUT_KEYS = frozenset({"index-url", "extra-index-url", "find-links", "constraint",
                            "requirement", "build-constraint", "client-cert"})
PIP_INDEX_KEYS = frozenset({"index-url", "extra-index-url"})
SYSTEM_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")

# The local base where the CUDA one cannot be pulled: what a CUDA runtime image gives the
# Dockerfile (a shell, apt, Python 3.11, git, useradd), from Debian's archive. The torch cu130
# wheels bring their own CUDA libraries; the GPU driver comes from the node.
DEBIAN_BASE = {
    "suite": "bookworm",
    "variant": "apt",
    "packages": ["python3.11", "python3.11-venv", "ca-certificates", "git", "passwd"],
    "mirrors": ["deb http://deb.debian.org/debian bookworm main",
                "deb http://deb.debian.org/debian bookworm-updates main",
                "deb http://deb.debian.org/debian-security bookworm-security main"],
    "dpkgopts": ["path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*",
                 "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/locale/*"],
    "config": ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'],
}


class BuildError(Exception):
    """Something `make image` cannot do; the message says what to do."""


# --------------------------------------------------------------------------------------------
# names: the tag, the Dockerfile's defaults, the local base


def image_tag(commit: str, constraints: bytes, dirty: bool, weights_sha256: str | None = None) -> str:
    """`<commit[:12]>-constraints-<sha256(constraints.txt)[:12]>[-fid<weights sha[:8]>][-dirty]`.

    Example:
        >>> image_tag("ae71e40c1f2a9b", b"torch==2.14.1\\n", dirty=False)
        'ae71e40c1f2a-constraints-cb4c768c4b63'
    """
    digest = hashlib.sha256(constraints).hexdigest()[:12]
    weights = f"-fid{weights_sha256[:8]}" if weights_sha256 else ""
    return f"{commit[:12]}-constraints-{digest}{weights}" + ("-dirty" if dirty else "")


def dockerfile_arg(text: str, name: str) -> str:
    """The default of `ARG name=default` in a Dockerfile (the one place it is written)."""
    match = re.search(rf"^ARG {re.escape(name)}=(\S*)\s*$", text, re.MULTILINE)
    if match is None:
        raise BuildError(f"{DOCKERFILE}: no `ARG {name}=<default>` line")
    return match.group(1).strip('"')


def debian_base_ref(recipe: dict) -> str:
    """The local base's reference: its suite, Python and a hash of the whole recipe."""
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"localhost/scene2img-base:{recipe['suite']}-py3.11-{digest}"


def git_state(root: Path) -> tuple[str, bool]:
    """HEAD's commit and whether the image's sources differ from it ("nogit" outside git)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode != 0:
        return "nogit", True
    status = subprocess.run(["git", "status", "--porcelain", "--", *CONTEXT_PATHS], cwd=root,
                            capture_output=True, text=True, check=True)
    return head.stdout.strip(), bool(status.stdout.strip())


# --------------------------------------------------------------------------------------------
# the host's pip configuration, as the build sees it


@dataclass
class PipForBuild:
    """A pip.conf for the build, the host paths to mount for it and the CA bundle to pass."""

    text: str
    mounts: list[str] = field(default_factory=list)  # host paths, mounted at BUILD_HOST + path
    ca_bundle: str | None = None  # host path of the CA bundle (secret pip-ca)
    left_out: list[str] = field(default_factory=list)  # "section.key" settings not passed


def parse_pip_config_list(text: str) -> dict[str, dict[str, str]]:
    """`pip config list` output (`section.key='value'`) as {section: {key: value}}.

    Example:
        >>> parse_pip_config_list("global.cert='/a.crt'\\n:env:.timeout='60'\\n")
        {'global': {'cert': '/a.crt'}, ':env:': {'timeout': '60'}}
    """
    sections: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if not sep or "." not in name:
            continue
        section, _, key = name.rpartition(".")
        sections.setdefault(section, {})[key] = ast.literal_eval(value)
    return sections


def _local_path(token: str) -> str | None:
    """The host path a pip value names (`/x` or `file:///x`), or None for anything else."""
    if token.startswith("file://"):
        return urlparse(token).path or None
    return token if token.startswith("/") else None


def pip_config_for_build(
    sections: dict[str, dict[str, str]],  # parse_pip_config_list's result
    with_mounts: bool = True,  # False (docker): local paths cannot be mounted, leave them out
    exists=os.path.exists,
    default_ca: str | None = None,  # the host's system CA bundle, used when pip names none
) -> PipForBuild:
    """Rewrite the host's pip settings for the build.

    `PIP_*` variables (section `:env:`) override the files' `[global]`, as in pip. `cert` becomes
    the pip-ca secret. Local paths of input options are rewritten under BUILD_HOST and listed for
    mounting: for a `file://` index its parent folder (index pages link to `../../files/...`),
    otherwise the path itself. Other options naming local paths are left out.
    """
    merged = {name: dict(values) for name, values in sections.items() if name != ":env:"}
    merged.setdefault("global", {}).update(sections.get(":env:", {}))
    result = PipForBuild(text="")
    mounts: set[str] = set()
    written: dict[str, dict[str, str]] = {}
    for name, values in merged.items():
        out: dict[str, str] = {}
        for key, value in values.items():
            if key == "cert":
                result.ca_bundle = value
                continue
            tokens = []
            for token in value.split():
                path = _local_path(token)
                if path is None:
                    tokens.append(token)
                    continue
                if key not in PIP_INPUT_KEYS or not with_mounts or not exists(path):
                    tokens = None
                    break
                mounts.add(os.path.dirname(path.rstrip("/")) if key in PIP_INDEX_KEYS else path)
                tokens.append(token.replace(path, BUILD_HOST + path, 1))
            if tokens is None:
                result.left_out.append(f"{name}.{key}={value}")
            else:
                out[key] = " ".join(tokens)
        if out:
            written[name] = out
    result.ca_bundle = result.ca_bundle or default_ca
    if result.ca_bundle:
        written.setdefault("global", {})["cert"] = PIP_CA_SECRET
    # a mount inside another one is already visible
    result.mounts = sorted(m for m in mounts
                           if not any(m != o and m.startswith(o.rstrip("/") + "/") for o in mounts))
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(written)
    buffer = io.StringIO()
    parser.write(buffer)
    result.text = buffer.getvalue()
    return result


def host_pip_config() -> dict[str, dict[str, str]]:
    """The host's pip settings as `pip config list` reports them (empty without pip)."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                         capture_output=True, text=True)
    return parse_pip_config_list(out.stdout) if out.returncode == 0 else {}


def system_ca_bundle() -> str | None:
    candidates = [ssl.get_default_verify_paths().cafile, *SYSTEM_CA_BUNDLES]
    return next((c for c in candidates if c and os.path.isfile(c)), None)


# --------------------------------------------------------------------------------------------
# the engine


def pick_engine(requested: str | None) -> str:
    if requested:
        if requested not in ("podman", "docker"):
            raise BuildError(f"ENGINE={requested}: expected podman or docker")
        if shutil.which(requested) is None:
            raise BuildError(f"ENGINE={requested}: not installed")
        return requested
    if shutil.which("podman"):
        return "podman"
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return "docker"
    raise BuildError("no container engine: install Debian's podman and runc (`make image-tools` "
                     "as root does), or start docker")


def ulimit_problems(conf_text: str, hard: dict[str, int]) -> list[str]:
    """containers.conf `default_ulimits` that ask for more than this machine grants (`hard`).

    Example:
        >>> ulimit_problems('default_ulimits = ["nofile=16384:16384"]', {"nofile": 1024})
        ['nofile hard limit 16384 > 1024 granted here']
    """
    problems = []
    for name, limit in re.findall(r'"(\w+)=\d+:(\d+)"', conf_text):
        granted = hard.get(name)
        if granted is not None and granted != resource.RLIM_INFINITY and int(limit) > granted:
            problems.append(f"{name} hard limit {limit} > {granted} granted here")
    return problems


def engine_env(engine: str) -> dict[str, str]:
    """The engine's environment: podman gets the project's containers.conf and storage.conf
    unless the caller set their own."""
    env = dict(os.environ)
    if engine == "docker":
        env["DOCKER_BUILDKIT"] = "1"
        return env
    env.setdefault("CONTAINERS_STORAGE_CONF", str(STORAGE_CONF))
    if "CONTAINERS_CONF" not in env:
        env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
        hard = {"nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[1]}
        problems = ulimit_problems(CONTAINERS_CONF.read_text(), hard)
        if problems:
            raise BuildError(f"{CONTAINERS_CONF}: {'; '.join(problems)}: lower default_ulimits "
                             f"there to at most what `ulimit -Hn` / `ulimit -Hu` show")
    return env


def image_exists(engine: str, ref: str, env: dict[str, str]) -> bool:
    cmd = [engine, "image", "inspect", "--format", "{{.Id}}", ref]
    return subprocess.run(cmd, env=env, capture_output=True).returncode == 0


# --------------------------------------------------------------------------------------------
# the base


def make_debian_base(engine: str, ref: str, env: dict[str, str], recipe: dict = DEBIAN_BASE) -> None:
    """mmdebstrap a minimal Debian into a tarball and import it as `ref`."""
    if shutil.which("mmdebstrap") is None:
        raise BuildError("the CUDA base cannot be pulled and mmdebstrap is missing: install "
                         "Debian's mmdebstrap (`make image-tools` as root does), or give "
                         "CUDA_IMAGE=<an image with Python 3.11 and apt>")
    with tempfile.TemporaryDirectory(prefix="scene2img-base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        cmd = ["mmdebstrap", f"--variant={recipe['variant']}",
               f"--include={','.join(recipe['packages'])}",
               *(f"--dpkgopt={opt}" for opt in recipe["dpkgopts"]),
               recipe["suite"], str(tarball), *recipe["mirrors"]]
        run(cmd, env=env, stdin=subprocess.DEVNULL)
        changes = [arg for change in recipe["config"] for arg in ("--change", change)]
        run([engine, "import", *changes, str(tarball), ref], env=env)


def choose_base(engine: str, requested: str | None, env: dict[str, str]) -> tuple[str, str, float]:
    """(base reference, why it was chosen, seconds spent making it)."""
    if requested:
        return requested, "CUDA_IMAGE given", 0.0
    cuda = dockerfile_arg(DOCKERFILE.read_text(), "CUDA_IMAGE")
    if image_exists(engine, cuda, env):
        return cuda, "the published CUDA base (present)", 0.0
    print(f"make image: pulling {cuda} (a local Debian base is made if that fails)", flush=True)
    if subprocess.run([engine, "pull", cuda], env=env).returncode == 0:
        return cuda, "the published CUDA base (pulled)", 0.0
    ref = debian_base_ref(DEBIAN_BASE)
    why = "the CUDA base cannot be pulled here, so a local Debian one"
    if image_exists(engine, ref, env):
        return ref, why, 0.0
    print(f"make image: making {ref} with mmdebstrap", flush=True)
    start = time.monotonic()
    make_debian_base(engine, ref, env)
    return ref, why, time.monotonic() - start


# --------------------------------------------------------------------------------------------
# the build


def build_command(
    engine: str,  # podman | docker
    refs: list[str],  # tags to give the image
    build_args: dict[str, str],  # --build-arg
    labels: dict[str, str],  # --label
    pip_conf: str,  # host path of the generated pip.conf (secret pip-conf)
    ca_bundle: str | None,  # host path of the CA bundle (secret pip-ca); None: an empty file
    empty_file: str,  # stands in for a missing secret (podman refuses an undeclared one)
    mounts: list[str],  # host paths to mount read-only at BUILD_HOST + path (podman only)
    weights_dir: str | None,  # the `weights` build context, holding the FID weights file
    iidfile: str,  # where the engine writes the image id
) -> list[str]:
    cmd = [engine, "build", "-f", str(DOCKERFILE), "--iidfile", iidfile,
           "--secret", f"id=pip-conf,src={pip_conf}",
           "--secret", f"id=pip-ca,src={ca_bundle or empty_file}"]
    if engine == "podman":
        # docker format: OCI images drop SHELL, and the Dockerfile's RUNs need bash's pipefail
        cmd += ["--format", "docker", "--layers", "--ignorefile", str(IGNOREFILE)]
        cmd += [arg for path in mounts for arg in ("-v", f"{path}:{BUILD_HOST}{path}:ro")]
    if weights_dir:
        cmd += ["--build-context", f"weights={weights_dir}"]
    cmd += [arg for k, v in build_args.items() for arg in ("--build-arg", f"{k}={v}")]
    cmd += [arg for k, v in labels.items() for arg in ("--label", f"{k}={v}")]
    cmd += [arg for ref in refs for arg in ("-t", ref)]
    return [*cmd, str(ROOT)]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stage_weights(path: str, expected: str, tmp: Path) -> Path:
    """Check the FID weights file and put it alone in a folder (the `weights` build context)."""
    src = Path(path).expanduser()
    if not src.is_file():
        raise BuildError(f"INCEPTION_WEIGHTS={path}: no such file")
    actual = sha256_file(src)
    if actual != expected:
        raise BuildError(f"INCEPTION_WEIGHTS={path}: sha256 {actual}, expected {expected} "
                         f"(torch-fidelity's weights-inception-2015-12-05-6726825d.pth)")
    folder = tmp / "weights"
    folder.mkdir()
    try:
        os.link(src, folder / src.name)
    except OSError:  # another file system
        shutil.copyfile(src, folder / src.name)
    return folder


def run(cmd: list[str], **kwargs) -> None:
    result = subprocess.run(cmd, **kwargs)
    if result.returncode != 0:
        raise BuildError(f"`{' '.join(cmd[:2])} ...` failed (exit {result.returncode}); see above")


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default=os.environ.get("ENGINE") or None)
    parser.add_argument("--cuda-image", default=os.environ.get("CUDA_IMAGE") or None)
    parser.add_argument("--inception-weights", default=os.environ.get("INCEPTION_WEIGHTS") or None)
    parser.add_argument("--inception-weights-sha256",
                        default=os.environ.get("INCEPTION_WEIGHTS_SHA256") or None)
    args = parser.parse_args(argv)
    try:
        return build(args)
    except BuildError as exc:
        print(f"make image: {exc}", file=sys.stderr)
        return 2


def build(args: argparse.Namespace) -> int:
    engine = pick_engine(args.engine)
    env = engine_env(engine)
    commit, dirty = git_state(ROOT)
    constraints = (ROOT / "constraints.txt").read_bytes()
    weights_sha = args.inception_weights_sha256 or dockerfile_arg(DOCKERFILE.read_text(),
                                                                  "INCEPTION_WEIGHTS_SHA256")
    with tempfile.TemporaryDirectory(prefix="scene2img-image-") as tmp:
        tmp_path = Path(tmp)
        build_args = {"GIT_COMMIT": commit}
        weights_dir = None
        if args.inception_weights:  # checked first: a wrong file fails before any work
            weights_dir = stage_weights(args.inception_weights, weights_sha, tmp_path)
            build_args["INCEPTION_WEIGHTS"] = Path(args.inception_weights).name
            build_args["INCEPTION_WEIGHTS_SHA256"] = weights_sha
        base, why, base_seconds = choose_base(engine, args.cuda_image, env)
        build_args["CUDA_IMAGE"] = base
        pip = pip_config_for_build(host_pip_config(), with_mounts=engine == "podman",
                                   default_ca=system_ca_bundle())
        for setting in pip.left_out:
            print(f"make image: pip setting not passed to the build: {setting}", file=sys.stderr)
        (tmp_path / "pip.conf").write_text(pip.text)
        (tmp_path / "empty").write_text("")
        labels = {"org.opencontainers.image.revision": commit,
                  "org.opencontainers.image.base.name": base,
                  "scene2img.constraints-sha256": hashlib.sha256(constraints).hexdigest(),
                  "scene2img.dirty": str(dirty).lower(),
                  "scene2img.inception-weights-sha256": weights_sha if weights_dir else "none"}
        tag = image_tag(commit, constraints, dirty, weights_sha if weights_dir else None)
        ref = f"{IMAGE_NAME}:{tag}"
        cmd = build_command(engine, [ref, f"{IMAGE_NAME}:latest"], build_args, labels,
                            pip_conf=str(tmp_path / "pip.conf"), ca_bundle=pip.ca_bundle,
                            empty_file=str(tmp_path / "empty"), mounts=pip.mounts,
                            weights_dir=str(weights_dir) if weights_dir else None,
                            iidfile=str(tmp_path / "iid"))
        print(f"make image: {engine}, base {base} ({why})", flush=True)
        start = time.monotonic()
        run(cmd, env=env, cwd=ROOT)
        seconds = time.monotonic() - start
        image_id = (tmp_path / "iid").read_text().strip()
    size = int(subprocess.run([engine, "image", "inspect", "--format", "{{.Size}}", ref], env=env,
                              capture_output=True, text=True, check=True).stdout.strip())
    record = {"image": ref, "id": image_id, "engine": engine, "base": base, "base_why": why,
              "base_seconds": round(base_seconds, 1), "build_seconds": round(seconds, 1),
              "size_bytes": size, "git_commit": commit, "dirty": dirty,
              "inception_weights_sha256": weights_sha if weights_dir else None,
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    made = f" (and {minutes(base_seconds)} making the Debian base)" if base_seconds else ""
    print(f"make image: {ref} (also {IMAGE_NAME}:latest), {size / 1e9:.2f} GB, "
          f"built in {minutes(seconds)}{made}; recorded in {RECORD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
