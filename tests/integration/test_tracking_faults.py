"""The tracking server goes away during training: training goes on, nothing is lost."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytorch_lightning as pl
from mlflow import MlflowClient

from scene2img.config import load_params
from scene2img.stages.train_layout import train_layout
from scene2img.tracking import stack
from scene2img.training.resilient_logging import SPOOL_FILE

DOWN_AT, UP_AT, STEPS = 4, 12, 20


class ServerOutage(pl.Callback):
    """Stops the real tracking server after step DOWN_AT and starts it again at UP_AT."""

    def __init__(self, cfg: stack.StackConfig) -> None:
        self.cfg = cfg
        self.outage_steps: list[int] = []

    def on_train_batch_end(self, trainer, *args) -> None:
        step = trainer.global_step
        if step == DOWN_AT:
            stack.stop_tracking_server(self.cfg)
        elif DOWN_AT < step < UP_AT:
            self.outage_steps.append(step)
        elif step == UP_AT:
            stack.start_tracking_server(self.cfg)


def test_training_survives_a_tracking_outage(team_stack, toy_vg: Path, tmp_path: Path) -> None:
    params = load_params(experiment="toyworld", overrides=[
        f"tracking.uri={team_stack.tracking_uri}", "tracking.experiment=fault-test",
        "trainer.accelerator=cpu", "trainer.log_every_n_steps=1",
        "trainer.checkpoint_every_n_steps=1000", f"train_layout.max_steps={STEPS}",
        "train_layout.val_every_n_steps=8", "train_layout.batch_size=8"])
    outage = ServerOutage(team_stack)
    try:
        result = train_layout(toy_vg, tmp_path / "out", params, progress=False,
                              callbacks=[outage])
    finally:
        stack.start_tracking_server(team_stack)  # leave the shared stack as it was
    assert result.model_path.exists() and result.metrics  # training went on to the end
    assert outage.outage_steps, "the outage did not happen during training"

    history = MlflowClient(team_stack.tracking_uri).get_metric_history(result.run_id,
                                                                       "train/loss")
    logged = {m.step for m in history}
    # every step of the outage reached the server once it was back
    assert set(outage.outage_steps) <= logged, (sorted(outage.outage_steps), sorted(logged))
    spool = tmp_path / "out" / "mlflow_spool" / SPOOL_FILE
    assert not spool.exists() or pickle.loads(spool.read_bytes()) == []  # nothing left kept
    arts = {a.path for a in MlflowClient(team_stack.tracking_uri).list_artifacts(
        result.run_id)}
    assert arts, "no artifacts (layout drawings) reached the server"
