"""The multi-scale PatchGAN losses of models/gan_loss.py (SPADE / BachGAN): hinge, WGAN-GP,
feature matching, on hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from scene2img.models.gan_loss import (
    critic_value,
    d_adversarial,
    feature_matching,
    g_adversarial,
    gradient_penalty,
)
from scene2img.models.patchgan import MultiscaleDiscriminator

pytestmark = pytest.mark.usefixtures("one_thread")


def _scales(*score_maps: list[float]) -> list[list[torch.Tensor]]:
    """One sample; per scale a dummy feature and a [1, 1, 1, n] score map."""
    return [[torch.zeros(1, 2, 2, 2), torch.tensor(s).view(1, 1, 1, -1)] for s in score_maps]


REAL = _scales([2.0, 0.5], [0.0])
FAKE = _scales([-2.0, 0.5], [1.0])


def test_hinge_on_a_hand_computed_case() -> None:
    # scale 0: real relu(1 - [2, .5]) -> .25, fake relu(1 + [-2, .5]) -> .75; scale 1: 1 + 2
    assert d_adversarial(REAL, FAKE, "hinge").item() == pytest.approx((1.0 + 3.0) / 2)
    # G: -mean D(fake) per scale: .75 and -1
    assert g_adversarial(FAKE).item() == pytest.approx((0.75 - 1.0) / 2)


def test_wasserstein_on_a_hand_computed_case() -> None:
    # mean fake - mean real per scale: -.75 - 1.25 = -2, 1 - 0 = 1
    assert d_adversarial(REAL, FAKE, "wgan-gp").item() == pytest.approx((-2.0 + 1.0) / 2)
    assert critic_value(FAKE).tolist() == pytest.approx([(-0.75 + 1.0) / 2])


def test_an_unknown_loss_is_refused() -> None:
    with pytest.raises(ValueError, match="hinge, wgan-gp|'hinge', 'wgan-gp'"):
        d_adversarial(REAL, FAKE, "lsgan")


def _linear_critic(norm: float) -> tuple[torch.nn.Parameter, object]:
    w = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    w = torch.nn.Parameter(w / w.norm() * norm)
    return w, lambda x: (x * w).flatten(1).sum(1)


def test_the_gradient_penalty_of_a_linear_critic() -> None:
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    _, unit = _linear_critic(1.0)
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    w, double = _linear_critic(2.0)
    gp = gradient_penalty(double, real, fake)
    assert gp.item() == pytest.approx(1.0, rel=1e-5)  # (||grad|| - 1)^2 = (2 - 1)^2
    gp.backward()  # the penalty trains the critic: d gp / d w = 2 (||w|| - 1) w / ||w||
    assert torch.allclose(w.grad, w.detach() / 2.0 * 2 * (2.0 - 1.0), atol=1e-5)


def test_the_gradient_penalty_is_positive_for_a_real_discriminator() -> None:
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(label_channels=2, ndf=4, n_layers=2, num_d=2)
    labels = torch.zeros(2, 2, 16, 16)
    real, fake = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16, requires_grad=True)
    gp = gradient_penalty(lambda x: critic_value(d(x, labels)), real, fake,
                          generator=torch.Generator().manual_seed(0))
    assert gp.item() > 0
    gp.backward()
    assert fake.grad is None  # the penalty does not reach G
    # every parameter trains but the score layers' biases, which do not shape d critic / d x
    untouched = {n for n, p in d.named_parameters() if p.grad is None}
    assert untouched == {f"scales.{k}.layers.2.0.bias" for k in range(2)}


def test_feature_matching_skips_the_scores_and_detaches_real() -> None:
    fake = [[torch.ones(1, 2, 2, 2, requires_grad=True), torch.tensor([[[[5.0]]]])]
            for _ in range(2)]
    real = [[torch.zeros(1, 2, 2, 2, requires_grad=True), torch.tensor([[[[-5.0]]]])]
            for _ in range(2)]
    loss = feature_matching(fake, real)
    assert loss.item() == pytest.approx((1.0 + 1.0) / 2)  # L1 1 per scale, over 2 scales
    loss.backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None
