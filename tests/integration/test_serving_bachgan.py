"""BachGAN behind a real `mlflow models serve` (loopback, one worker): a foreground-only layout is
answered with the image and its retrieved background; bad layouts are HTTP 400 naming the
object or field, never a 5xx, and the server keeps serving. The tiny untrained export of
tests/unit/serving/test_bachgan.py (no MLflow server needed: the pyfunc is served from a folder)."""

from __future__ import annotations

import json

from scene2img.serving.loadtest import ModelServer, post
from scene2img.serving.pyfunc import save_pyfunc
from tests.unit.serving.test_bachgan import LAYOUT, write_tiny_bachgan


def body(*records: dict) -> bytes:
    return json.dumps({"dataframe_records": list(records)}).encode()


BAD = {
    "background class": ({"objects": [{"name": "sky", "box": [0, 0, 1, 0.4]}]},
                         "objects[0]: 'sky' is a background class"),
    "no box": ({"objects": [{"name": "dog"}]}, "objects[0] ('dog') has no box"),
    "relationships": ({**LAYOUT, "relationships": [{"subject": 0, "predicate": "left of",
                                                    "object": 1}]}, "relationships: BachGAN"),
    "unknown class": ({"objects": [{"name": "cat", "box": [0, 0, 1, 1]}]}, "unknown class"),
    "bad box": ({"objects": [{"name": "dog", "box": [0, 0, 2, 1]}]}, "outside the unit square"),
    "not JSON": ("{objects", "malformed JSON"),
}


def test_served_bachgan_answers_layouts_and_refuses_bad_ones_with_400(tmp_path) -> None:
    model = save_pyfunc(write_tiny_bachgan(tmp_path / "model"), tmp_path / "pyfunc")
    with ModelServer(str(model), tmp_path / "serve.log") as server:
        url = f"{server.url}/invocations"
        status, answer, _ = post(url, body({"scene_graph": LAYOUT, "seed": 3}))
        assert status == 200, answer
        row = answer["predictions"][0]
        assert row["image_size"] == 64 and row["seed"] == 3 and row["background_png_base64"]
        assert [r["image_id"] for r in json.loads(row["retrieved"])] == ["scene3", "scene1"]
        for what, (layout, message) in BAD.items():
            status, answer, _ = post(url, body({"scene_graph": layout}))
            assert status == 400 and message in answer.get("message", ""), (what, status, answer)
            assert "\n" not in answer["message"].split("Failed to predict")[0], what
        for what, request, message in [
                ("upscale", {"scene_graph": LAYOUT, "upscale": 2}, "has no upscaler"),
                ("seed 1.5", {"scene_graph": LAYOUT, "seed": 1.5}, "not an integer"),
                ("dialog", {"instruction": "add a dog"}, "expected a 'scene_graph' column")]:
            status, answer, _ = post(url, body(request))
            assert status == 400 and message in answer.get("message", ""), (what, status, answer)
        status, answer, _ = post(url, body(*[{"scene_graph": LAYOUT}] * 17))
        assert status == 400 and "at most 16" in answer.get("message", ""), answer
        assert post(url, body({"scene_graph": LAYOUT}))[0] == 200  # still serving
