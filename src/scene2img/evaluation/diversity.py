"""Diversity: LPIPS between two samples generated from the same layout (higher: more diverse).

torchmetrics' LPIPS would download its torchvision backbone (ImageNet AlexNet / VGG16 /
SqueezeNet) at construction. Here the backbone comes only from a configured local file
(`evaluate.lpips_weights`, torchvision's own weights file, e.g. `alexnet-owt-7be5be79.pth`); the
small linear heads ship inside torchmetrics. Without the file, diversity is skipped and the
protocol records why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from scene2img.errors import ConfigError, ModelError

# LPIPS network -> (torchvision constructor, torchvision's weights file name)
LPIPS_NETS = {
    "alex": ("alexnet", "alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16", "vgg16-397923af.pth"),
    "squeeze": ("squeezenet1_1", "squeezenet1_1-b8a52dc0.pth"),
}


def load_lpips(
    weights: str | Path,  # torchvision weights file of the LPIPS backbone (all keys or features.*)
    net: str = "alex",  # alex | vgg | squeeze
) -> nn.Module:
    """torchmetrics' LPIPS network with its backbone loaded from a local torchvision weights file."""
    if net not in LPIPS_NETS:
        raise ConfigError(f"evaluate.lpips_net: unknown network {net!r}; known: {sorted(LPIPS_NETS)}")
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(
            f"evaluate.lpips_weights = {str(weights)!r} does not exist; put torchvision's "
            f"{LPIPS_NETS[net][1]} there, or set evaluate.lpips_weights to null to skip diversity"
        )
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not loadable with torch.load(weights_only=True): {exc}") from None
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    # pnet_rand: build the backbone without downloading; the linear heads load from torchmetrics.
    lpips = _NoTrainLpips(net=net, pretrained=True, pnet_rand=True)
    slots = {name: (seq, name) for seq in lpips.net.modules() if isinstance(seq, nn.Sequential)
             for name in seq._modules if name.isdigit()}
    loaded = set()
    for index, (seq, name) in slots.items():
        layer = seq._modules[name]
        sub = {k.split(".", 1)[1]: v for k, v in features.items() if k.split(".", 1)[0] == index}
        own = layer.state_dict()
        shapes = {k: list(v.shape) for k, v in sub.items()}
        if shapes != {k: list(v.shape) for k, v in own.items()}:
            raise ModelError(f"{path}: features.{index} holds {shapes}, which does not fit the "
                             f"{net} LPIPS backbone; is this {LPIPS_NETS[net][1]}?")
        if own:
            layer.load_state_dict(sub)
            loaded.add(index)
    if not loaded:
        raise ModelError(f"{path}: no `features.*` weights for the {net} LPIPS backbone")
    return lpips.eval().requires_grad_(False)


class DiversityLPIPS(Metric):
    """Mean LPIPS distance between pairs of images (two samples of one layout).

    States are a sum and a count, summed across DDP ranks.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, net: nn.Module, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.net = net
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, a: Tensor, b: Tensor) -> None:  # [N, 3, H, W] float in [-1, 1], each
        if a.shape != b.shape or a.dim() != 4:
            raise ValueError(f"expected two image batches of one shape, got {list(a.shape)} "
                             f"and {list(b.shape)}")
        with torch.no_grad():
            d = self.net(a.float(), b.float()).reshape(len(a))
        self.total += d.double().sum()
        self.count += len(a)

    def compute(self) -> Tensor:
        return self.total / self.count.clamp(min=1)
