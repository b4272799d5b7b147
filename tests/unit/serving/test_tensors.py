"""The one path from a scene graph to tensors: the dataset's item format, the checks, and the
layout the evaluation's predicted-layout mode and serving give the generator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import default_collate

from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.processed import load_vocab
from scene2img.data.vocab import Vocab
from scene2img.errors import SceneGraphError
from scene2img.evaluation.evaluator import Generated
from scene2img.models.boxes import clip_to_image
from scene2img.serving.pipeline import SceneToImage
from scene2img.serving.schema import SceneGraph, SceneObject
from scene2img.serving.tensors import graph_tensors
from scene2img.stages.evaluate import generate_fn


def record_graph(item: dict[str, torch.Tensor], vocab: Vocab) -> SceneGraph:
    """A dataset item's scene graph as a user would write it (no `__image__`, no
    `__in_image__`)."""
    n = int(item["obj_valid"].sum()) - 1
    objects = [SceneObject(vocab.object_idx_to_name[c],
                           [vocab.attribute_idx_to_name[a]
                            for a in item["attributes"][i].nonzero()[:, 0].tolist()])
               for i, c in enumerate(item["objects"][:n].tolist())]
    triples = item["triples"][item["triple_valid"]].tolist()
    rels = [(s, vocab.pred_idx_to_name[p], o) for s, p, o in triples if p != 0]
    return SceneGraph(objects, rels)


def test_a_graph_becomes_the_datasets_item(toy_vg: Path) -> None:
    vocab = load_vocab(toy_vg)
    dataset = SceneGraphDataset(toy_vg, "val", 16, vocab=vocab)
    for i in range(3):
        item = dataset[i]
        n = int(item["obj_valid"].sum())
        batch = graph_tensors(record_graph(item, vocab), vocab, 16)
        assert torch.equal(batch["objects"][0], item["objects"][:n])
        assert torch.equal(batch["attributes"][0], item["attributes"][:n])
        assert batch["obj_valid"].all() and batch["triple_valid"].all()
        ours = sorted(map(tuple, batch["triples"][0].tolist()))
        theirs = sorted(map(tuple, item["triples"][item["triple_valid"]].tolist()))
        assert ours == theirs  # the same __in_image__ triples, added once
        assert torch.equal(batch["boxes"][0, -1], item["boxes"][n - 1])  # __image__: whole image


def test_graphs_the_schema_would_refuse_are_refused_here_too(toy_vg: Path) -> None:
    vocab = load_vocab(toy_vg)
    name = next(n for n in vocab.object_idx_to_name[1:] if n)
    pred = vocab.pred_idx_to_name[1]
    with pytest.raises(SceneGraphError, match="points at object 1"):  # not at __image__
        graph_tensors(SceneGraph([SceneObject(name)], [(0, pred, 1)]), vocab, 16)
    with pytest.raises(SceneGraphError, match="no objects"):
        graph_tensors(SceneGraph([]), vocab, 16)
    with pytest.raises(SceneGraphError, match="at most 15"):
        graph_tensors(SceneGraph([SceneObject(name)] * 16), vocab, 16)


class DegenerateBoxes(nn.Module):
    """The layout model with its boxes replaced by a fixed box per class, each off the image or
    of negative size (what an undertrained box head can predict): clipped corner to corner,
    each would have a negative width or height."""

    BOXES = torch.tensor([[0.9, -0.2, -0.3, 0.5],  # negative width
                          [1.2, 0.5, -0.5, 0.3],  # right of the image, negative width
                          [0.1, 0.2, 0.5, -0.6],  # negative height
                          [0.5, 1.5, -0.6, -0.1]])  # below the image, both negative

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, objects, *rest):
        _, masks = self.model(objects, *rest)
        return self.BOXES.to(objects.device)[objects % len(self.BOXES)], masks


def test_evaluation_and_serving_give_the_generator_the_same_boxes(toy_coco, toy_coco_model):
    """Degenerate predicted boxes are clipped alike: the model evaluated in pred-layout mode
    is the model served."""
    model = SceneToImage.from_dir(toy_coco_model)
    model.layout_model = DegenerateBoxes(model.layout_model)
    dataset = SceneGraphDataset(toy_coco, "test", model.max_objects, vocab=model.vocab)
    items = [dataset[i] for i in range(2)]
    evaluated = generate_fn(model.generator, model.layout_model, "pred-layout", False, None)(
        default_collate(items), 0)
    assert isinstance(evaluated, Generated)
    for b, item in enumerate(items):
        n = int(item["obj_valid"].sum()) - 1  # the real objects, __image__ after them
        served = model.generate(model.parse(record_graph(item, model.vocab).to_json()), seed=0)
        expected = clip_to_image(DegenerateBoxes.BOXES[item["objects"][:n] % 4])
        assert (expected[:, 2:] == 0).any()  # the case this test is about
        assert torch.equal(evaluated.boxes[b, :n], torch.from_numpy(served.boxes))
        assert torch.equal(evaluated.boxes[b, :n], expected)
        assert (evaluated.boxes[b, :n, 2:] >= 0).all()
        # __image__ and padding keep the dataset's boxes
        assert torch.equal(evaluated.boxes[b, n:], item["boxes"][n:])
