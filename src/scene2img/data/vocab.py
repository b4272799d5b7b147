"""The sg2im-compatible vocabulary: objects, predicates and attributes with index maps.

Object 0 is `__image__` and predicate 0 is `__in_image__`, as in sg2im. Visual Genome builds
its vocabulary from instance counts on the train split; COCO-Stuff and ADE20K use their fixed
class tables, so that class indices equal the dataset's own ids (as LostGAN's models expect).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from scene2img.errors import DataError, SceneGraphError

IMAGE_OBJECT = "__image__"
IN_IMAGE = "__in_image__"
_KEYS = ("object", "pred", "attribute")


@dataclass(frozen=True)
class Vocab:
    """Index <-> name maps. Gaps in a fixed class table are `None` in `*_idx_to_name`."""

    object_idx_to_name: list[str | None]
    pred_idx_to_name: list[str]
    attribute_idx_to_name: list[str]

    def __post_init__(self) -> None:
        if self.object_idx_to_name[:1] != [IMAGE_OBJECT]:
            raise DataError(f"vocab: object 0 must be {IMAGE_OBJECT!r}")
        if self.pred_idx_to_name[:1] != [IN_IMAGE]:
            raise DataError(f"vocab: predicate 0 must be {IN_IMAGE!r}")

    @property
    def object_name_to_idx(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.object_idx_to_name) if n is not None}

    @property
    def pred_name_to_idx(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.pred_idx_to_name)}

    @property
    def attribute_name_to_idx(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.attribute_idx_to_name)}

    @property
    def num_objects(self) -> int:
        return len(self.object_idx_to_name)

    @property
    def num_predicates(self) -> int:
        return len(self.pred_idx_to_name)

    @property
    def num_attributes(self) -> int:
        return len(self.attribute_idx_to_name)

    def to_json(self) -> dict:
        """The sg2im key layout: `{object,pred,attribute}_{name_to_idx,idx_to_name}`."""
        out = {}
        for key in _KEYS:
            names = getattr(self, f"{key}_idx_to_name")
            out[f"{key}_idx_to_name"] = names
            out[f"{key}_name_to_idx"] = {n: i for i, n in enumerate(names) if n is not None}
        return out

    @classmethod
    def from_json(cls, data: dict, where: str = "vocab.json") -> Vocab:
        try:
            return cls(
                object_idx_to_name=list(data["object_idx_to_name"]),
                pred_idx_to_name=list(data["pred_idx_to_name"]),
                attribute_idx_to_name=list(data.get("attribute_idx_to_name", [])),
            )
        except (KeyError, TypeError) as exc:
            raise DataError(f"{where}: not an sg2im vocabulary (missing {exc})") from None


def counted_names(counts: Counter[str], min_count: int) -> list[str]:
    """Names seen at least `min_count` times, most frequent first (ties by name: deterministic)."""
    return [n for n, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]


def fixed_object_table(class_table: dict[int, str]) -> list[str | None]:
    """A class table `{id: name}` as `object_idx_to_name`, index = id, 0 = `__image__`."""
    names: list[str | None] = [None] * (max(class_table) + 1)
    for idx, name in class_table.items():
        names[idx] = name
    names[0] = IMAGE_OBJECT
    return names


def with_reserved(first: str, names: Iterable[str]) -> list[str]:
    return [first, *(n for n in names if n != first)]


def check_graph(
    objects: np.ndarray, triples: np.ndarray, vocab: Vocab, max_objects: int, where: str
) -> None:
    """The scene-graph checks shared by training data and inference requests."""
    n = len(objects)
    if n == 0:
        raise SceneGraphError(f"{where}: the scene graph has no objects")
    if n > max_objects:
        raise SceneGraphError(
            f"{where}: {n} objects (with __image__) but the model takes at most {max_objects}; "
            "raise data.max_objects or remove objects"
        )
    bad = [int(o) for o in objects if not 0 <= o < vocab.num_objects
           or vocab.object_idx_to_name[o] is None]
    if bad:
        raise SceneGraphError(f"{where}: unknown object class index {bad[0]} "
                              f"(vocabulary has {vocab.num_objects} classes)")
    if len(triples):
        if triples[:, 1].min() < 0 or triples[:, 1].max() >= vocab.num_predicates:
            raise SceneGraphError(f"{where}: unknown predicate index in {triples.tolist()}")
        ends = triples[:, [0, 2]]
        if ends.min() < 0 or ends.max() >= n:
            raise SceneGraphError(
                f"{where}: a relationship points at object {int(ends.max())} but the graph has "
                f"only {n} objects (positions 0..{n - 1})"
            )
