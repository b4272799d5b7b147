"""What each step receives: only its keys, typed, and an error naming any key it was not given;
the table agrees with the keys the steps' code reads."""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib.util
import json
import typing
from pathlib import Path

import pytest

from scene2img.config import Params, load_params
from scene2img.errors import ConfigError, ParamNotGivenError
from scene2img.pipeline import PipelineError
from scene2img.pipeline.params import (
    STEP_PARAMS,
    STEPS,
    argument,
    dag_steps,
    pipeline_arguments,
    step_params,
    typed,
)


def test_each_step_receives_only_its_keys_and_they_round_trip():
    params = load_params(experiment="toyworld")
    arguments = pipeline_arguments(params)
    assert list(arguments) == [argument(step) for step in dag_steps(params)]
    for step in dag_steps(params):
        got = typed(step, arguments[argument(step)])
        assert got.to_dict() == json.loads(step_params(params, step))
    train = typed("train_image", arguments["train_image_params"])
    assert train.train_image == params.train_image and train.trainer == params.trainer
    assert train.pipeline.train_nodes == params.pipeline.train_nodes
    ingest = typed("ingest", arguments["ingest_params"])
    assert ingest.preprocess.source == params.preprocess.source
    assert ingest.pipeline.ingest == params.pipeline.ingest
    assert set(ingest.to_dict()) == {"pipeline", "preprocess", "toyworld"}


def test_a_changed_key_changes_only_the_steps_that_read_it():
    base = pipeline_arguments(load_params())
    for override, changed in [
        ("train_image.lr_g=0.5", {"train_image"}),
        ("preprocess.image_size=64", {"preprocess"}),
        ("preprocess.source=coco-stuff", {"ingest", "preprocess", "train_upscaler", "evaluate"}),
        ("preprocess.vg.normalise_names=true", {"preprocess", "train_upscaler", "evaluate"}),
        ("train_upscaler.lr=0.5", {"train_upscaler"}),
        ("tracking.uri=http://mlflow:5000", {"train_layout", "train_image", "train_upscaler",
                                             "evaluate", "register", "promote"}),
        ("pipeline.caching.evaluate=false", set()),  # compiled into the DAG, not an argument
    ]:
        new = pipeline_arguments(load_params(overrides=[override]))
        assert {s for s in base if new[s] != base[s]} == {argument(s) for s in changed}, override


def test_reading_a_key_the_step_was_not_given_names_it():
    got = typed("evaluate", step_params(load_params(), "evaluate"))
    assert got.evaluate.split == "test"
    with pytest.raises(ParamNotGivenError, match="evaluate_params: parameter train_image was "
                                                 "not given"):
        _ = got.train_image.lr_g
    with pytest.raises(ConfigError, match="parameter pipeline.gpus was not given"):
        int(got.pipeline.gpus)
    assert not hasattr(got.data, "max_objects")  # AttributeError too: introspection stays quiet
    assert copy.deepcopy(got).to_dict() == got.to_dict()


def test_bad_step_params_are_refused_with_the_parameter_named():
    with pytest.raises(PipelineError, match="train_layout_params is not JSON"):
        typed("train_layout", "{nope")
    with pytest.raises(PipelineError, match="expected a JSON object"):
        typed("train_layout", "[1, 2]")
    with pytest.raises(ConfigError, match="train_layout_params: train_layout.lr must be float"):
        typed("train_layout", json.dumps({"train_layout": {"lr": "fast"}}))
    with pytest.raises(ConfigError, match="unknown parameter"):
        typed("preprocess", json.dumps({"preprocess": {"image_sise": 64}}))


def test_the_upscaler_step_is_in_the_dag_only_when_switched_on():
    on, off = load_params(), load_params(overrides=["pipeline.upscaler=false"])
    assert dag_steps(on) == [s for s in STEPS if s != "train_bachgan"]
    assert dag_steps(off) == [s for s in STEPS if s not in ("train_upscaler", "train_bachgan")]
    assert argument("train_upscaler") in pipeline_arguments(on)
    assert argument("train_upscaler") not in pipeline_arguments(off)
    # `--until` is the last step to run; the step that is not there is refused, saying why
    assert dag_steps(on, "train_upscaler")[-3:] == ["train_layout", "train_image",
                                                    "train_upscaler"]
    assert dag_steps(off, "evaluate")[-1] == "evaluate"
    with pytest.raises(PipelineError, match="pipeline.upscaler is false"):
        dag_steps(off, "train_upscaler")
    with pytest.raises(PipelineError, match="--until 'serve': choose one of ingest, "):
        dag_steps(on, "serve")
    # caching keeps its entry for the step either way: switching it on needs no other edit
    assert "train_upscaler" in off.pipeline.caching
    assert not load_params(experiment="demo").pipeline.upscaler  # `make run`'s time budget


def test_the_family_selects_the_training_steps():
    bachgan = load_params(experiment="toyworld_bachgan", overrides=["pipeline.family=bachgan"])
    assert dag_steps(bachgan) == ["ingest", "preprocess", "train_bachgan", "evaluate", "register",
                                  "promote"]
    arguments = pipeline_arguments(bachgan)
    assert json.loads(arguments[argument("train_bachgan")])["train_bachgan"]["image_size"] == 64
    assert argument("train_layout") not in arguments
    assert json.loads(arguments[argument("register")])["register"]["bachgan_name"] == \
        "scene2img-bachgan"
    with pytest.raises(PipelineError, match="pipeline.family is bachgan: the DAG has no "
                                            "train_image step"):
        dag_steps(bachgan, "train_image")
    with pytest.raises(PipelineError, match="pipeline.family is lostgan"):
        dag_steps(load_params(), "train_bachgan")
    with pytest.raises(ConfigError, match="pipeline.family='biggan': choose one of lostgan, "
                                          "bachgan"):
        load_params(overrides=["pipeline.family=biggan"])


