"""Summaries of a processed dataset: the one-screen text and `scene2img data stats`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scene2img.data.processed import read_manifest
from scene2img.data.summary import dataset_stats, format_summary, write_stats
from scene2img.errors import DataError


def test_summary_reads_the_manifest(toy_vg: Path) -> None:
    m = read_manifest(toy_vg)
    text = format_summary(toy_vg).splitlines()
    assert text[0] == f"vg dataset at {toy_vg}"
    c = m["counts"]
    assert text[1].split() == ["kept:", "train", str(c["train"]) + ",", "val", str(c["val"]) + ",",
                               "test", str(c["test"]), "(total", str(sum(c.values())), "images)"]
    assert "none (Visual Genome)" in text[3]
    worst = min(m["dropped"].items(), key=lambda kv: (-kv[1], kv[0]))  # most first, then by name
    assert text[4] == "  dropped:" and text[5].split() == [*worst[0].split(), str(worst[1])]


def test_stats_count_every_record_without_image_objects(toy_vg: Path, tmp_path: Path) -> None:
    stats = dataset_stats(str(toy_vg))
    assert stats["counts"] == read_manifest(toy_vg)["counts"]
    assert len(stats["objects_per_image"]) == sum(stats["counts"].values())
    assert "__image__" not in stats["classes"]
    assert sum(stats["classes"].values()) == sum(stats["objects_per_image"])
    assert len(stats["box_areas"]) == sum(stats["objects_per_image"])
    png, page = write_stats(str(toy_vg), tmp_path / "stats")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = page.read_text()
    assert 'src="stats.png"' in html and f"<td>{next(iter(stats['classes']))}</td>" in html


def test_summary_of_a_folder_that_is_no_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="manifest.json: not found"):
        format_summary(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"source": "vg"}))
    with pytest.raises(DataError, match="vocab.json: not found"):
        dataset_stats(str(tmp_path))
