"""FID, SceneFID, KID and Inception Score on features extracted once, as torchmetrics `Metric`s.

The backbone runs once per image; its features feed the metrics. KID and Inception Score are
torchmetrics' own, fed through `PrecomputedFeatures`, an identity "feature extractor". FID and
SceneFID (`FeatureFID`, `SceneFID`) keep the features and compute the Frechet distance by
`frechet_distance`, the same quantity as torchmetrics' `FrechetInceptionDistance` (`make_fid`,
kept as the reference the tests compare with) at the cost of the sets' size rather than a fixed
2048 x 2048 eigendecomposition. Metric states sync across DDP ranks when `compute()` is called,
so under DDP every rank updates with its own images and every rank gets the same numbers.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities import dim_zero_cat


class PrecomputedFeatures(nn.Module):
    """Identity "feature extractor": `update()` receives features `[N, D]` instead of images.

    Example:
        >>> fid = make_fid(num_features=4)
        >>> g = torch.Generator().manual_seed(0)
        >>> a = torch.randn(64, 4, generator=g, dtype=torch.float64)
        >>> fid.update(a, real=True); fid.update(a, real=False)
        >>> abs(float(fid.compute())) < 1e-6
        True
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        if not (isinstance(num_features, int) and num_features > 0):
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        if features.dim() != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"expected features [N, {self.num_features}], got {list(features.shape)}")
        return features


def make_fid(num_features: int, **kwargs: Any) -> FrechetInceptionDistance:
    """torchmetrics' FID over precomputed features `[N, num_features]` (update with float64)."""
    return FrechetInceptionDistance(feature=PrecomputedFeatures(num_features), **kwargs)


def make_kid(num_features: int, subsets: int, subset_size: int, **kwargs: Any) -> KernelInceptionDistance:
    """torchmetrics' KID over precomputed features; see `compute_kid` for the subset size."""
    with warnings.catch_warnings():  # "will save all extracted features in buffer": we know
        warnings.simplefilter("ignore", UserWarning)
        return KernelInceptionDistance(feature=PrecomputedFeatures(num_features), subsets=subsets,
                                       subset_size=subset_size, **kwargs)


def make_inception_score(num_classes: int, splits: int, **kwargs: Any) -> InceptionScore:
    """torchmetrics' Inception Score over precomputed logits `[N, num_classes]`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return InceptionScore(feature=PrecomputedFeatures(num_classes), splits=splits, **kwargs)


def compute_seeded(metric: Metric, seed: int) -> Any:
    """`metric.compute()` with torch's CPU RNG seeded (KID's subsets, IS's shuffle), restored after."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return metric.compute()


def frechet_distance(
    real: Tensor,  # [N1, D] features
    fake: Tensor,  # [N2, D] features
) -> float:
    """FID between two feature sets, in float64, through square-root factors of the covariances.

    With `S = F^T F` (F the centred features / sqrt(n - 1), or R of their QR when n > D),
    `tr sqrt(S1 S2)` is the nuclear norm of `F1 F2^T`: one SVD of a matrix no larger than
    `min(N1, D) x min(N2, D)`, exact for rank-deficient covariances, and much cheaper than
    torchmetrics' `eigvals(S1 @ S2)` on 2048 x 2048 when a set is small (per-class crops).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a = torch.randn(10, 64, generator=g)
        >>> round(frechet_distance(a, a), 6), frechet_distance(a, a + 1) > 63
        (0.0, True)
    """
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected features [N1, D] and [N2, D], got {list(real.shape)} and "
                         f"{list(fake.shape)}")
    if len(real) < 2 or len(fake) < 2:
        raise ValueError("FID needs at least 2 samples in each set")
    real, fake = real.double(), fake.double()
    mu1, mu2 = real.mean(0), fake.mean(0)
    f1, f2 = _cov_factor(real - mu1), _cov_factor(fake - mu2)
    trace_sqrt = torch.linalg.svdvals(f1 @ f2.T).sum()
    value = (mu1 - mu2).square().sum() + f1.square().sum() + f2.square().sum() - 2 * trace_sqrt
    return float(value)


def _cov_factor(centred: Tensor) -> Tensor:
    """F with F^T F = the sample covariance; at most D rows."""
    n, d = centred.shape
    f = centred / (n - 1) ** 0.5
    return torch.linalg.qr(f, mode="r").R if n > d else f


