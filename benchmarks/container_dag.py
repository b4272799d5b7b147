"""The whole DAG in containers: `scene2img pipeline run --local --runner docker`, shortened (the
e2e tests' tiny settings: 2 steps of each training, a 40-scene toy world), against a fresh team
stack on loopback, ending in a registered and promoted model.

Prints and writes to `benchmarks/results/container_dag.json`: the DAG's wall time, the image's
size and its last build (`outputs/image/build.json`: time, and whether only the code changed),
and the disk the run used (pipeline root, stack). Needs podman and `make image` first.

    .venv/bin/python benchmarks/container_dag.py [--image localhost/scene2img:latest]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scene2img.tracking import stack  # noqa: E402
from tests.e2e.test_local_pipeline import TINY  # noqa: E402

PODMAN_ENV = {"CONTAINERS_CONF": str(ROOT / "infra/podman/containers.conf"),
              "CONTAINERS_STORAGE_CONF": str(ROOT / "infra/podman/storage.conf")}


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="localhost/scene2img:latest")
    ap.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "container_dag.log",
                    help="the run's output, written as it goes")
    args = ap.parse_args()

    inspect = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}} {{.Size}}",
                              args.image], env={**os.environ, **PODMAN_ENV}, capture_output=True,
                             text=True, check=True)
    image_id, size = inspect.stdout.split()
    build = ROOT / "outputs" / "image" / "build.json"
    with tempfile.TemporaryDirectory(prefix="scene2img-container-dag-") as tmp:
        work = Path(tmp)
        with stack.running(work / "stack") as cfg:
            cmd = [str(Path(sys.executable).with_name("scene2img")), "pipeline", "run", "--local",
                   "--runner", "docker", "--image", args.image, "--root", str(work / "kfp"),
                   "--experiment", "toyworld", f"-Stracking.uri={cfg.tracking_uri}", *TINY]
            started = time.monotonic()
            with open(args.log, "w") as log:
                run = subprocess.run(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT)
            seconds = time.monotonic() - started
        output = args.log.read_text()
        if run.returncode != 0:
            sys.exit(f"the containerized DAG failed (whole log: {args.log}):\n{output[-3000:]}")
        summary = output[output.rindex("pipeline: "):].strip().splitlines()
        result = {
            "benchmark": "container_dag",
            "image": args.image, "image_id": image_id, "image_bytes": int(size),
            "last_build": json.loads(build.read_text()) if build.exists() else None,
            "dag_seconds": round(seconds, 1),
            "summary": summary,
            "pipeline_root_bytes": du(work / "kfp"), "stack_bytes": du(work / "stack"),
            "cpus": os.cpu_count(), "machine": platform.machine(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    print("\n".join(summary))
    print(f"DAG in containers: {seconds:.0f} s; image {int(size) / 1e9:.2f} GB; pipeline root "
          f"{result['pipeline_root_bytes'] / 1e6:.1f} MB, stack {result['stack_bytes'] / 1e6:.1f} MB")
    out = ROOT / "benchmarks" / "results" / "container_dag.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
