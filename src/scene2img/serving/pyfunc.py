"""The registered end-to-end model as an MLflow pyfunc: scene graphs in, PNG images out.

Input: a DataFrame with a `scene_graph` column (the JSON format of `scene2img.serving.schema`,
as a string or an object), an optional `seed` column (an integer from 0 to 2**63 - 1; null or
missing: 0) and an optional `upscale` column (null, missing or 1: the image as generated; the
upscaler's factor, 2 or 4 as it was trained: the image taken up by it, 128 -> 512 px at 4; refused
when the model has no upscaler or the factor is not its own). Output: one row per input with
`image_png_base64` (the image), `layout` (JSON: objects with the boxes and attributes used),
`seed`, `image_size` (the side of the returned image, pixels) and `upscale` (the factor it was
taken up by; 1: as generated). The weights are state dicts, loaded with `weights_only=True`.

The upscaler is an optional member: `register --upscaler-model` logs its export as the artifact
`upscaler_model` and records `upscaler` in the model's metadata (`{"file": ..., "scale": 4}`, or
null without one), so `mlflow models` and the registry show whether a version can upscale.

A dialog turn (`scene2img.serving.dialog`) is answered statelessly: a request with an
`instruction` column (and `dialog_state`: the `dialog_state` the previous answer returned, or null
to start a session; `seed` seeds a new session; `upscale` as above: the picture taken up, the
state that of the picture as generated) gets, per record, the picture, its layout, `image_size`
and `upscale`, the new `dialog_state` (JSON) and `message` ("added car #3 (red) left of bus #2").
An instruction
that fails (an unknown word, a reference to nothing) or a bad state is HTTP 400 with the message;
the client keeps its previous state, so the scene stays as it was.

The request budget (`params.yaml: serve`, recorded with the model as its `model_config`): every
record is checked before any work, whatever form the request takes (JSON text or object, records,
split or inputs): at most `max_records` scene graphs, each within `max_graph_bytes` (measured on
objects too), `max_depth`, the model's objects, `max_relationships`, `max_attributes` and
`max_name_chars`; seeds are integers. A bad request raises an `MlflowException` with
INVALID_PARAMETER_VALUE, which `mlflow models serve` answers with HTTP 400 and the message naming
the record and field; the server keeps serving. Work stops between scene graphs once the request
has run for `request_timeout_s` (or the server's own `MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT`, if
lower): HTTP 504, and the worker is free again instead of computing an answer nobody receives.
A deployer can lower the limits without registering again:
`MLFLOW_PYFUNC_INFERENCE_CONFIG='{"max_records": 4}' mlflow models serve ...`.

BachGAN (`serving.bachgan`) is served by `LayoutToImageModel`, logged with its one artifact
`bachgan_model` (the generator and its memory bank) and the same limits: the same `scene_graph`
and `seed` columns (`upscale`: null or 1 only), each scene graph a layout of foreground objects
with boxes; a background class, a box left out or a relationship is HTTP 400 naming the object.
Its answers add `background_png_base64` (the fused label map it painted from, in class colours)
and `retrieved` (JSON: the training scenes retrieved, best first: bank index, image id, score).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.protos.databricks_pb2 import DEADLINE_EXCEEDED, INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, DataType, Schema
from mlflow.types.schema import AnyType
from PIL import Image

from scene2img.config import ServeParams, section_from_dict
from scene2img.errors import ConfigError, ModelError, Scene2ImgError
from scene2img.serving.schema import SceneGraph, check_seed, default_limits, show

if TYPE_CHECKING:
    from scene2img.serving.bachgan import LayoutToImage
    from scene2img.serving.pipeline import Generation, SceneToImage

COLUMNS = ("scene_graph", "seed", "upscale")
BACHGAN_OUTPUT_COLUMNS = ["image_png_base64", "layout", "seed", "image_size",
                          "background_png_base64", "retrieved"]
DIALOG_COLUMNS = ("instruction", "dialog_state", "seed", "upscale")
OUTPUT_COLUMNS = ["image_png_base64", "layout", "seed", "image_size", "upscale"]
DIALOG_OUTPUT_COLUMNS = [*OUTPUT_COLUMNS, "dialog_state", "message"]
SERVER_TIMEOUT_ENV = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"  # set by `mlflow models serve`
SERVING_ENV = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"  # "true" in `mlflow models serve`'s process


def png_base64(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def model_signature(example: pd.DataFrame, output: pd.DataFrame) -> ModelSignature:
    """Scene graphs (JSON strings or objects), an optional seed and upscaling factor in; images
    (and their size) and layouts out. `seed` and `upscale` are typed `any` so that null (or a
    record without them) passes MLflow's schema check and gets the default, and integers arrive
    exact (`long` refuses null, `double` refuses integers); `predict` checks that each is an
    integer. The price: MLflow cannot type a CSV request's columns from an `any` column, so
    requests are JSON or Parquet."""
    inputs = Schema([ColSpec(DataType.string, "scene_graph", required=False),
                     ColSpec(AnyType(), "seed", required=False),
                     ColSpec(AnyType(), "upscale", required=False),
                     ColSpec(DataType.string, "instruction", required=False),
                     ColSpec(AnyType(), "dialog_state", required=False)])
    outputs = infer_signature(example, output).outputs.inputs
    outputs += [ColSpec(DataType.string, "dialog_state", required=False),
                ColSpec(DataType.string, "message", required=False)]
    return ModelSignature(inputs, Schema(outputs))


def requirements() -> list[str]:
    """What a served model's environment installs (both families)."""
    from scene2img import __version__

    return [f"scene2img=={__version__}", "torch==2.14.1", "torchvision==0.29.1",
            "mlflow==3.17.2", "pillow", "pandas"]


