"""Dialog sessions with a real (tiny) toy-world model: every kind of turn, undo / redo,
corrections, failures that change nothing, the session folder, exact replay and resume."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from scene2img.errors import SceneGraphError
from scene2img.serving.dialog.folder import open_session, replay, run_turns
from scene2img.serving.dialog.session import Dialog, check_dialog_state, seal
from scene2img.serving.pipeline import SceneToImage
from tests.cli import CLI, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")
SCRIPT = ["a road with a bus", "add a red car left of the bus", "make the car blue",
          "no, yellow", "move it to the left", "move it right", "make the bus bigger", "add a purple car",
          "turn the bus into a boat", "undo", "redo", "remove the car", "make it a beach"]


@pytest.fixture(scope="module")
def model(toy_model: Path) -> SceneToImage:
    return SceneToImage.from_dir(toy_model)


def boxes(dialog: Dialog) -> dict[int, list[float]]:
    frame = dialog.state["frames"][dialog.state["position"]]
    return {i: o["box"] for i, o in zip(frame["ids"], frame["generation"]["objects"],
                                        strict=True)}


def test_every_kind_of_turn(model: SceneToImage) -> None:
    d = Dialog(model, seed=1)
    t = d.turn("a road with a bus")
    assert t.ok and t.kind == "start" and [x.name for x in d.scene.things] == ["road", "bus"]
    t = d.turn("add a red car left of the bus")
    assert t.ok and t.message == "added car #3 (red) left of bus #2"
    before = boxes(d)
    t = d.turn("make the car blue")
    assert t.ok and d.scene.things[2].attributes == ["blue"] and boxes(d) == before
    t = d.turn("no, yellow")  # replaces the previous turn
    assert t.ok and d.scene.things[2].attributes == ["yellow"]
    assert len(d.state["frames"]) == 3 and t.message.startswith("instead of 'make the car blue'")
    x, _, w, _ = boxes(d)[3]
    if x > 1 - x - w:  # the tiny model's boxes are large: move where there is room
        t = d.turn("move it to the left")
        assert t.ok and boxes(d)[3][0] < x
    else:
        t = d.turn("move it to the right")
        assert t.ok and boxes(d)[3][0] > x
    assert boxes(d)[2] == before[2]
    area = np.prod(boxes(d)[2][2:])
    t = d.turn("make the bus bigger")
    assert t.ok and np.prod(boxes(d)[2][2:]) > area
    t = d.turn("turn the bus into a boat")
    assert t.ok and d.scene.things[1].name == "boat" and boxes(d)[2][:2] != before[2][:2]
    t = d.turn("make it a beach")
    assert t.ok and d.scene.things[0].name == "sand"
    t = d.turn("remove the car")
    assert t.ok and [x.id for x in d.scene.things] == [1, 2]


def test_a_failed_turn_changes_nothing_but_the_log(model: SceneToImage) -> None:
    d = Dialog(model)
    assert not d.turn("make the car blue").ok  # empty scene
    d.turn("a road with a bus")
    shown = d.render().image
    frames = copy.deepcopy(d.state["frames"])
    for bad in ("add a purple car", "remove the person", "flyy the bus", "the other bus",
                "no, blue", "redo"):
        t = d.turn(bad)
        assert not t.ok, bad
        assert d.state["frames"] == frames and np.array_equal(t.generation.image, shown)
    assert "person" in d.state["turns"][-5]["message"]
    assert [t["ok"] for t in d.state["turns"]][-6:] == [False] * 6


def test_undo_redo_show_the_pictures_again(model: SceneToImage) -> None:
    d = Dialog(model)
    first = d.turn("a road with a car").generation.image
    second = d.turn("make the car red").generation.image
    assert not np.array_equal(first, second)
    assert np.array_equal(d.turn("undo").generation.image, first)
    assert not d.turn("undo").ok  # the first picture
    assert np.array_equal(d.turn("redo").generation.image, second)
    d.turn("undo")
    d.turn("add a tree")  # a new edit after an undo drops the redo
    assert not d.turn("redo").ok and len(d.state["frames"]) == 2


def test_replay_is_exact_and_resume_continues(model: SceneToImage, tmp_path: Path) -> None:
    def run(folder: Path, lines: list[str]) -> None:
        list(run_turns(open_session(model, folder, seed=3), lines, folder))

    run(tmp_path / "a", SCRIPT)
    run(tmp_path / "b", SCRIPT)
    run(tmp_path / "c", SCRIPT[:5])
    run(tmp_path / "c", SCRIPT[5:])  # resumed
    pngs = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert len(pngs) == 2 * len(SCRIPT)
    for name in pngs:
        data = (tmp_path / "a" / name).read_bytes()
        assert data == (tmp_path / "b" / name).read_bytes() == (tmp_path / "c" / name).read_bytes()
    assert (tmp_path / "a" / "turns.txt").read_text().splitlines() == SCRIPT
    from PIL import Image

    for k, image in enumerate(replay(model, tmp_path / "c"), start=1):
        assert np.array_equal(image, np.asarray(Image.open(tmp_path / "c" / f"{k:03d}.png")))


def test_bad_session_states_are_refused(model: SceneToImage, tmp_path: Path) -> None:
    d = Dialog(model)
    d.turn("a road with a bus")
    sealed = seal(d.state)
    check_dialog_state(model, sealed)
    changed = copy.deepcopy(sealed)
    changed["frames"][0]["ids"] = [1, 1]
    with pytest.raises(SceneGraphError, match="checksum"):
        check_dialog_state(model, changed)
    del changed["sha256"]
    with pytest.raises(SceneGraphError, match=r"frames\[0\].ids: expected 2 distinct ids"):
        check_dialog_state(model, changed)
    for state, message in ([{"version": 9}, "not a scene2img dialog state"],
                           [{**d.state, "model": "x"}, "another model"],
                           [{**d.state, "position": 5}, "position: 5 is not a frame"],
                           [{**d.state, "frames": "no"}, "frames: expected a list"]):
        with pytest.raises(SceneGraphError, match=message):
            check_dialog_state(model, state)
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "session.json").write_text(json.dumps(changed)[:-20])
    with pytest.raises(SceneGraphError, match="malformed JSON"):
        open_session(model, folder)


def test_cli_dialog(toy_model: Path, tmp_path: Path) -> None:
    script = tmp_path / "turns.txt"
    script.write_text("# a comment\na road with a bus\n\nadd a red car left of the bus\n"
                      "make it bigger\n")

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return run_cli("dialog", "--model", str(toy_model), *args, stdin=stdin)

    out = subprocess.run([CLI, "dialog", "--model", str(toy_model), "--script", str(script),
                          "--session", str(tmp_path / "s")], capture_output=True, text=True,
                         timeout=300)  # the installed command once; in the test process after
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].startswith("turn 2: added car #3 (red) left of bus #2 -> ")
    assert (tmp_path / "s" / "003_layout.png").stat().st_size > 0
    out = run("--session", str(tmp_path / "s"), stdin="remove the bus\nquit\nadd a tree\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith("resumed ")
    assert out.stdout.splitlines()[1].startswith("turn 4: removed bus #2")
    assert len(out.stdout.splitlines()) == 2  # stopped at quit
    out = run("--script", str(tmp_path / "missing.txt"))
    assert out.returncode == 2 and "--script" in out.stderr and "no such file" in out.stderr
    out = run("--script", str(tmp_path))
    assert out.returncode == 2 and "a folder" in out.stderr
    (tmp_path / "latin1.txt").write_bytes("a caf\u00e9 with a bus".encode("latin-1"))
    out = run("--script", str(tmp_path / "latin1.txt"))
    assert out.returncode == 2 and "not UTF-8 text (byte 0xe9" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    (tmp_path / "file").write_text("x")
    out = run("--session", str(tmp_path / "file"), stdin="a road\n")
    assert out.returncode == 2 and "not a folder" in out.stderr
