from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from scene2img.config import ServeParams
from scene2img.data.vocab import Vocab
from scene2img.errors import SceneGraphError
from scene2img.serving.schema import check_seed, default_limits, parse_scene_graph, read_json_file
from tests.unit.serving.strategies import INPUTS

VOCAB = Vocab(["__image__", "car", "tree", "sky", "person"],
              ["__in_image__", "left of", "right of", "above"], ["red", "green", "small"])

GOOD = {
    "version": 1,
    "objects": [{"name": "car", "attributes": ["red"]}, {"name": "Tree ", "box": [0.5, 0.2, 0.3, 0.6]},
                "sky"],
    "relationships": [{"subject": 0, "predicate": "left of", "object": 1},
                      {"subject": 2, "predicate": "above", "object": 0}],
}


def test_a_good_graph_round_trips() -> None:
    g = parse_scene_graph(json.dumps(GOOD), VOCAB, max_objects=8)
    assert [o.name for o in g.objects] == ["car", "tree", "sky"]
    assert g.objects[0].attributes == ["red"] and g.objects[2].attributes is None
    assert g.objects[1].box == (0.5, 0.2, 0.3, 0.6)
    assert g.relationships == [(0, "left of", 1), (2, "above", 0)]
    assert parse_scene_graph(g.to_json(), VOCAB, 8) == g


def bad(**changes):
    data = json.loads(json.dumps(GOOD))
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "malformed JSON"),
        ([1, 2], "expected a JSON object"),
        (bad(objects=[]), "'objects' must be a non-empty list"),
        (bad(objects=[{"name": "cra"}]), r"objects\[0\]: unknown class 'cra'; closest: 'car'"),
        (bad(objects=[{"name": "car", "attributes": ["rde"]}]),
         r"unknown attribute 'rde'; closest: 'red'"),
        (bad(objects=[{"name": "car", "box": [0.5, 0.5, 0, 0.2]}]), "outside the unit square or empty"),
        (bad(relationships=[{"subject": 0, "predicate": "left of", "object": 7}]),
         r"relationships\[0\].object: 7 is not an object position \(0..2\)"),
        (bad(relationships=[{"subject": 0, "predicate": "left off", "object": 1}]),
         r"unknown predicate 'left off'; closest: 'left of'"),
        (bad(relationships=[{"subject": 0, "predicate": "__in_image__", "object": 1}]),
         "unknown predicate"),
        (bad(objects=["car"] * 8), "8 objects, the model takes at most 7"),
        (bad(version=2), "version 2 not supported"),
        (bad(colour="red"), r"unknown field\(s\) \['colour'\]"),
        (bad(objects=[{"name": "__image__"}]), "unknown class"),
    ],
)
def test_bad_graphs_get_clear_errors(data, message) -> None:
    with pytest.raises(SceneGraphError, match=message):
        parse_scene_graph(data if isinstance(data, str) else json.dumps(data), VOCAB, 8,
                          where="scene.json")


def test_huge_payload_is_refused_before_parsing() -> None:
    limit = default_limits().max_graph_bytes  # params.yaml: serve
    with pytest.raises(SceneGraphError, match=f"more than the {limit} bytes accepted"):
        parse_scene_graph(" " * (limit + 1), VOCAB, 8)


# --------------------------------------------------------------------------------------------
# issue 18: every form of input is measured and type-checked before any work

LIMITS = ServeParams(max_graph_bytes=8192, max_state_bytes=65536, max_depth=6,
                     max_relationships=8, max_attributes=3, max_name_chars=20, max_records=4,
                     request_timeout_s=5.0)


def parse(data, **kw):
    return parse_scene_graph(data, VOCAB, 8, where="scene.json", limits=LIMITS, **kw)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bad(objects=[{"name": "car", "box": [True, 0, 1, 1]}]), r"box: expected \[x, y, w, h\]"),
        ('{"objects": [{"name": "car", "box": [NaN, 0, 1, 1]}]}', "outside the unit square"),
        ('{"objects": [{"name": "car", "box": [0, 0, Infinity, 1]}]}', "outside the unit square"),
        (bad(version=True), "version True not supported"),
        (bad(objects=[{"name": 5}]), r"objects\[0\].name: expected a class name, got 5"),
        (bad(objects=[{"name": "c" * 21}]), "a class name of 21 characters; names have at most 20"),
        (bad(objects=[{"name": "car", "attributes": ["red"] * 4}]), "4 attributes, at most 3"),
        (bad(objects=[{"name": "car", "attributes": [["red"]]}]),
         r"attributes\[0\]: expected a attribute name"),
        (bad(relationships=[{"subject": 0, "predicate": "above", "object": 1}] * 9),
         "9 relationships, at most 8"),
        (bad(relationships=[{"subject": 0, "predicate": 7, "object": 1}]),
         r"relationships\[0\].predicate: expected a predicate name"),
        (bad(objects=[{"name": "car", "attributes": [[[[["red"]]]]]}]),
         r"objects\[0\].attributes\[0\]\[0\]\[0\] nests deeper than the 6 levels accepted"),
        ('{"objects": ' + "[" * 2000 + "]" * 2000 + "}", "JSON nested too deeply"),
        ('{"objects": [{"name": "car", "box": [' + "9" * 5000 + ", 0, 1, 1]}]}",
         "not acceptable JSON"),
        (b'{"objects": ["caf\xe9"]}', r"not UTF-8 text \(byte 0xe9 at position 17\)"),
        (bad(objects=[{"name": "car"}] * 3 + [{"name": "x" * 9000}]),
         "more than the 8192 bytes accepted"),
    ],
)
def test_hostile_graphs_get_one_line_errors(data, message) -> None:
    with pytest.raises(SceneGraphError, match=message) as err:
        parse(data if isinstance(data, (str, bytes)) else json.dumps(data))
    assert "\n" not in str(err.value) and len(str(err.value)) < 300
    if not isinstance(data, (str, bytes)):  # the same graph as an object: the same verdict
        with pytest.raises(SceneGraphError, match=message):
            parse(data)


