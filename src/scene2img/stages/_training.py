"""What the two training stages share: their MLflow run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only

from scene2img.config import Params
from scene2img.files import atomic_write_bytes
from scene2img.tracking.experiments import KIND_TAG, MODEL_TRAINING
from scene2img.tracking.lineage import lineage_tags
from scene2img.training.runtime import mlflow_logger

RUN_ID_FILE = "mlflow_run_id"  # in the model folder: the run a resume continues
SPOOL_DIR = "mlflow_spool"  # in the model folder: calls kept while the server is away


def training_logger(
    stage: str,  # train_layout | train_image: the run name and the stage tag
    params: Params,
    data_url: str | Path,
    out_dir: Path,
    resumed: bool,  # continue the run recorded in out_dir, log no params again
    hyperparams: dict[str, Any],  # the stage's own section and figures (data/trainer added)
    kfp_run_id: str | None = None,  # the KFP run that launched the stage (a lineage tag)
    tags: dict[str, str] | None = None,  # stage-specific run tags, beside the lineage
) -> tuple[MLFlowLogger, str | None]:
    """The stage's MLflow run (lineage-tagged, spooling while the server is away) and its id."""
    run_file = out_dir / RUN_ID_FILE
    run_id = run_file.read_text().strip() if resumed and run_file.is_file() else None
    logger = mlflow_logger(params.tracking, run_name=stage, run_id=run_id,
                           spool_dir=out_dir / SPOOL_DIR,
                           tags={**lineage_tags(params.to_dict(), data_url, stage=stage,
                                                kfp_run_id=kfp_run_id),
                                 **(tags or {})})
    if rank_zero_only.rank == 0:
        run_id = logger.run_id
        atomic_write_bytes(run_file, f"{run_id}\n".encode())
        if not resumed:
            # the UI's model-training view (tracking.experiments); spooled if the server is away
            logger.experiment.set_experiment_tag(logger.experiment_id, KIND_TAG, MODEL_TRAINING)
            logger.log_hyperparams({**hyperparams, "data": dataclasses.asdict(params.data),
                                    "trainer": dataclasses.asdict(params.trainer),
                                    "data_url": str(data_url)})
    return logger, run_id
