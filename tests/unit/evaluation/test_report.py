from __future__ import annotations

import base64
import io
import re

import torch
from PIL import Image

from scene2img.evaluation.evaluator import evaluate_images
from scene2img.evaluation.report import image_grid, write_grid, write_report
from tests.unit.evaluation.conftest import make_batches, noisy_generator, tiny_protocol


def test_image_grid_layout():
    real = torch.full((2, 3, 4, 4), 10, dtype=torch.uint8)
    gen = torch.full((2, 3, 3, 4, 4), 20, dtype=torch.uint8)
    grid = image_grid(real, gen, pad=1)
    assert grid.shape == (3, 1 + 2 * 5, 1 + 4 * 5)
    assert int(grid[0, 1, 1]) == 10 and int(grid[0, 1, 6]) == 20 and int(grid[0, 0, 0]) == 255


def test_report_is_self_contained(tiny, tmp_path):
    names = ["__image__", "sky", "tree", "car", "dog", "cat"]
    result = evaluate_images(make_batches(), noisy_generator(0.3), tiny_protocol(tiny),
                             backbone=tiny, class_names=names, report_samples=2)
    path = write_report(result, tmp_path / "report.html", title="toy <run>")
    text = path.read_text()
    assert "toy &lt;run&gt;" in text and "fid_tiny_test" in text and "backbone_sha256" in text
    assert "SceneFID per class" in text and any(n in text for n in names[1:])
    assert "Best samples" in text and "Worst samples" in text
    assert "diversity skipped" in text
    assert "src='http" not in text and "src=\"http" not in text  # nothing fetched
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    assert len(pngs) == 1 + 2 * 2 * 2  # grid, then real + generated for 2 best and 2 worst
    grid = Image.open(io.BytesIO(base64.b64decode(pngs[0])))
    assert grid.size == (2 + 3 * 34, 2 + 2 * 34)
    assert not list(tmp_path.glob(".*tmp*"))  # written through a temporary name
    png = write_grid(result, tmp_path / "grid.png")
    assert Image.open(png).size == grid.size
