"""The promotion gate: a registered version replaces `@champion` only if it is better on the
same protocol.

A version registered by `scene2img register` carries, as tags, its evaluation protocol
(`scene2img.protocol`, JSON), its metrics (`scene2img.metric.<name>`) and the name of the metric
the gate compares (`scene2img.gate_metric`, e.g. `fid_inception_test`; lower is better).
Aliases: `@champion` (served), `@previous` (the champion it replaced, for rollback) and
`@challenger` (a candidate that did not pass). Every move is recorded on the versions involved
as tags: when, by whom, why, from which version; `scene2img.alias_history` keeps them all.
"""

from __future__ import annotations

import getpass
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from scene2img.errors import TrackingError

log = logging.getLogger(__name__)
CHAMPION, PREVIOUS, CHALLENGER = "champion", "previous", "challenger"
TAG_PROTOCOL = "scene2img.protocol"
TAG_GATE_METRIC = "scene2img.gate_metric"
TAG_METRIC_PREFIX = "scene2img.metric."
TAG_HISTORY = "scene2img.alias_history"


@dataclass
class PromotionResult:
    name: str
    version: str
    outcome: str  # promoted | challenger | forced | rolled-back | first-champion
    champion: str  # the version @champion points at afterwards
    previous: str | None
    comparison: dict = field(default_factory=dict)  # metric, candidate, champion, margin, reasons

    def __post_init__(self) -> None:
        # MLflow returns versions as int or str depending on the store: normalise.
        self.version, self.champion = str(self.version), str(self.champion)
        self.previous = None if self.previous is None else str(self.previous)

    def summary(self) -> str:
        c = self.comparison
        lines = [f"{self.name} v{self.version}: {self.outcome}; @champion = v{self.champion}"
                 + (f", @previous = v{self.previous}" if self.previous else "")]
        if "metric" in c:
            lines.append(f"  {c['metric']}: candidate {c.get('candidate')} vs champion "
                         f"{c.get('champion')} (needs to be lower by at least {c.get('margin')})")
        for reason in c.get("reasons", []):
            lines.append(f"  {reason}")
        return "\n".join(lines)


def _alias(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _version(client: MlflowClient, name: str, version: str):
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise TrackingError(f"registered model {name!r} has no version {version} ({exc.message})") \
            from None


def _metric(mv, metric: str) -> float:
    try:
        return float(mv.tags[TAG_METRIC_PREFIX + metric])
    except (KeyError, ValueError):
        raise TrackingError(f"version {mv.version} has no metric {metric!r} tag; register it with "
                            "evaluation metrics (scene2img register --metrics ...)") from None


def compare(candidate, champion, margin: float) -> tuple[bool, dict]:
    """Whether `candidate` beats `champion` on the same protocol by at least `margin`."""
    from scene2img.evaluation.protocol import Protocol

    reasons = []
    metric = candidate.tags.get(TAG_GATE_METRIC)
    if not metric:
        raise TrackingError(f"version {candidate.version} has no {TAG_GATE_METRIC} tag: it was "
                            "not registered by scene2img register")
    if champion.tags.get(TAG_GATE_METRIC) != metric:
        reasons.append(f"gate metric differs: candidate {metric!r}, champion "
                       f"{champion.tags.get(TAG_GATE_METRIC)!r}")
    try:
        p_new = Protocol.from_dict(json.loads(candidate.tags[TAG_PROTOCOL]))
        p_old = Protocol.from_dict(json.loads(champion.tags[TAG_PROTOCOL]))
        same, diffs = p_new.comparable(p_old)
    except (KeyError, ValueError, TypeError) as exc:
        same, diffs = False, [f"protocol missing or unreadable on a version ({exc})"]
    if not same:
        reasons += [f"protocol differs: {d}" for d in diffs]
    comparison = {"metric": metric, "margin": margin, "reasons": reasons}
    if reasons:
        return False, comparison
    new, old = _metric(candidate, metric), _metric(champion, metric)
    comparison.update(candidate=new, champion=old)
    if new > old - margin:
        reasons.append(f"not better by the margin: {new:.4f} > {old:.4f} - {margin}")
    return not reasons, comparison


def _record(client: MlflowClient, name: str, mv, event: dict) -> None:
    event = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "by": getpass.getuser(),
             **event}
    for key in ("at", "by", "action", "reason", "from_version"):
        if key in event:
            client.set_model_version_tag(name, mv.version, f"scene2img.last_move.{key}",
                                         str(event[key]))
    history = json.loads(mv.tags.get(TAG_HISTORY, "[]"))
    history.append(event)
    client.set_model_version_tag(name, mv.version, TAG_HISTORY, json.dumps(history))


