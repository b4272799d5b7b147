"""A small seeded backbone and hand-made batches: evaluation tests run offline and fast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scene2img.evaluation.backbones import Backbone, Features, sha256_state
from scene2img.evaluation.protocol import Protocol


class TinyBackbone(Backbone):
    """Seeded conv net: per-channel mean and std of tanh(conv) at 32 px -> 2 * width features."""

    def __init__(self, seed: int = 0, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, width, 5, stride=2, padding=2)
        self.fc = nn.Linear(2 * width, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.name = "tiny"
        self.num_features = 2 * width
        self.num_classes = classes
        self.antialias = True
        self.requires_grad_(False)
        self.weights_sha256 = sha256_state(self.state_dict())

    def features(self, images: Tensor) -> Features:
        x = F.interpolate(images.float() / 127.5 - 1.0, size=(32, 32), mode="bilinear",
                          antialias=True, align_corners=False)
        x = torch.tanh(self.conv(x))
        pool = torch.cat([x.mean((2, 3)), x.std((2, 3))], dim=1)
        return Features(pool, self.fc(pool))


def smooth_images(n: int, size: int = 32, seed: int = 0) -> Tensor:
    """[n, 3, size, size] float in [-1, 1]: random 4 x 4 colour fields, upsampled."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def make_batches(n: int = 24, batch_size: int = 8, size: int = 32, objects: int = 4,
                 classes: int = 5, seed: int = 0) -> list[dict[str, Tensor]]:
    """Dataset-style batches: objects with random boxes, __image__ (class 0) last, one padding slot."""
    g = torch.Generator().manual_seed(seed + 1)
    images = smooth_images(n, size, seed)
    o = objects + 2  # objects, __image__, padding
    cls = torch.randint(1, classes + 1, (n, o), generator=g)
    xy = torch.rand(n, o, 2, generator=g) * 0.6
    wh = 0.15 + torch.rand(n, o, 2, generator=g) * 0.25
    boxes = torch.cat([xy, wh], dim=2)
    cls[:, objects] = 0
    boxes[:, objects] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    cls[:, objects + 1] = 0
    boxes[:, objects + 1] = 0.0
    valid = torch.arange(o).expand(n, o) <= objects
    batches = []
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        batches.append({"image": images[sl], "objects": cls[sl], "boxes": boxes[sl],
                        "obj_valid": valid[sl], "index": torch.arange(n)[sl]})
    return batches


def noisy_generator(sigma: float):
    """generate_fn: the real image plus Gaussian noise from the (seeded) global RNG."""

    def generate(batch: dict[str, Tensor], sample: int) -> Tensor:
        return batch["image"] + sigma * torch.randn(batch["image"].shape)

    return generate


def tiny_protocol(backbone: Backbone, **kw) -> Protocol:
    defaults = dict(backbone=backbone.name, backbone_sha256=backbone.weights_sha256,
                    image_size=32, split="test", dataset_sha256="0" * 64, samples_per_layout=2,
                    scenefid_crop_size=16, kid_subsets=5, kid_subset_size=10, is_splits=2,
                    resize="bilinear", antialias=True)
    defaults.update(kw)
    return Protocol(**defaults)


@pytest.fixture(scope="session")
def tiny() -> TinyBackbone:
    return TinyBackbone(seed=0)
