"""Issue 16: the upscaler in serving. `generate` / `edit --upscale`, the served request's `upscale`
field and their refusals, on the tiny `toy_model` (64 px) with a tiny RDN exported by
`training.export.export_upscaler` (untrained: with `bicubic_skip` its output is exactly the
bicubic upscale, which the pixel check below relies on)."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from PIL import Image

from scene2img.cli import main
from scene2img.errors import ModelError, SceneGraphError
from scene2img.models.upscaler import RDN
from scene2img.serving.pipeline import SceneToImage
from scene2img.serving.pyfunc import save_pyfunc
from scene2img.training.export import UPSCALER_MODEL_FILE, export_upscaler, load_layout_model
from tests.unit.serving.strategies import UPSCALE_REQUESTS
from tests.unit.serving.test_pyfunc import GRAPH, post, records

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def upscaling_model(toy_model: Path, tmp_path_factory) -> Path:
    """`toy_model`'s folder plus a tiny x4 RDN (`upscaler_model.pt`)."""
    folder = tmp_path_factory.mktemp("upscaling") / "model"
    shutil.copytree(toy_model, folder)
    vocab = load_layout_model(toy_model / "layout_model.pt")[1]
    torch.manual_seed(0)
    net = RDN(scale=4, blocks=1, layers=1, growth=4, features=4, bicubic_skip=True)
    export_upscaler(folder / UPSCALER_MODEL_FILE, net, vocab)
    return folder


@pytest.fixture(scope="module")
def model(upscaling_model: Path) -> SceneToImage:
    return SceneToImage.from_dir(upscaling_model)


def test_upscaled_is_the_generated_image_taken_up(model: SceneToImage) -> None:
    generation = model.generate(model.parse(GRAPH), seed=1)
    big = model.upscaled(generation, model.check_upscale(4))
    assert generation.image.shape == (64, 64, 3) and big.image.shape == (256, 256, 3)
    assert big.upscale == 4 and big.state == generation.state
    # the zero-started RDN with its bicubic skip is bicubic: the conversions around it are exact
    lr = torch.from_numpy(generation.image).permute(2, 0, 1)[None].double() / 255
    bicubic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False)
    expected = (bicubic.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(big.image.astype(float) - expected).max() <= 1
    assert model.upscaled(generation, model.check_upscale(None)) is generation


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [(2, SceneGraphError, "upscale: 2: this model's upscaler was trained for x4; give 4"),
     (3, SceneGraphError, "upscale: 3: this model's upscaler was trained for x4"),
     ("x", SceneGraphError, "upscale: 'x' is not an upscaling factor; give 4"),
     (True, SceneGraphError, "upscale: True is not an upscaling factor"),
     (4.5, SceneGraphError, "upscale: 4.5 is not an upscaling factor"),
     (float("inf"), SceneGraphError, "upscale: inf is not an upscaling factor"),
     (1e300, SceneGraphError,  # cut short in the message
      r"upscale: 10000000000.*\.\.\. \(301 characters\): this model's upscaler was trained")],
)
def test_a_factor_not_the_upscalers_is_refused(model, value, error, message) -> None:
    with pytest.raises(error, match=message):
        model.check_upscale(value)
    assert model.check_upscale(4.0) == 4 and model.check_upscale(np.int64(1)) == 1


def test_a_model_without_upscaler_refuses_upscale(toy_model: Path) -> None:
    plain = SceneToImage.from_dir(toy_model)
    assert plain.upscale_factor is None and plain.check_upscale(None) == 1
    with pytest.raises(ModelError, match="upscale: 4: this model has no upscaler"):
        plain.check_upscale(4)
    with pytest.raises(SceneGraphError, match="this model has no upscaler: leave it out"):
        plain.check_upscale("x")


# --------------------------------------------------------------------------------------------
# the command line


