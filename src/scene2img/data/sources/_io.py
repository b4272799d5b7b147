"""File reading shared by the readers: errors that name the file and the position."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from scene2img.errors import DataError

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
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P"):
                raise ValueError(f"mode {im.mode}, expected a single-channel 8-bit map")
            return np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:  # PIL raises all three for bad files
        log.warning("%s: unreadable %s, image skipped (%s)", path, what, exc)
        return None
