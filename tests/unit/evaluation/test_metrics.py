from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import scipy.linalg
import torch

from scene2img.evaluation.images import to_uint8
from scene2img.evaluation.metrics import (
    FeatureFID,
    SceneFID,
    compute_seeded,
    make_fid,
    make_inception_score,
    make_kid,
)
from tests.unit.evaluation.conftest import smooth_images


def fid_reference(real: np.ndarray, fake: np.ndarray) -> float:
    """FID in float64 with scipy's sqrtm (the pytorch-fid / TTUR formula)."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def features(tiny, images: torch.Tensor) -> torch.Tensor:
    return tiny(to_uint8(images)).pool


def fid_of(real: torch.Tensor, fake: torch.Tensor) -> float:
    fid = make_fid(real.shape[1])
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    return float(fid.compute())


def test_fid_matches_scipy_reference(tiny):
    real = features(tiny, smooth_images(300, seed=0))
    fake = features(tiny, (smooth_images(300, seed=1) * 0.7 + 0.1))
    ref = fid_reference(real.double().numpy(), fake.double().numpy())
    got = fid_of(real, fake)
    assert ref > 0.01
    assert abs(got - ref) / ref < 1e-4, (got, ref)


def test_fid_matches_reference_across_batches(tiny):
    # Accumulating in several updates gives the same number as one update.
    real = features(tiny, smooth_images(120, seed=2))
    fake = features(tiny, smooth_images(120, seed=3))
    fid = make_fid(real.shape[1])
    for r, f in itertools.zip_longest(real.split(17), fake.split(23)):
        if r is not None:
            fid.update(r.double(), real=True)
        if f is not None:
            fid.update(f.double(), real=False)
    ref = fid_reference(real.double().numpy(), fake.double().numpy())
    assert abs(float(fid.compute()) - ref) / ref < 1e-4


def test_fid_of_a_set_against_itself_is_zero(tiny):
    real = features(tiny, smooth_images(200, seed=4))
    assert abs(fid_of(real, real)) < 1e-6


def test_fid_increases_strictly_with_noise(tiny):
    images = smooth_images(200, seed=5)
    real = features(tiny, images)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(images.shape, generator=g)
    scores = [fid_of(real, features(tiny, images + sigma * noise)) for sigma in (0.05, 0.2, 0.5)]
    assert 0 < scores[0] < scores[1] < scores[2], scores


def test_fid_reset_and_pickle(tiny):
    real = features(tiny, smooth_images(50, seed=6))
    fid = make_fid(real.shape[1])
    fid.update(real.double(), real=True)
    fid.update(real.double() + 1, real=False)
    value = float(fid.compute())
    clone = pickle.loads(pickle.dumps(fid))
    assert float(clone.compute()) == pytest.approx(value)
    fid.reset()
    assert int(fid.real_features_num_samples) == 0


def test_kid_and_is_are_seeded(tiny):
    real = features(tiny, smooth_images(40, seed=7))
    fake = features(tiny, smooth_images(40, seed=8))
    logits = tiny(to_uint8(smooth_images(40, seed=8))).logits

    def run(seed: int):
        kid = make_kid(real.shape[1], subsets=10, subset_size=20)
        kid.update(real, real=True)
        kid.update(fake, real=False)
        score = make_inception_score(logits.shape[1], splits=4)
        score.update(logits)
        return [float(v) for v in (*compute_seeded(kid, seed), *compute_seeded(score, seed))]

    before = torch.get_rng_state()
    assert run(0) == run(0)
    assert run(0) != run(1)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is left alone


def test_scenefid_matches_torchmetrics_fid_overall_and_per_class(tiny):
    real = features(tiny, smooth_images(60, seed=9))
    fake = features(tiny, smooth_images(60, seed=10))
    classes = torch.arange(60) % 3
    classes[0] = 7  # a class with one sample: left out
    m = SceneFID(real.shape[1])
    for r, f, c in zip(real.split(25), fake.split(25), classes.split(25), strict=True):
        m.update(r, c, real=True)
        m.update(f, c, real=False)
    out = m.compute()
    assert out.overall == pytest.approx(fid_of(real, fake), rel=1e-5)
    assert sorted(out.per_class) == [0, 1, 2]
    for c in (0, 1, 2):
        sel = classes == c
        assert out.per_class[c] == pytest.approx(fid_of(real[sel], fake[sel]), rel=1e-5)
    assert pickle.loads(pickle.dumps(m)).compute().per_class == pytest.approx(out.per_class)


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_feature_fid_is_torchmetrics_fid_with_fewer_or_more_samples_than_dimensions(tiny):
    real = features(tiny, smooth_images(70, seed=12))
    fake = features(tiny, smooth_images(50, seed=13) * 0.8)
    for n in (5, 70):  # below and above the feature dimension
        m = FeatureFID(real.shape[1])
        m.update(real[:n], real=True)
        m.update(fake[: min(n, 50)], real=False)
        assert float(m.compute()) == pytest.approx(fid_of(real[:n], fake[: min(n, 50)]), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        FeatureFID(real.shape[1]).compute()


def test_frechet_distance_matches_scipy_and_torchmetrics():
    from scene2img.evaluation.metrics import frechet_distance

    g = torch.Generator().manual_seed(11)
    mix = torch.randn(12, 12, generator=g, dtype=torch.float64)
    real = torch.randn(400, 12, generator=g, dtype=torch.float64) @ mix
    fake = torch.randn(300, 12, generator=g, dtype=torch.float64) @ (mix * 1.3) + 0.2
    ref = fid_reference(real.numpy(), fake.numpy())
    assert abs(frechet_distance(real, fake) - ref) / ref < 1e-8
    # Fewer samples than dimensions (rank-deficient covariances): as torchmetrics' eigvals.
    real, fake = real[:5], fake[:7]
    assert frechet_distance(real, fake) == pytest.approx(fid_of(real, fake), rel=1e-6)
    assert abs(frechet_distance(real, real)) < 1e-9
