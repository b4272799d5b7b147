"""What each step receives: only its keys, typed, and an error naming any key it was not given;
the table agrees with dvc.yaml."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from scene2img.config import load_params
from scene2img.errors import ConfigError, ParamNotGivenError
from scene2img.pipeline import PipelineError
from scene2img.pipeline.params import (
    STEP_PARAMS,
    STEPS,
    argument,
    pipeline_arguments,
    step_params,
    typed,
)
from tests.conftest import PROJECT_ROOT


def test_each_step_receives_only_its_keys_and_they_round_trip():
    params = load_params(experiment="toyworld")
    arguments = pipeline_arguments(params)
    assert list(arguments) == [argument(step) for step in STEPS]
    for step in STEPS:
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
        ("preprocess.source=coco-stuff", {"ingest", "preprocess"}),
        ("tracking.uri=http://mlflow:5000", {"train_layout", "train_image", "evaluate",
                                             "register", "promote"}),
        ("pipeline.caching.evaluate=false", set()),  # compiled into the DAG, not an argument
    ]:
        new = pipeline_arguments(load_params(overrides=[override]))
        assert {s for s in STEPS if new[argument(s)] != base[argument(s)]} == changed, override


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


def test_caching_needs_one_entry_per_step():
    params = load_params()
    del params.pipeline.caching["promote"]
    params.pipeline.caching["serve"] = True
    with pytest.raises(ConfigError, match=r"missing: \['promote'\], unknown: \['serve'\]"):
        pipeline_arguments(params)


def test_dvc_stages_depend_on_the_sections_their_steps_read():
    """dvc.yaml lists params per stage by hand; for the stages that are pipeline steps, the
    sections must be those in STEP_PARAMS, less `tracking` and `pipeline` (where a step logs
    and runs, not what it computes: a DVC stage may leave them out)."""
    stages = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
    shared = [step for step in STEPS if step in stages]
    assert shared == ["preprocess", "train_layout", "train_image", "evaluate"]
    for step in shared:
        dvc = {p for p in stages[step]["params"] if isinstance(p, str)}
        kfp = {key.split(".")[0] for key in STEP_PARAMS[step]}
        assert dvc <= kfp, (step, dvc - kfp)
        assert kfp - {"tracking", "pipeline"} <= dvc, (step, kfp - dvc)
