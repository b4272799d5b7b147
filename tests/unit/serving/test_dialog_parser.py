"""The dialog's reading of instructions, pinned by a table: instruction -> edit operations on a
fixed scene (no model needed), failures with the word or reference they name, corrections."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scene2img.data.vocab import Vocab
from scene2img.errors import SceneGraphError
from scene2img.serving.dialog.grammar import Command, parse_instruction
from scene2img.serving.dialog.planner import Previous, Scene, Thing, plan, plan_correction

# the toy world's Visual Genome vocabulary (as `scene2img data toyworld --format vg` makes it)
VOCAB = Vocab(
    ["__image__", "sky", "window", "wheel", "grass", "ball", "mountain", "boat", "car", "bench",
     "tree", "sand", "person", "water", "road", "door", "bus", "trunk", "house", "plane", "roof",
     "head"],
    ["__in_image__", "on", "right of", "left of", "above", "has"],
    ["large", "blue", "small", "green", "orange", "white", "red", "yellow", "gray", "black",
     "tan"])


def scene() -> Scene:
    """road #1, bus #2 (yellow), car #3 (red) left of the bus, car #4 (white), tree #5, sky #6
    above the road; the bus and then car #4 were spoken of last."""
    return Scene(
        [Thing(1, "road", [], (0.0, 0.6, 1.0, 0.4)),
         Thing(2, "bus", ["yellow"], (0.5, 0.4, 0.3, 0.2)),
         Thing(3, "car", ["red"], (0.1, 0.5, 0.2, 0.1)),
         Thing(4, "car", ["white"], (0.6, 0.55, 0.2, 0.1)),
         Thing(5, "tree", [], (0.8, 0.2, 0.15, 0.4)),
         Thing(6, "sky", [], (0.0, 0.0, 1.0, 0.5))],
        [(2, "left of", 1), (5, "above", 0)], focus=[2, 4], next_id=7)


def rounded(ops: list[dict]) -> list[dict]:
    def r(v):
        if isinstance(v, float):
            return round(v, 4)
        if isinstance(v, list):
            return [r(x) for x in v]
        if isinstance(v, dict):
            return {k: r(x) for k, x in v.items()}
        return v
    return r(ops)


def ops_of(instruction: str, on: Scene | None = None) -> list[dict]:
    return rounded(plan(parse_instruction(instruction, VOCAB), on or scene(), VOCAB).ops)


def add(name, attrs=None, rel=None):
    op = {"op": "add", "object": {"name": name, **({"attributes": attrs} if attrs else {})}}
    if rel:
        op["relationships"] = [{"predicate": rel[0], "object": rel[1]}]
    return op


def box(i, b):
    return {"op": "set_box", "index": i, "box": b}