def pyfunc_arguments(
    model: SceneToImage,  # loaded from the three files below, with the limits to serve under
    graph: SceneGraph,  # the input example
    layout_model: str | os.PathLike,  # layout_model.pt
    image_model: str | os.PathLike,  # image_model.pt
    attribute_stats: str | os.PathLike,  # attribute_stats.json
    upscaler_model: str | os.PathLike | None = None,  # upscaler_model.pt, loaded into `model`
) -> dict[str, Any]:
    """The arguments of `mlflow.pyfunc.log_model` / `save_model` for the end-to-end model: its
    files, signature, input example (and its output), limits (`model_config`), requirements,
    and whether it holds an upscaler (`metadata`)."""
    from scene2img.training.export import UPSCALER_MODEL_FILE

    if (upscaler_model is None) != (model.upscaler is None):
        raise ModelError("the upscaler to log and the model's upscaler disagree; load the model "
                         "with the upscaler_model.pt it is logged with")
    example = pd.DataFrame({"scene_graph": [json.dumps(graph.to_json())], "seed": [0]})
    output = pd.DataFrame([output_row(model.generate(graph, seed=0), 0)], columns=OUTPUT_COLUMNS)
    artifacts = {"layout_model": str(layout_model), "image_model": str(image_model),
                 "attribute_stats": str(attribute_stats)}
    upscaler = None
    if upscaler_model is not None:
        artifacts["upscaler_model"] = str(upscaler_model)
        upscaler = {"file": UPSCALER_MODEL_FILE, "scale": model.upscale_factor}
    return {"python_model": SceneGraphToImageModel(), "artifacts": artifacts,
            "signature": model_signature(example, output), "input_example": example,
            "metadata": {"family": "lostgan", "upscaler": upscaler},
            "model_config": dataclasses.asdict(model.limits),
            "pip_requirements": requirements()}


def output_row(generation: Generation, seed: int) -> dict[str, Any]:
    """One answer: the image (as generated or upscaled), its side, the factor, layout and seed."""
    return {"image_png_base64": png_base64(generation.image),
            "layout": json.dumps(generation.layout_json()), "seed": seed,
            "image_size": int(generation.image.shape[0]), "upscale": generation.upscale}


