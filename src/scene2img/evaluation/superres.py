"""PSNR and SSIM (and LPIPS, when its network is given) of the upscaler against bicubic and
nearest-neighbour upscaling.

The protocol (in every metric name): the images' split, the scale, RGB in [0, 1], `scale`
border pixels shaved (as RDN's evaluation). RDN's paper scores the Y channel of YCbCr; we score
RGB, which is what users see (RGB PSNR is lower than Y PSNR for the same images). LPIPS is the
mean distance between each upscaled image and its HR image, with the network `load_lpips` builds
from a configured local weights file (`evaluate.lpips_weights`; nothing is downloaded).

Example:
    >>> import torch
    >>> from scene2img.models.upscaler import RDN
    >>> net = RDN(2, blocks=1, layers=1, growth=4, features=4).eval()
    >>> hr = torch.rand(2, 3, 16, 16)
    >>> from scene2img.data.superres import bicubic_downscale
    >>> batches = [{"lr": bicubic_downscale(hr, 2), "hr": hr}]
    >>> sorted(upscaler_scores(net, batches, 2, "test"))[:2]
    ['test/x2/psnr/bicubic', 'test/x2/psnr/nearest']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from scene2img.data.superres import bicubic_upscale, nearest_upscale, shave
from scene2img.evaluation.diversity import DiversityLPIPS

__all__ = ["upscaler_scores"]


@torch.no_grad()
def upscaler_scores(
    net: nn.Module,  # LR [N, 3, h, w] -> SR [N, 3, s*h, s*w], in [0, 1]
    batches: Iterable[dict[str, torch.Tensor]],  # {"lr", "hr"}, e.g. a SuperResDataset loader
    scale: int,
    split: str,  # named in the metrics: test | val
    lpips: nn.Module | None = None,  # from `evaluation.diversity.load_lpips`; None: no LPIPS
    lpips_name: str = "lpips",  # its metric name, e.g. "lpips-alex"
) -> dict[str, float]:
    """`{split}/x{scale}/{psnr,ssim}/{rdn,bicubic,nearest}` over all batches, and
    `{split}/x{scale}/{lpips_name}/...` (lower is closer) with `lpips`."""
    methods: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "rdn": lambda lr: net(lr).clamp(0, 1),
        "bicubic": lambda lr: bicubic_upscale(lr, scale),
        "nearest": lambda lr: nearest_upscale(lr, scale),
    }
    # PSNR per image, then averaged (as SR papers report it), not over the pooled pixels
    metrics = {(m, k): make() for m in methods for k, make in (
        ("psnr", lambda: PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))),
        ("ssim", lambda: StructuralSimilarityIndexMeasure(data_range=1.0)))}
    kinds = ("psnr", "ssim")
    if lpips is not None:  # a mean distance over (SR, HR) pairs, as DiversityLPIPS measures it
        metrics.update({(m, lpips_name): DiversityLPIPS(lpips) for m in methods})
        kinds += (lpips_name,)
    for batch in batches:
        hr = shave(batch["hr"].float(), scale)
        for name, up in methods.items():
            sr = shave(up(batch["lr"].float()), scale)
            for kind in kinds:
                if kind in ("psnr", "ssim"):
                    metrics[name, kind].update(sr, hr)
                else:
                    metrics[name, kind].update(sr * 2 - 1, hr * 2 - 1)  # LPIPS takes [-1, 1]
    return {f"{split}/x{scale}/{kind}/{name}": float(m.compute())
            for (name, kind), m in metrics.items()}
