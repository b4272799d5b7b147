"""Issue 18 against a real `mlflow models serve` (loopback, one worker) of the tiny toy model:
hostile requests get a 400 naming the field and cost the server little, and good requests keep
their latency while a client sends such requests. The figures: benchmarks/serve_load.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scene2img.serving.loadtest import (
    ModelServer,
    latency_under_refused_load,
    post,
    refusal_costs,
)
from scene2img.serving.pyfunc import save_pyfunc

# Good requests' median latency while a client sends the requests below at RATE per second, over
# their idle median (phases interleaved, so machine noise hits both). Measured 1.0-1.6x on a
# loaded 2-core machine (load 9); the code before issue 18 answered the 4.8 MB object with 200
# after 25-28 s of work there, and `seed: 1.5` with 200.
FACTOR = 3.0
RATE = 5.0
# Server CPU seconds to refuse one request (the 4.8 MB object: MLflow parsing the body twice is
# most of it), and in the second after: a refused request leaves nothing computing.
REFUSAL_CPU_S = 2.0
AFTER_CPU_S = 0.3

GRAPH = {"objects": [{"name": "car", "attributes": ["red"]}, {"name": "tree"}, {"name": "sky"}],
         "relationships": [{"subject": 0, "predicate": "left of", "object": 1}]}
REL = {"subject": 0, "predicate": "left of", "object": 0}


def body(*records: dict) -> bytes:
    return json.dumps({"dataframe_records": list(records)}).encode()


HUGE = {"objects": ["car"], "relationships": [REL] * 90_000}  # the 4.8 MB JSON object
OVER = {"objects": ["car"], "relationships": [REL] * 1_300}  # 70 KB
BAD = {
    "seed 1.5": (body({"scene_graph": GRAPH, "seed": 1.5}), "seed[0]: 1.5 is not an integer"),
    "boolean box": (body({"scene_graph": {"objects": [{"name": "car", "box": [True, 0, 1, 1]}]}}),
                    "objects[0].box: expected [x, y, w, h]"),
    "deep": (body({"scene_graph": {"objects": [{"name": "car", "attributes": [[[[["red"]]]]]}]}}),
             "scene_graph[0]: objects[0].attributes[0][0][0] nests deeper"),
    "deep text": (body({"scene_graph": '{"objects": ' + "[" * 5000 + "]" * 5000 + "}"}),
                  "scene_graph[0]: JSON nested too deeply"),
    "17 records": (body(*[{"scene_graph": GRAPH}] * 17), "at most 16"),
    "14 x 70 KB": (body(*[{"scene_graph": OVER}] * 14), "scene_graph[0]: 1300 relationships"),
    "4.8 MB object": (body({"scene_graph": HUGE}), "scene_graph[0]: more than the 65536 bytes"),
}


@pytest.fixture(scope="module")
def server(toy_model: Path, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    with ModelServer(str(save_pyfunc(toy_model, root / "model")), root / "serve.log") as s:
        yield s


def test_hostile_requests_are_refused_cheaply_naming_the_field(server) -> None:
    url = f"{server.url}/invocations"
    for what, (request, message) in BAD.items():
        status, answer, _ = post(url, request)
        assert status == 400 and message in answer.get("message", ""), (what, status, answer)
    costs = refusal_costs(server, {what: request for what, (request, _) in BAD.items()}, 2)
    print(json.dumps(costs))
    for what, cost in costs.items():
        assert cost["statuses"] == {400: 2}, (what, cost)
        assert cost["server_cpu_s"] <= REFUSAL_CPU_S, (what, cost)
        assert cost["server_cpu_s_in_next_second"] <= AFTER_CPU_S, (what, cost)
    # `seed: null`, legal by the signature, gets the default seed
    status, answer, _ = post(url, body({"scene_graph": GRAPH, "seed": None}))
    assert status == 200 and answer["predictions"][0]["seed"] == 0
    # nested past Python's JSON parser in the body itself: MLflow's parser fails before the
    # model is called (its own answer, HTTP 500); the server keeps serving
    status, _, _ = post(url, b'{"dataframe_records": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert status in (400, 500)
    assert post(url, body({"scene_graph": GRAPH}))[0] == 200


def test_good_latency_holds_while_refused_requests_arrive(server) -> None:
    result = latency_under_refused_load(
        f"{server.url}/invocations", body({"scene_graph": GRAPH, "seed": 1}),
        [request for request, _ in BAD.values()], requests=8, attackers=1, rounds=3,
        rate_per_s=RATE)
    print(json.dumps(result))
    assert result["good_statuses"] == {200: 72}
    assert result["bad_requests"] > 0 and set(result["bad_statuses"]) == {400}
    assert result["loaded_over_idle"] <= FACTOR, result
    assert result["after_over_idle"] <= FACTOR, result  # nothing left computing after refusals


def test_a_dialog_over_http(server) -> None:
    """Issue 15: a dialog turn is stateless over HTTP; a failed turn is a 400, never a 5xx."""
    url = f"{server.url}/invocations"
    status, answer, _ = post(url, body({"instruction": "a road with a bus", "seed": 2}))
    assert status == 200, answer
    state = answer["predictions"][0]["dialog_state"]
    status, answer, _ = post(url, body({"instruction": "add a red car left of the bus",
                                        "dialog_state": state}))
    assert status == 200 and answer["predictions"][0]["message"] == \
        "added car #3 (red) left of bus #2"
    for bad in ({"instruction": "add a purple car", "dialog_state": state},
                {"instruction": "remove it", "dialog_state": state[:100]},
                {"instruction": ["add a car"]}):
        status, answer, _ = post(url, body(bad))
        assert status == 400 and answer.get("message"), (bad, status, answer)