class FeatureFID(Metric):
    """FID from kept features: the same quantity as torchmetrics' `FrechetInceptionDistance`
    (tested against it and scipy), computed by `frechet_distance`.

    torchmetrics keeps running sums and takes `eigvals` of a D x D product in `compute()`: on
    2048-d features that costs seconds to a minute on a CPU whatever the number of images. Kept
    features make it one SVD no larger than the sets, so an evaluation of a few dozen images
    (the demo, the tests) pays for what it measured. States are lists that DDP gathers ("cat").

    Example:
        >>> m = FeatureFID(num_features=3)
        >>> g = torch.Generator().manual_seed(0)
        >>> f = torch.randn(8, 3, generator=g)
        >>> m.update(f, real=True); m.update(f + 1, real=False)
        >>> round(float(m.compute()), 4)
        3.0
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_features = num_features
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def _check(self, features: Tensor) -> None:
        if features.dim() != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"expected features [N, {self.num_features}], got "
                             f"{list(features.shape)}")

    def update(self, features: Tensor, real: bool) -> None:  # [N, D]
        self._check(features)
        (self.real_features if real else self.fake_features).append(features.float())

    def compute(self) -> Tensor:
        real, fake = _cat(self.real_features), _cat(self.fake_features)
        if real is None or fake is None or len(real) < 2 or len(fake) < 2:
            raise ValueError("FID needs at least 2 real and 2 generated samples")
        return torch.tensor(frechet_distance(real, fake), dtype=torch.float64)


class SceneFIDResult(NamedTuple):
    overall: float | None  # FID over all crops; None with fewer than 2 of either
    per_class: dict[int, float]  # class -> FID on that class's crops


class SceneFID(FeatureFID):
    """SceneFID: FID on object crops, over all crops and per object class (its table).

    Keeps every crop's features (float32, on the metric's device) and class; `compute()` returns
    the FID of all crops and `{class: fid}` for the classes with at least `min_samples` real and
    generated crops, both from `frechet_distance`.

    Example:
        >>> m = SceneFID(num_features=3, min_samples=2)
        >>> g = torch.Generator().manual_seed(0)
        >>> f = torch.randn(6, 3, generator=g)
        >>> m.update(f, torch.tensor([1, 1, 1, 2, 2, 2]), real=True)
        >>> m.update(f, torch.tensor([1, 1, 1, 2, 2, 2]), real=False)
        >>> out = m.compute()
        >>> abs(out.overall) < 1e-4, sorted(out.per_class), all(abs(v) < 1e-4 for v in out.per_class.values())
        (True, [1, 2], True)
    """

    def __init__(self, num_features: int, min_samples: int = 2, **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        if min_samples < 2:
            raise ValueError(f"min_samples must be at least 2 (a covariance), got {min_samples}")
        self.min_samples = min_samples
        self.add_state("real_classes", [], dist_reduce_fx="cat")
        self.add_state("fake_classes", [], dist_reduce_fx="cat")

    def update(self, features: Tensor, classes: Tensor, real: bool) -> None:  # [K, D], [K]
        self._check(features)
        if len(features) != len(classes):
            raise ValueError(f"features {list(features.shape)} do not match classes "
                             f"{list(classes.shape)}")
        super().update(features, real)
        (self.real_classes if real else self.fake_classes).append(classes.long())

    def compute(self) -> SceneFIDResult:
        states = (self.real_features, self.real_classes, self.fake_features, self.fake_classes)
        rf, rc, ff, fc = (_cat(x) for x in states)
        if rf is None or ff is None:
            return SceneFIDResult(None, {})
        overall = frechet_distance(rf, ff) if len(rf) >= 2 and len(ff) >= 2 else None
        per_class: dict[int, float] = {}
        for cls in sorted(set(rc.tolist()) & set(fc.tolist())):
            real, fake = rf[rc == cls], ff[fc == cls]
            if len(real) >= self.min_samples and len(fake) >= self.min_samples:
                per_class[cls] = frechet_distance(real, fake)
        return SceneFIDResult(overall, per_class)


def _cat(state: list[Tensor] | Tensor) -> Tensor | None:
    """A list state (one process) or its gathered tensor (after a DDP sync); None when empty."""
    if isinstance(state, list):
        return dim_zero_cat(state) if state else None
    return state
