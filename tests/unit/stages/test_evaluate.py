"""Stage `evaluate`: what the generator is given (masks, latents) in each mode, and what the
protocol records about it, on the COCO-Stuff toy world (masks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scene2img.config import load_params
from scene2img.errors import DataError
from scene2img.models.boxes import real_objects
from scene2img.models.generator import LostGANGenerator
from scene2img.models.layout import LayoutModel
from scene2img.stages.evaluate import evaluate, generate_fn, mask_source

pytestmark = pytest.mark.usefixtures("one_thread")
K = 6  # classes


def _batch(has_masks: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "objects": torch.tensor([[1, 2, 0], [3, 4, 0]]),
        "boxes": torch.tensor([[0.1, 0.1, 0.4, 0.3], [0.5, 0.4, 0.4, 0.5], [0, 0, 1, 1]])
        .expand(2, 3, 4).clone(),
        "obj_valid": torch.ones(2, 3, dtype=torch.bool),
        "attributes": torch.zeros(2, 3, 0),
        "triples": torch.tensor([[[0, 1, 1], [0, 0, 2], [1, 0, 2]]]).expand(2, 3, 3).clone(),
        "triple_valid": torch.ones(2, 3, dtype=torch.bool),
        "masks": (torch.rand(2, 3, 16, 16, generator=g) > 0.5).float(),
        "has_masks": torch.full((2,), has_masks),
    }


def _nets():
    torch.manual_seed(0)
    G = LostGANGenerator(K, 0, 64, ch=1, z_img=8, z_obj=8, class_dim=8, mask_width=8,
                         stage_mask_dim=4).eval()
    L = LayoutModel(K, 3, embed_dim=8, gconv_dim=8, gconv_hidden=16, gconv_layers=1,
                    box_hidden=16, mask_dim=8).eval()
    return G, L


def _given(G, fn, batch) -> tuple:
    seen = []
    hook = G.register_forward_pre_hook(lambda m, args: seen.append(args))
    try:
        fn(batch, 0)
    finally:
        hook.remove()
    return seen[0]


@pytest.mark.parametrize("mode", ["gt-layout", "pred-layout"])
def test_masks_follow_how_the_generator_was_trained(mode):
    G, L = _nets()
    batch = _batch()
    args = _given(G, generate_fn(G, L, mode, False, None), batch)
    assert len(args) < 7 or args[6] is None  # regressed: nothing given
    args = _given(G, generate_fn(G, L, mode, True, None), batch)
    if mode == "gt-layout":
        assert torch.equal(args[6], batch["masks"])  # the data's masks
    else:
        _, predicted = L(batch["objects"], batch["obj_valid"], batch["triples"],
                         batch["triple_valid"], batch["attributes"])
        real = real_objects(batch["objects"], batch["obj_valid"])
        assert torch.allclose(args[6][real], predicted[real])  # the layout model's masks
        assert float(args[6][~real].abs().max()) == 0.0  # none for __image__, as served
    assert mask_source(False, mode) == "regressed"
    assert mask_source(True, mode) == {"gt-layout": "ground-truth",
                                       "pred-layout": "layout-model"}[mode]


def test_truncated_latents_and_a_split_without_masks():
    G, L = _nets()
    args = _given(G, generate_fn(G, L, "gt-layout", False, 0.5), _batch())
    z_img, z_obj = args[4], args[5]
    assert z_img.abs().max() <= 0.5 and z_obj.abs().max() <= 0.5
    with pytest.raises(DataError, match="takes ground-truth masks but this split has images "
                                        "without masks"):
        generate_fn(G, L, "gt-layout", True, None)(_batch(has_masks=False), 0)


def test_protocol_records_masks_latents_and_weights(toy_coco: Path, toy_coco_model: Path,
                                                    tmp_path: Path):
    params = load_params(experiment="toyworld_coco", overrides=[
        "evaluate.max_images=2", "evaluate.samples_per_layout=1", "evaluate.batch_size=2",
        "evaluate.report_samples=1", "evaluate.kid_subsets=2"])
    result = evaluate(str(toy_coco), toy_coco_model / "image_model.pt", None,
                      tmp_path / "eval", params, log_to_mlflow=False)
    protocol = json.loads(result.metrics_path.read_text())["protocols"]["gt-layout"]
    assert protocol["masks"] == "regressed"
    assert protocol["latents"] == "truncated-normal:2.0"
    assert protocol["generator_weights"] == (
        "weights ema (decay 0.99); batch_norm recomputed over 2 training batches")
    assert "fid_random-inception_test" in result.metrics


def test_fid_of_upscaled_images_under_its_own_protocol(toy_vg: Path, toy_model: Path,
                                                       tmp_path: Path):
    """With an upscaler, each mode is measured again at the upscaled size against the raw
    images at that size: its own protocol and metric names (`fid_128_rdn_x2_...`)."""
    from scene2img.errors import ConfigError
    from scene2img.models.upscaler import RDN
    from scene2img.training.export import export_upscaler, load_layout_model

    params = load_params(experiment="toyworld", overrides=[
        "evaluate.backbone=random-inception", "evaluate.max_images=2",
        "evaluate.samples_per_layout=1", "evaluate.batch_size=2", "evaluate.report_samples=1",
        "evaluate.kid_subsets=2", "evaluate.kid_subset_size=2", "evaluate.is_splits=1",
        "evaluate.scenefid_crop_size=32"])
    upscaler = tmp_path / "upscaler_model.pt"
    torch.manual_seed(0)
    export_upscaler(upscaler, RDN(2, blocks=1, layers=1, growth=4, features=4, bicubic_skip=True),
                    load_layout_model(toy_model / "layout_model.pt")[1])
    result = evaluate(str(toy_vg), toy_model / "image_model.pt", toy_model / "layout_model.pt",
                      tmp_path / "eval", params, log_to_mlflow=False, upscaler_model=upscaler,
                      raw_dir=toy_vg.parent / "raw")
    report = json.loads(result.metrics_path.read_text())
    for mode, suffix in (("gt-layout", ""), ("pred-layout", "_predlayout")):
        assert f"fid_random-inception_test{suffix}" in result.metrics
        assert f"fid_128_rdn_x2_random-inception_test{suffix}" in result.metrics
        up, plain = report["protocols"][f"{mode}_128_rdn_x2"], report["protocols"][mode]
        assert (plain["image_size"], plain["upscaler"]) == (64, "none")
        assert up["image_size"] == 128 and up["upscaler"].startswith("rdn_x2:")
        assert up["num_real"] == up["num_generated"] == 2
    # only the metrics named with the upscaler come from the upscaled pass
    assert not any("layout_" in k and "rdn" in k for k in result.metrics)
    with pytest.raises(ConfigError, match="--upscaler-model and --raw go together"):
        evaluate(str(toy_vg), toy_model / "image_model.pt", None, tmp_path / "e2", params,
                 log_to_mlflow=False, upscaler_model=upscaler)
