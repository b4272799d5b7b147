"""The registered end-to-end model as an MLflow pyfunc: scene graphs in, PNG images out.

Input: a DataFrame with a `scene_graph` column (the JSON format of `scene2img.serving.schema`,
as a string or an object) and an optional `seed` column. Output: one row per input with
`image_png_base64` (the generated image), `layout` (JSON: objects with the boxes and attributes
used) and `seed`. The weights are state dicts, loaded with `weights_only=True`.

A bad request (malformed JSON, unknown class or predicate, a relationship to a missing object, no
objects, too many objects, too large) raises an `MlflowException` with INVALID_PARAMETER_VALUE,
which `mlflow models serve` answers with HTTP 400 and the message; the server keeps serving.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from PIL import Image

from scene2img.errors import Scene2ImgError

MAX_BATCH = 16  # scene graphs per request


def png_base64(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


class SceneGraphToImageModel(mlflow.pyfunc.PythonModel):
    """`mlflow.pyfunc` wrapper of `scene2img.serving.pipeline.SceneToImage`."""

    def load_context(self, context) -> None:
        from scene2img.serving.pipeline import SceneToImage

        a = context.artifacts
        self.model = SceneToImage.from_files(a["layout_model"], a["image_model"],
                                             a.get("attribute_stats"))

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
                ) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame) or "scene_graph" not in model_input:
            raise MlflowException("expected a 'scene_graph' column (JSON scene graphs)",
                                  INVALID_PARAMETER_VALUE)
        if len(model_input) > MAX_BATCH:
            raise MlflowException(f"{len(model_input)} scene graphs in one request; at most "
                                  f"{MAX_BATCH}", INVALID_PARAMETER_VALUE)
        rows = []
        for i, row in enumerate(model_input.to_dict("records")):
            graph_data = row["scene_graph"]
            seed = row.get("seed")
            seed = 0 if seed is None or (isinstance(seed, float) and np.isnan(seed)) else int(seed)
            try:
                graph = self.model.parse(graph_data, where=f"scene_graph[{i}]")
                generation = self.model.generate(graph, seed=seed)
            except Scene2ImgError as exc:
                raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from None
            rows.append({"image_png_base64": png_base64(generation.image),
                         "layout": json.dumps(generation.layout_json()), "seed": seed})
        return pd.DataFrame(rows, columns=["image_png_base64", "layout", "seed"])
