"""A dialog session kept in a folder, so that it can be resumed or replayed exactly.

    DIR/session.json      the session state (`scene2img.serving.dialog.session`), with checksum
    DIR/turns.txt         the instructions, one a line: the script that replays the session
    DIR/NNN.png           the picture after turn NNN (1-based; a failed turn shows the same one),
                          taken up by the model's upscaler when the session runs with `upscale`
    DIR/NNN_layout.png    its layout drawing

After each turn the files are written together (each through a temporary file), so an
interrupted session is the session up to its last finished turn.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from scene2img.errors import ConfigError
from scene2img.serving.dialog.session import Dialog, Turn, check_dialog_state, seal
from scene2img.serving.outputs import layout_drawing, png_bytes, write_all
from scene2img.serving.pipeline import SceneToImage
from scene2img.serving.schema import read_json_file

STATE_FILE = "session.json"
SCRIPT_FILE = "turns.txt"


def frame_files(folder: Path, number: int) -> tuple[Path, Path]:
    """The picture and layout drawing of turn `number` (1-based)."""
    return folder / f"{number:03d}.png", folder / f"{number:03d}_layout.png"


def open_session(model: SceneToImage, folder: str | Path, seed: int = 0) -> Dialog:
    """The session kept in `folder` (resumed), or a new one if the folder has none."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--session {folder}: not a folder")
    path = folder / STATE_FILE
    if not path.exists():
        return Dialog(model, seed=seed)
    state = read_json_file(path, 64 * model.limits.max_state_bytes, "dialog session",
                           missing="")
    return Dialog(model, check_dialog_state(model, state, where=str(path)))


def save_turn(dialog: Dialog, turn: Turn, folder: str | Path, upscale: int = 1) -> list[Path]:
    """Write the session state, the script and this turn's picture (taken up by `upscale`,
    checked by `SceneToImage.check_upscale`); returns the pictures."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    number = len(dialog.state["turns"])
    files = {"state": (folder / STATE_FILE,
                       (json.dumps(seal(dialog.state)) + "\n").encode()),
             "script": (folder / SCRIPT_FILE,
                        "".join(t["instruction"].replace("\n", " ") + "\n"
                                for t in dialog.state["turns"]).encode())}
    pictures = []
    if turn.generation is not None:
        image, layout = frame_files(folder, number)
        picture = dialog.model.upscaled(turn.generation, upscale).image  # [fS, fS, 3]
        files["image"] = (image, png_bytes(Image.fromarray(picture)))
        drawing = layout_drawing(turn.generation, dialog.model.vocab)
        files["layout"] = (layout, png_bytes(drawing))
        pictures = [image, layout]
    write_all(files)
    return pictures


def run_turns(dialog: Dialog, instructions: Iterable[str], folder: str | Path | None = None,
              upscale: int = 1) -> Iterable[tuple[int, Turn]]:
    """Carry out `instructions` (blank lines and `#` comments skipped), saving each turn in
    `folder` when given (its picture taken up by `upscale`); yields (turn number, turn)."""
    for line in instructions:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        turn = dialog.turn(line)
        if folder is not None:
            save_turn(dialog, turn, folder, upscale)
        yield len(dialog.state["turns"]), turn


def replay(model: SceneToImage, folder: str | Path, upscale: int = 1
           ) -> list[np.ndarray | None]:
    """The pictures of the session in `folder`, made again from its turns and seed (no latent
    is read from the folder) and taken up by `upscale`: equal to the saved pictures when the
    session is reproducible (and was saved with the same `upscale`)."""
    kept = open_session(model, folder)
    fresh = Dialog(model, seed=kept.state["seed"])
    return [None if t.generation is None else model.upscaled(t.generation, upscale).image
            for _, t in run_turns(fresh, [t["instruction"] for t in kept.state["turns"]])]
