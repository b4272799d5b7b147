"""Stage `promote`: the gate between a registered version and `@champion` (see
`scene2img.tracking.promotion`)."""

from __future__ import annotations

from mlflow import MlflowClient

from scene2img.config import Params
from scene2img.tracking.promotion import PromotionResult
from scene2img.tracking.promotion import promote as promote_version
from scene2img.tracking.promotion import rollback as rollback_champion


def promote(
    params: Params,
    version: str | None = None,  # the candidate; None with rollback
    name: str | None = None,  # default: register.name
    force: bool = False,
    reason: str | None = None,
    rollback: bool = False,
) -> PromotionResult:
    """Run the promotion gate (or force / roll back) on the configured registry."""
    client = MlflowClient(params.tracking.uri, params.tracking.uri)
    name = name or params.register.name
    if rollback:
        return rollback_champion(client, name, reason)
    return promote_version(client, name, str(version), params.promote.margin, force, reason)
