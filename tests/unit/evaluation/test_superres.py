"""Upscaler scores: per-image PSNR against a hand computation, the baselines, the docstring."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F

from scene2img.data.superres import bicubic_downscale, bicubic_upscale, shave
from scene2img.evaluation import superres
from scene2img.evaluation.superres import upscaler_scores

pytestmark = pytest.mark.usefixtures("one_thread")


class Bicubic(torch.nn.Module):
    def forward(self, lr):
        return bicubic_upscale(lr, 2)


def _smooth(n: int, size: int) -> torch.Tensor:
    torch.manual_seed(0)
    return F.interpolate(torch.rand(n, 3, size // 4, size // 4), size=(size, size),
                         mode="bilinear", align_corners=False)


def test_scores_match_a_hand_computation_and_order_the_baselines():
    hr = _smooth(4, 32)
    batches = [{"lr": bicubic_downscale(hr[:2], 2), "hr": hr[:2]},
               {"lr": bicubic_downscale(hr[2:], 2), "hr": hr[2:]}]
    scores = upscaler_scores(Bicubic(), batches, 2, "test")
    assert scores["test/x2/psnr/rdn"] == pytest.approx(scores["test/x2/psnr/bicubic"])
    assert scores["test/x2/ssim/rdn"] == pytest.approx(scores["test/x2/ssim/bicubic"])
    # PSNR per image (border shaved), then the mean: as SR papers report it
    sr = bicubic_upscale(bicubic_downscale(hr, 2), 2)
    mse = ((shave(sr, 2) - shave(hr, 2)) ** 2).flatten(1).mean(1)
    assert scores["test/x2/psnr/bicubic"] == pytest.approx(float((-10 * mse.log10()).mean()),
                                                           rel=1e-5)
    assert scores["test/x2/psnr/bicubic"] > scores["test/x2/psnr/nearest"]
    assert scores["test/x2/ssim/bicubic"] > scores["test/x2/ssim/nearest"]
    assert 0 < scores["test/x2/ssim/nearest"] < 1


def test_docstring_example():
    result = doctest.testmod(superres, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0



def test_lpips_when_its_network_is_given(tmp_path):
    """With LPIPS (AlexNet features from a local file, seeded random values: no download), the
    scores add a mean distance per method; without it, none."""
    from torchvision.models import alexnet

    from scene2img.evaluation.diversity import load_lpips

    torch.manual_seed(0)
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save({k: v for k, v in alexnet(weights=None).state_dict().items()
                if k.startswith("features.")}, path)
    hr = _smooth(2, 64)
    batches = [{"lr": bicubic_downscale(hr, 2), "hr": hr}]
    scores = upscaler_scores(Bicubic(), batches, 2, "test", load_lpips(path), "lpips-alex")
    assert scores["test/x2/lpips-alex/rdn"] == scores["test/x2/lpips-alex/bicubic"] > 0
    assert scores["test/x2/lpips-alex/nearest"] != scores["test/x2/lpips-alex/bicubic"]
    assert "test/x2/lpips-alex/rdn" not in upscaler_scores(Bicubic(), batches, 2, "test")
