"""`scene2img.files`: a file or a folder appears whole under its name, or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scene2img.errors import DataError
from scene2img.files import atomic_dir, atomic_write_bytes, atomic_write_json, require_new_dir
from tests.conftest import run_killed_in_the_rename_window


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


# --------------------------------------------------------------------------------------------
# a run killed in the rename window, and what dead runs leave behind


def _kill_in_the_window(out: Path, replace: bool = True) -> int:
    """A child builds `out` anew with atomic_dir and is killed between the two renames."""
    return run_killed_in_the_rename_window(
        "import sys\nfrom scene2img.files import atomic_dir\n"
        "with atomic_dir(Path(sys.argv[1]), 'a test', replace=sys.argv[2] == 'replace') as tmp:\n"
        "    (tmp / 'new.txt').write_text('new')\n", str(out), "replace" if replace else "new")


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_kill_between_the_renames_is_finished_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    pid = _kill_in_the_window(out)
    # the state the issue describes: no `out`, the previous folder only in the hidden sibling
    assert _names(tmp_path) == [f".out.old-{pid}", f".out.tmp-{pid}"]
    with atomic_dir(out, "a test", replace=True) as tmp:
        # the killed run had finished its folder: the next run completes the swap first
        assert _names(tmp_path) == sorted(["out", tmp.name])
        assert _names(out) == ["new.txt"] and (out / "new.txt").read_text() == "new"
        (tmp / "newer.txt").write_text("newer")
    assert _names(tmp_path) == ["out"] and _names(out) == ["newer.txt"]


def test_a_kill_while_filling_an_empty_folder_is_finished_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()  # empty: atomic_dir without replace fills it
    pid = _kill_in_the_window(out, replace=False)
    assert _names(tmp_path) == [f".out.old-{pid}", f".out.tmp-{pid}"]
    with pytest.raises(DataError, match="not empty"), atomic_dir(out, "a test"):
        pass  # the finished folder is back under its name, so a new one is refused
    assert _names(tmp_path) == ["out"] and _names(out) == ["new.txt"]


def test_a_kill_in_the_window_without_the_new_folder_restores_the_old(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    pid = _kill_in_the_window(out)
    shutil.rmtree(tmp_path / f".out.tmp-{pid}")  # say the new folder is gone too
    with pytest.raises(DataError, match="not empty"), atomic_dir(out, "a test"):
        pass
    assert _names(tmp_path) == ["out"] and (out / "old.txt").read_text() == "old"


def test_readers_say_where_an_interrupted_swap_left_the_dataset(tmp_path: Path) -> None:
    from scene2img.data.processed import load_vocab, read_manifest

    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    pid = _kill_in_the_window(out)
    for read in (load_vocab, read_manifest):
        with pytest.raises(DataError, match=rf"\.out\.old-{pid}.*run the command that writes"):
            read(out)
    assert _names(tmp_path) == [f".out.old-{pid}", f".out.tmp-{pid}"]  # reading changes nothing


def test_hidden_folders_of_dead_runs_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("current")
    dead = _dead_pid()
    for name in (f".out.tmp-{dead}", f".out.old-{dead}"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "stale.txt").write_text("from a killed run")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / f".out.tmp-{live.pid}").mkdir()  # another run, still writing
        (tmp_path / ".other.tmp-1").mkdir()  # another folder's
        with atomic_dir(out, "a test", replace=True) as tmp:
            assert (out / "a.txt").read_text() == "current"  # the folder in place wins
            (tmp / "a.txt").write_text("a")
        assert _names(tmp_path) == sorted([".other.tmp-1", f".out.tmp-{live.pid}", "out"])
        assert (out / "a.txt").read_text() == "a"
    finally:
        live.kill()
        live.wait()
