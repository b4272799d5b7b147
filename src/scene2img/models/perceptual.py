"""LostGAN-v2's VGG-19 perceptual loss (pix2pixHD's `VGGLoss`, also SPADE's and so BachGAN's), with
its weights from a local file.

The generator's image and the real one go through VGG-19's convolutional layers up to relu5_1;
the loss is the weighted L1 distance of their activations at relu1_1, relu2_1, relu3_1, relu4_1
and relu5_1 with weights 1/32, 1/16, 1/8, 1/4 and 1 (the real image's features detached):

    loss = sum_k w_k * mean |vgg_k(fake) - vgg_k(real)|

As in the reference (LostGANs `utils/util.py`, used by `train.py` of LostGAN-v2 and AttrLostGAN),
the images go in as the generator makes them, in [-1, 1], without ImageNet normalisation: the
loss's weight in the G objective (1.0) was tuned that way.

The weights are torchvision's VGG-19 (`vgg19-dcbb9e9d.pth`, `features.N.weight` / `.bias` keys;
only the convolutions up to relu5_1 are read) from the file `train_image.vgg_weights` names.
Nothing is downloaded: without the file, `load_vgg19_features` stops with a `ConfigError` that says
what to fetch, where to put it, and how to train without the loss.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from scene2img.errors import ConfigError, ModelError

__all__ = ["VGG_WEIGHTS_NAME", "VGG_WEIGHTS_URL", "VGGPerceptualLoss", "load_vgg19_features",
           "vgg19_features"]

VGG_WEIGHTS_NAME = "vgg19-dcbb9e9d.pth"
VGG_WEIGHTS_URL = "https://download.pytorch.org/models/" + VGG_WEIGHTS_NAME

# torchvision's vgg19 `features` up to relu5_1 (index 29): channels per conv, "M" = max pool
_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
TAPS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in `features`
WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)  # pix2pixHD / LostGAN-v2


def vgg19_features() -> nn.Sequential:
    """VGG-19's `features[:30]` with torchvision's layer indices (random weights)."""
    layers: list[nn.Module] = []
    cin = 3
    for item in _CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(item)
    return nn.Sequential(*layers)


def load_vgg19_features(
    path: str | Path | None,
    section: str = "train_image",  # the params section that names the file (for the message)
    weight: str = "w_vgg",  # that section's weight of the loss (train_bachgan: lambda_vgg)
) -> nn.Sequential:
    """VGG-19 `features[:30]` with the weights in `path` (torchvision's state dict), frozen.

    Raises `ConfigError` when no file is configured or it is missing, `ModelError` when it does
    not hold VGG-19's convolutions (a missing key or a wrong shape is named).
    """
    if path is None or not Path(path).is_file():
        where = f"{section}.vgg_weights is not set" if path is None else f"{path}: no such file"
        raise ConfigError(
            f"{where}; the VGG-19 perceptual loss (LostGAN-v2, SPADE) needs torchvision's "
            f"{VGG_WEIGHTS_NAME} ({VGG_WEIGHTS_URL}) on local disk: set "
            f"{section}.vgg_weights=/path/to/{VGG_WEIGHTS_NAME}, or train without the loss "
            f"with {section}.{weight}=0")
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise ModelError(f"{path}: not a weights file loadable with torch.load(weights_only=True) "
                         f"({type(exc).__name__}: {exc}); expected {VGG_WEIGHTS_NAME}") from None
    if not isinstance(state, dict):
        raise ModelError(f"{path}: expected a state dict, found {type(state).__name__}")
    net = vgg19_features()
    own = net.state_dict()
    wanted = {f"features.{k}": k for k in own}
    missing = sorted(k for k in wanted if k not in state)
    if missing:
        raise ModelError(f"{path}: not VGG-19's state dict: missing {missing[:4]} "
                         f"({len(missing)} keys); expected {VGG_WEIGHTS_NAME}")
    for key, name in wanted.items():
        if tuple(state[key].shape) != tuple(own[name].shape):
            raise ModelError(f"{path}: {key} has shape {list(state[key].shape)}, VGG-19 has "
                             f"{list(own[name].shape)}; expected {VGG_WEIGHTS_NAME}")
    net.load_state_dict({name: state[key] for key, name in wanted.items()})
    return net.eval().requires_grad_(False)


class VGGPerceptualLoss(nn.Module):
    """sum_k w_k * L1(vgg_k(fake), vgg_k(real).detach()) over relu1_1 ... relu5_1.

    Example:
        >>> loss = VGGPerceptualLoss(vgg19_features().requires_grad_(False))
        >>> x = torch.zeros(1, 3, 32, 32)
        >>> float(loss(x, x))
        0.0
    """

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> VGGPerceptualLoss:  # a fixed network: always eval
        return super().train(False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                out.append(x)
        return out

    def forward(
        self,
        fake: torch.Tensor,  # [B, 3, S, S] in [-1, 1], gradients flow back into it
        real: torch.Tensor,  # [B, 3, S, S] in [-1, 1]
    ) -> torch.Tensor:
        with torch.no_grad():
            targets = self._taps(real)
        loss = fake.new_zeros((), dtype=torch.float32)
        for w, f, t in zip(WEIGHTS, self._taps(fake), targets, strict=True):
            loss = loss + w * F.l1_loss(f.float(), t.float())
        return loss