def test_an_object_is_measured_like_its_text_and_cheaply() -> None:
    # issue 18: the size limit applied only to strings; a 4.8 MB object was parsed in full
    huge = {"objects": ["car"], "relationships": [
        {"subject": 0, "predicate": "left of", "object": 0}] * 90_000}
    assert len(json.dumps(huge)) > 4_000_000
    with pytest.raises(SceneGraphError, match="more than the 8192 bytes accepted"):
        parse(huge)
    with pytest.raises(SceneGraphError, match="bytes, more than the 8192 bytes accepted"):
        parse(json.dumps(huge))
    deep: list = []
    for _ in range(100_000):  # deeper than any recursive walk could go
        deep = [deep]
    with pytest.raises(SceneGraphError, match=r"objects(\[0\]){5} nests deeper than the 6"):
        parse({"objects": deep})


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (7, 7), (2**63 - 1, 2**63 - 1), (None, None), (float("nan"), None), (5.0, 5),
     (np.int64(3), 3), (np.float64(4.0), 4)],
)
def test_seeds_that_are_accepted(value, expected) -> None:
    assert check_seed(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, "-1 is out of range"), (2**63, "out of range"), (2**64, "out of range"),
     (1.5, "1.5 is not an integer"), (True, "True is not an integer"), ("7", "'7' is not an"),
     (2.0**60, "may have been rounded"), ([1], r"\[1\] is not an integer")],
)
def test_seeds_that_are_refused(value, message) -> None:
    with pytest.raises(SceneGraphError, match=message):
        check_seed(value, "seed[0]")


def test_json_files_that_are_not_scene_graph_files(tmp_path: Path) -> None:
    cases = {"folder": (tmp_path, "a folder, not a scene graph file"),
             "missing": (tmp_path / "nope.json", "file not found"),
             "latin-1": (tmp_path / "l1.json", "not UTF-8 text"),
             "large": (tmp_path / "big.json", "more than the 8192 bytes"),
             "truncated": (tmp_path / "cut.json", "malformed JSON at line 1 column")}
    (tmp_path / "l1.json").write_bytes('{"objects": ["café"]}'.encode("latin-1"))
    (tmp_path / "big.json").write_text(json.dumps(GOOD) + " " * 9000)
    (tmp_path / "cut.json").write_text(json.dumps(GOOD)[:50])
    for what, (path, message) in cases.items():
        with pytest.raises(SceneGraphError, match=message):
            read_json_file(path, LIMITS.max_graph_bytes)
        assert what  # each case named for the reader of a failure
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    assert parse(read_json_file(bom, LIMITS.max_graph_bytes)).objects[0].name == "car"


# --------------------------------------------------------------------------------------------
# fuzz: whatever arrives, the parser returns a valid graph or raises SceneGraphError

@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=INPUTS)
def test_fuzz_the_parser_accepts_valid_graphs_and_refuses_the_rest(data) -> None:
    try:
        graph = parse(data)
    except SceneGraphError as exc:
        assert str(exc).startswith("scene.json") and "\n" not in str(exc)
        return
    # accepted: then it is a graph the model can take, within every limit
    assert 1 <= len(graph.objects) <= 7 and len(graph.relationships) <= LIMITS.max_relationships
    for o in graph.objects:
        assert o.name in VOCAB.object_name_to_idx and o.name != "__image__"
        assert o.attributes is None or set(o.attributes) <= set(VOCAB.attribute_name_to_idx)
        assert o.box is None or (all(0 <= v <= 1 for v in o.box) and min(o.box[2:]) > 0)
    for s, p, o in graph.relationships:
        assert 0 <= s < len(graph.objects) and 0 <= o < len(graph.objects)
        assert p in VOCAB.pred_name_to_idx and p != "__in_image__"
    assert parse(graph.to_json()) == graph  # and it round-trips
