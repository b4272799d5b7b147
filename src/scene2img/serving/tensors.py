"""Scene graphs for inference, as tensors, and the layout model run on them.

A scene graph for inference is what a user writes: objects (class names or indices, without
`__image__`), relationships `(subject position, predicate, object position)` among them, and
optional attributes per object. `prepare_graph` checks it with the same `check_graph` that guards
training data, then adds the `__image__` object and its `__in_image__` relationships as
preprocessing does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from scene2img.data.dataset import check_graph
from scene2img.data.vocab import IMAGE_OBJECT, IN_IMAGE, Vocab
from scene2img.errors import SceneGraphError
from scene2img.models.layout import LayoutModel

__all__ = ["predict_layout", "prepare_graph"]


def _index(value: int | str, table: dict[str, int], size: int, kind: str, where: str) -> int:
    if isinstance(value, str):
        if value not in table:
            raise SceneGraphError(f"{where}: unknown {kind} {value!r}; the model knows "
                                  f"{len(table)} {kind}s, e.g. {sorted(table)[:8]}")
        return table[value]
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise SceneGraphError(f"{where}: a {kind} must be a name or an index, got {value!r}")
    return int(value)


def prepare_graph(
    vocab: Vocab,
    max_objects: int,  # the model's maximum, __image__ included
    objects: Sequence[int | str],  # class names or indices, without __image__
    triples: Sequence[Sequence[int | str]] = (),  # (subject position, predicate, object position)
    attributes: Sequence[Sequence[int | str]] | None = None,  # per object: names or indices
    where: str = "scene graph",
) -> dict[str, torch.Tensor]:
    """Check a user's scene graph and turn it into a batch of one (the dataset's item format)."""
    obj_table, pred_table = vocab.object_name_to_idx, vocab.pred_name_to_idx
    objs = np.array([_index(o, obj_table, vocab.num_objects, "object class", where)
                     for o in objects], dtype=np.int64)
    trip = np.zeros((len(triples), 3), dtype=np.int64)
    for i, t in enumerate(triples):
        if len(t) != 3:
            raise SceneGraphError(f"{where}: relationship {i} {list(t)!r} is not "
                                  "(subject, predicate, object)")
        s, p, o = t
        if not all(isinstance(x, int | np.integer) and not isinstance(x, bool) for x in (s, o)):
            raise SceneGraphError(f"{where}: relationship {i} {list(t)!r}: subject and object "
                                  "are object positions (integers)")
        trip[i] = (int(s), _index(p, pred_table, vocab.num_predicates, "predicate", where), int(o))
    if (objs == obj_table[IMAGE_OBJECT]).any():
        raise SceneGraphError(f"{where}: {IMAGE_OBJECT} is added by the model; leave it out")
    # The user's graph first (a relationship to a missing object must not hit __image__) ...
    check_graph(objs, trip, vocab, max_objects=len(objs), where=where)
    if len(objs) + 1 > max_objects:
        raise SceneGraphError(f"{where}: {len(objs)} objects but the model takes at most "
                              f"{max_objects - 1} (plus {IMAGE_OBJECT}); remove objects")
    # ... then __image__ last, related to every object by __in_image__, as preprocessing does.
    n = len(objs)
    image = obj_table[IMAGE_OBJECT]
    in_image = pred_table[IN_IMAGE]
    objs = np.append(objs, image)
    trip = np.concatenate([trip, [[i, in_image, n] for i in range(n)]]).astype(np.int64)
    check_graph(objs, trip, vocab, max_objects, where)

    attrs = torch.zeros(1, n + 1, vocab.num_attributes)
    if attributes is not None:
        if len(attributes) != n:
            raise SceneGraphError(f"{where}: {len(attributes)} attribute lists for {n} objects")
        table = vocab.attribute_name_to_idx
        for j, names in enumerate(attributes):
            for a in names:
                k = _index(a, table, vocab.num_attributes, "attribute", where)
                if not 0 <= k < vocab.num_attributes:
                    raise SceneGraphError(f"{where}: unknown attribute index {k} (vocabulary has "
                                          f"{vocab.num_attributes})")
                attrs[0, j, k] = 1.0
    return {
        "objects": torch.from_numpy(objs)[None],
        "obj_valid": torch.ones(1, n + 1, dtype=torch.bool),
        "triples": torch.from_numpy(trip)[None],
        "triple_valid": torch.ones(1, len(trip), dtype=torch.bool),
        "attributes": attrs,
    }


@torch.no_grad()
def predict_layout(
    model: LayoutModel,
    vocab: Vocab,
    config: dict[str, Any],  # from training.export.load_layout_model
    objects: Sequence[int | str],
    triples: Sequence[Sequence[int | str]] = (),
    attributes: Sequence[Sequence[int | str]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes [n, 4] (xywh, clamped to the image) and masks [n, M, M] for the user's n objects."""
    batch = prepare_graph(vocab, config["max_objects"], objects, triples, attributes)
    boxes, masks = model(**batch)
    n = len(objects)
    x0y0 = boxes[0, :n, :2].clamp(0, 1)
    x1y1 = (boxes[0, :n, :2] + boxes[0, :n, 2:]).clamp(0, 1)
    return torch.cat([x0y0, (x1y1 - x0y0).clamp(min=0)], dim=-1), masks[0, :n]
