"""Writer for ADE20K SceneParsing (ADEChallengeData2016): images/, annotations/,
objectInfo150.txt and sceneCategories.txt."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scene2img.config import ToyworldParams
from scene2img.data.toyworld._io import encode_jpeg, encode_png, write_file
from scene2img.data.toyworld.classes import ADE_OBJECT_INFO_LINES, STUFF, THINGS
from scene2img.data.toyworld.scene import SCENE_KINDS, Scene


class AdeWriter:
    """Train and val scenes go to `training/`, test scenes to `validation/` (no public test
    labels); `sceneCategories.txt` names each scene's kind as ADE20K does."""

    def __init__(self, root: Path, params: ToyworldParams) -> None:
        self.root = root / "ADEChallengeData2016"
        self.count = {"training": 0, "validation": 0}
        self.scene_lines: dict[str, list[str]] = {"training": [], "validation": []}

    def add(self, index: int, split: str, scene: Scene) -> None:
        folder = "validation" if split == "test" else "training"  # no public test labels
        self.count[folder] += 1
        stem = f"ADE_{'train' if folder == 'training' else 'val'}_{self.count[folder]:08d}"
        lut = np.zeros(256, np.uint8)  # 0 = "other" (unannotated)
        for layer, (name, is_thing) in scene.layer_classes().items():
            lut[layer] = (THINGS if is_thing else STUFF)[name].ade
        write_file(self.root / "images" / folder / f"{stem}.jpg", encode_jpeg(scene.image))
        write_file(self.root / "annotations" / folder / f"{stem}.png", encode_png(lut[scene.owner]))
        self.scene_lines[folder].append(f"{stem} {SCENE_KINDS[scene.kind][1]}\n")

    def finish(self) -> dict[str, int]:
        write_file(self.root / "objectInfo150.txt", "\n".join(ADE_OBJECT_INFO_LINES) + "\n")
        write_file(
            self.root / "sceneCategories.txt",
            "".join(self.scene_lines["training"] + self.scene_lines["validation"]),
        )
        return {"training": self.count["training"], "validation": self.count["validation"]}
