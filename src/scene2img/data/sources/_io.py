"""File reading shared by the readers: errors that name the file and the position."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scene2img.errors import DataError


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