TABLE = [
    # kind, instruction, operations
    ("add", "add a red car left of the bus", [add("car", ["red"], ("left of", 1))]),
    ("add", "Put a ball on the road.", [add("ball", None, ("on", 0))]),
    ("add", "add a tree", [add("tree")]),
    ("add", "please add another small blue car right of the red car",
     [add("car", ["small", "blue"], ("right of", 2))]),
    ("add", "add a person on it", [add("person", None, ("on", 3))]),
    ("add", "add a man to the right of car #3", [add("person", None, ("right of", 2))]),
    ("remove", "remove the bus", [{"op": "remove", "index": 1}]),
    ("remove", "remove it", [{"op": "remove", "index": 3}]),
    ("remove", "delete the red car", [{"op": "remove", "index": 2}]),
    ("remove", "get rid of the left car", [{"op": "remove", "index": 2}]),
    ("remove", "remove the car on the right", [{"op": "remove", "index": 3}]),
    ("remove", "remove #5", [{"op": "remove", "index": 4}]),
    ("remove", "remove the car", [{"op": "remove", "index": 3}]),  # the car last spoken of
    ("remove", "take away the other car", [{"op": "remove", "index": 2}]),
    ("attributes", "make the bus blue", [{"op": "set_attributes", "index": 1,
                                          "attributes": ["blue"]}]),
    ("attributes", "paint the red car green", [{"op": "set_attributes", "index": 2,
                                                "attributes": ["green"]}]),
    ("attributes", "make it large", [{"op": "set_attributes", "index": 3,
                                      "attributes": ["white", "large"]}]),
    ("attributes", "blue", [{"op": "set_attributes", "index": 3, "attributes": ["blue"]}]),
    ("attributes", "change the tree to grey", [{"op": "set_attributes", "index": 4,
                                                "attributes": ["gray"]}]),
    ("attributes", "the tree should be grey", [{"op": "set_attributes", "index": 4,
                                                 "attributes": ["gray"]}]),
    ("attributes", "change the colour of the bus to red",
     [{"op": "set_attributes", "index": 1, "attributes": ["red"]}]),
    ("attributes", "turn the left car small and black",
     [{"op": "set_attributes", "index": 2, "attributes": ["small", "black"]}]),
    ("move", "move the bus to the left", [box(1, [0.3, 0.4, 0.3, 0.2])]),
    ("move", "move it up", [box(3, [0.6, 0.35, 0.2, 0.1])]),
    ("move", "move the tree right", [box(4, [0.85, 0.2, 0.15, 0.4])]),  # stops at the edge
    ("move", "shift the red car down a bit", [box(2, [0.1, 0.7, 0.2, 0.1])]),
    ("move", "put the red car on the road",
     [{"op": "remove_relationship", "subject": 2, "object": 1},
      {"op": "add_relationship", "subject": 2, "predicate": "on", "object": 0},
      box(2, [0.4, 0.7, 0.2, 0.1])]),
    ("move", "move the white car left of the bus",
     [{"op": "add_relationship", "subject": 3, "predicate": "left of", "object": 1},
      box(3, [0.28, 0.5, 0.2, 0.1])]),
    ("move", "move the tree above the bus",
     [{"op": "add_relationship", "subject": 4, "predicate": "above", "object": 1},
      box(4, [0.575, 0.0, 0.15, 0.4])]),
    ("resize", "make the bus bigger", [box(1, [0.4625, 0.375, 0.375, 0.25])]),
    ("resize", "smaller", [box(3, [0.62, 0.56, 0.16, 0.08])]),
    ("resize", "it should be bigger", [box(3, [0.575, 0.5375, 0.25, 0.125])]),
    ("resize", "make the red car a little smaller", [box(2, [0.12, 0.51, 0.16, 0.08])]),
    ("resize", "shrink the tree", [box(4, [0.815, 0.24, 0.12, 0.32])]),
    ("resize", "enlarge the red car", [box(2, [0.075, 0.4875, 0.25, 0.125])]),
    ("replace", "turn the bus into a car", [{"op": "replace", "index": 1, "name": "car"}]),
    ("replace", "replace the tree with a house", [{"op": "replace", "index": 4,
                                                   "name": "house"}]),
    ("replace", "swap the tree for a house", [{"op": "replace", "index": 4,
                                               "name": "house"}]),
    ("replace", "make the red car a boat", [{"op": "replace", "index": 2, "name": "boat"}]),
    ("background", "make it a beach", [{"op": "replace", "index": 0, "name": "sand"}]),
    ("background", "change the background to grass",
     [{"op": "replace", "index": 0, "name": "grass"}]),
    ("start", "start over with a red car on a street",
     [{"op": "start", "graph": {"version": 1, "objects": [
         {"name": "car", "attributes": ["red"]}, {"name": "road"}],
         "relationships": [{"subject": 0, "predicate": "on", "object": 1}]}}]),
]


@pytest.mark.parametrize(("kind", "instruction", "expected"), TABLE,
                         ids=[f"{k}:{i}" for k, i, _ in TABLE])
def test_instruction_table(kind: str, instruction: str, expected: list[dict]) -> None:
    command = parse_instruction(instruction, VOCAB)
    result = plan(command, scene(), VOCAB)
    assert result.kind == kind
    assert rounded(result.ops) == rounded(expected)


def test_a_description_starts_an_empty_scene_and_ids_follow() -> None:
    result = plan(parse_instruction("a street with a bus", VOCAB), Scene(), VOCAB)
    assert result.kind == "start" and result.ids == [1, 2] and result.next_id == 3
    assert [o["name"] for o in result.ops[0]["graph"]["objects"]] == ["road", "bus"]
    added = plan(parse_instruction("add a red car left of the bus", VOCAB), scene(), VOCAB)
    assert added.message == "added car #7 (red) left of bus #2"
    assert added.ids == [1, 2, 3, 4, 5, 6, 7] and added.focus[-2:] == [2, 7]
    alone = plan(parse_instruction("add a red car", VOCAB), Scene(), VOCAB)  # starts a scene
    assert alone.kind == "start" and alone.ops[0]["graph"]["objects"] == [
        {"name": "car", "attributes": ["red"]}]
    with pytest.raises(SceneGraphError, match="the scene is empty"):
        plan(parse_instruction("add a car left of the bus", VOCAB), Scene(), VOCAB)
    removed = plan(parse_instruction("remove the bus", VOCAB), scene(), VOCAB)
    assert removed.ids == [1, 3, 4, 5, 6] and 2 not in removed.focus


@pytest.mark.parametrize("instruction", ["undo", "undo that", "go back", "redo",
                                         "undo the last change"])
def test_undo_and_redo_are_read(instruction: str) -> None:
    kind = parse_instruction(instruction, VOCAB).kind
    assert kind == ("redo" if instruction == "redo" else "undo")


