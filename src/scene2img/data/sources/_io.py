"""File reading shared by the readers: errors that name the file and the position, and the
hashes of the inputs read (recorded in the manifest)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from scene2img.errors import DataError
from scene2img.files import printable

log = logging.getLogger(__name__)


def load_json(path: Path, what: str = "") -> Any:
    """Parse a JSON file; malformed or truncated JSON raises `DataError` with line and column."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        hint = f" ({what})" if what else ""
        raise DataError(f"{path}: file not found{hint}; check --raw points at the dataset") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno} (char {exc.pos}): "
            f"{exc.msg}; the file is probably truncated or corrupt, download it again"
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text at byte {exc.start}; is this the right file?") from None


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: directory not found ({what}); check --raw points at the dataset")
    return path


def read_label_png(path: Path, what: str) -> np.ndarray | None:
    """A single-channel uint8 PNG (label or instance map) as a 2-D array; None, logged, if the
    file is unreadable (the caller counts the skip)."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            # over PIL's pixel limit (a decompression bomb): refused before anything is decoded
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.mode not in ("L", "P"):
                    raise ValueError(f"mode {im.mode}, expected a single-channel 8-bit map")
                return np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # decoders raise many types for damaged data: all mean unreadable
        log.warning("%s: unreadable %s, image skipped (%s)", printable(path), what, exc)
        return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hash_inputs(root: Path, names: list[str]) -> dict[str, str]:
    """sha256 of each named file under `root`; a folder is keyed `name/` and hashed as the
    sorted listing of its files' relative paths and sha256s. Missing names are left out."""
    out = {}
    for name in names:
        path = root / name
        if path.is_file():
            out[name] = sha256_file(path)
        elif path.is_dir():
            h = hashlib.sha256()
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                # fsencode: the name's bytes as on disk, whether or not they are UTF-8
                h.update(os.fsencode(f.relative_to(path)) + f"\0{sha256_file(f)}\n".encode())
            out[name + "/"] = h.hexdigest()
    return out
