"""The multi-scale PatchGAN (models/patchgan.py): per-scale features, widths, the condition."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch.nn.utils import parametrize

from scene2img.models import patchgan
from scene2img.models.patchgan import MultiscaleDiscriminator, NLayerDiscriminator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_scale_returns_every_layer() -> None:
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(label_channels=5, ndf=4, n_layers=4, num_d=3)
    out = d(torch.randn(2, 3, 64, 64), torch.zeros(2, 5, 64, 64))
    assert len(out) == 3 and all(len(scale) == 5 for scale in out)
    # widths ndf, 2 ndf, 4 ndf, 8 ndf, then the score; first scale: 64 -> 33 -> 17 -> 9 -> 10 -> 11
    assert [f.shape[1] for f in out[0]] == [4, 8, 16, 32, 1]
    assert [f.shape[-1] for f in out[0]] == [33, 17, 9, 10, 11]
    assert out[1][0].shape[-1] == 17 and out[2][0].shape[-1] == 9  # 32 and 16 px inputs


def test_widths_stop_at_512_and_norms_sit_where_the_reference_puts_them() -> None:
    d = NLayerDiscriminator(in_channels=8, ndf=256, n_layers=4)
    convs = [layer[0] for layer in d.layers]
    assert [c.out_channels for c in convs] == [256, 512, 512, 512, 1]
    assert [parametrize.is_parametrized(c) for c in convs] == [False, True, True, True, False]
    assert [c.bias is None for c in convs] == [False, True, True, True, False]


def test_the_label_map_conditions_the_scores_and_is_resized() -> None:
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(label_channels=2, ndf=4, n_layers=2, num_d=2).eval()  # fixed SN
    images = torch.randn(1, 3, 32, 32)
    a, b = torch.zeros(1, 2, 16, 16), torch.zeros(1, 2, 16, 16)
    b[:, 1, 4:12, 4:12] = 1
    out_a, out_b = d(images, a), d(images, b)  # 16 px maps beside 32 px images
    assert not torch.allclose(out_a[0][-1], out_b[0][-1])
    big = torch.nn.functional.interpolate(b, size=(32, 32), mode="nearest")
    assert torch.equal(d(images, big)[0][-1], out_b[0][-1])


def test_docstring_examples() -> None:
    assert doctest.testmod(patchgan, extraglobs={"torch": torch}).failed == 0