def save_pyfunc(
    model_dir: str | os.PathLike,  # layout/image_model.pt, attribute_stats.json (+ upscaler)
    path: str | os.PathLike,  # the pyfunc folder to write
    limits: ServeParams | None = None,  # default: params.yaml's serve section
) -> Path:
    """A model folder saved as the served pyfunc, as `register` logs it but without a registry
    (for `mlflow models serve -m PATH` in tests and benchmarks). A folder holding
    `bachgan_model.pt` is saved as BachGAN's (its input example: the first foreground class in
    the top-left quarter)."""
    from scene2img.serving.bachgan import LayoutToImage
    from scene2img.serving.pipeline import SceneToImage
    from scene2img.training.export import (
        ATTRIBUTE_STATS_FILE,
        BACHGAN_MODEL_FILE,
        IMAGE_MODEL_FILE,
        LAYOUT_MODEL_FILE,
        UPSCALER_MODEL_FILE,
    )

    model_dir = Path(model_dir)
    if (model_dir / BACHGAN_MODEL_FILE).exists():
        bachgan = LayoutToImage.from_dir(model_dir, limits=limits)
        first = bachgan.vocab.object_idx_to_name[bachgan.config["foreground"][0]]
        example = bachgan.parse({"objects": [{"name": first, "box": [0.0, 0.0, 0.5, 0.5]}]})
        mlflow.pyfunc.save_model(str(path), **bachgan_pyfunc_arguments(
            bachgan, example, model_dir / BACHGAN_MODEL_FILE))
        return Path(path)
    model = SceneToImage.from_dir(model_dir, limits=limits)
    name = model.vocab.object_idx_to_name[1]  # the first class but __image__
    upscaler = model_dir / UPSCALER_MODEL_FILE
    mlflow.pyfunc.save_model(str(path), **pyfunc_arguments(
        model, model.parse({"objects": [name]}), model_dir / LAYOUT_MODEL_FILE,
        model_dir / IMAGE_MODEL_FILE, model_dir / ATTRIBUTE_STATS_FILE,
        upscaler if upscaler.exists() else None))
    return Path(path)


def serve_limits(config: dict[str, Any] | None) -> ServeParams:
    """The limits a served model runs under: those recorded with it (as overridden by the
    deployer), or params.yaml's for a model registered before they were recorded."""
    if not config:
        return default_limits()
    try:
        return section_from_dict(ServeParams, dict(config), "the model's model_config", "serve.")
    except ConfigError as exc:
        raise ModelError(f"{exc}; fix MLFLOW_PYFUNC_INFERENCE_CONFIG or register again") from None


def _refuse(message: str) -> MlflowException:
    return MlflowException(message, INVALID_PARAMETER_VALUE)


