from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import DataLoader

from scene2img.errors import ConfigError
from scene2img.evaluation.evaluator import Generated, RealFeatures, evaluate_images
from scene2img.evaluation.images import to_uint8
from tests.unit.evaluation.conftest import (
    TinyBackbone,
    make_batches,
    noisy_generator,
    tiny_protocol,
)
from tests.unit.evaluation.test_metrics import fid_reference


def run(tiny, sigma=0.3, **kw):
    protocol = kw.pop("protocol", None) or tiny_protocol(tiny)
    return evaluate_images(make_batches(), noisy_generator(sigma), protocol, "cpu", backbone=tiny,
                           report_samples=3, **kw)


def test_metrics_names_counts_and_fid_reference(tiny):
    result = run(tiny)
    m = result.metrics
    assert set(m) == {"fid_tiny_test", "kid_tiny_test", "kid_std_tiny_test", "is_tiny_test",
                      "is_std_tiny_test", "scenefid_tiny_test"}
    p = result.protocol
    assert (p.num_real, p.num_generated, p.num_real_crops, p.num_generated_crops) == (24, 48, 96, 192)
    assert p.kid_subset_size == 10 and any("diversity skipped" in n for n in result.notes)
    # The same FID from the features of the same uint8 images, computed by scipy.
    batches = make_batches()
    with torch.random.fork_rng():
        torch.manual_seed(p.seed)
        fakes = [noisy_generator(0.3)(b, s) for b in batches for s in range(2)]
    real = torch.cat([tiny(to_uint8(b["image"])).pool for b in batches]).double().numpy()
    fake = torch.cat([tiny(to_uint8(f)).pool for f in fakes]).double().numpy()
    ref = fid_reference(real, fake)
    assert abs(m["fid_tiny_test"] - ref) / ref < 1e-4


def test_same_seed_same_numbers_and_caller_rng_untouched(tiny):
    state = torch.get_rng_state()
    a, b = run(tiny), run(tiny)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.metrics == b.metrics and a.per_class_scenefid == b.per_class_scenefid
    c = run(tiny, protocol=tiny_protocol(tiny, seed=1))
    assert c.metrics["fid_tiny_test"] != a.metrics["fid_tiny_test"]
    assert a.protocol.comparable(c.protocol)[0]  # another seed measures the same thing


def test_modes_share_the_real_features_and_get_the_same_numbers(tiny):
    calls = []
    forward = tiny.forward
    tiny.forward = lambda x: calls.append(len(x)) or forward(x)
    shared = RealFeatures()
    first = run(tiny, real_features=shared)
    n_first = sum(calls)
    second = run(tiny, real_features=shared)  # the same real data: only generated images now
    p = first.protocol
    assert sum(calls) - n_first == n_first - p.num_real - p.num_real_crops
    assert second.metrics == first.metrics == run(tiny).metrics
    # Another resize (or backbone, size, split, data) measures other real features: not reused.
    calls.clear()
    run(tiny, real_features=shared, protocol=tiny_protocol(tiny, scenefid_crop_size=24))
    assert sum(calls) == n_first


def test_fid_grows_with_generator_noise(tiny):
    scores = [run(tiny, sigma).metrics for sigma in (0.05, 0.3, 0.8)]
    fids = [s["fid_tiny_test"] for s in scores]
    assert fids[0] < fids[1] < fids[2]
    scenefids = [s["scenefid_tiny_test"] for s in scores]
    assert scenefids[0] < scenefids[2]


def test_report_material_grid_best_worst_and_classes(tiny):
    names = ["__image__", "sky", "tree", "car", "dog", "cat"]
    result = run(tiny, class_names=names)
    assert result.grid_real.shape == (3, 3, 32, 32)
    assert result.grid_generated.shape == (3, 2, 3, 32, 32)
    assert torch.equal(result.grid_real[0], to_uint8(make_batches()[0]["image"][0]))
    best, worst = [s.score for s in result.best], [s.score for s in result.worst]
    assert best == sorted(best) and worst == sorted(worst, reverse=True)
    assert len(best) == 3 and best[0] <= worst[-1]
    assert set(result.per_class_scenefid) <= set(names[1:]) and result.per_class_scenefid
    assert result.to_dict()["protocol"]["backbone"] == "tiny"