FAILURES = [
    ("add a purple car", r"no attribute 'purple'; its attributes are: large, blue"),
    ("add a truck", r"unknown word 'truck'; did you mean 'trunk'\? objects: sky, window"),
    ("add a car behind the bus", r"no relation 'behind'; its relations are: on, right of"),
    ("put the car in front of the tree", r"no relation 'in front of'"),
    ("remove the person", r"'the person': there is no person in the scene; it has road #1, "
                          r"bus #2 \(yellow\)"),
    ("remove the blue car", r"no blue car; there are car #3 \(red\), car #4 \(white\)"),
    ("remove #9", r"'#9': no such object; the scene has road #1"),
    ("make the bus yellow", r"bus #2 \(yellow\) is already yellow"),
    ("make the bleu car red", r"unknown word 'bleu'; did you mean 'blue'"),
    ("move the sky up", r"sky #6 is already at the top edge"),
    ("turn the bus into a bus", r"already a bus"),
    ("change the background to car", r"'car' is not a ground this dialog knows; grounds of "
                                     r"this model: grass, sand, water, road"),
    ("", r"empty instruction"),
    ("fly the car", r"unknown word 'fly'"),
    ("make the car", r"expected an attribute .* \(at the end\)"),
    ("move the bus", r"expected a direction \(left, right, up, down\) or a relation"),
    ("move the bus left of it please now", None),  # fine: fillers
    ("move the bus left of itself", r"unknown word 'itself'"),
    ("remove the other bus", r"there is no other bus; there is bus #2"),
    ("replace the bus", r"expected 'with'"),
    ("a red car", r"there is a scene already; say 'add \.\.\.' to add to it, or 'start over "
                  r"with a red car'"),
    ("the car", r"what should happen to the car\? e.g. 'make the car blue'"),
    ("add a car left of", r"expected an object"),
]


@pytest.mark.parametrize(("instruction", "message"), FAILURES, ids=[i for i, _ in FAILURES])
def test_failures_name_the_word_or_reference(instruction: str, message: str | None) -> None:
    if message is None:
        assert plan(parse_instruction(instruction, VOCAB), scene(), VOCAB).ops
        return
    with pytest.raises(SceneGraphError, match=message):
        plan(parse_instruction(instruction, VOCAB), scene(), VOCAB)


def _previous(instruction: str) -> tuple[Previous, Scene]:
    before = scene()
    done = plan(parse_instruction(instruction, VOCAB), before, VOCAB)
    return Previous(done.command, done.target, before), before


CORRECTIONS = [
    # previous turn, correction, operations, whether they replace the previous turn
    ("make the car blue", "no, green",
     [{"op": "set_attributes", "index": 3, "attributes": ["green"]}], True),
    ("make the car blue", "the other car",
     [{"op": "set_attributes", "index": 2, "attributes": ["blue"]}], True),
    ("make the car blue", "not that one",
     [{"op": "set_attributes", "index": 2, "attributes": ["blue"]}], True),
    ("make the car blue", "no, the other one",
     [{"op": "set_attributes", "index": 2, "attributes": ["blue"]}], True),
    ("remove the car", "no, the left one", [{"op": "remove", "index": 2}], True),
    ("remove the car", "no, the bus", [{"op": "remove", "index": 1}], True),
    ("make the car blue", "no, bigger", [box(3, [0.575, 0.5375, 0.25, 0.125])], True),
    ("add a red car left of the bus", "no, blue",
     [add("car", ["blue"], ("left of", 1))], True),
    ("move the bus to the left", "no, the tree", [box(4, [0.6, 0.2, 0.15, 0.4])], True),
    ("make the bus blue", "no, make it small",
     [{"op": "set_attributes", "index": 1, "attributes": ["yellow", "small"]}], True),
]


@pytest.mark.parametrize(("before", "correction", "expected", "replaces"), CORRECTIONS,
                         ids=[f"{b} / {c}" for b, c, _, _ in CORRECTIONS])
def test_corrections_of_the_previous_turn(before: str, correction: str, expected: list[dict],
                                          replaces: bool) -> None:
    previous, current = _previous(before)
    command = parse_instruction(correction, VOCAB)
    assert command.kind == "correct"
    result, replaced = plan_correction(command, previous, current, VOCAB)
    assert rounded(result.ops) == rounded(expected)
    assert replaced is replaces


def test_a_correction_after_an_add_refines_the_new_object() -> None:
    previous, _ = _previous("add a red car")
    now = scene()
    now.things.append(Thing(7, "car", ["red"], (0.4, 0.4, 0.2, 0.2)))
    result, replaced = plan_correction(parse_instruction("no, bigger", VOCAB), previous, now,
                                       VOCAB)
    assert not replaced and result.ops == [box(6, [0.375, 0.375, 0.25, 0.25])]


@pytest.mark.parametrize(("before", "correction", "message"), [
    (None, "no, blue", "nothing to correct"),
    ("remove the bus", "no, blue", r"the last turn \('remove the bus'\) set no attributes"),
    ("make the bus blue", "the other bus", "there is no other bus"),
    ("add a red car", "the other car", "acted on no object"),
])
def test_corrections_that_cannot_apply(before: str | None, correction: str, message: str) -> None:
    previous = _previous(before)[0] if before else None
    with pytest.raises(SceneGraphError, match=message):
        plan_correction(parse_instruction(correction, VOCAB), previous, scene(), VOCAB)


def test_commands_survive_the_session_record() -> None:
    for text in ("add a red car left of the bus", "no, the left one", "no, bigger",
                 "move the car #3 left of the tree"):
        command = parse_instruction(text, VOCAB)
        assert Command.from_json(command.to_json()) == command
    assert replace(parse_instruction("blue", VOCAB), text="x").text == "x"
