"""Feature extractors for the image metrics, found by name in one registry (`BACKBONES`).

A backbone maps uint8 images `[N, 3, H, W]` to `Features(pool [N, 2048], logits [N, C])`: pool
features for FID, KID and SceneFID, logits for the Inception Score. Both registered backbones
preprocess identically: resize to 299 x 299 (bilinear; `antialias=False` is the TF1-compatible
resize of the original FID code and torch-fidelity, `antialias=True` torch's antialiased bilinear,
torchmetrics' default), then `(x - 128) / 128`.

- `inception`: the standard FID InceptionV3 (TF 2015-12-05 weights converted by torch-fidelity),
  through torchmetrics' `NoTrainInceptionV3`, loaded from a local file. Nothing is downloaded:
  without the file, `build_backbone` stops with a `ConfigError` that says what to fetch and where
  to put it.
- `random-inception`: torchvision's InceptionV3 architecture with seeded random weights. Same cost
  as the real network, works offline; for smoke tests and the toy world only. Its numbers are not
  FID, and every metric computed with it carries the backbone name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from scene2img.errors import ConfigError, ModelError

INPUT_SIZE = 299  # InceptionV3's input side
INCEPTION_WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_WEIGHTS_NAME
)


class Features(NamedTuple):
    pool: Tensor  # [N, D] float32, D = 2048
    logits: Tensor  # [N, C] float32 (FID Inception: 1008 "unbiased" logits, as torch-fidelity's IS)


class Backbone(nn.Module):
    """A frozen feature extractor. Subclasses set the attributes and implement `features`."""

    name: str  # registry name; part of every metric name
    weights_sha256: str  # sha256 of the weights file, or of the seeded random weights
    num_features: int
    num_classes: int
    antialias: bool

    def features(self, images: Tensor) -> Features:  # images [N, 3, H, W] uint8
        raise NotImplementedError

    def forward(self, images: Tensor) -> Features:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise TypeError(f"{self.name}: expected uint8 images [N, 3, H, W], "
                            f"got {images.dtype} {list(images.shape)}")
        with torch.no_grad():
            feats = self.features(images)
        return Features(feats.pool.float(), feats.logits.float())

    def train(self, mode: bool = True) -> Backbone:  # never leaves evaluation mode
        return super().train(False)


# --------------------------------------------------------------------------------------------
# the standard FID InceptionV3, from a local weights file


class FIDInception(Backbone):
    """torchmetrics' `NoTrainInceptionV3` (torch-fidelity's network) returning pool and logits."""

    def __init__(self, weights_path: Path, weights_sha256: str, antialias: bool) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.name = "inception"
        self.weights_sha256 = weights_sha256
        self.num_features = 2048
        self.num_classes = 1008
        self.antialias = antialias
        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048", "logits_unbiased"],
            feature_extractor_weights_path=str(weights_path),
            antialias=antialias,
        )
        self.eval()

    def features(self, images: Tensor) -> Features:
        # `_torch_fidelity_forward` returns every requested feature; the public `forward` only
        # the first. torchmetrics is pinned (1.9.0), and a test checks this path.
        pool, logits = self.net._torch_fidelity_forward(images)
        return Features(pool, logits)


def load_fid_inception(
    weights: str | Path | None,  # local path of weights-inception-2015-12-05-6726825d.pth
    antialias: bool = False,  # False: TF1-compatible resize (original FID)
) -> FIDInception:
    """The standard FID InceptionV3 from a local file; a `ConfigError` says what to fetch if absent."""
    if weights is None or not Path(weights).is_file():
        raise ConfigError(missing_weights_message(weights))
    path = Path(weights)
    sha = sha256_file(path)
    try:
        # Checked with weights_only=True first: torch-fidelity then re-reads it with
        # weights_only=False, which is only safe once this succeeded.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a weights file loadable with torch.load(weights_only=True) "
                         f"({exc}); expected {INCEPTION_WEIGHTS_NAME}") from None
    if not isinstance(state, dict) or "Mixed_7c.branch_pool.conv.weight" not in state:
        raise ModelError(f"{path}: not the FID InceptionV3 state dict (sha256 {sha}); "
                         f"expected {INCEPTION_WEIGHTS_NAME} from {INCEPTION_WEIGHTS_URL}")
    try:
        return FIDInception(path, sha, antialias)
    except RuntimeError as exc:
        raise ModelError(f"{path}: does not fit the FID InceptionV3 (sha256 {sha}): {exc}") from None


def missing_weights_message(weights: str | Path | None) -> str:
    where = ("evaluate.inception_weights is not set" if weights is None
             else f"evaluate.inception_weights = {str(weights)!r} does not exist")
    return (
        f"FID needs the standard InceptionV3 weights but {where}. Fetch {INCEPTION_WEIGHTS_NAME} "
        f"(torch-fidelity's conversion of the TF 2015-12-05 FID weights) from "
        f"{INCEPTION_WEIGHTS_URL} on a machine with network access, put it for example at "
        f"weights/{INCEPTION_WEIGHTS_NAME}, and set evaluate.inception_weights to that path "
        f"(params.yaml or -S evaluate.inception_weights=PATH); its sha256 is recorded with every "
        f"result. For an offline smoke test set evaluate.backbone=random-inception instead "
        f"(metrics named *_random-inception_*, not comparable with FID)."
    )


# --------------------------------------------------------------------------------------------
# InceptionV3 with seeded random weights


class RandomInception(Backbone):
    """torchvision's InceptionV3 with weights drawn from a seeded generator (no file, no download).

    Convolutions are He-initialised (fan-in, ReLU) so activations keep their scale through the
    ~50 layers; batch norm runs in evaluation mode with its default statistics.

    Example:
        >>> net = RandomInception(seed=0)
        >>> net.name, net.num_features
        ('random-inception', 2048)
    """

    def __init__(self, seed: int = 0, antialias: bool = False) -> None:
        super().__init__()
        from torchvision.models.inception import Inception3

        self.name = "random-inception"
        self.num_features = 2048
        self.num_classes = 1008
        self.antialias = antialias
        self.seed = seed
        net = Inception3(num_classes=self.num_classes, aux_logits=False, transform_input=False,
                         init_weights=False)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.Conv2d):
                    fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                elif isinstance(m, nn.Linear):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / m.in_features**0.5)
                    m.bias.zero_()
        self.net = net.requires_grad_(False).eval()
        self.weights_sha256 = sha256_state(self.net.state_dict())

    def features(self, images: Tensor) -> Features:
        x = _resize_to_input(images, self.antialias)
        x = (x - 128.0) / 128.0
        n = self.net
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1,
                      n.Conv2d_3b_1x1, n.Conv2d_4a_3x3, n.maxpool2,
                      n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c,
                      n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c, n.avgpool):
            x = layer(x)
        pool = torch.flatten(x, 1)  # [N, 2048]
        return Features(pool, n.fc(pool))


def _resize_to_input(images: Tensor, antialias: bool) -> Tensor:
    """uint8 [N, 3, H, W] -> float [N, 3, 299, 299], the same resize as torchmetrics' FID net."""
    x = images.float()
    if antialias:
        return torch.nn.functional.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                               align_corners=False, antialias=True)
    from torch_fidelity.interpolate_compat_tensorflow import (
        interpolate_bilinear_2d_like_tensorflow1x,
    )

    return interpolate_bilinear_2d_like_tensorflow1x(x, size=(INPUT_SIZE, INPUT_SIZE),
                                                     align_corners=False)


