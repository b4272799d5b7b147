from __future__ import annotations

import json

import pytest

from scene2img.data.vocab import Vocab
from scene2img.errors import SceneGraphError
from scene2img.serving.schema import MAX_PAYLOAD_BYTES, parse_scene_graph

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
    with pytest.raises(SceneGraphError, match="more than the"):
        parse_scene_graph(" " * (MAX_PAYLOAD_BYTES + 1), VOCAB, 8)
