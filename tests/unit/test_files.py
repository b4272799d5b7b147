"""`scene2img.files`: a file or a folder appears whole under its name, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from scene2img.errors import DataError
from scene2img.files import atomic_dir, atomic_write_bytes, atomic_write_json, require_new_dir


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_leaves_only_the_file(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "sub" / "a.bin", b"one")
    atomic_write_json(tmp_path / "sub" / "a.json", {"b": 1, "a": [2]})
    assert _names(tmp_path / "sub") == ["a.bin", "a.json"]
    assert (tmp_path / "sub" / "a.json").read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'


def test_atomic_dir_writes_a_new_folder(tmp_path: Path) -> None:
    with atomic_dir(tmp_path / "out", "a test") as tmp:
        assert tmp.is_dir() and not any(tmp.iterdir())
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.tmp-")
        (tmp / "a.txt").write_text("a")
        assert not (tmp_path / "out").exists()  # nothing under the final name until the end
    assert _names(tmp_path) == ["out"]
    assert (tmp_path / "out" / "a.txt").read_text() == "a"


def test_atomic_dir_fills_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with atomic_dir(tmp_path / "out", "a test") as tmp:
        (tmp / "a.txt").write_text("a")
    assert _names(tmp_path / "out") == ["a.txt"]


def test_atomic_dir_refuses_a_non_empty_folder_before_the_block(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    ran = []
    refused = pytest.raises(DataError, match="out: already exists and is not empty; a test writes")
    with refused, atomic_dir(tmp_path / "out", "a test"):
        ran.append(1)
    assert ran == []
    assert _names(tmp_path) == ["out"] and _names(tmp_path / "out") == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        require_new_dir(tmp_path / "file", "a test")


def test_atomic_dir_refuses_a_folder_filled_meanwhile(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not empty"), atomic_dir(tmp_path / "out", "a test") as tmp:
        (tmp / "new.txt").write_text("new")
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "other.txt").write_text("someone else's")
    assert _names(tmp_path) == ["out"] and _names(tmp_path / "out") == ["other.txt"]


@pytest.mark.parametrize("replace", [False, True])
def test_an_interrupted_block_leaves_the_old_state(tmp_path: Path, replace: bool) -> None:
    out = tmp_path / "out"
    if replace:
        out.mkdir()
        (out / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(out, "a test", replace=replace) as tmp:
        (tmp / "half.txt").write_text("half")
        raise KeyboardInterrupt
    assert _names(tmp_path) == (["out"] if replace else [])
    if replace:
        assert _names(out) == ["old.txt"]


def test_replace_swaps_the_whole_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_dir(out, "a test", replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
        assert _names(out) == ["old.txt"]  # the old folder stays readable until the end
    assert _names(tmp_path) == ["out"] and _names(out) == ["new.txt"]


def test_a_stale_temporary_folder_is_cleared(tmp_path: Path) -> None:
    with atomic_dir(tmp_path / "out", "a test") as tmp:
        pass
    tmp.mkdir()
    (tmp / "stale.txt").write_text("from a killed run with the same pid")
    with atomic_dir(tmp_path / "out", "a test", replace=True) as again:
        assert again == tmp and not any(again.iterdir())
    assert _names(tmp_path) == ["out"]
