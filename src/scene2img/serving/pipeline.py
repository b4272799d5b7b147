"""The end-to-end model: scene graph -> layout (boxes, masks) -> image.

`SceneToImage` holds the layout model, the EMA image generator, their vocabulary and the
training set's per-class attribute statistics. `generate` fills in missing attributes (sampled,
seeded), predicts the layout, keeps any pinned boxes, and paints the image. Everything random is
recorded in a JSON-able `state` (image latent, per-object latents, sampled attributes, boxes), so
an edit can regenerate with the untouched objects' latents and boxes kept.

It is what `scene2img generate` / `edit` and the registered MLflow model run. An image model
trained on ground-truth masks (`train_image.g.gt_masks`) is given the layout model's predicted
masks, as in the evaluation's predicted-layout mode; other image models regress their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scene2img.data.vocab import Vocab
from scene2img.errors import ModelError
from scene2img.evaluation.images import to_uint8
from scene2img.serving.attributes import sample_attributes
from scene2img.serving.schema import SceneGraph, SceneObject, parse_scene_graph

LAYOUT_FILE = "layout_model.pt"
IMAGE_FILE = "image_model.pt"
STATS_FILE = "attribute_stats.json"
STATE_VERSION = 1


@dataclass
class Generation:
    image: np.ndarray  # [S, S, 3] uint8
    graph: SceneGraph  # as generated: sampled attributes filled in, boxes pinned
    boxes: np.ndarray  # [n, 4] normalised x, y, w, h, one per user object
    masks: np.ndarray  # [n, M, M] the layout model's masks, in box coordinates
    state: dict[str, Any]  # latents and layout, JSON-able: the input of an edit

    def layout_json(self) -> list[dict[str, Any]]:
        return [{"name": o.name, "attributes": o.attributes or [],
                 "box": [round(float(v), 4) for v in b]}
                for o, b in zip(self.graph.objects, self.boxes, strict=True)]


class SceneToImage:
    """Layout model + image generator + vocabulary + attribute statistics."""

    def __init__(self, layout_model: torch.nn.Module, layout_config: dict, generator: torch.nn.Module,
                 generator_config: dict, vocab: Vocab, attribute_stats: dict,
                 device: str | torch.device = "cpu") -> None:
        self.layout_model = layout_model.eval().to(device)
        self.layout_config = layout_config
        self.generator = generator.eval().to(device)
        self.generator_config = generator_config
        self.vocab = vocab
        self.attribute_stats = attribute_stats
        self.device = torch.device(device)
        self.max_objects = min(layout_config["max_objects"], generator_config["max_objects"])
        from scene2img.training.image_module import takes_masks

        self.takes_masks = takes_masks(generator_config)

    @classmethod
    def from_files(cls, layout_path: str | Path, image_path: str | Path,
                   stats_path: str | Path | None = None,
                   device: str | torch.device = "cpu") -> SceneToImage:
        """Load the two exports (weights_only) and check they share one vocabulary."""
        from scene2img.stages.train_image import load_generator
        from scene2img.training.image_module import check_mask_sizes
        from scene2img.training.layout_export import load_layout_model

        layout, vocab, layout_config = load_layout_model(layout_path)
        generator, gen_vocab, gen_config = load_generator(image_path)
        check_mask_sizes(gen_config, layout_config, f"{image_path} / {layout_path}")
        if gen_vocab.to_json() != vocab.to_json():
            raise ModelError(f"{layout_path} and {image_path} were trained on different "
                             "vocabularies; train both on the same processed dataset")
        stats = json.loads(Path(stats_path).read_text()) if stats_path else {}
        return cls(layout, layout_config, generator, gen_config, vocab, stats, device)

    @classmethod
    def from_dir(cls, folder: str | Path, device: str | torch.device = "cpu") -> SceneToImage:
        """A model folder: `layout_model.pt`, `image_model.pt`, `attribute_stats.json`."""
        folder = Path(folder)
        stats = folder / STATS_FILE
        return cls.from_files(folder / LAYOUT_FILE, folder / IMAGE_FILE,
                              stats if stats.exists() else None, device)

    @property
    def image_size(self) -> int:
        return int(self.generator_config["image_size"])

    def parse(self, data: str | bytes | dict, where: str = "scene graph") -> SceneGraph:
        return parse_scene_graph(data, self.vocab, self.max_objects, where)

    # ----------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        graph: SceneGraph,  # validated (see `parse`)
        seed: int = 0,  # seeds attribute sampling and the latents not given in `keep`
        keep: dict[str, Any] | None = None,  # per object: {"z": [...], "box": [...]} to reuse
    ) -> Generation:
        """Generate one image. `keep["objects"][i]` (or None) holds object i's kept latent and
        box; `keep["z_img"]` the image latent (see `scene2img.serving.edit`)."""
        keep = keep or {}
        kept = keep.get("objects") or [None] * len(graph.objects)
        rng = np.random.default_rng(seed)
        objects = []
        for obj, k in zip(graph.objects, kept, strict=True):
            attrs = obj.attributes
            if attrs is None:
                attrs = (k or {}).get("attributes") or sample_attributes(
                    self.attribute_stats, obj.name, rng)
            box = obj.box or ((k or {}).get("box") and tuple((k or {})["box"]))
            objects.append(SceneObject(obj.name, list(attrs), box))
        graph = SceneGraph(objects, list(graph.relationships))

        boxes, masks = self._layout(graph)
        for i, obj in enumerate(graph.objects):
            if obj.box is not None:
                boxes[i] = torch.tensor(obj.box)
        n = len(graph.objects)
        gen = torch.Generator().manual_seed(seed)
        z_img, z_obj = self.generator.sample_latents(1, n + 1, generator=gen, device="cpu")
        if keep.get("z_img") is not None:
            z_img = torch.tensor(keep["z_img"], dtype=torch.float32)[None]
        for i, k in enumerate(kept):
            if k and k.get("z") is not None:
                z_obj[0, i] = torch.tensor(k["z"], dtype=torch.float32)
        image = self._paint(graph, boxes, z_img, z_obj, masks)
        state = {
            "version": STATE_VERSION,
            "seed": seed,
            "graph": graph.to_json(),
            "z_img": z_img[0].tolist(),
            "objects": [{"z": z_obj[0, i].tolist(), "box": boxes[i].tolist(),
                         "attributes": graph.objects[i].attributes} for i in range(n)],
        }
        return Generation(image, graph, boxes.numpy(), masks.numpy(), state)

    def _indices(self, graph: SceneGraph) -> tuple[list[int], list[tuple[int, int, int]],
                                                   list[list[int]]]:
        o2i, p2i, a2i = (self.vocab.object_name_to_idx, self.vocab.pred_name_to_idx,
                         self.vocab.attribute_name_to_idx)
        objs = [o2i[o.name] for o in graph.objects]
        trip = [(s, p2i[p], o) for s, p, o in graph.relationships]
        attrs = [[a2i[a] for a in (o.attributes or [])] for o in graph.objects]
        return objs, trip, attrs

    def _layout(self, graph: SceneGraph) -> tuple[torch.Tensor, torch.Tensor]:
        from scene2img.training.layout_export import predict_layout

        objs, trip, attrs = self._indices(graph)
        boxes, masks = predict_layout(self.layout_model, self.vocab, self.layout_config, objs,
                                      trip, attrs)
        return boxes.cpu(), masks.cpu()

    def _paint(self, graph: SceneGraph, boxes: torch.Tensor, z_img: torch.Tensor,
               z_obj: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
        objs, _, attrs = self._indices(graph)
        n = len(objs)
        given = None  # [1, n + 1, M, M]: the layout model's masks, none for __image__
        if self.takes_masks:
            given = torch.cat([masks.float(), masks.new_zeros(1, *masks.shape[1:])])[None]
        objects = torch.tensor([*objs, self.vocab.object_name_to_idx["__image__"]])[None]
        all_boxes = torch.cat([boxes, torch.tensor([[0.0, 0.0, 1.0, 1.0]])])[None]
        attributes = torch.zeros(1, n + 1, self.vocab.num_attributes)
        for i, a in enumerate(attrs):
            attributes[0, i, a] = 1.0
        d = self.device
        image = self.generator(objects.to(d), all_boxes.to(d), torch.ones(1, n + 1, dtype=torch.bool,
                               device=d), attributes.to(d), z_img.to(d), z_obj.to(d),
                               None if given is None else given.to(d))
        return to_uint8(image.float())[0].permute(1, 2, 0).cpu().numpy()
