"""BachGAN served: a layout of foreground objects -> retrieved backgrounds -> fusion -> image.

`LayoutToImage` holds an exported BachGAN (`training.export.load_bachgan`): the generator, its
vocabulary and its memory bank (the training split's label maps, encoded once at the export's
grid: `models.bachgan.BachGANWithMemory`, which evaluation runs too). A request is a scene graph in the usual
format (`serving.schema`) whose objects are foreground classes, each with its box:

    {"objects": [{"name": "boat", "box": [0.1, 0.5, 0.4, 0.3]},
                 {"name": "person", "box": [0.6, 0.3, 0.2, 0.5]}]}

`parse` refuses, in one line naming the object, a background class (the export's class split:
BachGAN takes foreground objects only and retrieves the background), an object without a box
(there is no layout model: the boxes are the layout) and relationships (nothing reads them).
`generate` turns the graph into tensors on the one path (`serving.tensors.graph_tensors`),
retrieves the top `m` bank maps for its boxes (none excluded), fuses them with the layout and
paints the image. The `Generation` also carries the background: the fused label map (argmax per
pixel, class colours, at the image's size) and which training scenes were retrieved (bank
position, image id, score).

BachGAN's generator has no latent: the same layout gives the same image whatever the seed (the
seed is accepted, and recorded, so that requests look like the other family's). It has no
upscaler, and generations cannot be edited (`editable`): `generate --state-out`, `edit` and the
dialog refuse it.

It has the interface `serving.commands.generate_files` and the served pyfunc use
(`limits`, `vocab`, `parse`, `check_upscale`, `generate`, `upscaled`), so
`scene2img generate --layout layout.json --model models:/scene2img-bachgan@champion` runs the
same code as a LostGAN model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from scene2img.errors import ModelError, SceneGraphError
from scene2img.evaluation.images import to_uint8
from scene2img.models.bachgan import BachGANWithMemory
from scene2img.models.palette import label_colours
from scene2img.serving.pipeline import Generation
from scene2img.serving.schema import SceneGraph, default_limits, parse_scene_graph, show
from scene2img.serving.tensors import graph_tensors
from scene2img.training.export import BACHGAN_MODEL_FILE, BachGANExport, load_bachgan

if TYPE_CHECKING:
    from scene2img.config import ServeParams

__all__ = ["LayoutToImage"]

BOX_MASK = 16  # the side of the (all-ones) masks a BachGAN generation reports: boxes are filled


class LayoutToImage:
    """An exported BachGAN with its memory bank, serving foreground-only layouts."""

    editable = False  # no latents, no state: `edit`, `generate --state-out` and dialogs refuse it
    upscale_factor = None  # no upscaler

    def __init__(self, export: BachGANExport, device: str | torch.device = "cpu",
                 limits: ServeParams | None = None) -> None:
        config = export.config
        self.device = torch.device(device)
        self.generator = export.generator.eval().to(self.device)
        self.vocab, self.config = export.vocab, config
        self.image_ids = export.bank.image_ids
        self.m = int(config["retrieval"]["m"])
        self.painter = BachGANWithMemory(self.generator, export.bank.maps, self.m,
                                         config["retrieval"]["grid"])  # the bank encoded once
        self.foreground = frozenset(config["foreground"])
        self.max_objects = int(config["max_objects"])
        self.limits = limits or default_limits()  # params.yaml: serve

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device = "cpu",
                  limits: ServeParams | None = None) -> LayoutToImage:
        """`bachgan_model.pt` (weights_only), its memory bank encoded for retrieval."""
        return cls(load_bachgan(path), device, limits)

    @classmethod
    def from_dir(cls, folder: str | Path, device: str | torch.device = "cpu",
                 limits: ServeParams | None = None) -> LayoutToImage:
        """A model folder holding `bachgan_model.pt`."""
        return cls.from_file(Path(folder) / BACHGAN_MODEL_FILE, device, limits)

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    def check_upscale(self, value: Any, where: str = "upscale") -> int:
        """None (or NaN, pandas' missing value) and 1: the image as generated; anything else is
        refused (BachGAN models have no upscaler)."""
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or value == 1 and not isinstance(value, bool) \
                or isinstance(value, float) and math.isnan(value):
            return 1
        raise SceneGraphError(f"{where}: {show(value)}: a BachGAN model has no upscaler; leave "
                              "it out")

    def upscaled(self, generation: Generation, factor: int) -> Generation:
        """`generation` as it is (`check_upscale` lets only 1 through)."""
        return generation

    def parse(self, data: Any, where: str = "scene graph") -> SceneGraph:
        """A foreground-only layout: the scene-graph format, every object a foreground class
        with its box, no relationships."""
        graph = parse_scene_graph(data, self.vocab, self.max_objects, where, self.limits)
        split = self.config.get("class_split", "the class split")
        for i, obj in enumerate(graph.objects):
            if self.vocab.object_name_to_idx[obj.name] not in self.foreground:
                raise SceneGraphError(f"{where}: objects[{i}]: {obj.name!r} is a background "
                                      f"class ({split}); BachGAN takes foreground objects only "
                                      "and retrieves the background: leave it out")
            if obj.box is None:
                raise SceneGraphError(f"{where}: objects[{i}] ({obj.name!r}) has no box; "
                                      "BachGAN places each object by its box: give "
                                      "\"box\": [x, y, w, h]")
        if graph.relationships:
            raise SceneGraphError(f"{where}: relationships: BachGAN places objects by their "
                                  "boxes and reads no relationships; leave them out")
        return graph

    @torch.no_grad()
    def generate(
        self,
        graph: SceneGraph,  # validated by `parse`
        seed: int = 0,  # recorded; BachGAN's generator has no latent
        keep: dict[str, Any] | None = None,  # not supported (no latents to keep)
    ) -> Generation:
        """Retrieve, fuse, paint: one image [S, S, 3] uint8 and its background."""
        if keep:
            raise SceneGraphError("a BachGAN generation cannot be edited (no latents to keep)")
        n = len(graph.objects)
        batch = graph_tensors(graph, self.vocab, self.max_objects)  # `__image__` last, [1, n+1]
        boxes = batch["boxes"]
        image, fused, index, scores = self.painter(batch["objects"], boxes, batch["obj_valid"])
        if not torch.isfinite(image).all():
            raise ModelError("the generator produced non-finite pixels; check the model's weights")
        picture = label_colours(fused.argmax(1), fused.shape[1], self.image_size)  # [1,3,S,S]
        retrieved = [{"index": int(i), "image_id": self.image_ids[int(i)],
                      "score": round(float(v), 6)} for i, v in zip(index[0], scores[0],
                                                                   strict=True)]
        return Generation(
            image=to_uint8(image.float())[0].permute(1, 2, 0).cpu().numpy(),
            graph=graph, boxes=boxes[0, :n].numpy(),
            masks=np.ones((n, BOX_MASK, BOX_MASK), np.float32),
            state={"seed": seed}, given=graph,
            background=to_uint8(picture)[0].permute(1, 2, 0).numpy(), retrieved=retrieved)
