"""What `scene2img generate` and `scene2img edit` do, from files to files.

Every input is read and checked, and every output is checked, before any work: a bad input or
option is one `scene2img.errors` line, and nothing is written. An edit never writes over its
inputs unless asked (`in_place`), and refuses a `--graph` that is not the graph its state was
generated from (the state records that graph's sha256). A BachGAN model (`serving.bachgan`)
generates (its retrieved background with `--background-out`) but cannot be edited.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from scene2img.errors import ConfigError, SceneGraphError
from scene2img.serving.edit import edit, load_state
from scene2img.serving.outputs import Outputs, check_outputs, write_generation
from scene2img.serving.pipeline import SceneToImage
from scene2img.serving.schema import check_seed, read_json_file

if TYPE_CHECKING:
    from scene2img.serving.bachgan import LayoutToImage


def require_editable(model: SceneToImage | LayoutToImage, what: str) -> SceneToImage:
    """`model` if its generations can be edited (they carry latents); a `ConfigError` naming
    `what` (the command or option) otherwise."""
    if not model.editable:
        raise ConfigError(f"{what}: a BachGAN model's generations have no latents to edit or "
                          "continue; use a scene-graph (LostGAN family) model")
    return model  # type: ignore[return-value]


def generate_files(
    load_model: Callable[[], SceneToImage | LayoutToImage],  # called once options are checked
    outputs: Outputs,  # graph_out is not used
    seed: int = 0,  # 0 .. 2**63 - 1
    graph: Path | None = None,  # a scene graph JSON file ...
    text: str | None = None,  # ... or a sentence (`scene2img.serving.text`)
    upscale: int | None = None,  # take the image up by the model's upscaler (its factor)
) -> list[str]:
    """Generate one image from a scene graph file or a sentence; returns the lines to print."""
    from scene2img.serving.text import parse_text

    if (graph is None) == (text is None):
        raise ConfigError("generate needs exactly one of --graph FILE and --text TEXT")
    checked_seed = check_seed(seed, "--seed")
    if checked_seed is None:
        raise ConfigError("--seed: give an integer")
    check_outputs(outputs.named(), {"--graph": graph})
    model = load_model()
    if outputs.state_out is not None:
        require_editable(model, "--state-out")
    if outputs.background_out is not None and model.editable:
        raise ConfigError("--background-out: only a BachGAN model retrieves a background; leave "
                          "it out")
    factor = model.check_upscale(upscale, "--upscale")
    if text is not None:
        sentence = parse_text(text, model.vocab, max_chars=model.limits.max_graph_bytes)
        scene = model.parse(sentence.to_json(), where="--text")
    else:
        scene = model.parse(read_json_file(graph, model.limits.max_graph_bytes), where=str(graph))
    generation = model.upscaled(model.generate(scene, seed=checked_seed), factor)
    return write_generation(generation, model.vocab, outputs)


def edit_files(
    load_model: Callable[[], SceneToImage],  # called once the options are checked
    state: Path,  # the state of the generation to edit
    ops: Path,  # a JSON list of edit operations (`scene2img.serving.edit`)
    outputs: Outputs,
    graph: Path | None = None,  # the scene graph `state` was generated from: checked against it
    in_place: bool = False,  # replace `state` (and `graph`) with the edited ones
    upscale: int | None = None,  # take the image up by the model's upscaler (its factor)
) -> list[str]:
    """Apply edit operations to a generation; returns the lines to print."""
    replaces = {}
    if in_place:
        if outputs.state_out is not None or outputs.graph_out is not None:
            raise ConfigError("--in-place replaces --state (and --graph); leave out --state-out "
                              "and --graph-out")
        outputs = dataclasses.replace(outputs, state_out=state, graph_out=graph)
        replaces = {"--state-out": "--state", "--graph-out": "--graph"}
    check_outputs(outputs.named(), {"--state": state, "--ops": ops, "--graph": graph}, replaces)
    model = require_editable(load_model(), "edit")
    factor = model.check_upscale(upscale, "--upscale")
    previous = load_state(state, model)
    if graph is not None:
        given = model.parse(read_json_file(graph, model.limits.max_graph_bytes), where=str(graph))
        if given.sha256() != previous["graph_sha256"]:
            raise SceneGraphError(
                f"{graph} is not the scene graph {state} was generated from (sha256 "
                f"{given.sha256()[:12]}, the state's {previous['graph_sha256'][:12]}); give the "
                "state written with this graph, or leave out --graph")
    operations = read_json_file(ops, model.limits.max_graph_bytes, "list of edit operations")
    generation = model.upscaled(edit(model, previous, operations, where=str(ops)), factor)
    return write_generation(generation, model.vocab, outputs)


def read_script(path: Path) -> list[str]:
    """A dialog script's instructions, one a line (`ConfigError` naming the file otherwise)."""
    if path.is_dir():
        raise ConfigError(f"--script {path}: a folder; give a file of instructions, one a line")
    if not path.is_file():
        raise ConfigError(f"--script {path}: no such file; give a file of instructions, one a line")
    data = path.read_bytes()
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--script {path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                          f"offset {exc.start}); save it as UTF-8") from None


def dialog_files(
    load_model: Callable[[], SceneToImage],  # called once the options are checked
    session: Path,  # the session folder: resumed if it holds one (`serving.dialog.folder`)
    instructions: Iterable[str],  # one instruction each (a script's lines, or typed ones)
    seed: int = 0,  # a new session's seed (a resumed one keeps its own)
    upscale: int | None = None,  # take each picture up by the model's upscaler (its factor)
) -> Iterator[str]:
    """Run dialog turns, keeping the session in `session`; yields one line per turn. With
    `upscale`, the pictures written are taken up (the session keeps them as generated)."""
    from scene2img.serving.dialog.folder import open_session, run_turns

    checked_seed = check_seed(seed, "--seed")
    if session.exists() and not session.is_dir():
        raise ConfigError(f"--session {session}: not a folder")
    model = require_editable(load_model(), "dialog")
    factor = model.check_upscale(upscale, "--upscale")
    dialog = open_session(model, session, checked_seed or 0)
    if dialog.state["turns"]:
        yield (f"resumed {session}: {len(dialog.state['turns'])} turns; now "
               f"{dialog.scene.listing()}")
    size = "" if factor == 1 else f" (upscaled x{factor})"
    for number, turn in run_turns(dialog, instructions, session, factor):
        shown = f" -> {session / f'{number:03d}.png'}{size}" if turn.generation is not None \
            else ""
        yield f"turn {number}: {turn.message if turn.ok else 'nothing done: ' + turn.message}" \
              f"{shown}"