def test_pred_layout_mode_reports_layout_metrics(tiny):
    def generate(batch, sample):
        boxes = batch["boxes"].clone()
        boxes[:, 0, 2:] *= 0.5  # first object: a quarter of its box -> IoU 0.25
        return Generated(batch["image"] + 0.2 * torch.randn(batch["image"].shape), boxes)

    protocol = tiny_protocol(tiny, mode="pred-layout")
    result = evaluate_images(make_batches(), generate, protocol, backbone=tiny)
    m = result.metrics
    assert "fid_tiny_test_predlayout" in m
    # Scored: the 4 objects, not __image__ nor padding; the first at IoU 0.25.
    assert m["layout_box_iou_test"] == pytest.approx((0.25 + 3) / 4)
    assert m["layout_recall_at_0.5_test"] == pytest.approx(0.75)
    assert m["layout_recall_at_0.3_test"] == pytest.approx(0.75)


def test_max_images_and_checks(tiny):
    result = run(tiny, max_images=10)
    assert result.protocol.num_real == 10 and result.protocol.num_generated == 20
    with pytest.raises(ConfigError, match="not the protocol's"):
        run(TinyBackbone(seed=1), protocol=tiny_protocol(tiny))
    with pytest.raises(ValueError, match="generate_fn returned"):
        evaluate_images(make_batches(), lambda b, s: b["image"][:1], tiny_protocol(tiny),
                        backbone=tiny)
    with pytest.raises(ConfigError, match="at least 2 real"):
        run(tiny, max_images=1)


def test_resizes_generated_images_to_the_protocol_size(tiny):
    def generate(batch, sample):  # a generator at twice the resolution
        return torch.nn.functional.interpolate(batch["image"], scale_factor=2, mode="nearest")

    result = evaluate_images(make_batches(), generate, tiny_protocol(tiny), backbone=tiny)
    assert result.grid_generated.shape[-1] == 32
    assert result.metrics["fid_tiny_test"] < run(tiny, 0.3).metrics["fid_tiny_test"]


@pytest.mark.parametrize("backbone_name", [
    "tiny",
    # Two torchmetrics FIDs on 2048-d features (eigvals of 2048 x 2048): ~1 min on 2 cores.
    # The tiny case covers the same path; the backbone's own tests cover random-inception.
    pytest.param("random-inception", marks=pytest.mark.slow),
])
def test_dataset_batches(toy_coco, tiny, backbone_name):
    from scene2img.data.dataset import SceneGraphDataset
    from scene2img.data.processed import load_vocab
    from scene2img.evaluation.backbones import build_backbone
    from scene2img.evaluation.protocol import manifest_sha256

    vocab = load_vocab(toy_coco)
    loader = DataLoader(SceneGraphDataset(toy_coco, "test", max_objects=16, vocab=vocab), batch_size=2)
    backbone = tiny if backbone_name == "tiny" else build_backbone(backbone_name, seed=0)
    protocol = dataclasses.replace(
        tiny_protocol(backbone, image_size=64, samples_per_layout=1, scenefid_crop_size=32),
        dataset_sha256=manifest_sha256(toy_coco))
    result = evaluate_images(loader, noisy_generator(0.2), protocol, backbone=backbone,
                             class_names=vocab.object_idx_to_name, max_images=4, report_samples=2)
    assert f"fid_{backbone_name}_test" in result.metrics
    assert f"scenefid_{backbone_name}_test" in result.metrics
    assert result.protocol.num_real == 4 and result.protocol.num_real_crops > 0
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())
    assert "__image__" not in result.per_class_scenefid