class SceneGraphToImageModel(mlflow.pyfunc.PythonModel):
    """`mlflow.pyfunc` wrapper of `scene2img.serving.pipeline.SceneToImage`."""

    columns = OUTPUT_COLUMNS  # of an answer

    def answer(self, generation: Generation, seed: int) -> dict[str, Any]:
        """One record's answer (`columns`)."""
        return output_row(generation, seed)

    def load_context(self, context) -> None:
        from scene2img.serving.pipeline import SceneToImage

        a = context.artifacts
        limits = serve_limits(getattr(context, "model_config", None))
        self.model = SceneToImage.from_files(a["layout_model"], a["image_model"],
                                             a.get("attribute_stats"), limits=limits,
                                             upscaler_path=a.get("upscaler_model"))

    def budget_s(self) -> float:
        """Seconds a request may compute: ours, or the server's timeout if lower."""
        budget = float(self.model.limits.request_timeout_s)
        server = os.environ.get(SERVER_TIMEOUT_ENV, "")
        return min(budget, float(server)) if server.replace(".", "", 1).isdigit() else budget

    def check_dialog_request(self, model_input: pd.DataFrame
                             ) -> list[tuple[Any, str, int, int]]:
        """Every dialog record checked before any work: (state or None, instruction, seed,
        upscaling factor)."""
        from scene2img.serving.dialog.session import MAX_INSTRUCTION_CHARS, check_dialog_state
        from scene2img.serving.schema import check_json_size, load_json_text

        limits = self.model.limits
        unknown = [str(c) for c in model_input.columns if c not in DIALOG_COLUMNS]
        if unknown:
            raise _refuse(f"unknown column(s) {show(unknown)} in a dialog turn; expected "
                          "instruction, dialog_state, seed and upscale")
        if len(model_input) > limits.max_records:
            raise _refuse(f"{len(model_input)} dialog turns in one request; at most "
                          f"{limits.max_records}")
        n = len(model_input)
        states = model_input["dialog_state"].tolist() if "dialog_state" in model_input \
            else [None] * n
        seeds = model_input["seed"].tolist() if "seed" in model_input else [None] * n
        factors = model_input["upscale"].tolist() if "upscale" in model_input else [None] * n
        checked = []
        try:
            for i, (text, state, seed, factor) in enumerate(zip(
                    model_input["instruction"].tolist(), states, seeds, factors, strict=True)):
                if not isinstance(text, str) or len(text) > MAX_INSTRUCTION_CHARS:
                    raise _refuse(f"instruction[{i}]: expected text of at most "
                                  f"{MAX_INSTRUCTION_CHARS} characters")
                where = f"dialog_state[{i}]"
                if isinstance(state, float) and state != state or state is pd.NA:
                    state = None  # a missing value
                if isinstance(state, (str, bytes)):
                    state = load_json_text(state, where, limits.max_state_bytes, "dialog state")
                elif state is not None:
                    check_json_size(state, where, limits.max_state_bytes, 8, "dialog state")
                if state is not None:
                    state = check_dialog_state(self.model, state, where)
                seed = None if seed is pd.NA else seed
                factor = None if factor is pd.NA else factor
                checked.append((state, text, check_seed(seed, f"seed[{i}]") or 0,
                                self.model.check_upscale(factor, f"upscale[{i}]")))
        except Scene2ImgError as exc:
            raise _refuse(str(exc)) from None
        return checked

    def dialog_turns(self, model_input: pd.DataFrame) -> pd.DataFrame:
        """One dialog turn per record; a turn that fails is refused (HTTP 400)."""
        from scene2img.serving.dialog.session import Dialog, seal

        rows = []
        for i, (state, text, seed, factor) in enumerate(self.check_dialog_request(model_input)):
            dialog = Dialog(self.model, state, seed)
            turn = dialog.turn(text)
            if not turn.ok:
                raise _refuse(f"instruction[{i}]: {turn.message} (the scene is unchanged)")
            try:  # the picture taken up; the state stays that of the picture as generated
                picture = self.model.upscaled(turn.generation, factor)
            except Scene2ImgError as exc:
                raise _refuse(f"instruction[{i}]: {exc}") from None
            rows.append({**output_row(picture, dialog.state["seed"]),
                         "dialog_state": json.dumps(seal(dialog.state)),
                         "message": turn.message})
        return pd.DataFrame(rows, columns=DIALOG_OUTPUT_COLUMNS)

    def check_request(self, model_input: Any) -> list[tuple[Any, int, int]]:
        """Every record parsed and checked, before any work: (scene graph, seed, upscaling
        factor) per record."""
        limits = self.model.limits
        if not isinstance(model_input, pd.DataFrame) or "scene_graph" not in model_input:
            raise _refuse("expected a 'scene_graph' column (JSON scene graphs), or an "
                          "'instruction' column (dialog turns)")
        unknown = [str(c) for c in model_input.columns if c not in COLUMNS]
        if unknown:
            raise _refuse(f"unknown column(s) {show(unknown)}; expected scene_graph, seed and "
                          "upscale")
        if len(model_input) > limits.max_records:
            raise _refuse(f"{len(model_input)} scene graphs in one request; at most "
                          f"{limits.max_records}")
        graphs = model_input["scene_graph"].tolist()
        seeds = model_input["seed"].tolist() if "seed" in model_input else [None] * len(graphs)
        factors = model_input["upscale"].tolist() if "upscale" in model_input \
            else [None] * len(graphs)
        checked = []
        try:
            for i, (graph, seed, factor) in enumerate(zip(graphs, seeds, factors, strict=True)):
                parsed = self.model.parse(graph, where=f"scene_graph[{i}]")
                seed = None if seed is pd.NA else seed  # missing in a nullable column (Parquet)
                factor = None if factor is pd.NA else factor
                checked.append((parsed, check_seed(seed, f"seed[{i}]") or 0,
                                self.model.check_upscale(factor, f"upscale[{i}]")))
        except Scene2ImgError as exc:
            raise _refuse(str(exc)) from None
        return checked

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
                ) -> pd.DataFrame:
        started = time.monotonic()
        if os.environ.get(SERVING_ENV, "").lower() == "true":
            # The scoring server writes the request's DataFrame into every error message
            # ("Failed to predict data '...'"); pandas walks 100 items of each nested list for
            # it: half the cost of refusing a 1 MB request. In the server's own process only.
            pd.set_option("display.max_seq_items", 3)
        budget = self.budget_s()
        if isinstance(model_input, pd.DataFrame) and "instruction" in model_input:
            return self.dialog_turns(model_input)
        rows = []
        records = self.check_request(model_input)
        for i, (graph, seed, factor) in enumerate(records):
            if time.monotonic() - started > budget:
                raise MlflowException(
                    f"the request ran past its {budget:g} s budget after {i} of {len(records)} "
                    "scene graphs; send fewer per request", DEADLINE_EXCEEDED)
            try:
                generation = self.model.upscaled(self.model.generate(graph, seed=seed), factor)
            except Scene2ImgError as exc:
                raise _refuse(f"scene_graph[{i}]: {exc}") from None
            rows.append(self.answer(generation, seed))
        return pd.DataFrame(rows, columns=self.columns)


