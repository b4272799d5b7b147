"""Submit the compiled pipeline to a Kubeflow Pipelines cluster: one run, or a recurring run
(scheduled retraining) from a cron expression."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from scene2img.config import Params
from scene2img.pipeline import PipelineError
from scene2img.pipeline.params import pipeline_arguments

log = logging.getLogger(__name__)


@dataclass
class Submitted:
    kind: str  # run | recurring-run
    id: str
    url: str


def submit(
    host: str,  # the KFP API endpoint, e.g. http://ml-pipeline-ui.kubeflow:80
    package: Path,  # the compiled pipeline YAML
    params: Params,  # become the run's arguments: each step's params
    experiment: str = "scene2img",  # KFP experiment the run belongs to
    run_name: str | None = None,
    schedule: str | None = None,  # cron (KFP's 6 fields: "0 0 3 * * *"); None: one run now
    namespace: str | None = None,  # multi-user KFP: the profile namespace
    existing_token: str | None = None,  # a bearer token (else KFP's own credentials lookup)
) -> Submitted:
    """Create a run (or a recurring run) of `package` on the cluster at `host`."""
    import kfp

    if not Path(package).is_file():
        raise PipelineError(f"{package}: compiled pipeline not found; run "
                            "`scene2img pipeline compile` first")
    arguments = pipeline_arguments(params)
    _check_arguments(package, arguments)
    name = run_name or params.pipeline.name
    client = kfp.Client(host=host, existing_token=existing_token,
                        **({"namespace": namespace} if namespace else {}))
    try:
        if schedule:
            exp = client.create_experiment(experiment, namespace=namespace)
            job = client.create_recurring_run(
                experiment_id=exp.experiment_id, job_name=name, cron_expression=schedule,
                pipeline_package_path=str(package), params=arguments, enable_caching=None)
            rid = job.recurring_run_id
            return Submitted("recurring-run", rid, f"{host.rstrip('/')}/#/recurringrun/details/"
                             f"{rid}")
        result = client.create_run_from_pipeline_package(
            str(package), arguments=arguments, run_name=name, experiment_name=experiment,
            namespace=namespace, enable_caching=None)
        return Submitted("run", result.run_id, f"{host.rstrip('/')}/#/runs/details/"
                         f"{result.run_id}")
    except PipelineError:
        raise
    except Exception as exc:  # kfp_server_api / urllib3 errors: say where and what
        raise PipelineError(f"submitting to KFP at {host} failed: {type(exc).__name__}: "
                            f"{str(exc)[:500]}") from None


def _check_arguments(package: Path, arguments: dict[str, str]) -> None:
    """The package takes exactly these arguments: it was compiled with the same steps (a DAG
    compiled without train_upscaler has no `train_upscaler_params`); said here in one line,
    before anything reaches the cluster."""
    import yaml

    try:
        spec = next(yaml.safe_load_all(Path(package).read_text()))
        compiled = set(spec["root"]["inputDefinitions"]["parameters"])
    except (yaml.YAMLError, StopIteration, KeyError, TypeError) as exc:
        raise PipelineError(f"{package}: not a compiled scene2img pipeline ({type(exc).__name__}: "
                            f"{exc}); run `scene2img pipeline compile`") from None
    if compiled != set(arguments):
        raise PipelineError(
            f"{package}: compiled for other steps than these params give (only in the package: "
            f"{sorted(compiled - set(arguments))}; only in the params: "
            f"{sorted(set(arguments) - compiled)}); compile it with the same params "
            "(`scene2img pipeline compile` with the same --experiment / -S, e.g. "
            "pipeline.upscaler)")
