"""The end-to-end model: scene graph -> layout (boxes, masks) -> image.

`SceneToImage` holds the layout model, the EMA image generator, their vocabulary and the
training set's per-class attribute statistics. `generate` fills in missing attributes (sampled,
seeded), predicts the layout, keeps any pinned boxes, and paints the image. Everything random is
recorded in a JSON-able `state` (image latent, per-object latents, sampled attributes, boxes), so
an edit can regenerate with the untouched objects' latents and boxes kept. The state also records
which model wrote it (`SceneToImage.fingerprint`) and the sha256 of the scene graph it was
generated from; `check_state` refuses one that does not fit the model, before any work.

It is what `scene2img generate` / `edit` and the registered MLflow model run. An image model
trained on ground-truth masks (`train_image.g.gt_masks`) is given the layout model's predicted
masks, as in the evaluation's predicted-layout mode; other image models regress their own.

A model may also hold an RDN upscaler (`upscaler_model.pt`, from `train-upscaler`): `upscaled`
then takes a generated image up by the upscaler's factor (x2 or x4, as it was trained), after
generation, from the 8-bit image as it would be saved (what the upscaler was trained on: 8-bit
bicubic downscales). `check_upscale` refuses, before any work, a factor the model cannot give.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from scene2img.data.vocab import Vocab
from scene2img.errors import ModelError, SceneGraphError
from scene2img.evaluation.images import to_uint8, to_unit_range
from scene2img.serving.attributes import sample_attributes
from scene2img.serving.schema import (
    SceneGraph,
    SceneObject,
    check_box,
    check_seed,
    default_limits,
    parse_scene_graph,
    show,
)
from scene2img.serving.tensors import graph_tensors, predict_layout
from scene2img.training.export import (
    ATTRIBUTE_STATS_FILE,
    IMAGE_MODEL_FILE,
    LAYOUT_MODEL_FILE,
    UPSCALER_MODEL_FILE,
    check_mask_sizes,
    load_generator,
    load_layout_model,
    load_upscaler,
    takes_masks,
)

if TYPE_CHECKING:
    from scene2img.config import ServeParams
    from scene2img.models.upscaler import RDN

STATE_VERSION = 2  # 2: records the model's fingerprint, the graph's sha256 and a checksum
STATE_KEYS = {"version", "model", "seed", "step", "graph", "graph_sha256", "z_img", "objects"}
STATE_CHECKSUM = "sha256"  # of the canonical JSON of the other keys, added when written
MAX_LATENT = 50.0  # latents are standard normal: larger values are not from a generation


@dataclasses.dataclass
class Generation:
    image: np.ndarray  # [S, S, 3] uint8
    graph: SceneGraph  # as generated: sampled attributes filled in, boxes pinned
    boxes: np.ndarray  # [n, 4] normalised x, y, w, h, one per user object
    masks: np.ndarray  # [n, M, M] the layout model's masks, in box coordinates
    state: dict[str, Any]  # latents and layout, JSON-able: the input of an edit
    given: SceneGraph  # the graph as given (its sha256 is in the state): what an edit writes
    upscale: int = 1  # the factor `image` was upscaled by (`SceneToImage.upscaled`); 1: as painted
    # BachGAN (`serving.bachgan`): the background it was painted from
    background: np.ndarray | None = None  # [S, S, 3] uint8: the fused label map in class colours
    retrieved: list[dict[str, Any]] | None = None  # the retrieved scenes: index, image_id, score

    def layout_json(self) -> list[dict[str, Any]]:
        return [{"name": o.name, "attributes": o.attributes or [],
                 "box": [round(float(v), 4) for v in b]}
                for o, b in zip(self.graph.objects, self.boxes, strict=True)]


class SceneToImage:
    """Layout model + image generator + vocabulary + attribute statistics (+ an upscaler)."""

    editable = True  # generations carry latents: `edit` and the dialog can start from them

    def __init__(self, layout_model: torch.nn.Module, layout_config: dict, generator: torch.nn.Module,
                 generator_config: dict, vocab: Vocab, attribute_stats: dict,
                 device: str | torch.device = "cpu", limits: ServeParams | None = None,
                 upscaler: RDN | None = None) -> None:
        self.layout_model = layout_model.eval().to(device)
        self.layout_config = layout_config
        self.generator = generator.eval().to(device)
        self.generator_config = generator_config
        self.vocab = vocab
        self.attribute_stats = attribute_stats
        self.device = torch.device(device)
        self.max_objects = min(layout_config["max_objects"], generator_config["max_objects"])
        self.takes_masks = takes_masks(generator_config)
        self.limits = limits or default_limits()  # params.yaml: serve
        self.upscaler = upscaler.eval().to(device) if upscaler is not None else None

    @classmethod
    def from_files(cls, layout_path: str | Path, image_path: str | Path,
                   stats_path: str | Path | None = None,
                   device: str | torch.device = "cpu",
                   limits: ServeParams | None = None,
                   upscaler_path: str | Path | None = None) -> SceneToImage:
        """Load the two exports (weights_only) and check they share one vocabulary; and the
        upscaler's export when given (any vocabulary: it sees only pixels)."""
        layout, vocab, layout_config = load_layout_model(layout_path)
        generator, gen_vocab, gen_config = load_generator(image_path)
        check_mask_sizes(gen_config, layout_config, f"{image_path} / {layout_path}")
        if gen_vocab.to_json() != vocab.to_json():
            raise ModelError(f"{layout_path} and {image_path} were trained on different "
                             "vocabularies; train both on the same processed dataset")
        stats = json.loads(Path(stats_path).read_text()) if stats_path else {}
        upscaler = load_upscaler(upscaler_path)[0] if upscaler_path is not None else None
        return cls(layout, layout_config, generator, gen_config, vocab, stats, device, limits,
                   upscaler)

    @classmethod
    def from_dir(cls, folder: str | Path, device: str | torch.device = "cpu",
                 limits: ServeParams | None = None) -> SceneToImage:
        """A model folder: `layout_model.pt`, `image_model.pt`, `attribute_stats.json` and,
        optionally, `upscaler_model.pt`."""
        folder = Path(folder)
        stats, upscaler = folder / ATTRIBUTE_STATS_FILE, folder / UPSCALER_MODEL_FILE
        return cls.from_files(folder / LAYOUT_MODEL_FILE, folder / IMAGE_MODEL_FILE,
                              stats if stats.exists() else None, device, limits,
                              upscaler if upscaler.exists() else None)

    @property
    def image_size(self) -> int:
        return int(self.generator_config["image_size"])

    @property
    def fingerprint(self) -> str:
        """Identifies what a state's latents and names fit: vocabulary and both architectures
        (not the weights: a retrained model of the same shape can edit the same states)."""
        text = json.dumps({"vocab": self.vocab.to_json(), "layout": self.layout_config,
                           "generator": self.generator_config}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def upscale_factor(self) -> int | None:
        """The factor `upscaled` takes images up by (2 or 4); None without an upscaler."""
        return None if self.upscaler is None else int(self.upscaler.scale)

    def check_upscale(self, value: Any, where: str = "upscale") -> int:
        """The upscaling factor asked for, checked before any work: None (or NaN, pandas'
        missing value) and 1 are "as generated" (1); otherwise the upscaler's own factor."""
        if isinstance(value, np.generic):  # what pandas hands over
            value = value.item()
        if value is None or isinstance(value, float) and math.isnan(value):
            return 1
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # pandas makes floats of an integer column with a missing value
        factor = self.upscale_factor
        if not isinstance(value, int) or isinstance(value, bool):
            raise SceneGraphError(
                f"{where}: {show(value)} is not an upscaling factor; " + (
                    f"give {factor} (this model's upscaler is x{factor}) or leave it out"
                    if factor else "this model has no upscaler: leave it out"))
        if value == 1:
            return 1
        if factor is None:
            raise ModelError(f"{where}: {show(value)}: this model has no upscaler; register it "
                             "with one (`scene2img register --upscaler-model upscaler_model.pt`, "
                             "or put upscaler_model.pt in the model folder) or leave it out")
        if value != factor:
            raise SceneGraphError(f"{where}: {show(value)}: this model's upscaler was trained "
                                  f"for x{factor}; give {factor} or leave it out")
        return value

    def parse(self, data: Any, where: str = "scene graph") -> SceneGraph:
        """Validate a scene graph against this model's vocabulary and `self.limits`."""
        return parse_scene_graph(data, self.vocab, self.max_objects, where, self.limits)

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
        given, graph_sha256 = graph, graph.sha256()  # what an edit checks its --graph by
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

        n = len(graph.objects)
        batch = {k: v.to(self.device) for k, v in
                 graph_tensors(graph, self.vocab, self.max_objects).items()}
        boxes, masks = predict_layout(self.layout_model, batch)  # [1, n + 1, 4], [1, n + 1, M, M]
        pinned = torch.tensor([o.box is not None for o in graph.objects] + [False],
                              device=self.device)
        boxes = torch.where(pinned[None, :, None], batch["boxes"], boxes)
        gen = torch.Generator().manual_seed(seed)
        z_img, z_obj = self.generator.sample_latents(1, n + 1, generator=gen, device="cpu")
        if keep.get("z_img") is not None:
            z_img = torch.tensor(keep["z_img"], dtype=torch.float32)[None]
        for i, k in enumerate(kept):
            if k and k.get("z") is not None:
                z_obj[0, i] = torch.tensor(k["z"], dtype=torch.float32)
        image = self._paint(batch, boxes, masks, z_img, z_obj)
        boxes, masks = boxes[0, :n].cpu(), masks[0, :n].cpu()  # the user's objects
        state = {
            "version": STATE_VERSION,
            "model": self.fingerprint,
            "seed": seed,
            "step": 0,
            "graph_sha256": graph_sha256,
            "graph": graph.to_json(),
            "z_img": z_img[0].tolist(),
            "objects": [{"z": z_obj[0, i].tolist(), "box": boxes[i].tolist(),
                         "attributes": graph.objects[i].attributes} for i in range(n)],
        }
        return Generation(image, graph, boxes.numpy(), masks.numpy(), state, given)

    @torch.no_grad()
    def upscaled(
        self,
        generation: Generation,  # as generated (`upscale` 1)
        factor: int,  # checked by `check_upscale`; 1 returns `generation` as it is
    ) -> Generation:
        """The generation with its image taken up by the upscaler: [S, S, 3] -> [fS, fS, 3]."""
        if factor == 1:
            return generation
        if self.upscaler is None or factor != self.upscale_factor or generation.upscale != 1:
            raise ModelError(f"upscale {factor}: not this model's factor "
                             f"({self.upscale_factor}); check it with check_upscale first")
        image = torch.from_numpy(generation.image).permute(2, 0, 1)[None].to(self.device)
        lr = (to_unit_range(image) + 1) / 2  # [1, 3, S, S] in [0, 1], as the RDN was trained
        sr = self.upscaler(lr)  # [1, 3, fS, fS], [0, 1]
        if not torch.isfinite(sr).all():
            raise ModelError("the upscaler produced non-finite pixels; check its weights")
        pixels = to_uint8(sr.float() * 2 - 1)[0].permute(1, 2, 0).cpu().numpy()
        return dataclasses.replace(generation, image=pixels, upscale=factor)

    def check_state(self, state: Any, where: str = "state") -> dict[str, Any]:
        """Refuse, with one line naming the field, a state this model cannot edit from: another
        format version or model, a graph that does not parse, latents of the wrong size or not
        finite, boxes outside the unit square, lists that do not match the graph."""
        if not isinstance(state, dict):
            raise SceneGraphError(f"{where}: not a scene2img generation state (a JSON object "
                                  "written by `generate --state-out`)")
        version = state.get("version")
        if version != STATE_VERSION or isinstance(version, bool):
            old = isinstance(version, int) and not isinstance(version, bool) \
                and 0 < version < STATE_VERSION
            raise SceneGraphError(
                f"{where}: written by an older scene2img (state version {version}); generate "
                "again with --state-out" if old else
                f"{where}: not a scene2img generation state of version {STATE_VERSION} "
                f"(version {show(version)})")
        missing = sorted(STATE_KEYS - set(state))
        if missing:
            raise SceneGraphError(f"{where}: missing {', '.join(missing)}; not a complete state")
        if state["model"] != self.fingerprint:
            raise ModelError(f"{where}: written by another model (fingerprint "
                             f"{show(state['model'])}, this model's is {self.fingerprint}); edit "
                             "with the model that generated it, or generate again")
        if check_seed(state["seed"], f"{where}: seed") is None:
            raise SceneGraphError(f"{where}: seed: missing")
        step = state["step"]
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise SceneGraphError(f"{where}: step: {show(step)} is not a count of edits")
        if not isinstance(state["graph_sha256"], str) \
                or not re.fullmatch(r"[0-9a-f]{64}", state["graph_sha256"]):
            raise SceneGraphError(f"{where}: graph_sha256: not a sha256")
        graph = self.parse(state["graph"], where=f"{where}: graph")
        self._latent(state["z_img"], self.generator.z_img_dim, f"{where}: z_img")
        objects = state["objects"]
        if not isinstance(objects, list) or len(objects) != len(graph.objects):
            raise SceneGraphError(f"{where}: objects: expected one entry per object of the graph "
                                  f"({len(graph.objects)})")
        for i, obj in enumerate(objects):
            at = f"{where}: objects[{i}]"
            if not isinstance(obj, dict) or set(obj) != {"z", "box", "attributes"}:
                raise SceneGraphError(f"{at}: expected {{'z': [...], 'box': [...], "
                                      "'attributes': [...]}")
            self._latent(obj["z"], self.generator.z_obj_dim, f"{at}.z")
            check_box(obj["box"], f"{at}.box")
            attrs = obj["attributes"]
            if attrs is not None and (not isinstance(attrs, list) or not all(
                    isinstance(a, str) and a in self.vocab.attribute_name_to_idx for a in attrs)):
                raise SceneGraphError(f"{at}.attributes: expected names of this model's "
                                      "attributes")
        return state

    @staticmethod
    def _latent(z: Any, dim: int, where: str) -> None:
        if not isinstance(z, list) or len(z) != dim:
            raise SceneGraphError(f"{where}: expected a latent of {dim} numbers")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   and abs(v) <= MAX_LATENT for v in z):
            raise SceneGraphError(f"{where}: latents are finite numbers within +-{MAX_LATENT:g}")

    def _paint(self, batch: dict[str, torch.Tensor], boxes: torch.Tensor, masks: torch.Tensor,
               z_img: torch.Tensor, z_obj: torch.Tensor) -> np.ndarray:
        """The image [S, S, 3] uint8; masks are given only to a generator trained on them."""
        d = self.device
        given = masks.float() if self.takes_masks else None  # [1, n + 1, M, M]
        image = self.generator(batch["objects"], boxes, batch["obj_valid"], batch["attributes"],
                               z_img.to(d), z_obj.to(d), given)
        if not torch.isfinite(image).all():  # never a black picture that looks like a result
            raise ModelError("the generator produced non-finite pixels; check the model's weights "
                             "(and, for an edit, its state file)")
        return to_uint8(image.float())[0].permute(1, 2, 0).cpu().numpy()


def seal_state(state: dict[str, Any]) -> dict[str, Any]:
    """The state with its checksum, as written to a file."""
    return {**{k: v for k, v in state.items() if k != STATE_CHECKSUM},
            STATE_CHECKSUM: state_digest(state)}


def state_digest(state: dict[str, Any]) -> str:
    """sha256 of the state's canonical JSON, its checksum left out."""
    body = {k: v for k, v in state.items() if k != STATE_CHECKSUM}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()
