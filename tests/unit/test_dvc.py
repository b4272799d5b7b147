"""dvc.yaml against the code: each stage depends on the params keys its code reads (those of its
pipeline step in `STEP_PARAMS`, less where it logs and runs) and on every module its stage module
imports, so that `dvc repro` reruns a stage exactly when something it uses changed."""

from __future__ import annotations

import yaml

from scene2img.pipeline.params import RUN_SETTINGS, STEP_PARAMS
from tests.conftest import PROJECT_ROOT
from tests.source_imports import code_deps

DVC_FILES = ["dvc.yaml", "pipelines/bachgan/dvc.yaml"]  # LostGAN's family; BachGAN's
STAGES = {name: stage for f in DVC_FILES
          for name, stage in yaml.safe_load((PROJECT_ROOT / f).read_text())["stages"].items()}

# dvc stage -> the module its command runs (the CLI only parses options and calls it)
STAGE_MODULES = {
    "toyworld": "scene2img.data.toyworld",
    "preprocess": "scene2img.stages.preprocess",
    "toyworld_ade20k": "scene2img.data.toyworld",
    "preprocess_ade20k": "scene2img.stages.preprocess",
    "stats": "scene2img.data.summary",
    "train_layout": "scene2img.stages.train_layout",
    "train_image": "scene2img.stages.train_image",
    "train_bachgan": "scene2img.stages.train_bachgan",
    "train_upscaler": "scene2img.stages.train_upscaler",
    "evaluate": "scene2img.stages.evaluate",
    "evaluate_bachgan": "scene2img.stages.evaluate",
}


def _covers(dep: str, file: str) -> bool:
    return file == dep or file.startswith(dep.rstrip("/") + "/")


def test_every_stage_is_checked():
    assert set(STAGES) == set(STAGE_MODULES)


def test_code_deps_are_the_modules_each_stage_imports():
    for stage, module in STAGE_MODULES.items():
        listed = [d for d in STAGES[stage]["deps"] if d.startswith("src/")]
        needed = code_deps(module)
        missing = sorted(f for f in needed if not any(_covers(d, f) for d in listed))
        assert not missing, f"dvc.yaml stage {stage}: add to its deps {missing}"
        stale = [d for d in listed if not any(_covers(d, f) for f in needed)]
        assert not stale, f"dvc.yaml stage {stage}: {stale} not imported by {module}; remove"


def test_the_dependency_walk_sees_lazy_and_relative_imports():
    deps = code_deps("scene2img.stages.ingest")
    # ingest imports the toy world inside its function
    assert "src/scene2img/data/toyworld/__init__.py" in deps
    assert {"src/scene2img/__init__.py", "src/scene2img/stages/__init__.py"} <= deps
    assert not any("pipeline" in f for f in code_deps("scene2img.stages.evaluate"))


def computes(step: str) -> list[str]:
    """The keys of a pipeline step that decide its outputs: its `STEP_PARAMS` less where it logs
    and runs (`RUN_SETTINGS`)."""
    return [key for key in STEP_PARAMS[step] if key.split(".")[0] not in RUN_SETTINGS]


def _has(data: dict, key: str) -> bool:
    for name in key.split("."):
        if not isinstance(data, dict) or name not in data:
            return False
        data = data[name]
    return True


def _experiment_files(cmd: str) -> dict[str, dict]:
    """The experiment a stage's command names (`--experiment NAME`) and those it extends:
    file -> its overrides."""
    name = cmd.split("--experiment", 1)[1].split()[0]
    files = {}
    while name:
        path = f"configs/experiments/{name}.yaml"
        files[path] = yaml.safe_load((PROJECT_ROOT / path).read_text())
        name = files[path].get("extends")
    return files


def test_params_are_the_keys_each_stage_computes_with():
    checked = []
    for stage, spec in STAGES.items():
        step = {"evaluate_bachgan": "evaluate"}.get(stage, stage)  # the same step, the other family
        if step not in STEP_PARAMS:
            continue
        keys = computes(step)
        plain = [p for p in spec["params"] if isinstance(p, str)]
        assert plain == keys, f"dvc.yaml stage {stage}: params should be {keys}"
        files = {k: v for p in spec["params"] if isinstance(p, dict) for k, v in p.items()}
        # each experiment file of the stage's chain lists the stage's keys it sets
        expected = {path: [k for k in keys if _has(overrides, k)]
                    for path, overrides in _experiment_files(spec["cmd"]).items()}
        assert files == {path: ks for path, ks in expected.items() if ks}, stage
        checked.append(stage)
    assert checked == ["preprocess", "train_layout", "train_image", "train_upscaler", "evaluate",
                       "train_bachgan", "evaluate_bachgan"]
    assert STAGES["toyworld"]["params"] == ["toyworld"]
    for stage in ("train_layout", "train_image", "train_upscaler", "evaluate"):
        assert "tracking" not in STAGES[stage]["params"]  # where runs are logged, not what