def test_cli_generate_and_edit_with_and_without_upscale(upscaling_model: Path, toy_model: Path,
                                                       tmp_path: Path, capsys) -> None:
    scene = tmp_path / "scene.json"
    scene.write_text(json.dumps(GRAPH))
    state = tmp_path / "state.json"

    def run(*args: str, model: Path = upscaling_model) -> tuple[int, str]:
        code = main([*args, "--model", str(model)])
        out = capsys.readouterr()
        return code, out.out + out.err

    code, text = run("generate", "--graph", str(scene), "--out", str(tmp_path / "small.png"))
    assert code == 0 and "(64 x 64)" in text, text
    code, text = run("generate", "--graph", str(scene), "--out", str(tmp_path / "big.png"),
                     "--upscale", "4", "--state-out", str(state))
    assert code == 0 and "(256 x 256, upscaled x4 from 64 px)" in text, text
    assert Image.open(tmp_path / "small.png").size == (64, 64)
    assert Image.open(tmp_path / "big.png").size == (256, 256)
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps([{"op": "set_attributes", "index": 0, "attributes": ["blue"]}]))
    code, text = run("edit", "--state", str(state), "--ops", str(ops), "--out",
                     str(tmp_path / "edited.png"), "--upscale", "4")
    assert code == 0 and Image.open(tmp_path / "edited.png").size == (256, 256), text

    for args, message, model in (
            (["--upscale", "2"], "--upscale: 2: this model's upscaler was trained for x4", None),
            (["--upscale", "3"], "--upscale: 3: this model's upscaler was trained for x4", None),
            (["--upscale", "4"], "--upscale: 4: this model has no upscaler", toy_model)):
        out = tmp_path / "refused.png"
        code, text = run("generate", "--graph", str(scene), "--out", str(out), *args,
                         model=model or upscaling_model)
        assert code == 2 and message in text and len(text.strip().splitlines()) == 1, text
        assert not out.exists()
    with pytest.raises(SystemExit) as exc:  # argparse: one line, exit code 2
        run("generate", "--graph", str(scene), "--out", str(tmp_path / "x.png"), "--upscale", "x")
    assert exc.value.code == 2 and "--upscale: invalid int value: 'x'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# the served model


@pytest.fixture(scope="module")
def saved_and_served(upscaling_model: Path, tmp_path_factory):
    """The pyfunc as `register` logs it (with the upscaler), saved and loaded."""
    saved = save_pyfunc(upscaling_model, tmp_path_factory.mktemp("pyfunc") / "model")
    return saved, mlflow.pyfunc.load_model(str(saved))


@pytest.fixture(scope="module")
def served(saved_and_served):
    return saved_and_served[1]


def _size(row: dict) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(row["image_png_base64"]))).size


def test_the_pyfunc_records_and_loads_its_upscaler(saved_and_served) -> None:
    saved, served = saved_and_served
    assert (saved / "artifacts" / UPSCALER_MODEL_FILE).is_file()
    assert served.metadata.metadata["upscaler"] == {"file": UPSCALER_MODEL_FILE, "scale": 4}
    assert "upscale" in served.metadata.get_input_schema().input_names()


def test_served_request_with_and_without_upscale(served) -> None:
    text = json.dumps(GRAPH)
    status, rows = post(served, records({"scene_graph": text, "seed": 2, "upscale": 4},
                                        {"scene_graph": text, "seed": 2},
                                        {"scene_graph": text, "seed": 2, "upscale": None},
                                        {"scene_graph": text, "seed": 2, "upscale": 1}))
    assert status == 200, rows
    assert [(r["image_size"], r["upscale"]) for r in rows] == [(256, 4), (64, 1), (64, 1), (64, 1)]
    assert [_size(r) for r in rows] == [(256, 256), (64, 64), (64, 64), (64, 64)]
    assert rows[1]["layout"] == rows[0]["layout"]  # the same generation, taken up
    status, rows = post(served, {"inputs": {"scene_graph": [text], "upscale": [4]}})
    assert status == 200 and rows[0]["image_size"] == 256, rows


@pytest.mark.parametrize(
    ("upscale", "message"),
    [(2, "upscale[1]: 2: this model's upscaler was trained for x4; give 4 or leave it out"),
     (3, "upscale[1]: 3: this model's upscaler was trained for x4"),
     ("x", "upscale[1]: 'x' is not an upscaling factor; give 4"),
     ([4], "upscale[1]: [4] is not an upscaling factor")],
)
def test_served_bad_upscale_is_refused(served, upscale, message) -> None:
    text = json.dumps(GRAPH)
    status, answer = post(served, records({"scene_graph": text, "upscale": 4},
                                          {"scene_graph": text, "upscale": upscale}))
    assert status == 400 and message in answer, answer


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=UPSCALE_REQUESTS)
def test_fuzz_upscale_gets_its_size_or_a_400(served, body) -> None:
    status, answer = post(served, body)
    if status == 200:
        for row in answer:
            assert row["upscale"] in (1, 4), row["upscale"]
            side = 64 * row["upscale"]
            assert row["image_size"] == side and _size(row) == (side, side)
    else:
        assert status == 400 and "unexpected error" not in answer, (status, answer)


def test_served_model_without_upscaler_refuses_upscale(toy_model: Path, tmp_path: Path) -> None:
    saved = save_pyfunc(toy_model, tmp_path / "model")
    plain = mlflow.pyfunc.load_model(str(saved))
    assert plain.metadata.metadata["upscaler"] is None
    assert not (saved / "artifacts" / UPSCALER_MODEL_FILE).exists()
    status, answer = post(plain, records({"scene_graph": GRAPH, "upscale": 4}))
    assert status == 400 and "upscale[0]: 4: this model has no upscaler" in answer, answer
    status, rows = post(plain, records({"scene_graph": GRAPH}))
    assert status == 200 and rows[0]["image_size"] == 64 and rows[0]["upscale"] == 1


