from __future__ import annotations

import pytest
import torch

from scene2img.errors import ConfigError, ModelError
from scene2img.evaluation.diversity import DiversityLPIPS, load_lpips


@pytest.fixture(scope="module")
def alexnet_weights(tmp_path_factory):
    """torchvision AlexNet's `features.*` weights (seeded random values): no download."""
    from torchvision.models import alexnet

    torch.manual_seed(0)
    state = {k: v for k, v in alexnet(weights=None).state_dict().items() if k.startswith("features.")}
    path = tmp_path_factory.mktemp("lpips") / "alexnet-owt-7be5be79.pth"
    torch.save(state, path)
    return path, state


def test_lpips_backbone_comes_from_the_file(alexnet_weights):
    path, state = alexnet_weights
    net = load_lpips(path, "alex")
    torch.testing.assert_close(net.net.slice1[0].weight, state["features.0.weight"])
    torch.testing.assert_close(getattr(net.net.slice5, "10").weight, state["features.10.weight"])
    assert not net.training


def test_diversity_is_zero_for_identical_pairs_and_positive_otherwise(alexnet_weights):
    m = DiversityLPIPS(load_lpips(alexnet_weights[0]))
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    m.update(a, a)
    assert float(m.compute()) == pytest.approx(0.0, abs=1e-6)
    m.reset()
    m.update(a, a.flip(0))
    assert float(m.compute()) > 0


def test_missing_or_wrong_lpips_file(tmp_path, alexnet_weights):
    with pytest.raises(ConfigError, match="alexnet-owt-7be5be79.pth"):
        load_lpips(tmp_path / "none.pth")
    with pytest.raises(ConfigError, match="unknown network"):
        load_lpips(alexnet_weights[0], "resnet")
    with pytest.raises(ModelError, match="features.0"):
        load_lpips(alexnet_weights[0], "vgg")


def test_evaluation_measures_diversity_when_configured(alexnet_weights, tiny):
    from scene2img.evaluation.evaluator import evaluate_images
    from tests.unit.evaluation.conftest import make_batches, noisy_generator, tiny_protocol

    protocol = tiny_protocol(tiny, diversity="lpips-alex:abc")
    result = evaluate_images(make_batches(), noisy_generator(0.3), protocol, backbone=tiny,
                             lpips=load_lpips(alexnet_weights[0]))
    assert result.metrics["diversity_lpips-alex_test"] > 0
    assert not any("diversity" in n for n in result.notes)
    with pytest.raises(ConfigError, match="no LPIPS network"):
        evaluate_images(make_batches(), noisy_generator(0.3), protocol, backbone=tiny)
