"""Serving BachGAN (`serving.bachgan`, the pyfunc's `LayoutToImageModel`): a foreground-only
layout -> retrieval from the export's memory bank -> fusion -> image, with the background in the
answer; through `scene2img generate` and the pyfunc; bad layouts refused in one line (HTTP 400).
A tiny untrained export (8 x 8 label maps, 64 px, width 1) with a hand-made bank."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode
from PIL import Image

from scene2img.cli import main
from scene2img.data.vocab import Vocab
from scene2img.errors import SceneGraphError
from scene2img.models.bachgan import BachGANGenerator
from scene2img.serving.bachgan import LayoutToImage
from scene2img.serving.loading import load_scene_to_image
from scene2img.serving.pyfunc import BACHGAN_OUTPUT_COLUMNS, save_pyfunc
from scene2img.training.export import BACHGAN_MODEL_FILE, MemoryBankExport, export_bachgan

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ["__image__", "wall", "sky", "boat", "dog"]  # wall, sky: background; boat, dog: objects
BOAT, DOG = 3, 4
LAYOUT = {"objects": [{"name": "boat", "box": [0.0, 0.0, 0.5, 0.5]},
                      {"name": "dog", "box": [0.5, 0.5, 0.5, 0.5]}]}


def write_tiny_bachgan(folder: Path) -> Path:
    """`folder`/bachgan_model.pt: an untrained tiny generator and a bank of six 8 x 8 maps, sky
    over wall; map 3 has a boat top left and a dog bottom right (LAYOUT's boxes exactly)."""
    torch.manual_seed(0)
    maps = torch.full((6, 8, 8), 1, dtype=torch.uint8)
    maps[:, :3] = 2
    maps[1, 5:, 5:] = DOG
    maps[3, :4, :4] = BOAT
    maps[3, 4:, 4:] = DOG
    vocab = Vocab(NAMES, ["__in_image__", "left of"], [])
    config = {"num_classes": 5, "foreground": [BOAT, DOG], "image_size": 64, "ngf": 1,
              "spade_hidden": 2, "segmap_size": 8, "retrieval": {"m": 2, "grid": 8},
              "class_split": "toy-split-v1", "max_objects": 6}
    export_bachgan(folder / BACHGAN_MODEL_FILE, BachGANGenerator(5, [BOAT, DOG], 64, 1, 2),
                   vocab, config, MemoryBankExport(maps, [f"scene{i}" for i in range(6)]))
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return write_tiny_bachgan(tmp_path_factory.mktemp("bachgan"))


def test_a_foreground_layout_retrieves_fuses_and_paints(model_dir):
    model = load_scene_to_image(model_dir)  # the folder holds bachgan_model.pt: BachGAN's
    assert isinstance(model, LayoutToImage) and model.m == 2
    generation = model.generate(model.parse(LAYOUT), seed=5)
    assert generation.image.shape == (64, 64, 3) and generation.image.dtype == "uint8"
    assert generation.background.shape == (64, 64, 3)
    best = generation.retrieved[0]
    assert best == {"index": 3, "image_id": "scene3", "score": 1.0}  # the exact match first
    assert generation.retrieved[1]["index"] == 1  # the other map with a dog in a box
    assert generation.boxes.tolist() == [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]
    again = model.generate(model.parse(LAYOUT), seed=0)  # no latent: the seed changes nothing
    assert (again.image == generation.image).all()


@pytest.mark.parametrize(("layout", "parts"), [
    ({"objects": [{"name": "boat", "box": [0, 0, 0.5, 0.5]}, {"name": "sky", "box": [0, 0, 1, 1]}]},
     ["objects[1]", "'sky' is a background class (toy-split-v1)", "foreground objects only"]),
    ({"objects": [{"name": "dog"}]}, ["objects[0] ('dog') has no box", '"box": [x, y, w, h]']),
    ({"objects": [{"name": "dog", "box": [0, 0, 0.5, 0.5]}, {"name": "boat", "box": [0.5, 0, 0.5, 1]}],
      "relationships": [{"subject": 0, "predicate": "left of", "object": 1}]},
     ["relationships", "leave them out"]),
    ({"objects": [{"name": "cat", "box": [0, 0, 0.5, 0.5]}]}, ["unknown class 'cat'"]),
])
def test_bad_layouts_are_one_line_errors(model_dir, layout, parts):
    model = LayoutToImage.from_dir(model_dir)
    with pytest.raises(SceneGraphError) as info:
        model.parse(layout, where="layout.json")
    message = str(info.value)
    assert "\n" not in message and message.startswith("layout.json: "), message
    assert all(p in message for p in parts), message
    with pytest.raises(SceneGraphError, match="has no upscaler"):
        model.check_upscale(2)


def test_generate_cli_writes_the_image_and_its_background(model_dir, tmp_path, capsys):
    layout = tmp_path / "layout.json"
    layout.write_text(json.dumps(LAYOUT))
    out, background = tmp_path / "image.png", tmp_path / "background.png"
    assert main(["generate", "--model", str(model_dir), "--layout", str(layout), "--out", str(out),
                 "--background-out", str(background), "--layout-out",
                 str(tmp_path / "drawing.png")]) == 0
    printed = capsys.readouterr().out
    assert "retrieved backgrounds: scene3 (#3, score 1.000)" in printed
    assert Image.open(out).size == (64, 64) and Image.open(background).size == (64, 64)
    # a BachGAN generation has no latents: no state to edit; refused before anything is written
    assert main(["generate", "--model", str(model_dir), "--layout", str(layout), "--out",
                 str(tmp_path / "x.png"), "--state-out", str(tmp_path / "s.json")]) == 2
    assert "--state-out: a BachGAN model's generations have no latents" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    # nor can `edit` or a dialog start from one
    (tmp_path / "state.json").write_text("{}")
    (tmp_path / "ops.json").write_text("[]")
    (tmp_path / "script.txt").write_text("add a dog\n")
    for args, what in [(["edit", "--state", str(tmp_path / "state.json"), "--ops",
                         str(tmp_path / "ops.json"), "--out", str(tmp_path / "e.png")], "edit"),
                       (["dialog", "--script", str(tmp_path / "script.txt"), "--session",
                         str(tmp_path / "session")], "dialog")]:
        assert main([*args, "--model", str(model_dir)]) == 2
        err = capsys.readouterr().err
        assert f"{what}: a BachGAN model's generations have no latents" in err, err
    assert not (tmp_path / "e.png").exists() and not (tmp_path / "session").exists()


def _decoded(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


def test_the_pyfunc_answers_layouts_and_refuses_bad_ones(model_dir, tmp_path):
    served = mlflow.pyfunc.load_model(str(save_pyfunc(model_dir, tmp_path / "pyfunc")))
    assert served.metadata.metadata == {"family": "bachgan", "upscaler": None}
    rows = served.predict(pd.DataFrame({"scene_graph": [json.dumps(LAYOUT)], "seed": [7]}))
    assert list(rows.columns) == BACHGAN_OUTPUT_COLUMNS
    row = rows.iloc[0]
    assert _decoded(row["image_png_base64"]).size == (64, 64) and row["image_size"] == 64
    assert _decoded(row["background_png_base64"]).size == (64, 64) and row["seed"] == 7
    assert [r["image_id"] for r in json.loads(row["retrieved"])] == ["scene3", "scene1"]
    bad = [pd.DataFrame({"scene_graph": [json.dumps({"objects": [
               {"name": "wall", "box": [0, 0, 1, 1]}]})]}),
           pd.DataFrame({"scene_graph": [json.dumps(LAYOUT)], "upscale": [4]}),
           pd.DataFrame({"instruction": ["add a dog"]})]
    for request, part in zip(bad, ["'wall' is a background class", "has no upscaler",
                                   "answers no dialog turns"], strict=True):
        with pytest.raises(MlflowException) as info:
            served.predict(request)
        assert info.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)  # HTTP 400
        assert part in info.value.message and "\n" not in info.value.message