def promote(
    client: MlflowClient,
    name: str,  # registered model name
    version: str | int,  # the candidate
    margin: float,  # the candidate's gate metric must be lower by at least this
    force: bool = False,  # override the gate (needs a reason)
    reason: str | None = None,
) -> PromotionResult:
    """Move `@champion` to `version` if it passes the gate (or is forced), else `@challenger`."""
    if force and not reason:
        raise TrackingError("--force needs --reason TEXT: say why the gate is overridden")
    candidate = _version(client, name, str(version))
    champion = _alias(client, name, CHAMPION)
    if champion is not None and champion.version == candidate.version:
        raise TrackingError(f"{name} v{version} is already @champion")
    if champion is None:
        client.set_registered_model_alias(name, CHAMPION, candidate.version)
        _record(client, name, candidate, {"action": "champion (first)", "reason":
                                          reason or "no champion yet"})
        return PromotionResult(name, candidate.version, "first-champion", candidate.version, None)
    passed, comparison = compare(candidate, champion, margin)
    if passed or force:
        client.set_registered_model_alias(name, CHAMPION, candidate.version)
        client.set_registered_model_alias(name, PREVIOUS, champion.version)
        if (ch := _alias(client, name, CHALLENGER)) and ch.version == candidate.version:
            client.delete_registered_model_alias(name, CHALLENGER)
        why = reason if force and not passed else (reason or "passed the gate")
        action = "champion (forced past the gate)" if force and not passed else "champion"
        _record(client, name, candidate, {"action": action, "reason": why,
                                          "from_version": champion.version,
                                          "comparison": comparison})
        _record(client, name, champion, {"action": "previous", "reason": f"replaced by "
                                          f"v{candidate.version}", "from_version": champion.version})
        outcome = "forced" if force and not passed else "promoted"
        return PromotionResult(name, candidate.version, outcome, candidate.version,
                               champion.version, comparison)
    client.set_registered_model_alias(name, CHALLENGER, candidate.version)
    _record(client, name, candidate, {"action": "challenger", "reason": "; ".join(
        comparison["reasons"]), "from_version": champion.version, "comparison": comparison})
    return PromotionResult(name, candidate.version, "challenger", champion.version, None,
                           comparison)


def rollback(client: MlflowClient, name: str, reason: str | None = None) -> PromotionResult:
    """Make `@previous` champion again; the demoted champion becomes `@previous`."""
    previous = _alias(client, name, PREVIOUS)
    champion = _alias(client, name, CHAMPION)
    if previous is None or champion is None:
        raise TrackingError(f"{name}: nothing to roll back to (no @previous version)")
    client.set_registered_model_alias(name, CHAMPION, previous.version)
    client.set_registered_model_alias(name, PREVIOUS, champion.version)
    why = reason or "rollback"
    _record(client, name, previous, {"action": "champion (rollback)", "reason": why,
                                     "from_version": champion.version})
    _record(client, name, champion, {"action": "previous (rolled back)", "reason": why,
                                     "from_version": champion.version})
    return PromotionResult(name, previous.version, "rolled-back", previous.version,
                           champion.version)
