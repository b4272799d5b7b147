"""The image GAN's networks from their config sections (`train_image.g`, `train_image.d`): the one
place that maps `train_image.generator` names to classes, used by training and by loading exports.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from scene2img.config import ImageDiscriminatorParams, ImageGeneratorParams
from scene2img.errors import ConfigError
from scene2img.models.crn import CRNGenerator
from scene2img.models.discriminator import LostGANDiscriminator
from scene2img.models.generator import LostGANGenerator

GENERATORS = {"lostgan": LostGANGenerator, "crn": CRNGenerator}


def build_generator(kind: str, num_classes: int, num_attributes: int, image_size: int,
                    params: ImageGeneratorParams) -> nn.Module:
    if kind not in GENERATORS:
        raise ConfigError(f"train_image.generator: unknown {kind!r}; known: {sorted(GENERATORS)}")
    kwargs = dataclasses.asdict(params)
    kwargs.pop("gt_masks")  # a data choice, not an architecture one
    if kind == "crn":
        kwargs.pop("stage_mask_dim")  # LostGAN-v2's stage masks; the CRN has none
    try:
        return GENERATORS[kind](num_classes, num_attributes, image_size, **kwargs)
    except ValueError as exc:
        raise ConfigError(f"train_image.g: {exc}") from None


def build_discriminator(num_classes: int, num_attributes: int, image_size: int,
                        params: ImageDiscriminatorParams) -> nn.Module:
    try:
        return LostGANDiscriminator(num_classes, num_attributes, image_size,
                                    **dataclasses.asdict(params))
    except ValueError as exc:
        raise ConfigError(f"train_image.d: {exc}") from None
