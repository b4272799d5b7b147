"""Measuring generated images against a split: `evaluate_images`.

One pass over the real batches. For each batch the real images and every generated sample are
converted to uint8 (as if saved), run through the backbone once, and their features update
torchmetrics metrics: FID and KID (pool features), Inception Score (generated logits), SceneFID
(FID on object crops) and its per-class table, diversity (LPIPS between samples 0 and 1 of each
layout) and, when the generator reports its boxes in pred-layout mode, the layout metrics (the
layout model's own `scene2img.evaluation.layout_metrics.LayoutMetrics`: box IoU, recall at 0.3
and 0.5).

Under DDP each rank evaluates its own shard of the split (a `DistributedSampler`); metric states
are reduced across ranks in `compute()`, so every rank returns the same metrics. Report samples
(grid, best and worst) are the rank's own.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from scene2img.config import EvaluateParams
from scene2img.errors import ConfigError
from scene2img.evaluation.backbones import Backbone
from scene2img.evaluation.diversity import DiversityLPIPS
from scene2img.evaluation.images import (
    RESIZE_MODES,
    crop_objects,
    resize_uint8,
    to_uint8,
    to_unit_range,
)
from scene2img.evaluation.layout_metrics import LayoutMetrics
from scene2img.evaluation.metrics import (
    FeatureFID,
    SceneFID,
    compute_seeded,
    make_inception_score,
    make_kid,
)
from scene2img.evaluation.protocol import Protocol, default_samples_per_layout, latents_name
from scene2img.models.boxes import real_objects

log = logging.getLogger(__name__)



class Generated(NamedTuple):
    """What `generate_fn` may return instead of a bare image tensor."""

    images: Tensor  # [B, 3, S, S] float in [-1, 1]
    boxes: Tensor | None = None  # [B, O, 4] normalised (x, y, w, h) the images were drawn from


# (batch, sample_index) -> images [B, 3, S, S] in [-1, 1], or Generated(images, boxes)
GenerateFn = Callable[[dict[str, Tensor], int], "Tensor | Generated"]


@dataclass
class Sample:
    """One generated image kept for the report, with its real image and score."""

    score: float  # feature distance to the real image, 1 - cosine (lower: closer)
    index: int  # dataset index of the layout
    sample: int  # sample number for that layout
    generated: Tensor  # [3, S, S] uint8
    real: Tensor  # [3, S, S] uint8


@dataclass
class RealFeatures:
    """The real side of an evaluation, kept for the next pass over the same data.

    The modes of one evaluation (gt-layout, pred-layout) measure against the same real images and
    the same real object crops; passing one `RealFeatures` to each `evaluate_images` call runs
    the backbone on them once. Entries are keyed by the batch's dataset indices and are only
    reused under the same backbone, sizes and resizing (the protocol fields they depend on).
    """

    def __init__(self) -> None:
        self._protocol: tuple | None = None
        self._batches: dict[tuple[int, ...], tuple[Tensor, Tensor, Tensor]] = {}

    @staticmethod
    def _depends_on(p: Protocol) -> tuple:
        return (p.backbone, p.backbone_sha256, p.image_size, p.split, p.dataset_sha256, p.resize,
                p.antialias, p.scenefid_crop_size)

    def get(self, p: Protocol, index: Tensor) -> tuple[Tensor, Tensor, Tensor] | None:
        """(image pool [B, D], crop pool [K, D], crop index [K, 2]) of a batch seen before."""
        if self._protocol != self._depends_on(p):
            return None
        return self._batches.get(tuple(index.tolist()))

    def put(self, p: Protocol, index: Tensor, value: tuple[Tensor, Tensor, Tensor]) -> None:
        key = self._depends_on(p)
        if self._protocol != key:
            self._protocol, self._batches = key, {}
        self._batches[tuple(index.tolist())] = value


@dataclass
class EvaluationResult:
    metrics: dict[str, float]  # names carry metric, backbone, split (and mode)
    protocol: Protocol
    per_class_scenefid: dict[str, float]  # class name -> FID on that class's crops
    notes: list[str]  # what was skipped, and why
    grid_real: Tensor  # [L, 3, S, S] uint8: the first layouts' real images
    grid_generated: Tensor  # [L, K, 3, S, S] uint8: their generated samples
    best: list[Sample] = field(default_factory=list)  # lowest score first
    worst: list[Sample] = field(default_factory=list)  # highest score first

    def to_dict(self) -> dict[str, Any]:
        """metrics.json: metrics, protocol, per-class SceneFID and notes (no images)."""
        return {
            "metrics": self.metrics,
            "protocol": self.protocol.to_dict(),
            "per_class_scenefid": self.per_class_scenefid,
            "notes": self.notes,
        }


def build_protocol(
    params: EvaluateParams,
    backbone: Backbone,  # from build_backbone(params.backbone, ...)
    image_size: int,  # the dataset's image size (preprocess.image_size / manifest)
    dataset_sha256: str,  # manifest_sha256(dataset)
    source: str,  # vg | coco-stuff | ade20k, for LostGAN's samples per layout
    mode: str = "gt-layout",  # gt-layout | pred-layout
    lpips_sha256: str | None = None,  # sha256 of the LPIPS weights file, when configured
    masks: str = "regressed",  # what G draws with: regressed | ground-truth | layout-model
    generator_weights: str = "unrecorded",  # which weights made the images (EMA, BN statistics)
) -> Protocol:
    """The protocol the parameters ask for (counts are filled in by `evaluate_images`)."""
    if params.backbone != backbone.name:
        raise ConfigError(f"evaluate.backbone is {params.backbone!r} but the backbone given is "
                          f"{backbone.name!r}")
    if params.resize not in RESIZE_MODES:
        raise ConfigError(f"evaluate.resize must be one of {RESIZE_MODES}, got {params.resize!r}")
    for key in ("batch_size", "report_samples"):
        if getattr(params, key) < 1:
            raise ConfigError(f"evaluate.{key} must be positive, got {getattr(params, key)}")
    if params.max_images is not None and params.max_images < 2:
        raise ConfigError(f"evaluate.max_images must be null or at least 2, got {params.max_images}")
    samples = params.samples_per_layout or default_samples_per_layout(source)
    diversity = ("skipped: evaluate.lpips_weights is not set" if lpips_sha256 is None
                 else f"lpips-{params.lpips_net}:{lpips_sha256}")
    if lpips_sha256 is not None and samples < 2:
        diversity = f"skipped: needs 2 samples per layout, the protocol has {samples}"
    return Protocol(
        backbone=backbone.name,
        backbone_sha256=backbone.weights_sha256,
        image_size=image_size,
        split=params.split,
        dataset_sha256=dataset_sha256,
        samples_per_layout=samples,
        mode=mode,
        resize=params.resize,
        antialias=params.antialias,
        scenefid_crop_size=params.scenefid_crop_size,
        kid_subsets=params.kid_subsets,
        kid_subset_size=params.kid_subset_size,
        is_splits=params.is_splits,
        diversity=diversity,
        latents=latents_name(params.truncation),
        masks=masks,
        generator_weights=generator_weights,
        seed=params.seed,
    )


def evaluate_images(
    real_batches: Iterable[dict[str, Tensor]],  # dataset batches (scene2img.data.dataset)
    generate_fn: GenerateFn,  # (batch, sample_index) -> [B, 3, S, S] in [-1, 1] or Generated
    protocol: Protocol,  # what to measure; its counts are filled into the result's copy
    device: str | torch.device = "cpu",
    *,
    backbone: Backbone,  # must match protocol.backbone and protocol.backbone_sha256
    lpips: nn.Module | None = None,  # from load_lpips(); used when the protocol's diversity is on
    class_names: Sequence[str | None] | None = None,  # vocab.object_idx_to_name
    max_images: int | None = None,  # stop after this many real images (per rank)
    report_samples: int = 8,  # layouts in the grid; best and worst kept
    crop_chunk: int = 128,  # crops per backbone call
    progress: bool = False,
    real_features: RealFeatures | None = None,  # shared by the passes over the same real data
) -> EvaluationResult:
    """Measure `generate_fn` on `real_batches` under `protocol`.

    The global torch RNG is seeded with `protocol.seed + rank` for the whole pass (and restored
    after), so a `generate_fn` that draws its noise from it is reproducible; KID subsets and the
    IS shuffle are seeded with `protocol.seed`.
    """
    if backbone.name != protocol.backbone or backbone.weights_sha256 != protocol.backbone_sha256:
        raise ConfigError(f"the backbone ({backbone.name}, sha256 {backbone.weights_sha256[:12]}) is "
                          f"not the protocol's ({protocol.backbone}, "
                          f"sha256 {protocol.backbone_sha256[:12]})")
    device = torch.device(device)
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(protocol.seed + rank)
        run = _Run(protocol, backbone.to(device), device, lpips, report_samples, crop_chunk,
                   real_features)
        seen = 0
        for batch in tqdm(real_batches, desc="evaluate", disable=not progress, unit="batch"):
            if max_images is not None and seen >= max_images:
                break
            if max_images is not None and seen + len(batch["image"]) > max_images:
                batch = {k: v[: max_images - seen] for k, v in batch.items()}
            run.update(batch, generate_fn)
            seen += len(batch["image"])
        return run.result(class_names)


class _Run:
    """The metric states of one evaluation pass."""

    def __init__(self, protocol: Protocol, backbone: Backbone, device: torch.device,
                 lpips: nn.Module | None, report_samples: int, crop_chunk: int,
                 real_features: RealFeatures | None) -> None:
        p = self.protocol = protocol
        self.backbone = backbone
        self.device = device
        self.crop_chunk = crop_chunk
        self.real_features = real_features
        d = backbone.num_features
        self.fid = FeatureFID(d).to(device)
        self.kid = make_kid(d, p.kid_subsets, p.kid_subset_size).to(device)
        self.inception_score = make_inception_score(backbone.num_classes, p.is_splits).to(device)
        self.scenefid = SceneFID(d).to(device)
        # KID and IS keep lists of features, which torchmetrics gathers one entry at a time:
        # ranks with different numbers of updates would mismatch their collectives. So they are
        # buffered here and each gets exactly one update per set, just before compute().
        self.kid_real: list[Tensor] = []
        self.kid_fake: list[Tensor] = []
        self.is_logits: list[Tensor] = []
        self.layout = LayoutMetrics().to(device)
        self.layout_seen = False
        self.diversity = None
        if p.diversity.startswith("lpips-"):
            if lpips is None:
                raise ConfigError(f"the protocol measures diversity ({p.diversity}) but no LPIPS "
                                  "network was given")
            self.diversity = DiversityLPIPS(lpips).to(device)
        self.counts = torch.zeros(4, dtype=torch.long)  # real, generated, real crops, gen crops
        self.report_samples = report_samples
        self.grid_real: list[Tensor] = []
        self.grid_generated: list[Tensor] = []
        self.best: list[tuple[float, int, Sample]] = []  # max-heap on score via negation
        self.worst: list[tuple[float, int, Sample]] = []  # min-heap on score
        self.tiebreak = 0

    # ----------------------------------------------------------------------------------------

    def _features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        b = self.backbone
        pools = [images.new_zeros((0, b.num_features), dtype=torch.float32)]
        logits = [images.new_zeros((0, b.num_classes), dtype=torch.float32)]
        for chunk in images.split(self.crop_chunk):
            f = self.backbone(chunk)
            pools.append(f.pool)
            logits.append(f.logits)
        return torch.cat(pools), torch.cat(logits)

    def _crops(self, images: Tensor, boxes: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
        p = self.protocol
        crops, index = crop_objects(images, boxes, keep, p.scenefid_crop_size, p.resize, p.antialias)
        return crops, index

    def _to_size(self, images: Tensor) -> Tensor:
        p = self.protocol
        return resize_uint8(images, p.image_size, p.resize, p.antialias)

    def update(self, batch: dict[str, Tensor], generate_fn: GenerateFn) -> None:
        p = self.protocol
        batch = {k: v.to(self.device) for k, v in batch.items()}
        real = self._to_size(to_uint8(batch["image"]))  # [B, 3, S, S] uint8
        b = len(real)
        keep = real_objects(batch["objects"], batch["obj_valid"])  # [B, O]
        cached = (self.real_features.get(p, batch["index"]) if self.real_features is not None
                  else None)
        if cached is not None:
            real_pool, pool, index = cached
        else:
            real_pool, _ = self._features(real)
            crops, index = self._crops(real, batch["boxes"], keep)
            pool, _ = self._features(crops)  # [K, D], K may be 0: every rank updates every batch
            if self.real_features is not None:
                self.real_features.put(p, batch["index"], (real_pool, pool, index))
        self.fid.update(real_pool, real=True)
        self.kid_real.append(real_pool)
        self.scenefid.update(pool, batch["objects"][index[:, 0], index[:, 1]], real=True)
        self.counts += torch.tensor([b, 0, len(pool), 0])

        rows = min(self.report_samples - len(self.grid_real), b)  # layouts kept for the grid
        start = len(self.grid_real)
        if rows > 0:
            self.grid_real.extend(real[:rows].cpu())
            self.grid_generated.extend([] for _ in range(rows))
        first_samples = []
        for s in range(p.samples_per_layout):
            with torch.no_grad():
                out = generate_fn(batch, s)
            images, boxes = (out.images, out.boxes) if isinstance(out, Generated) else (out, None)
            if images.shape[0] != b or images.dim() != 4 or images.shape[1] != 3:
                raise ValueError(f"generate_fn returned {list(images.shape)}, expected "
                                 f"[{b}, 3, S, S] (sample {s})")
            fake = self._to_size(to_uint8(images.to(self.device)))
            pool, logits = self._features(fake)
            self.fid.update(pool, real=False)
            self.kid_fake.append(pool)
            self.is_logits.append(logits)
            gen_boxes = batch["boxes"] if boxes is None else boxes.to(self.device)
            crops, index = self._crops(fake, gen_boxes, keep)
            cpool, _ = self._features(crops)
            self.scenefid.update(cpool, batch["objects"][index[:, 0], index[:, 1]], real=False)
            if boxes is not None and s == 0 and p.mode == "pred-layout":
                self.layout.update(gen_boxes, batch["boxes"], batch["objects"], batch["obj_valid"])
                self.layout_seen = True
            self.counts += torch.tensor([0, b, 0, len(crops)])
            if s < 2:
                first_samples.append(fake)
            score = 1.0 - torch.nn.functional.cosine_similarity(pool, real_pool, dim=1)  # [B]
            self._keep(score, batch["index"], s, fake, real)
            for i in range(max(rows, 0)):
                self.grid_generated[start + i].append(fake[i].cpu())
        if self.diversity is not None and len(first_samples) == 2:
            self.diversity.update(to_unit_range(first_samples[0]), to_unit_range(first_samples[1]))

    def _keep(self, score: Tensor, index: Tensor, s: int, fake: Tensor, real: Tensor) -> None:
        k = self.report_samples
        for i, value in enumerate(score.tolist()):
            if not math.isfinite(value):
                continue
            self.tiebreak += 1
            if len(self.best) == k and -self.best[0][0] <= value and len(self.worst) == k \
                    and self.worst[0][0] >= value:
                continue
            item = Sample(value, int(index[i]), s, fake[i].cpu(), real[i].cpu())
            for heap, key in ((self.best, -value), (self.worst, value)):
                if len(heap) < k:
                    heapq.heappush(heap, (key, self.tiebreak, item))
                elif key > heap[0][0]:
                    heapq.heapreplace(heap, (key, self.tiebreak, item))

    # ----------------------------------------------------------------------------------------

    def result(self, class_names: Sequence[str | None] | None) -> EvaluationResult:
        p = self.protocol
        counts = _global_sum(self.counts, self.device)
        n_real, n_fake, n_real_crops, n_fake_crops = (int(c) for c in counts)
        notes: list[str] = []
        metrics: dict[str, float] = {}
        if n_real < 2 or n_fake < 2:
            raise ConfigError(f"FID needs at least 2 real and 2 generated images, got {n_real} "
                              f"and {n_fake}; raise evaluate.max_images or use a larger split")
        metrics[p.metric_name("fid")] = float(self.fid.compute())
        kid_size = kid_subset_size_global(p.kid_subset_size, n_real, n_fake)
        self.kid.subset_size = kid_size
        empty = torch.zeros(0, self.backbone.num_features, device=self.device)
        self.kid.update(torch.cat([empty, *self.kid_real]), real=True)
        self.kid.update(torch.cat([empty, *self.kid_fake]), real=False)
        empty = torch.zeros(0, self.backbone.num_classes, device=self.device)
        self.inception_score.update(torch.cat([empty, *self.is_logits]))
        kid_mean, kid_std = compute_seeded(self.kid, p.seed)
        metrics[p.metric_name("kid")] = float(kid_mean)
        metrics[p.metric_name("kid_std")] = float(kid_std)
        is_mean, is_std = compute_seeded(self.inception_score, p.seed)
        metrics[p.metric_name("is")] = float(is_mean)
        metrics[p.metric_name("is_std")] = float(is_std)
        scenefid = self.scenefid.compute()
        if scenefid.overall is not None:
            metrics[p.metric_name("scenefid")] = scenefid.overall
        else:
            notes.append(f"scenefid skipped: {n_real_crops} real and {n_fake_crops} generated "
                         "object crops (needs 2 of each)")
        per_class = {_class_name(c, class_names): v for c, v in scenefid.per_class.items()}
        if self.diversity is not None:
            metrics[f"diversity_{p.diversity.split(':')[0]}_{p.split}"
                    + ("_predlayout" if p.mode == "pred-layout" else "")] = float(self.diversity.compute())
        else:
            notes.append(f"diversity {p.diversity}")
        if self.layout_seen:
            for key, value in self.layout.compute().items():
                metrics[f"layout_{key}_{p.split}"] = float(value)
        elif p.mode == "pred-layout":
            notes.append("layout metrics skipped: generate_fn returned no boxes")
        if kid_size < p.kid_subset_size:
            notes.append(f"kid subset size {kid_size} (requested {p.kid_subset_size}): fewer images")
        for name, value in list(metrics.items()):  # e.g. IS std from a single split
            if not math.isfinite(value):
                notes.append(f"{name} dropped: {value} ({n_fake} generated images)")
                del metrics[name]
        protocol = dataclasses.replace(p, num_real=n_real, num_generated=n_fake,
                                       num_real_crops=n_real_crops,
                                       num_generated_crops=n_fake_crops, kid_subset_size=kid_size)
        s = p.image_size
        grid_real = torch.stack(self.grid_real) if self.grid_real else torch.zeros(0, 3, s, s,
                                                                                  dtype=torch.uint8)
        grid_gen = (torch.stack([torch.stack(g) for g in self.grid_generated]) if self.grid_generated
                    else torch.zeros(0, p.samples_per_layout, 3, s, s, dtype=torch.uint8))
        for note in notes:
            log.info("evaluation: %s", note)
        return EvaluationResult(
            metrics=metrics,
            protocol=protocol,
            per_class_scenefid=per_class,
            notes=notes,
            grid_real=grid_real,
            grid_generated=grid_gen,
            best=[item for _, _, item in sorted(self.best, key=lambda t: -t[0])],
            worst=[item for _, _, item in sorted(self.worst, key=lambda t: -t[0])],
        )


def kid_subset_size_global(requested: int, n_real: int, n_fake: int) -> int:
    """KID's subset size: `requested`, or fewer when either set (over all ranks) is smaller."""
    return max(1, min(requested, n_real, n_fake))


def _global_sum(values: Tensor, device: torch.device) -> Tensor:
    if dist.is_available() and dist.is_initialized():
        values = values.to(device)
        dist.all_reduce(values)
    return values.cpu()


def _class_name(index: int, names: Sequence[str | None] | None) -> str:
    if names is not None and 0 <= index < len(names) and names[index]:
        return str(names[index])
    return str(index)


__all__ = ["EvaluationResult", "Generated", "GenerateFn", "RealFeatures", "Sample", "build_protocol",
           "evaluate_images", "kid_subset_size_global"]