# --------------------------------------------------------------------------------------------
# the dialog: a served turn, `scene2img dialog --upscale`, the web page's turn


def test_served_dialog_turn_with_and_without_upscale(served) -> None:
    status, big = post(served, records({"instruction": "a road with a bus", "upscale": 4}))
    assert status == 200, big
    status, small = post(served, records({"instruction": "a road with a bus"}))
    assert status == 200, small
    assert (big[0]["image_size"], big[0]["upscale"], _size(big[0])) == (256, 4, (256, 256))
    assert (small[0]["image_size"], small[0]["upscale"], _size(small[0])) == (64, 1, (64, 64))
    # the session keeps the picture as generated: the same state, whatever size was returned
    assert big[0]["dialog_state"] == small[0]["dialog_state"]
    status, rows = post(served, records({"instruction": "add a red car left of the bus",
                                         "dialog_state": big[0]["dialog_state"],
                                         "upscale": 4}))
    assert status == 200 and rows[0]["image_size"] == 256 and _size(rows[0]) == (256, 256), rows


@pytest.mark.parametrize(
    ("upscale", "message"),
    [(2, "upscale[1]: 2: this model's upscaler was trained for x4; give 4 or leave it out"),
     ("x", "upscale[1]: 'x' is not an upscaling factor; give 4")],
)
def test_served_dialog_bad_upscale_is_refused(served, upscale, message) -> None:
    status, answer = post(served, records({"instruction": "a road", "upscale": 4},
                                          {"instruction": "a road", "upscale": upscale}))
    assert status == 400 and message in answer, answer


def test_served_dialog_without_upscaler_refuses_upscale(toy_model: Path, tmp_path: Path) -> None:
    plain = mlflow.pyfunc.load_model(str(save_pyfunc(toy_model, tmp_path / "model")))
    status, answer = post(plain, records({"instruction": "a road with a bus", "upscale": 4}))
    assert status == 400 and "upscale[0]: 4: this model has no upscaler" in answer, answer
    status, rows = post(plain, records({"instruction": "a road with a bus", "upscale": 1}))
    assert status == 200 and (rows[0]["image_size"], rows[0]["upscale"]) == (64, 1), rows


def test_cli_dialog_with_upscale(upscaling_model: Path, toy_model: Path, tmp_path: Path,
                                 capsys) -> None:
    from scene2img.serving.dialog.folder import replay

    script = tmp_path / "turns.txt"
    script.write_text("a road with a bus\nadd a red car left of the bus\n")
    session = tmp_path / "session"
    code = main(["dialog", "--model", str(upscaling_model), "--script", str(script),
                 "--session", str(session), "--upscale", "4"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("(upscaled x4)") == 2, out
    assert [Image.open(session / f"00{k}.png").size for k in (1, 2)] == [(256, 256)] * 2
    model = SceneToImage.from_dir(upscaling_model)
    for k, image in enumerate(replay(model, session, upscale=4), start=1):
        assert np.array_equal(image, np.asarray(Image.open(session / f"{k:03d}.png")))

    for args, message, at in ((["--upscale", "2"], "--upscale: 2: this model's upscaler was "
                               "trained for x4", upscaling_model),
                              (["--upscale", "4"], "--upscale: 4: this model has no upscaler",
                               toy_model)):
        refused = tmp_path / "refused"
        code = main(["dialog", "--model", str(at), "--script", str(script), "--session",
                     str(refused), *args])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not refused.exists()


def test_web_dialog_turn_with_upscale(model: SceneToImage, toy_model: Path) -> None:
    from scene2img.serving.dialog.web import answer_turn

    status, answer = answer_turn(model, json.dumps({"instruction": "a road", "upscale": 4}
                                                   ).encode())
    assert status == 200 and (answer["image_size"], answer["upscale"]) == (256, 4), answer
    assert Image.open(io.BytesIO(base64.b64decode(answer["image"]))).size == (256, 256)
    status, answer = answer_turn(model, b'{"instruction": "a road", "upscale": 2}')
    assert status == 400 and "request: upscale: 2: this model's upscaler was trained for x4" \
        in answer["message"], answer
    status, answer = answer_turn(SceneToImage.from_dir(toy_model),
                                 b'{"instruction": "a road", "upscale": 4}')
    assert status == 400 and "request: upscale: 4: this model has no upscaler" \
        in answer["message"], answer
