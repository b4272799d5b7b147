"""Writing a generation: the image, a layout drawing, the state an edit starts from, (for an
edit) the edited scene graph and (for BachGAN) the background it was painted from.

Outputs are checked before any work (`check_outputs`): none may be a folder, sit where nothing
can be written, repeat another, or be one of the command's inputs unless it is meant to replace
it (`edit --in-place`). They are then written together: each goes to a temporary sibling first,
and the files are renamed into place only when all were written.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from scene2img.data.vocab import Vocab
from scene2img.errors import ConfigError
from scene2img.files import atomic_write_bytes
from scene2img.serving.pipeline import Generation, seal_state


@dataclass
class Outputs:
    """Where a command writes; None: not written. Labels are the command's option names."""

    out: Path  # --out: the image PNG
    layout_out: Path | None = None  # --layout-out: the layout drawing PNG
    state_out: Path | None = None  # --state-out: the state an edit starts from
    graph_out: Path | None = None  # --graph-out: the edited scene graph (edit)
    background_out: Path | None = None  # --background-out: BachGAN's fused label map PNG

    def named(self) -> dict[str, Path]:
        return {f"--{k.replace('_', '-')}": Path(v) for k, v in vars(self).items() if v is not None}


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def _check_writable(label: str, path: Path) -> None:
    if path.is_dir():
        raise ConfigError(f"{label} {path}: a folder; give a file name")
    folder = Path(os.path.abspath(path)).parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{label} {path}: {folder} is not a folder")
    try:  # the one sure test (permissions, read-only mounts, root): create a file there
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".scene2img-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{label} {path}: cannot write in {folder} ({exc.strerror})") from None


def check_outputs(
    outputs: dict[str, Path],  # option name -> file to write
    inputs: dict[str, Path | None],  # option name -> file read
    replaces: dict[str, str] | None = None,  # output option -> the input it may replace
) -> None:
    """Refuse, before any work, an output that would overwrite an input it is not meant to
    replace, that another output names too, that is a folder, or that cannot be written."""
    replaces = replaces or {}
    seen: dict[str, Path] = {}
    for label, path in outputs.items():
        for in_label, in_path in inputs.items():
            if in_path is not None and replaces.get(label) != in_label \
                    and _same_file(path, Path(in_path)):
                raise ConfigError(f"{label} {path} is also the {in_label} input; write to another "
                                  "file (`edit --in-place` replaces the state and graph)")
        for other, other_path in seen.items():
            if _same_file(path, other_path):
                raise ConfigError(f"{label} and {other} name the same file {path}")
        seen[label] = path
        _check_writable(label, path)


def layout_drawing(generation: Generation, vocab: Vocab, size: int = 256) -> Image.Image:
    """Boxes, labels and masks of the layout the image was painted from."""
    from scene2img.training.drawing import draw_layout

    idx = vocab.object_name_to_idx
    objects = torch.tensor([idx[o.name] for o in generation.graph.objects])
    return draw_layout(objects, torch.from_numpy(generation.boxes),
                       torch.ones(len(objects), dtype=torch.bool), vocab.object_idx_to_name,
                       masks=torch.from_numpy(generation.masks), size=size)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_all(files: dict[str, tuple[Path, bytes]]) -> None:
    """Write every file to a temporary sibling, then rename them all into place: a failure
    (a full disk) leaves the previous files as they were."""
    staged: list[tuple[Path, Path]] = []
    try:
        for label, (path, data) in files.items():
            tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
            try:
                atomic_write_bytes(tmp, data)
            except OSError as exc:
                raise ConfigError(f"{label} {path}: could not write it ({exc.strerror}); no "
                                  "output was written") from None
            staged.append((tmp, path))
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise ConfigError(f"{path}: could not move it into place ({exc.strerror})") \
                    from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def write_generation(generation: Generation, vocab: Vocab, outputs: Outputs) -> list[str]:
    """Write the files asked for; returns one line per file for the command's output."""
    image = generation.image
    files = {"--out": (Path(outputs.out), png_bytes(Image.fromarray(image)))}
    size = f"{image.shape[1]} x {image.shape[0]}"
    if generation.upscale != 1:
        size += f", upscaled x{generation.upscale} from {image.shape[0] // generation.upscale} px"
    lines = [f"wrote {outputs.out} ({size})"]
    if outputs.layout_out is not None:
        files["--layout-out"] = (Path(outputs.layout_out),
                                 png_bytes(layout_drawing(generation, vocab)))
        lines.append(f"wrote {outputs.layout_out} (layout)")
    if outputs.state_out is not None:
        state = json.dumps(seal_state(generation.state)) + "\n"
        files["--state-out"] = (Path(outputs.state_out), state.encode())
        lines.append(f"wrote {outputs.state_out} (state for `scene2img edit`)")
    if outputs.graph_out is not None:
        graph = json.dumps(generation.given.to_json(), indent=2) + "\n"
        files["--graph-out"] = (Path(outputs.graph_out), graph.encode())
        lines.append(f"wrote {outputs.graph_out} (edited scene graph)")
    if outputs.background_out is not None and generation.background is not None:
        files["--background-out"] = (Path(outputs.background_out),
                                     png_bytes(Image.fromarray(generation.background)))
        lines.append(f"wrote {outputs.background_out} (background: the fused label map)")
    write_all(files)
    described = ", ".join(f"{o['name']}[{' '.join(o['attributes'])}]@{o['box']}"
                          for o in generation.layout_json())
    lines.append(f"objects: {described}")
    if generation.retrieved is not None:
        lines.append("retrieved backgrounds: " + ", ".join(
            f"{r['image_id']} (#{r['index']}, score {r['score']:.3f})" for r in generation.retrieved))
    return lines
