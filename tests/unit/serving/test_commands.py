"""Issue 18 on `scene2img generate` / `edit`, as a hostile user would: nothing lost, and one
clear line (exit code 2) for every bad input, with nothing written.

The CLI runs in-process (`scene2img.cli.main`), as its console script does: an exception other
than a `scene2img.errors` one would fail the test with its traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scene2img.cli import main
from scene2img.serving.pipeline import state_digest

pytestmark = pytest.mark.usefixtures("one_thread")

A = {"objects": [{"name": "car", "attributes": ["red"]}, {"name": "tree"}],
     "relationships": [{"subject": 0, "predicate": "left of", "object": 1}]}
B = {"objects": [{"name": "bus"}, {"name": "sky"}, {"name": "grass"}]}
OPS = [{"op": "set_attributes", "index": 0, "attributes": ["blue"]}]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *args: str, match: str) -> str:
    """The command exits 2 with one line on stderr that says `match`."""
    code, _, err = run(capsys, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scene2img: error: "), err
    assert match in lines[0], lines[0]
    return lines[0]


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def generated(toy_model: Path, tmp_path_factory) -> Path:
    """Two graphs, A and B, each generated with its state, and edit operations."""
    folder = tmp_path_factory.mktemp("generated")
    (folder / "A.json").write_text(json.dumps(A))
    (folder / "B.json").write_text(json.dumps(B))
    (folder / "ops.json").write_text(json.dumps(OPS))
    for name in ("A", "B"):
        code = main(["generate", "--model", str(toy_model), "--graph", str(folder / f"{name}.json"),
                     "--out", str(folder / f"{name}.png"), "--state-out",
                     str(folder / f"{name}_state.json")])
        assert code == 0
    return folder


@pytest.fixture()
def work(generated: Path, toy_model: Path, tmp_path: Path) -> dict:
    """A fresh copy of `generated` for one test."""
    for name, data in files(generated).items():
        (tmp_path / name).write_bytes(data)
    return {"dir": tmp_path, "model": str(toy_model)}


def edit_args(w: dict, state: str = "A_state.json", *extra: str) -> list[str]:
    d = w["dir"]
    return ["edit", "--model", w["model"], "--state", str(d / state), "--ops", str(d / "ops.json"),
            *extra]


def test_a_state_of_another_graph_is_refused_and_nothing_is_written(work, capsys) -> None:
    # issue 18: this exited 0 and replaced A.json with B's graph
    d = work["dir"]
    before = files(d)
    line = refused(capsys, *edit_args(work, "B_state.json", "--graph", str(d / "A.json"),
                                      "--out", str(d / "edited.png"), "--in-place"),
                   match="A.json is not the scene graph")
    assert "B_state.json was generated from" in line
    assert files(d) == before  # A.json, the states and no edited.png: nothing written


def test_an_edit_writes_over_its_inputs_only_in_place(work, capsys) -> None:
    d = work["dir"]
    graph, state = str(d / "A.json"), str(d / "A_state.json")
    before = files(d)
    code, _, err = run(capsys, *edit_args(work, "A_state.json", "--graph", graph, "--out",
                                          str(d / "e1.png")))
    assert code == 0, err
    assert {k: v for k, v in files(d).items() if k != "e1.png"} == before  # inputs untouched
    for option, path in (("--state-out", state), ("--graph-out", graph),
                         ("--out", str(d / "ops.json"))):
        refused(capsys, *edit_args(work, "A_state.json", "--graph", graph, "--out",
                                   str(d / "e2.png"), option, path) if option != "--out" else
                edit_args(work, "A_state.json", "--out", path), match="is also the")
    refused(capsys, *edit_args(work, "A_state.json", "--out", str(d / "e3.png"), "--layout-out",
                               str(d / "e3.png")), match="name the same file")
    assert not (d / "e2.png").exists() and not (d / "e3.png").exists()

    code, _, err = run(capsys, *edit_args(work, "A_state.json", "--graph", graph, "--in-place",
                                          "--out", str(d / "e4.png")))
    assert code == 0, err
    edited, new_state = json.loads((d / "A.json").read_text()), json.loads((d / "A_state.json")
                                                                            .read_text())
    assert edited["objects"][0]["attributes"] == ["blue"] and new_state["step"] == 1
    # the replaced graph and state still belong together: a second in-place edit works
    code, _, err = run(capsys, *edit_args(work, "A_state.json", "--graph", graph, "--in-place",
                                          "--out", str(d / "e5.png")))
    assert code == 0, err
    assert json.loads((d / "A_state.json").read_text())["step"] == 2


def _tamper(state: dict, reseal: bool, change) -> dict:
    state = json.loads(json.dumps(state))
    change(state)
    if reseal:  # a crafted file: the checksum recomputed, so the content checks must catch it
        state["sha256"] = state_digest(state)
    return state


def _set(path: list, value):
    def change(state):
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize(
    ("name", "reseal", "change", "message"),
    [
        ("hand-edited", False, _set(["graph", "objects", 0, "name"], "bus"), "checksum mismatch"),
        ("NaN latent", True, _set(["z_img", 0], float("nan")), "z_img: latents are finite"),
        ("huge latent", True, _set(["objects", 0, "z", 3], 1e30), "objects[0].z: latents are"),
        ("short latent", True, _set(["objects", 1, "z"], [0.0, 1.0]), "expected a latent of"),
        ("box outside", True, _set(["objects", 0, "box"], [5, 5, -1, 3]),
         "objects[0].box: [5, 5, -1, 3] is outside the unit square"),
        ("NaN box", True, _set(["objects", 0, "box"], [0.1, float("nan"), 0.2, 0.2]),
         "is outside the unit square"),
        ("boolean box", True, _set(["objects", 0, "box"], [True, 0, 1, 1]), "four numbers"),
        ("object dropped", True, lambda s: s["objects"].pop(), "one entry per object"),
        ("seed", True, _set(["seed"], "x"), "seed: 'x' is not an integer"),
        ("another model", True, _set(["model"], "0123456789abcdef"), "written by another model"),
        ("old version", True, _set(["version"], 1), "written by an older scene2img"),
        ("future version", True, _set(["version"], 9), "not a scene2img generation state"),
        ("graph", True, _set(["graph", "objects", 0, "name"], "unicorn"), "unknown class"),
        ("unknown attribute", True, _set(["objects", 0, "attributes"], ["plaid"]),
         "objects[0].attributes: expected names of this model's attributes"),
        ("not a state", True, lambda s: s.clear(), "not a scene2img generation state"),
        ("incomplete", True, lambda s: s.pop("graph_sha256"), "missing graph_sha256"),
    ],
)
def test_bad_states_get_one_line_and_no_image(work, capsys, name, reseal, change,
                                              message) -> None:
    d = work["dir"]
    state = json.loads((d / "A_state.json").read_text())
    (d / "bad.json").write_text(json.dumps(_tamper(state, reseal, change)))
    refused(capsys, *edit_args(work, "bad.json", "--out", str(d / "x.png")), match=message)
    assert not (d / "x.png").exists(), name  # never an all-black image with exit 0


@pytest.mark.parametrize(
    ("content", "message"),
    [(lambda text: text[: len(text) // 2], "malformed JSON"),
     (lambda text: "", "malformed JSON at line 1 column 1"),
     (lambda text: text.replace('"version": 2', '"version": 2, "sha256x": 1'), "checksum"),
     (lambda text: json.dumps([1, 2]), "not a scene2img generation state")],
)
def test_truncated_or_foreign_state_files(work, capsys, content, message) -> None:
    d = work["dir"]
    (d / "bad.json").write_text(content((d / "A_state.json").read_text()))
    refused(capsys, *edit_args(work, "bad.json", "--out", str(d / "x.png")), match=message)
    assert not (d / "x.png").exists()


def test_bad_inputs_and_options_get_one_line(work, capsys, tmp_path: Path) -> None:
    d, model = work["dir"], work["model"]
    (d / "latin1.json").write_bytes('{"objects": ["café"]}'.encode("latin-1"))
    (d / "deep.json").write_text('{"objects": ' + "[" * 20_000 + "]" * 20_000 + "}")
    (d / "ops_deep.json").write_text("[" * 20_000 + "]" * 20_000)
    (d / "afile").write_text("x")
    gen = ["generate", "--model", model]
    out = ["--out", str(d / "x.png")]
    cases = [
        ([*gen, "--graph", str(d / "latin1.json"), *out], "not UTF-8 text (byte 0xe9"),
        ([*gen, "--graph", str(d), *out], "a folder, not a scene graph file"),
        ([*gen, "--graph", str(d / "deep.json"), *out], "JSON nested too deeply"),
        ([*gen, "--graph", str(d / "nope.json"), *out], "nope.json: file not found"),
        ([*gen, "--graph", str(d / "A.json"), "--out", str(d)], "a folder; give a file name"),
        ([*gen, "--graph", str(d / "A.json"), "--out", str(d / "afile" / "x.png")],
         "is not a folder"),
        ([*gen, "--graph", str(d / "A.json"), "--out", "/proc/x.png"], "cannot write in /proc"),
        ([*gen, "--graph", str(d / "A.json"), "--out", str(d / "A.json")],
         "is also the --graph input"),
        ([*gen, "--graph", str(d / "A.json"), *out, "--seed", "-1"], "--seed: -1 is out of range"),
        ([*gen, "--graph", str(d / "A.json"), *out, "--seed", str(2**64)], "out of range"),
        ([*gen, "--graph", str(d / "A.json"), *out, "--seed", str(2**63)], "out of range"),
        ([*gen, "--text", "a red car left of a tree", "--graph", str(d / "A.json"), *out],
         "exactly one of --graph FILE and --text TEXT"),
        ([*gen, "--text", "a car \udcff left of a tree", *out], "text: not UTF-8"),
        ([*gen, "--text", "a car left of a unicorn", *out], "unknown word 'unicorn'"),
        ([*gen, "--text", "a car " * 20_000, *out], "characters, more than the"),
        ([*edit_args(work), "--out", str(d / "x.png"), "--in-place", "--state-out",
          str(d / "s.json")], "--in-place replaces --state"),
        ([*edit_args(work)[:-2], "--ops", str(d / "ops_deep.json"), *out], "nested too deeply"),
    ]
    if os.geteuid() != 0:  # root writes anywhere: a read-only folder stops only others
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        cases.append(([*gen, "--graph", str(d / "A.json"), "--out", str(locked / "x.png")],
                      "cannot write in"))
    before = files(d)
    for args, message in cases:
        refused(capsys, *args, match=message)
    assert files(d) == before  # nothing half-written, no stray temporary files
