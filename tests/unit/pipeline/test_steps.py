"""What the components call: the gate, scalar metrics from stage results."""

from __future__ import annotations

from scene2img.pipeline.steps import gate, scalars


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