def bachgan_row(generation: Generation, seed: int) -> dict[str, Any]:
    """A BachGAN answer: the image, its layout and seed, the background and what was
    retrieved."""
    row = output_row(generation, seed)
    del row["upscale"]
    return {**row, "background_png_base64": png_base64(generation.background),
            "retrieved": json.dumps(generation.retrieved)}


class LayoutToImageModel(SceneGraphToImageModel):
    """`mlflow.pyfunc` wrapper of BachGAN's `scene2img.serving.bachgan.LayoutToImage`: the
    request checks, budget and errors of `SceneGraphToImageModel`, no dialog."""

    columns = BACHGAN_OUTPUT_COLUMNS

    def answer(self, generation: Generation, seed: int) -> dict[str, Any]:
        return bachgan_row(generation, seed)

    def load_context(self, context) -> None:
        from scene2img.serving.bachgan import LayoutToImage

        limits = serve_limits(getattr(context, "model_config", None))
        self.model = LayoutToImage.from_file(context.artifacts["bachgan_model"], limits=limits)

    def check_request(self, model_input: Any) -> list[tuple[Any, int, int]]:
        if not isinstance(model_input, pd.DataFrame) or "scene_graph" not in model_input \
                or "instruction" in model_input:
            raise _refuse("expected a 'scene_graph' column: layouts of foreground objects with "
                          "boxes (a BachGAN model answers no dialog turns)")
        return super().check_request(model_input)

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
                ) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame) and "instruction" in model_input:
            self.check_request(model_input)  # refused: no dialog
        return super().predict(context, model_input, params)


def bachgan_pyfunc_arguments(
    model: LayoutToImage,  # loaded from `bachgan_model`, with the limits to serve under
    graph: SceneGraph,  # the input example: a foreground-only layout
    bachgan_model: str | os.PathLike,  # bachgan_model.pt (generator + memory bank)
) -> dict[str, Any]:
    """The arguments of `mlflow.pyfunc.log_model` / `save_model` for a BachGAN model."""
    example = pd.DataFrame({"scene_graph": [json.dumps(graph.to_json())], "seed": [0]})
    output = pd.DataFrame([bachgan_row(model.generate(graph, seed=0), 0)],
                          columns=BACHGAN_OUTPUT_COLUMNS)
    inputs = Schema([ColSpec(DataType.string, "scene_graph", required=False),
                     ColSpec(AnyType(), "seed", required=False),
                     ColSpec(AnyType(), "upscale", required=False)])
    signature = ModelSignature(inputs, infer_signature(example, output).outputs)
    return {"python_model": LayoutToImageModel(), "artifacts": {"bachgan_model": str(bachgan_model)},
            "signature": signature, "input_example": example,
            "metadata": {"family": "bachgan", "upscaler": None},
            "model_config": dataclasses.asdict(model.limits),
            "pip_requirements": requirements()}
