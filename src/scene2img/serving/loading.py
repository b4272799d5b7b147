"""Loading the end-to-end model from a local folder or a registered `models:/` URI: either
family, told apart by the export it holds (`bachgan_model.pt`: BachGAN's `LayoutToImage`;
otherwise the LostGAN family's `SceneToImage`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scene2img.errors import ModelError
from scene2img.serving.bachgan import LayoutToImage
from scene2img.serving.pipeline import SceneToImage
from scene2img.training.export import BACHGAN_MODEL_FILE, LAYOUT_MODEL_FILE

if TYPE_CHECKING:
    from scene2img.config import ServeParams


def _from_dir(folder: Path, limits: ServeParams | None) -> SceneToImage | LayoutToImage:
    if (folder / BACHGAN_MODEL_FILE).exists():
        return LayoutToImage.from_dir(folder, limits=limits)
    return SceneToImage.from_dir(folder, limits=limits)


def load_scene_to_image(uri: str | Path, limits: ServeParams | None = None
                        ) -> SceneToImage | LayoutToImage:
    """A folder holding `layout_model.pt` and `image_model.pt` (and `attribute_stats.json`,
    and `upscaler_model.pt` when it upscales) or BachGAN's `bachgan_model.pt`, or an MLflow
    model URI (`models:/NAME@champion`, `runs:/ID/model`) logged by `register`; the tracking URI
    comes from the environment (`MLFLOW_TRACKING_URI`). `limits`: the request limits (default:
    params.yaml's serve section)."""
    text = str(uri)
    if "://" not in text and not text.startswith("models:/"):
        if not Path(text).is_dir():
            raise ModelError(f"{text}: not a model folder nor a models:/ URI")
        return _from_dir(Path(text), limits)
    import mlflow

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text))
    except Exception as exc:
        raise ModelError(f"{text}: could not fetch the model ({type(exc).__name__}: {exc}); "
                         "check MLFLOW_TRACKING_URI and the name / alias") from None
    artifacts = local / "artifacts"
    if not any((artifacts / f).exists() for f in (LAYOUT_MODEL_FILE, BACHGAN_MODEL_FILE)):
        raise ModelError(f"{text}: not a scene2img model (no artifacts/{LAYOUT_MODEL_FILE} nor "
                         f"artifacts/{BACHGAN_MODEL_FILE})")
    return _from_dir(artifacts, limits)
