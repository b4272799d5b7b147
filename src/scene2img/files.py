"""Writing outputs safely: to a temporary name, then renamed into place.

One file: `atomic_write_bytes` / `atomic_write_json`. A folder: `atomic_dir`, which every stage
that writes a folder (preprocess, ingest, the toy world) builds its output in.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scene2img.errors import DataError

log = logging.getLogger(__name__)


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


def printable(path: str | Path) -> str:
    """`path` as text that can be printed and logged: bytes of a name that are not UTF-8 (kept
    as surrogates when read from disk) shown as `\\xNN`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


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
    `path` is moved aside just before the rename and removed after it. What a killed run left
    beside `path` is dealt with first (`recover_dir`).
    """
    path = Path(path)
    recover_dir(path)
    if not replace:
        require_new_dir(path, what)
    tmp = _sibling(path, "tmp")
    tmp.mkdir(parents=True)
    try:
        yield tmp
        _rename_into_place(tmp, path, what, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def recover_dir(path: str | Path) -> None:
    """Finish or undo the swap of an `atomic_dir` run that was killed at `path`, and remove the
    hidden folders that dead runs left beside it.

    A run moves `path` aside to `.NAME.old-PID` only once its new folder `.NAME.tmp-PID` is
    complete, so a kill between the two renames leaves both: the swap is finished (the new
    folder takes the name; the old one is removed). Without the new folder the old one is put
    back. Folders of runs whose process is still alive are left alone.
    """
    path = Path(path)
    leftovers = [(kind, pid, p) for kind, pid, p in _siblings(path) if not _alive(pid)]
    if not path.exists():
        tmps = {pid: p for kind, pid, p in leftovers if kind == "tmp"}
        olds = [(pid in tmps, p.stat().st_mtime, pid, p) for kind, pid, p in leftovers
                if kind == "old"]
        if olds:
            _, _, pid, old = max(olds)
            if pid in tmps:
                tmps[pid].rename(path)
                log.warning("%s: finished the swap a killed run (pid %d) left half-done; its "
                            "previous folder is removed", path, pid)
            else:
                old.rename(path)
                log.warning("%s: put back the previous folder that a killed run (pid %d) had "
                            "moved aside", path, pid)
    for _, _, p in leftovers:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def interrupted_swap(path: str | Path) -> Path | None:
    """The hidden `.NAME.old-PID` folder holding the previous `path`, when `path` is missing
    because a run was killed between its two renames (readers name it in their error)."""
    path = Path(path)
    if path.exists():
        return None
    olds = [p for kind, _, p in _siblings(path) if kind == "old"]
    return max(olds, key=lambda p: p.stat().st_mtime) if olds else None


def _rename_into_place(tmp: Path, path: Path, what: str, replace: bool) -> None:
    # An existing `path`, even an empty one, is moved aside rather than removed, so that a kill
    # between the two renames leaves `.old` + a complete `.tmp`: `recover_dir` finishes the swap.
    old = None
    if path.exists():
        if not replace:
            require_new_dir(path, what)  # something may have been written there meanwhile
        old = _sibling(path, "old")
        path.rename(old)
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


def _siblings(path: Path) -> list[tuple[str, int, Path]]:
    """The hidden `.NAME.tmp-PID` / `.NAME.old-PID` siblings of `path`: (kind, pid, path)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(tmp|old)-(\d+)")
    found = []
    for p in path.parent.glob(f".{glob.escape(path.name)}.*-*"):
        m = pattern.fullmatch(p.name)
        if m:
            found.append((m[1], int(m[2]), p))
    return sorted(found)


def _alive(pid: int) -> bool:
    """Whether another process with this pid runs (ours counts as dead: a killed run that had
    our pid before us). Pids are per machine: runs on other machines or containers sharing the
    folder are not told apart."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
