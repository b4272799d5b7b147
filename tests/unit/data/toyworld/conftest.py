"""Shared by the toy-world tests: one generation in every format, and plain-file helpers.

The readers in `scene2img.data.sources` are deliberately not used: these tests pin the formats as
the real datasets ship them, so that the readers can be tested against them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scene2img.config import ToyworldParams
from scene2img.data.sources import SOURCE_NAMES
from scene2img.data.toyworld import PALETTE, generate_toyworld
from tests.conftest import SHARED_DATA

SHARED = SHARED_DATA
PARAMS = ToyworldParams(
    images=12, width=160, height=120, val_fraction=0.25, test_fraction=0.25, seed=3
)


@pytest.fixture(scope="package")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, int]]]:
    root = tmp_path_factory.mktemp("toyworld")
    return {fmt: (root / fmt, generate_toyworld(fmt, root / fmt, PARAMS)) for fmt in SOURCE_NAMES}


def load(path: Path):
    return json.loads(path.read_text())


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def read_aliases(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        names = [norm(n) for n in line.split(",") if n.strip()]
        out.update(dict.fromkeys(names, names[0]))
    return out


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def colour_fraction(image: np.ndarray, box, colour: str) -> float:
    x, y, w, h = box
    patch = image[y : y + h, x : x + w].reshape(-1, 3).astype(float)
    return float((np.linalg.norm(patch - PALETTE[colour], axis=1) < 60).mean())
