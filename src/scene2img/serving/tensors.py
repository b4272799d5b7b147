"""The one path from a scene graph to tensors, and the layout model run on them.

A validated `SceneGraph` (`scene2img.serving.schema`: names checked against the vocabulary, limits
applied) becomes a batch of one in the dataset's item format (`scene2img.data.dataset`) in
`graph_tensors`: names to indices, the `__image__` object (last, whole-image box) and its
`__in_image__` relationships added as preprocessing adds them, attributes multi-hot, and the
graph checked with the same `check_graph` that guards training data.

`predict_layout` runs the layout model on such a batch, or on a batch of the dataset, and returns
what the image generator is given: each real object's predicted box clipped to the image
(`models.boxes.clip_to_image`) and its mask; `__image__` and padding keep the batch's boxes and
get no mask. Serving (`SceneToImage.generate`, edits) and the evaluation's predicted-layout mode
both call it, so the evaluated and the served model place objects alike, degenerate boxes
included.

It lives in serving because its input is the serving schema's `SceneGraph`; the evaluation stage
(`stages/evaluate.py`) sits above serving and imports it from here.
"""

from __future__ import annotations

import numpy as np
import torch

from scene2img.data.vocab import IMAGE_OBJECT, IN_IMAGE, Vocab, check_graph
from scene2img.errors import SceneGraphError
from scene2img.models.boxes import clip_to_image, real_objects
from scene2img.serving.schema import SceneGraph

__all__ = ["graph_tensors", "predict_layout"]

WHOLE_IMAGE = (0.0, 0.0, 1.0, 1.0)  # the __image__ object's box, as preprocessing stores it


def graph_tensors(
    graph: SceneGraph,  # validated against `vocab` (`parse_scene_graph`)
    vocab: Vocab,
    max_objects: int,  # the model's maximum, __image__ included
    where: str = "scene graph",  # named in error messages
) -> dict[str, torch.Tensor]:
    """A batch of one: objects [1, n + 1] (`__image__` last), boxes [1, n + 1, 4] (pinned boxes
    where the graph has them, zeros elsewhere, the whole image for `__image__`), obj_valid,
    triples [1, T, 3] (the graph's, then `(i, __in_image__, n)` for each object), triple_valid,
    attributes [1, n + 1, A] multi-hot."""
    o2i, p2i, a2i = vocab.object_name_to_idx, vocab.pred_name_to_idx, vocab.attribute_name_to_idx
    n = len(graph.objects)
    objects = np.array([o2i[o.name] for o in graph.objects], np.int64)
    triples = np.array([(s, p2i[p], o) for s, p, o in graph.relationships],
                       np.int64).reshape(-1, 3)
    # The user's graph first (a relationship to a missing object must not hit __image__) ...
    check_graph(objects, triples, vocab, max_objects=n, where=where)
    if n + 1 > max_objects:
        raise SceneGraphError(f"{where}: {n} objects but the model takes at most "
                              f"{max_objects - 1} (plus {IMAGE_OBJECT}); remove objects")
    # ... then __image__ last, related to every object by __in_image__, as preprocessing does.
    objects = np.append(objects, o2i[IMAGE_OBJECT])
    triples = np.concatenate([triples, [(i, p2i[IN_IMAGE], n) for i in range(n)]]).astype(np.int64)
    check_graph(objects, triples, vocab, max_objects, where)
    boxes = torch.zeros(1, n + 1, 4)
    for i, obj in enumerate(graph.objects):
        if obj.box is not None:
            boxes[0, i] = torch.tensor(obj.box)
    boxes[0, n] = torch.tensor(WHOLE_IMAGE)
    attributes = torch.zeros(1, n + 1, vocab.num_attributes)
    for i, obj in enumerate(graph.objects):
        for a in obj.attributes or []:
            attributes[0, i, a2i[a]] = 1.0
    return {
        "objects": torch.from_numpy(objects)[None],
        "boxes": boxes,
        "obj_valid": torch.ones(1, n + 1, dtype=torch.bool),
        "triples": torch.from_numpy(triples)[None],
        "triple_valid": torch.ones(1, len(triples), dtype=torch.bool),
        "attributes": attributes,
    }


@torch.no_grad()
def predict_layout(
    layout_model: torch.nn.Module,  # an exported LayoutModel (`training.export`)
    batch: dict[str, torch.Tensor],  # `graph_tensors` or a dataset batch, on the model's device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes [B, O, 4] xywh and masks [B, O, M, M] for the image generator: real objects get
    their predicted box clipped to the image and their predicted mask; `__image__` and padding
    keep `batch["boxes"]` and get zero masks."""
    boxes, masks = layout_model(batch["objects"], batch["obj_valid"], batch["triples"],
                                batch["triple_valid"], batch["attributes"])
    real = real_objects(batch["objects"], batch["obj_valid"])  # [B, O]
    boxes = torch.where(real[..., None], clip_to_image(boxes), batch["boxes"])
    return boxes, masks * real[..., None, None].to(masks.dtype)