# --------------------------------------------------------------------------------------------
# registry


def _build_inception(weights: str | Path | None, seed: int, antialias: bool) -> Backbone:
    return load_fid_inception(weights, antialias)


def _build_random_inception(weights: str | Path | None, seed: int, antialias: bool) -> Backbone:
    return RandomInception(seed=seed, antialias=antialias)


BACKBONES: dict[str, Callable[[str | Path | None, int, bool], Backbone]] = {
    "inception": _build_inception,
    "random-inception": _build_random_inception,
}


def build_backbone(
    name: str,  # a key of BACKBONES
    weights: str | Path | None = None,  # weights file (inception)
    seed: int = 0,  # random-inception's weight seed
    antialias: bool = False,  # resize to 299: False = TF1-compatible bilinear (original FID)
) -> Backbone:
    """The backbone registered under `name`.

    Example:
        >>> build_backbone("random-inception", seed=1).name
        'random-inception'
    """
    if name not in BACKBONES:
        raise ConfigError(f"evaluate.backbone: unknown backbone {name!r}; known: {sorted(BACKBONES)}")
    return BACKBONES[name](weights, seed, antialias)


# --------------------------------------------------------------------------------------------
# hashing


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_state(state: dict[str, Tensor]) -> str:
    """sha256 over a state dict's names, shapes, dtypes and values (CPU, contiguous)."""
    h = hashlib.sha256()
    for key, value in state.items():
        t = value.detach().cpu().contiguous()
        h.update(f"{key}:{list(t.shape)}:{t.dtype};".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
