"""Hypothesis strategies for scene-graph inputs, hostile and not: JSON of any shape, graphs
that are valid (for a vocabulary with car, tree, sky, person, red, green, small, left of, above)
and graphs with valid, odd and junk fields mixed, as objects, JSON text and raw bytes."""

from __future__ import annotations

import json

from hypothesis import strategies as st

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats()
    | st.text(max_size=30) | st.sampled_from(["car", "tree", "red", "left of", "above", "Sky "]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["name", "attributes", "box", "subject", "predicate", "object",
                         "version", "objects", "relationships"]) | st.text(max_size=8),
        inner, max_size=5),
    max_leaves=40)
UNIT = st.floats(0, 1)
VALID_OBJECTS = st.fixed_dictionaries(
    {"name": st.sampled_from(["car", "Tree", " sky", "person"])},
    optional={"attributes": st.lists(st.sampled_from(["red", "green", "Small"]), max_size=3),
              "box": st.tuples(UNIT, UNIT, st.floats(0.01, 1), st.floats(0.01, 1)).map(list)})
ODD_OBJECTS = st.fixed_dictionaries(  # each field valid, odd or junk
    {"name": st.sampled_from(["car", "cra", "__image__", "c" * 30]) | JSON_VALUES},
    optional={"attributes": st.lists(st.sampled_from(["red", "blue"]) | JSON_VALUES, max_size=5)
              | JSON_VALUES,
              "box": st.lists(st.floats(-0.5, 1.5) | st.booleans() | st.integers(-1, 2),
                              min_size=3, max_size=5) | JSON_VALUES,
              "colour": JSON_VALUES})
OBJECTS = st.one_of(VALID_OBJECTS, VALID_OBJECTS, VALID_OBJECTS, st.sampled_from(["car", "sky"]),
                    ODD_OBJECTS, JSON_VALUES)
VALID_RELATIONSHIPS = st.fixed_dictionaries(
    {"subject": st.integers(0, 2), "object": st.integers(0, 2),
     "predicate": st.sampled_from(["left of", "Above "])})
ODD_RELATIONSHIPS = st.fixed_dictionaries(
    {"subject": st.integers(-1, 9) | JSON_VALUES, "object": st.integers(-1, 9) | JSON_VALUES,
     "predicate": st.sampled_from(["left of", "__in_image__", "under"]) | JSON_VALUES})
RELATIONSHIPS = st.one_of(VALID_RELATIONSHIPS, VALID_RELATIONSHIPS, ODD_RELATIONSHIPS)
CLEAN_GRAPHS = st.fixed_dictionaries(  # valid but for relationships to missing objects
    {"objects": st.lists(VALID_OBJECTS, min_size=1, max_size=7)},
    optional={"relationships": st.lists(VALID_RELATIONSHIPS, max_size=8), "version": st.just(1)})
ODD_GRAPHS = st.fixed_dictionaries(
    {"objects": st.lists(OBJECTS, min_size=1, max_size=8) | JSON_VALUES},
    optional={"relationships": st.lists(RELATIONSHIPS, max_size=9) | JSON_VALUES,
              "version": st.sampled_from([1, 2, True]) | JSON_VALUES})
GRAPHS = st.one_of(CLEAN_GRAPHS, ODD_GRAPHS)
INPUTS = st.one_of(GRAPHS, GRAPHS, GRAPHS.map(json.dumps), JSON_VALUES, st.text(max_size=200),
                   st.binary(max_size=200))

SEEDS = st.one_of(st.none(), st.integers(0, 2**63 - 1), st.integers(-3, 2**65), st.floats(),
                  st.booleans(), st.text(max_size=3))
RECORDS = st.lists(st.fixed_dictionaries(
    {"scene_graph": st.one_of(CLEAN_GRAPHS, CLEAN_GRAPHS.map(json.dumps), ODD_GRAPHS,
                              JSON_VALUES)},
    optional={"seed": SEEDS}), min_size=1, max_size=3)
# for a model with an x4 upscaler (issue 16): its factor, "as generated", others and junk
UPSCALES = st.one_of(st.just(4), st.sampled_from([None, 1, 4.0, 2, 3, 0, -4]),
                     st.integers(-3, 9), st.floats(), st.booleans(), st.text(max_size=3),
                     JSON_VALUES)
VALID_GRAPHS = st.fixed_dictionaries({"objects": st.lists(VALID_OBJECTS, min_size=1, max_size=4)})
UPSCALE_RECORDS = st.lists(st.fixed_dictionaries(  # valid but for upscale
    {"scene_graph": st.one_of(VALID_GRAPHS, VALID_GRAPHS.map(json.dumps)), "upscale": UPSCALES},
    optional={"seed": st.integers(0, 2**63 - 1)}), min_size=1, max_size=2)


def _request(records: list[dict], form: str) -> dict:
    names = ["scene_graph", "seed"] + (["upscale"] if any("upscale" in r for r in records) else [])
    columns = {k: [r.get(k) for r in records] for k in names}
    rows = [[r.get(k) for k in names] for r in records]
    return {"dataframe_records": {"dataframe_records": records},
            "dataframe_split": {"dataframe_split": {"columns": list(columns), "data": rows}},
            "inputs": {"inputs": columns},
            "instances": {"instances": records}}[form]


# bodies of requests to the served model: each input form MLflow's scoring server takes, and junk
REQUESTS = st.one_of(
    st.builds(_request, RECORDS, st.sampled_from(["dataframe_records", "dataframe_split",
                                                  "inputs", "instances"])),
    st.builds(_request, RECORDS, st.just("dataframe_records")),
    JSON_VALUES)
UPSCALE_REQUESTS = st.builds(_request, UPSCALE_RECORDS, st.sampled_from(
    ["dataframe_records", "dataframe_split", "inputs", "instances"]))
