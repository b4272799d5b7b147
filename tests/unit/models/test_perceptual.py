"""The VGG-19 perceptual loss: weights from a local file (clear errors otherwise), the
reference's taps and weights, gradients into the generated image only."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from scene2img.errors import ConfigError, ModelError
from scene2img.models.perceptual import (
    TAPS,
    VGG_WEIGHTS_NAME,
    WEIGHTS,
    VGGPerceptualLoss,
    load_vgg19_features,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_missing_weights_name_the_file_and_the_way_out(tmp_path):
    with pytest.raises(ConfigError, match="train_image.vgg_weights is not set.*w_vgg=0"):
        load_vgg19_features(None)
    with pytest.raises(ConfigError, match="train_bachgan.vgg_weights is not set.*lambda_vgg=0"):
        load_vgg19_features(None, section="train_bachgan", weight="lambda_vgg")
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(ConfigError, match=f"{missing}: no such file.*{VGG_WEIGHTS_NAME}"):
        load_vgg19_features(missing)


def test_wrong_files_are_refused(tmp_path, vgg_weights):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="junk.pth: not a weights file"):
        load_vgg19_features(junk)
    state = torch.load(vgg_weights, weights_only=True)
    short = tmp_path / "short.pth"
    torch.save({k: v for k, v in state.items() if not k.startswith("features.28")}, short)
    with pytest.raises(ModelError, match=r"missing \['features.28.bias'"):
        load_vgg19_features(short)
    state["features.0.weight"] = torch.zeros(32, 3, 3, 3)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    with pytest.raises(ModelError, match=r"features.0.weight has shape \[32, 3, 3, 3\]"):
        load_vgg19_features(wrong)


def test_loss_is_the_weighted_l1_of_the_five_relu_taps(vgg_weights):
    net = load_vgg19_features(vgg_weights)
    assert not any(p.requires_grad for p in net.parameters())
    loss = VGGPerceptualLoss(net)
    g = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    fake = (torch.rand(2, 3, 32, 32, generator=g) * 2 - 1).requires_grad_(True)
    got = loss(fake, real)

    expected, x, y = 0.0, fake.detach(), real
    for i, layer in enumerate(net):
        x, y = layer(x), layer(y)
        if i in TAPS:
            expected += WEIGHTS[TAPS.index(i)] * F.l1_loss(x, y)
    assert torch.allclose(got, torch.as_tensor(expected), rtol=1e-5)
    got.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert float(loss(real, real)) == 0.0
    loss.train()
    assert not loss.training  # a fixed network


def test_docstring_example():
    import doctest

    from scene2img.models import perceptual

    assert doctest.testmod(perceptual, extraglobs={"torch": torch}).failed == 0
