"""Generation and edits with a real (tiny) toy-world model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scene2img.errors import ConfigError, ModelError, SceneGraphError
from scene2img.serving.edit import edit, edit_locality
from scene2img.serving.pipeline import SceneToImage
from scene2img.training.export import check_mask_sizes
from tests.cli import CLI, run_cli

GRAPH = {"version": 1,
         "objects": [{"name": "car", "attributes": ["red"]}, {"name": "tree"},
                     {"name": "grass"}, {"name": "sky"}],
         "relationships": [{"subject": 0, "predicate": "left of", "object": 1},
                           {"subject": 3, "predicate": "above", "object": 2}]}


@pytest.fixture(scope="module")
def model(toy_model: Path) -> SceneToImage:
    return SceneToImage.from_dir(toy_model)


def test_generation_is_seeded_and_fills_attributes(model: SceneToImage) -> None:
    graph = model.parse(GRAPH)
    a, b = model.generate(graph, seed=3), model.generate(graph, seed=3)
    assert np.array_equal(a.image, b.image) and a.image.shape == (64, 64, 3)
    assert not np.array_equal(a.image, model.generate(graph, seed=4).image)
    assert a.graph.objects[0].attributes == ["red"]  # given: kept
    assert a.graph.objects[1].attributes  # not given: sampled from the tree statistics
    assert a.boxes.shape == (4, 4) and ((a.boxes >= 0) & (a.boxes <= 1)).all()


def test_edits_keep_the_rest_of_the_picture(model: SceneToImage) -> None:
    figures = edit_locality(model, GRAPH, index=0, attributes=["blue"])
    print(f"mean |change| outside the edited box: edit {figures['edit']:.2f}, "
          f"fresh sample {figures['fresh_sample']:.2f} (0-255)")
    assert figures["edit"] < 0.5 * figures["fresh_sample"], figures

    before = model.generate(model.parse(GRAPH), seed=0)
    added = edit(model, before.state, [{"op": "add", "object": {"name": "ball"},
                                        "relationships": [{"predicate": "left of",
                                                           "object": 1}]}])
    assert [o.name for o in added.graph.objects] == ["car", "tree", "grass", "sky", "ball"]
    assert np.allclose(added.boxes[:4], before.boxes)  # untouched objects keep their boxes
    removed = edit(model, added.state, [{"op": "remove", "index": 4}])
    assert len(removed.graph.objects) == 4
    with pytest.raises(SceneGraphError, match="not an object position"):
        edit(model, before.state, [{"op": "remove", "index": 9}])
    with pytest.raises(SceneGraphError, match="unknown operation 'paint'"):
        edit(model, before.state, [{"op": "paint"}])


def test_cli_generate_edit_and_text(toy_model: Path, tmp_path: Path) -> None:
    scene = tmp_path / "scene.json"
    scene.write_text(json.dumps(GRAPH))

    def run(*args: str) -> subprocess.CompletedProcess:
        return run_cli(*args, "--model", str(toy_model))

    out = subprocess.run([CLI, "generate", "--graph", str(scene), "--out", str(tmp_path / "a.png"),
                          "--layout-out", str(tmp_path / "a_layout.png"), "--state-out",
                          str(tmp_path / "state.json"), "--model", str(toy_model)],
                         capture_output=True, text=True, timeout=300)  # the installed command
    assert out.returncode == 0, out.stderr
    assert Image.open(tmp_path / "a.png").size == (64, 64)
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps([{"op": "set_attributes", "index": 0, "attributes": ["blue"]}]))
    out = run("edit", "--graph", str(scene), "--state", str(tmp_path / "state.json"), "--ops",
              str(ops), "--out", str(tmp_path / "b.png"), "--in-place")
    assert out.returncode == 0, out.stderr
    assert json.loads(scene.read_text())["objects"][0]["attributes"] == ["blue"]
    out = run("generate", "--text", "a red car left of a tree, sky above grass", "--out",
              str(tmp_path / "t.png"))
    assert out.returncode == 0, out.stderr
    out = run("generate", "--text", "a red cra left of a tree", "--out", str(tmp_path / "x.png"))
    assert out.returncode == 2 and "unknown word 'cra'" in out.stderr and "car" in out.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"objects": [{"name": "car"}], "relationships": [
        {"subject": 0, "predicate": "left of", "object": 3}]}))
    out = run("generate", "--graph", str(bad), "--out", str(tmp_path / "y.png"))
    assert out.returncode == 2 and "relationships[0].object: 3 is not an object position" \
        in out.stderr


def test_non_finite_pixels_are_an_error_not_a_black_image(model: SceneToImage) -> None:
    # issue 18: a state with NaN latents gave an all-black image and exit code 0
    nan = [float("nan")] * model.generator.z_img_dim
    with pytest.raises(ModelError, match="non-finite pixels"):
        model.generate(model.parse(GRAPH), seed=0, keep={"z_img": nan})


# --------------------------------------------------------------------------------------------
# the same on COCO-Stuff's toy world: masks, no attributes

COCO_GRAPH = {"version": 1,
              "objects": [{"name": "car"}, {"name": "tree"}, {"name": "grass"},
                          {"name": "sky-other"}],
              "relationships": [{"subject": 0, "predicate": "left of", "object": 1},
                                {"subject": 3, "predicate": "above", "object": 2}]}


@pytest.fixture(scope="module")
def coco_model(toy_coco_model: Path) -> SceneToImage:
    return SceneToImage.from_dir(toy_coco_model)


def _masks_given(model: SceneToImage, graph, seed: int) -> list:
    """Generate once and return what the image generator was given as masks."""
    seen = []
    hook = model.generator.register_forward_pre_hook(
        lambda module, args: seen.append(args[6] if len(args) > 6 else None))
    try:
        generation = model.generate(graph, seed=seed)
    finally:
        hook.remove()
    return [generation, *seen]


def test_coco_generation_and_edits_with_learned_masks(coco_model: SceneToImage) -> None:
    graph = coco_model.parse(COCO_GRAPH)
    a, given = _masks_given(coco_model, graph, seed=3)
    assert given is None  # LostGAN's default: the generator regresses its own masks
    assert coco_model.generator_config["masks"] == "regressed"
    assert np.array_equal(a.image, coco_model.generate(graph, seed=3).image)
    assert not np.array_equal(a.image, coco_model.generate(graph, seed=4).image)
    added = edit(coco_model, a.state, [{"op": "add", "object": {"name": "boat"},
                                        "relationships": [{"predicate": "right of",
                                                           "object": 1}]}])
    assert np.allclose(added.boxes[:4], a.boxes)
    assert len(edit(coco_model, added.state, [{"op": "remove", "index": 4}]).graph.objects) == 4


def test_model_on_ground_truth_masks_paints_with_the_layout_models(coco_model) -> None:
    """An image model trained with `gt_masks` is given the layout model's predicted masks (as in
    the evaluation's predicted-layout mode), zero for `__image__`."""
    from scene2img.training.export import generator_from_config

    config = {**coco_model.generator_config, "masks": "ground-truth"}
    G = generator_from_config(config).eval()
    G.load_state_dict(coco_model.generator.state_dict())
    gt_model = SceneToImage(coco_model.layout_model, coco_model.layout_config, G, config,
                            coco_model.vocab, coco_model.attribute_stats)
    generation, given = _masks_given(gt_model, gt_model.parse(COCO_GRAPH), seed=1)
    assert given.shape == (1, 5, 16, 16)
    assert np.allclose(given[0, :4].numpy(), generation.masks)
    assert float(given[0, 4].abs().max()) == 0.0
    with pytest.raises(ConfigError, match="takes 16 x 16 masks but the layout model predicts 8"):
        check_mask_sizes(config, {**coco_model.layout_config, "mask_size": 8}, "here")


