"""What the components call: params round trip, the gate, missing stages."""

from __future__ import annotations

import json

import pytest

from scene2img.config import load_params
from scene2img.pipeline import PipelineError
from scene2img.pipeline.steps import gate, missing_stages, scalars, stage_function, typed


def test_params_round_trip_through_the_pipeline_parameter():
    params = load_params(experiment="toyworld")
    assert typed(json.dumps(params.to_dict())) == params
    with pytest.raises(PipelineError, match="not JSON"):
        typed("{nope")


def test_gate():
    assert gate({"fid": 10.0, "kid": 0.1}, {})[0]
    assert gate({"fid": 10.0}, {"fid": 20.0}) == (True, "all 1 metrics finite; fid 10 <= 20")
    assert gate({"fid": 30.0}, {"fid": 20.0}) == (False, "fid 30 > 20")
    assert not gate({"fid": float("nan")}, {})[0]
    assert "missing" in gate({"kid": 1.0}, {"fid": 20.0})[1]
    assert gate({}, {}) == (False, "evaluation produced no metrics")


def test_scalars_flattens_results():
    assert scalars({"a": 1, "b": {"c": 2.5, "d": "x"}, "e": True, "f": float("inf")}) == {
        "a": 1.0, "b.c": 2.5}


def test_existing_and_missing_stages():
    assert stage_function("ingest").__name__ == "ingest"
    assert stage_function("preprocess").__name__ == "preprocess"
    missing = missing_stages()
    assert "ingest" not in missing and "preprocess" not in missing
    for step, why in missing.items():
        assert step in why and "does not exist" in why or "has no function" in why