def test_caching_needs_one_entry_per_step():
    params = load_params()
    del params.pipeline.caching["promote"]
    params.pipeline.caching["serve"] = True
    with pytest.raises(ConfigError, match=r"missing: \['promote'\], unknown: \['serve'\]"):
        pipeline_arguments(params)


# step -> the code that reads its params: (module, function) in `scene2img.pipeline.steps`, or
# whole modules (None): the stage, and for training the TrainJob and the training stages' helper
_STEP = "scene2img.pipeline.steps"
_TRAIN = [(_STEP, "train"), ("scene2img.pipeline.trainjob", None),
          ("scene2img.stages._training", None)]
STEP_CODE = {
    "ingest": [(_STEP, "ingest")],
    "preprocess": [(_STEP, "preprocess")],
    "train_layout": [*_TRAIN, ("scene2img.stages.train_layout", None)],
    "train_image": [*_TRAIN, ("scene2img.stages.train_image", None)],
    "train_upscaler": [(_STEP, "train_upscaler"), ("scene2img.stages._training", None),
                       ("scene2img.stages.train_upscaler", None)],
    "train_bachgan": [*_TRAIN, ("scene2img.stages.train_bachgan", None)],
    "evaluate": [(_STEP, "evaluate"), ("scene2img.stages.evaluate", None)],
    "register": [(_STEP, "register"), (_STEP, "register_bachgan"),
                 ("scene2img.stages.register", None)],
    "promote": [(_STEP, "promote"), ("scene2img.stages.promote", None)],
}


def _chain(node: ast.AST) -> tuple[str | None, list[str]]:
    """`a.b.c` -> ("a", ["b", "c"]); (None, []) if it is not a name's attributes."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.insert(0, node.attr)
        node = node.value
    return (node.id, attrs) if isinstance(node, ast.Name) else (None, [])


def _keys(attrs: list[str]) -> tuple[str, ...]:
    """The params key an attribute chain on `Params` reads (methods and dict items dropped)."""
    key, cls = [], Params
    for attr in attrs:
        if not dataclasses.is_dataclass(cls) or attr not in {f.name for f in dataclasses.fields(cls)}:
            break
        key.append(attr)
        cls = typing.get_type_hints(cls)[attr]
    return tuple(key)


def params_read(module: str, function: str | None = None) -> set[tuple[str, ...]]:
    """The params keys read in `module` (or one of its functions): through arguments typed
    `Params`, the result of `typed(...)`, and names bound to their sections."""
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    reads: set[tuple[str, ...]] = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef) or function not in (None, fn.name):
            continue
        args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        bound = {a.arg: [] for a in args if isinstance(a.annotation, ast.Name)
                 and a.annotation.id == "Params"}
        for _ in range(3):  # aliases of aliases
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    value, name = node.value, node.targets[0].id
                    if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "typed":
                        bound[name] = []
                    root, attrs = _chain(value)
                    if root == "self" and attrs[:1] == ["params"]:  # a class keeping its Params
                        root, attrs = "self.params", attrs[1:]
                        bound.setdefault(root, [])
                    if root in bound and (attrs or root == "self.params"):
                        bound[name] = [*bound[root], *attrs]
        inner = {id(n.value) for n in ast.walk(fn) if isinstance(n, ast.Attribute)}
        for node in ast.walk(fn):
            if isinstance(node, ast.Attribute) and id(node) not in inner:
                root, attrs = _chain(node)
                if root == "self" and attrs[:1] == ["params"]:
                    root, attrs = "self.params", attrs[1:]
                    bound.setdefault(root, [])
                if root in bound and (key := _keys([*bound[root], *attrs])):
                    reads.add(key)
    return reads


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return a[: len(b)] == b or b[: len(a)] == a


def test_each_step_is_given_every_key_its_code_reads():
    """A step that reads a key it is not given fails on the cluster (ParamNotGivenError); this
    finds it without running the step: every `params.<key>` read in its code is in its
    STEP_PARAMS, and every key there is read somewhere."""
    assert set(STEP_CODE) == set(STEPS)
    for step, code in STEP_CODE.items():
        reads = set().union(*(params_read(module, fn) for module, fn in code))
        given = [tuple(key.split(".")) for key in STEP_PARAMS[step]]
        missing = sorted(".".join(r) for r in reads if not any(_overlaps(r, g) for g in given))
        assert not missing, f"STEP_PARAMS[{step!r}] lacks keys its code reads: {missing}"
        unread = sorted(".".join(g) for g in given if not any(_overlaps(r, g) for r in reads))
        assert not unread, f"STEP_PARAMS[{step!r}] lists keys no code of it reads: {unread}"


def test_the_read_finder_sees_sections_aliases_and_typed_params():
    assert ("serve",) in params_read("scene2img.stages.register")  # limits=params.serve
    assert ("train_image", "g", "gt_masks") in params_read("scene2img.stages.train_image")  # tp
    assert ("pipeline", "gate") in params_read(_STEP, "evaluate")  # p = typed(...)
    assert ("pipeline", "trainjob", "namespace") in params_read("scene2img.pipeline.trainjob")
    assert ("tracking",) in params_read("scene2img.stages._training")  # params = self.params
    assert not any(k[0] == "to_dict" for k in params_read("scene2img.stages.evaluate"))
