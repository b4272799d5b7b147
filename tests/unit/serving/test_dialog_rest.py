"""A dialog turn through the served model: the request carries the session state and the
instruction, the answer the new state, picture, layout and message; bad state or a failed
instruction is HTTP 400 (through MLflow's own request handler, as in test_pyfunc)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import mlflow
import pytest
from PIL import Image

from scene2img.serving.pyfunc import save_pyfunc
from tests.unit.serving.test_pyfunc import post, records

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def served(toy_model: Path, tmp_path_factory):
    return mlflow.pyfunc.load_model(str(save_pyfunc(toy_model, tmp_path_factory.mktemp("p") /
                                                    "model")))


def test_a_stateless_dialog(served) -> None:
    status, answer = post(served, records({"instruction": "a road with a bus", "seed": 5}))
    assert status == 200, answer
    first = answer[0]
    assert first["message"] == "started a new scene: road #1, bus #2" and first["seed"] == 5
    assert Image.open(io.BytesIO(base64.b64decode(first["image_png_base64"]))).size == (64, 64)
    state = first["dialog_state"]
    status, answer = post(served, records({"instruction": "add a red car left of the bus",
                                           "dialog_state": state}))
    assert status == 200, answer
    assert answer[0]["message"] == "added car #3 (red) left of bus #2"
    assert [o["name"] for o in json.loads(answer[0]["layout"])] == ["road", "bus", "car"]
    # the state may also travel as a JSON object, and the same turn gives the same picture
    again = post(served, records({"instruction": "add a red car left of the bus",
                                  "dialog_state": json.loads(state)}))[1]
    assert again[0]["image_png_base64"] == answer[0]["image_png_base64"]
    status, undone = post(served, records({"instruction": "undo",
                                           "dialog_state": answer[0]["dialog_state"]}))
    assert status == 200 and undone[0]["image_png_base64"] == first["image_png_base64"]


def test_bad_turns_and_states_get_400(served) -> None:
    state = post(served, records({"instruction": "a road with a bus"}))[1][0]["dialog_state"]
    tampered = json.loads(state)
    tampered["frames"][0]["ids"] = [7, 8]
    for row, message in [
        ({"instruction": "add a purple car", "dialog_state": state},
         r"instruction\[0\]: .*no attribute 'purple'.*the scene is unchanged"),
        ({"instruction": "remove the person", "dialog_state": state},
         "there is no person in the scene"),
        ({"instruction": "make the car blue"}, "the scene is empty"),
        ({"instruction": "add a car", "dialog_state": state[:-30]},
         r"dialog_state\[0\]: malformed JSON"),
        ({"instruction": "add a car", "dialog_state": json.dumps(tampered)}, "checksum"),
        ({"instruction": "add a car", "dialog_state": {"version": 1}},
         "missing frames, model, position, seed, turns"),
        ({"instruction": "x" * 501}, "at most 500 characters"),
        ({"instruction": "add a car", "scene_graph": "{}"},
         r"unknown column\(s\) \['scene_graph'\]"),
        ({"instruction": "a road", "seed": -1}, r"seed\[0\]: -1 is out of range"),
    ]:
        status, answer = post(served, records(row))
        assert status == 400, (row, answer)
        assert re.search(message, answer), (message, answer)
