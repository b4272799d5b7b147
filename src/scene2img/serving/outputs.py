"""Writing a generation: the image, a layout drawing and the state an edit starts from."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from scene2img.data.vocab import Vocab
from scene2img.files import atomic_write_bytes
from scene2img.serving.pipeline import Generation


def layout_drawing(generation: Generation, vocab: Vocab, size: int = 256) -> Image.Image:
    """Boxes, labels and masks of the layout the image was painted from."""
    from scene2img.training.drawing import draw_layout

    idx = vocab.object_name_to_idx
    objects = torch.tensor([idx[o.name] for o in generation.graph.objects])
    return draw_layout(objects, torch.from_numpy(generation.boxes),
                       torch.ones(len(objects), dtype=torch.bool), vocab.object_idx_to_name,
                       masks=torch.from_numpy(generation.masks), size=size)


def _png(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_generation(generation: Generation, vocab: Vocab, out: Path,
                     layout_out: Path | None = None, state_out: Path | None = None) -> list[str]:
    """Write the files asked for; returns one line per file for the command's output."""
    lines = []
    atomic_write_bytes(out, _png(Image.fromarray(generation.image)))
    lines.append(f"wrote {out} ({generation.image.shape[1]} x {generation.image.shape[0]})")
    if layout_out is not None:
        atomic_write_bytes(layout_out, _png(layout_drawing(generation, vocab)))
        lines.append(f"wrote {layout_out} (layout)")
    if state_out is not None:
        atomic_write_bytes(state_out, (json.dumps(generation.state) + "\n").encode())
        lines.append(f"wrote {state_out} (state for `scene2img edit`)")
    described = ", ".join(f"{o['name']}[{' '.join(o['attributes'])}]@{o['box']}"
                          for o in generation.layout_json())
    lines.append(f"objects: {described}")
    return lines
