"""Writing outputs safely: to a temporary name, then renamed into place.

One file: `atomic_write_bytes` / `atomic_write_json`. A folder: `atomic_dir`, which every stage
that writes a folder (preprocess, ingest, the toy world) builds its output in.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scene2img.errors import DataError


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary sibling; an interruption leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def require_new_dir(path: str | Path, what: str) -> None:
    """Refuse `path` if it exists and is not an empty folder (`DataError` naming `what`)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DataError(
            f"{path}: already exists and is not empty; {what} writes only to a new or empty "
            "folder (remove it or choose another output path)"
        )


@contextmanager
def atomic_dir(
    path: str | Path,  # the folder to produce
    what: str,  # who writes it, for the error message ("preprocess", "the toy world")
    replace: bool = False,  # True: replace an existing folder; False: refuse a non-empty one
) -> Iterator[Path]:
    """Build a folder under a temporary sibling name and rename it to `path` at the end.

    Yields the (new, empty) temporary folder. If the block raises, KeyboardInterrupt included,
    the temporary folder is removed and `path` is left as it was. With `replace`, an existing
    `path` is moved aside just before the rename and removed after it.
    """
    path = Path(path)
    if not replace:
        require_new_dir(path, what)
    tmp = _sibling(path, "tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # left over by a killed process with our pid
    tmp.mkdir(parents=True)
    try:
        yield tmp
        _rename_into_place(tmp, path, what, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _rename_into_place(tmp: Path, path: Path, what: str, replace: bool) -> None:
    old = None
    if path.exists():
        if replace:
            old = _sibling(path, "old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
        else:
            require_new_dir(path, what)  # something may have been written there meanwhile
            path.rmdir()  # empty: the rename needs the name free
    try:
        tmp.rename(path)
    except BaseException:
        if old is not None:
            old.rename(path)  # put the previous folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _sibling(path: Path, kind: str) -> Path:
    """A hidden sibling name, unique to this process: `.NAME.KIND-PID`."""
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}")
