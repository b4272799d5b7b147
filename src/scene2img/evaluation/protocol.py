"""The evaluation protocol: everything that decides what a number means, recorded with it.

Scores that do not reproduce usually differ in something not written down: the FID code, the
weights, the resize, the number of images or samples per layout. A `Protocol` is stored with
every result (metrics.json, MLflow tags), and `comparable()` says whether two results may be
compared, and if not, why: the promotion gate uses it.

Metric names carry the protocol's backbone and split (`fid_inception_test`,
`fid_random-inception_test`), so a number from the random backbone can never pass for FID; images
taken up by an upscaler also carry its size and name (`fid_512_rdn_x4_inception_test`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from scene2img.data.processed import manifest_sha256  # noqa: F401 (part of this API)
from scene2img.errors import ConfigError

# LostGAN's samples per layout: 5 on COCO-Stuff, 1 on Visual Genome; ADE20K as VG.
LOSTGAN_SAMPLES_PER_LAYOUT = {"coco-stuff": 5, "vg": 1, "ade20k": 1}
MODES = ("gt-layout", "pred-layout")
RETRIEVED_BACKGROUNDS = "retrieved-backgrounds"  # BachGAN: no masks; boxes + retrieved label maps
MASK_SOURCES = ("regressed", "ground-truth", "layout-model", RETRIEVED_BACKGROUNDS)

# Recorded, but not a reason to refuse a comparison: another seed measures the same quantity.
_NOT_COMPARED = frozenset({"seed"})


def _torchmetrics_version() -> str:
    import torchmetrics

    return torchmetrics.__version__


def _torch_fidelity_version() -> str:
    import torch_fidelity

    return torch_fidelity.__version__


@dataclass(frozen=True)
class Protocol:
    """How a set of image metrics was measured.

    Example:
        >>> p = Protocol(backbone="inception", backbone_sha256="ab12", image_size=128,
        ...              split="test", dataset_sha256="cd34", samples_per_layout=5)
        >>> p.metric_name("fid")
        'fid_inception_test'
        >>> p.comparable(dataclasses.replace(p, image_size=64))
        (False, ['image_size: 128 != 64'])
    """

    backbone: str  # registry name: inception | random-inception
    backbone_sha256: str  # weights file sha256 (random-inception: of its seeded weights)
    image_size: int  # S: real and generated images are compared at S x S
    split: str  # train | val | test
    dataset_sha256: str  # sha256 of the processed dataset's manifest.json
    samples_per_layout: int  # generated images per real layout (LostGAN: COCO 5, VG 1)
    mode: str = "gt-layout"  # gt-layout: ground-truth boxes; pred-layout: the layout model's
    resize: str = "bilinear"  # resize of generated images to S and of object crops
    antialias: bool = False  # also the resize to 299: False = TF1-compatible (original FID)
    scenefid_crop_size: int = 299  # object crops are resized to this before the backbone
    kid_subsets: int = 100
    kid_subset_size: int = 1000  # in a result: the size used (fewer when a set is smaller)
    is_splits: int = 10
    diversity: str = "skipped: no LPIPS weights configured"  # or "lpips-<net>:<weights sha256>"
    latents: str = "normal"  # or "truncated-normal:<threshold>" (LostGAN: 2.0)
    masks: str = "regressed"  # G's own masks | "ground-truth" (the data's) | "layout-model" |
    # "retrieved-backgrounds" (BachGAN: the boxes with label maps retrieved from its memory bank)
    generator_weights: str = "unrecorded"  # e.g. "ema (decay 0.999); batch norm recomputed ..."
    upscaler: str = "none"  # or "rdn_x4:<weights sha256>": generated images taken up to image_size
    seed: int = 0
    num_real: int = 0  # images, filled in by the evaluation
    num_generated: int = 0
    num_real_crops: int = 0
    num_generated_crops: int = 0
    torchmetrics_version: str = field(default_factory=_torchmetrics_version)
    torch_fidelity_version: str = field(default_factory=_torch_fidelity_version)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"protocol mode must be one of {MODES}, got {self.mode!r}")
        if self.masks not in MASK_SOURCES:
            raise ConfigError(f"protocol masks must be one of {MASK_SOURCES}, got {self.masks!r}")
        for name in ("image_size", "samples_per_layout", "scenefid_crop_size", "kid_subsets",
                     "kid_subset_size", "is_splits"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise ConfigError(f"protocol {name} must be a positive integer, got {value!r}")

    def metric_name(self, metric: str) -> str:
        """`{metric}_{backbone}_{split}`, plus `_predlayout` for predicted layouts; with an
        upscaler, `{metric}_{image_size}_{upscaler}_...` (`fid_512_rdn_x4_inception_test`)."""
        suffix = "_predlayout" if self.mode == "pred-layout" else ""
        if self.upscaler != "none":
            metric = f"{metric}_{self.image_size}_{self.upscaler.split(':')[0]}"
        return f"{metric}_{self.backbone}_{self.split}{suffix}"

    def comparable(self, other: Protocol) -> tuple[bool, list[str]]:
        """Whether results under `self` and `other` measure the same thing; else the reasons."""
        reasons = []
        for f in dataclasses.fields(self):
            if f.name in _NOT_COMPARED:
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a != b:
                reasons.append(f"{f.name}: {a} != {b}")
        return not reasons, reasons

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Protocol:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"protocol: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def as_tags(self, prefix: str = "eval.") -> dict[str, str]:
        """Flat string tags for MLflow (`eval.backbone`, `eval.backbone_sha256`, ...)."""
        return {f"{prefix}{k}": str(v) for k, v in self.to_dict().items()}


def latents_name(truncation: float | None) -> str:
    """The protocol's `latents`: "normal", or "truncated-normal:<threshold>".

    Example:
        >>> latents_name(2.0), latents_name(None)
        ('truncated-normal:2.0', 'normal')
    """
    if truncation is None:
        return "normal"
    if truncation <= 0:
        raise ConfigError(f"evaluate.truncation must be positive or null, got {truncation}")
    return f"truncated-normal:{float(truncation)}"


def default_samples_per_layout(source: str) -> int:
    """LostGAN's samples per layout for a dataset source (`vg`, `coco-stuff`, `ade20k`)."""
    if source not in LOSTGAN_SAMPLES_PER_LAYOUT:
        raise ConfigError(f"unknown dataset source {source!r}; known: "
                          f"{sorted(LOSTGAN_SAMPLES_PER_LAYOUT)}")
    return LOSTGAN_SAMPLES_PER_LAYOUT[source]


