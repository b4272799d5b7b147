"""Output helpers shared by the writers: encoded images, files, a mask's box."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from scene2img.data.toyworld.drawing import Box
from scene2img.data.toyworld.scene import Scene

JPEG_QUALITY = 90


class Writer(Protocol):
    """One raw format: `add` each scene in order, then `finish` (the index files); `finish`
    returns the format's own counts."""

    def add(self, index: int, split: str, scene: Scene) -> None: ...

    def finish(self) -> dict[str, int]: ...


def encode_jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def encode_png(labels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(labels.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def write_file(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)


def write_json(path: Path, obj: Any) -> None:
    write_file(path, json.dumps(obj, sort_keys=True))


def mask_box(mask: np.ndarray) -> Box | None:
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)
