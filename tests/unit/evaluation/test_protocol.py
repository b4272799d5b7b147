from __future__ import annotations

import dataclasses

import pytest

from scene2img.config import load_params
from scene2img.errors import ConfigError, DataError
from scene2img.evaluation.evaluator import build_protocol
from scene2img.evaluation.protocol import Protocol, default_samples_per_layout, manifest_sha256
from tests.unit.evaluation.conftest import tiny_protocol


@pytest.fixture
def protocol(tiny) -> Protocol:
    return tiny_protocol(tiny)


def test_same_protocol_is_comparable_and_seed_is_not_compared(protocol):
    assert protocol.comparable(protocol) == (True, [])
    assert protocol.comparable(dataclasses.replace(protocol, seed=7)) == (True, [])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"backbone_sha256": "f" * 64}, "backbone_sha256"),
        ({"backbone": "random-inception"}, "backbone"),
        ({"image_size": 64}, "image_size: 32 != 64"),
        ({"samples_per_layout": 5}, "samples_per_layout: 2 != 5"),
        ({"num_real": 10}, "num_real: 0 != 10"),
        ({"num_generated": 10}, "num_generated"),
        ({"antialias": False}, "antialias"),
        ({"dataset_sha256": "1" * 64}, "dataset_sha256"),
        ({"split": "val"}, "split"),
        ({"mode": "pred-layout"}, "mode"),
        ({"torchmetrics_version": "0.1"}, "torchmetrics_version"),
    ],
)
def test_differences_make_results_incomparable(protocol, change, reason):
    ok, reasons = protocol.comparable(dataclasses.replace(protocol, **change))
    assert not ok and len(reasons) == 1 and reasons[0].startswith(reason)


def test_several_reasons_are_all_listed(protocol):
    other = dataclasses.replace(protocol, image_size=64, backbone_sha256="f" * 64)
    ok, reasons = protocol.comparable(other)
    assert not ok and [r.split(":")[0] for r in reasons] == ["backbone_sha256", "image_size"]


def test_metric_names_carry_backbone_split_and_mode(protocol):
    assert protocol.metric_name("fid") == "fid_tiny_test"
    p = dataclasses.replace(protocol, backbone="random-inception", mode="pred-layout")
    assert p.metric_name("fid") == "fid_random-inception_test_predlayout"
    assert dataclasses.replace(protocol, backbone="inception").metric_name("fid") == "fid_inception_test"


def test_round_trip_tags_and_validation(protocol):
    assert Protocol.from_dict(protocol.to_dict()) == protocol
    assert protocol.as_tags()["eval.backbone"] == "tiny"
    with pytest.raises(ConfigError, match="unknown field"):
        Protocol.from_dict({**protocol.to_dict(), "colour": 1})
    with pytest.raises(ConfigError, match="samples_per_layout"):
        dataclasses.replace(protocol, samples_per_layout=0)
    with pytest.raises(ConfigError, match="mode"):
        dataclasses.replace(protocol, mode="both")


def test_lostgan_samples_per_layout():
    assert default_samples_per_layout("coco-stuff") == 5
    assert default_samples_per_layout("vg") == 1
    with pytest.raises(ConfigError):
        default_samples_per_layout("imagenet")


def test_build_protocol_from_params(tiny):
    params = load_params(overrides=["evaluate.backbone=tiny"]).evaluate
    p = build_protocol(params, tiny, image_size=128, dataset_sha256="ab", source="coco-stuff")
    assert p.samples_per_layout == 5 and p.backbone_sha256 == tiny.weights_sha256
    assert p.diversity.startswith("skipped")
    p = build_protocol(params, tiny, 128, "ab", "vg", lpips_sha256="cd")
    assert p.samples_per_layout == 1 and "needs 2 samples" in p.diversity
    p = build_protocol(dataclasses.replace(params, samples_per_layout=2), tiny, 128, "ab", "vg",
                       lpips_sha256="cd")
    assert p.diversity == "lpips-alex:cd"
    with pytest.raises(ConfigError, match="evaluate.backbone is 'inception'"):
        build_protocol(load_params().evaluate, tiny, 128, "ab", "vg")
    with pytest.raises(ConfigError, match="evaluate.resize"):
        build_protocol(dataclasses.replace(params, resize="lanczos"), tiny, 128, "ab", "vg")


def test_manifest_sha256(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    assert manifest_sha256(tmp_path) == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    with pytest.raises(DataError, match="manifest.json"):
        manifest_sha256(tmp_path / "missing")
