from __future__ import annotations

import pytest
import torch

from scene2img.errors import ConfigError, ModelError
from scene2img.evaluation.backbones import (
    BACKBONES,
    INCEPTION_WEIGHTS_NAME,
    RandomInception,
    build_backbone,
    load_fid_inception,
    sha256_file,
)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, 3, 64, 64), generator=g, dtype=torch.uint8)


@pytest.fixture(scope="module")
def random_inception() -> RandomInception:
    return RandomInception(seed=0)


def test_registry_names():
    assert set(BACKBONES) == {"inception", "random-inception"}
    with pytest.raises(ConfigError, match="unknown backbone 'vgg'.*known"):
        build_backbone("vgg")


def test_random_inception_is_deterministic_by_seed(random_inception, images):
    again = RandomInception(seed=0)
    other = RandomInception(seed=1)
    assert again.weights_sha256 == random_inception.weights_sha256
    assert other.weights_sha256 != random_inception.weights_sha256
    a, b, c = random_inception(images), again(images), other(images)
    assert a.pool.shape == (3, 2048) and a.logits.shape == (3, 1008)
    assert torch.equal(a.pool, b.pool) and torch.equal(a.logits, b.logits)
    assert not torch.allclose(a.pool, c.pool)
    assert torch.isfinite(a.pool).all() and a.pool.std() > 1e-3  # a usable scale, not 0 or inf


def test_random_inception_stays_in_eval_mode_and_checks_input(random_inception, images):
    random_inception.train()
    assert not random_inception.training and not random_inception.net.training
    with pytest.raises(TypeError, match="uint8"):
        random_inception(images.float())


def test_missing_weights_stop_with_what_to_fetch(tmp_path):
    with pytest.raises(ConfigError) as err:
        build_backbone("inception", weights=None)
    msg = str(err.value)
    assert INCEPTION_WEIGHTS_NAME in msg and "evaluate.inception_weights" in msg
    assert "https://github.com/toshas/torch-fidelity/releases" in msg
    assert "evaluate.backbone=random-inception" in msg
    with pytest.raises(ConfigError, match="does not exist"):
        build_backbone("inception", weights=tmp_path / "nowhere.pth")


def test_bad_weights_file_is_a_model_error(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="weights_only=True"):
        load_fid_inception(junk)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(ModelError, match="not the FID InceptionV3"):
        load_fid_inception(other)


@pytest.fixture(scope="module")
def fake_fid_weights(tmp_path_factory):
    """A state dict with the FID InceptionV3's keys and shapes (random values): no download."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = tmp_path_factory.mktemp("weights") / INCEPTION_WEIGHTS_NAME
    torch.save({}, path)
    original = FeatureExtractorInceptionV3.load_state_dict
    FeatureExtractorInceptionV3.load_state_dict = lambda self, state: None  # keep random init
    try:
        torch.manual_seed(0)
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], str(path))
    finally:
        FeatureExtractorInceptionV3.load_state_dict = original
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.parametrize("antialias", [False, True])
def test_inception_backbone_is_torchmetrics_fid_network(fake_fid_weights, images, antialias):
    from torchmetrics.image.fid import FrechetInceptionDistance

    net = build_backbone("inception", weights=fake_fid_weights, antialias=antialias)
    assert net.name == "inception" and net.weights_sha256 == sha256_file(fake_fid_weights)
    feats = net(images)
    assert feats.pool.shape == (3, 2048) and feats.logits.shape == (3, 1008)
    # The pool features are exactly the ones torchmetrics' own FID accumulates.
    fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(fake_fid_weights),
                                   antialias=antialias)
    fid.update(images, real=True)
    torch.testing.assert_close(fid.real_features_sum, feats.pool.double().sum(0))