def test_geometry_and_class_edits(model: SceneToImage) -> None:
    before = model.generate(model.parse(GRAPH), seed=0)
    after = edit(model, before.state, [
        {"op": "set_box", "index": 0, "box": [0.1, 0.6, 0.2, 0.1]},
        {"op": "replace", "index": 1, "name": "house"},
        {"op": "remove_relationship", "subject": 0, "object": 1}])
    assert np.allclose(after.boxes[0], [0.1, 0.6, 0.2, 0.1])
    assert np.allclose(after.boxes[1], before.boxes[1])  # replaced: same place
    assert after.state["objects"][1]["z"] == before.state["objects"][1]["z"]  # and latent
    assert after.graph.objects[1].name == "house" and after.graph.relationships == [
        (3, "above", 2)]
    with pytest.raises(SceneGraphError, match=r"ops\[0\].box: .* outside the unit square"):
        edit(model, before.state, [{"op": "set_box", "index": 0, "box": [0.9, 0, 2, 1]}])
    with pytest.raises(SceneGraphError, match="unknown class 'truck'"):
        edit(model, before.state, [{"op": "replace", "index": 0, "name": "truck"}])
    with pytest.raises(SceneGraphError, match=r"ops\[0\].name: expected a class name"):
        edit(model, before.state, [{"op": "replace", "index": 0}])
