"""Compile the DAG, and run it on this machine with the KFP local runner.

The DAG itself is a driver (`pipelines/scene2img_pipeline.py`): it passes its pipeline factory
in, so this library never imports it. `run_local` runs every task as a subprocess of this
Python environment (`kfp.local.SubprocessRunner(use_venv=False)`: scene2img is installed here,
nothing is downloaded) and caches task outputs with kfp.local's own content-addressed cache: a
task's key is the component (its code and image), its inputs (its step's params, and upstream
artifacts by URI and metadata) and its environment, so a second run with nothing changed reuses
every cached task (those with `pipeline.caching.<step>: true`) and says so, and a changed param
reruns only the steps that read it and those downstream. One limit: the key sees the component,
not the scene2img library it calls, so after changing library code run with `--no-cache`.

What the terminal shows: a line per task as it starts and ends, the running task's progress bar,
and `summary`; everything kfp.local and the tasks print goes to a log file (`_Console`).

`runner="docker"` runs every task in the project's image instead (scene2img.pipeline.docker):
the same DAG, outputs, console and log, and the same cache kept per image (`cache/image-<id>`),
so there the key does see the library: a new build of the image starts a fresh cache.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mlflow import MlflowClient

from scene2img.config import Params
from scene2img.pipeline import RUNNERS, PipelineError
from scene2img.pipeline.params import (
    KFP_RUN_ID_ENV,
    PROGRESS_ENV,
    STEPS,
    dag_steps,
    pipeline_arguments,
)
from scene2img.tracking.experiments import ui_url

if TYPE_CHECKING:
    from scene2img.pipeline.docker import Image

log = logging.getLogger(__name__)

_TASK_WIDTH = max(len(step) for step in STEPS)  # task names in a column on the terminal

# make_pipeline(params, until) -> the @dsl.pipeline for these params, up to step `until`
PipelineFactory = Callable[[Params, str], Any]


def compile_pipeline(make_pipeline: PipelineFactory, params: Params, out: Path) -> Path:
    """Write the pipeline YAML for these params (their values become its defaults)."""
    from kfp import compiler

    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(make_pipeline(params, "promote"), package_path=str(out))
    return out


@dataclass
class LocalRun:
    root: Path  # pipeline_root of this run's tasks
    steps: list[str]  # the steps in the DAG that ran
    kfp_run_id: str  # what the tasks tag their MLflow runs with
    cached: list[str] = field(default_factory=list)  # tasks whose outputs came from the cache
    executed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> executor output
    log: Path | None = None  # everything kfp.local and the tasks printed
    image: str | None = None  # runner docker: "<ref> (<image id>)" the tasks ran in


class _TaskLog(logging.Filter):
    """Reads kfp.local's task lines ("Executing task", "cache hit", "finished with status",
    "Skipping") as they are logged, and tells the console. A filter on the root logger, not a
    handler: kfp.local replaces the root logger's handlers while a task runs."""

    EVENTS = (("cached", re.compile(r"Task '?([\w-]+)'? cache hit")),
              ("started", re.compile(r"Executing task '?([\w-]+)'?")),
              ("done", re.compile(r"Task '?([\w-]+)'? finished with status SUCCESS")),
              ("failed", re.compile(r"Task '?([\w-]+)'? finished with status FAILURE")),
              ("skipped", re.compile(r"Skipping (?:conditional )?task '?([\w-]+)'?")))

    def __init__(self, console: _Console) -> None:
        super().__init__()
        self.console = console
        self.cached: list[str] = []
        self.executed: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        msg = _plain(record.getMessage())
        for event, pattern in self.EVENTS:
            if m := pattern.search(msg):
                task = m.group(1)
                if event == "cached":
                    self.cached.append(task)
                elif event == "started":
                    self.executed.append(task)
                self.console.task(event, task)
                break
        return True


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# A tqdm bar as a task prints it (kfp.local indents it; its redraws end in "\r", which the
# runner's text-mode pipe reads as line ends): "desc:  40%|####  | 2/5 [00:01<00:02, ...]".
_BAR = re.compile(r"^\s*(?P<desc>.*?):?\s*(?P<pct>\d+)%\|.*?\|\s*(?P<n>\d+)/(?P<total>\d+)"
                  r"(?:\s*\[(?P<elapsed>[\d:]+)<(?P<left>[\d:?]+))?")


class _Console(io.TextIOBase):
    """What the terminal shows while the DAG runs. It stands in for stdout and stderr: every
    line of kfp.local and of the tasks goes to the log file; the terminal gets one line per task
    as it starts and as it ends (time, cached or not, a headline figure) and, on a terminal, the
    running task's progress bar redrawn in place. `verbose`: everything, as kfp.local prints it.
    """

    def __init__(self, log: TextIO, out: TextIO, verbose: bool, live: bool, runs: Path) -> None:
        super().__init__()
        self.log, self.out, self.verbose, self.runs = log, out, verbose, runs
        self.live = live and not verbose
        self.started: dict[str, float] = {}
        self.failed: list[str] = []
        self._partial = ""
        self._bar = ""  # the progress line now drawn on the terminal
        self._lock = threading.RLock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            if self.verbose:
                self.out.write(text)
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            for line in lines:
                self._line(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self.log.flush()
            self.out.flush()

    def _line(self, line: str) -> None:
        line = _plain(line)
        bar = _BAR.match(line)
        if bar is None:
            self.log.write(line + "\n")
            return
        if bar["n"] == bar["total"]:  # a bar's last state goes to the log, not its redraws
            self.log.write(line.strip() + "\n")
        if self.live:
            task = next(reversed(self.started), "")
            times = f", {bar['elapsed']} elapsed, {bar['left']} left" if bar["elapsed"] else ""
            self._draw(f"          {task:<{_TASK_WIDTH}} {bar['desc'].strip()} {bar['pct']:>3}% "
                       f"({bar['n']}/{bar['total']}{times})")

    def _draw(self, text: str) -> None:
        width = shutil.get_terminal_size((100, 24)).columns - 1
        self.out.write("\r\x1b[K" + text[:width])
        self.out.flush()
        self._bar = text

    def say(self, text: str) -> None:
        """One line on the terminal (and in the log), above the progress bar."""
        with self._lock:
            self.log.write(text + "\n")
            if self.verbose:
                self.out.write(text + "\n")
                return
            self.out.write(("\r\x1b[K" if self._bar else "") + text + "\n")
            self._bar = ""
            self.out.flush()

    def task(self, event: str, task: str) -> None:
        """A task started, came from the cache, ended or was skipped: its one line."""
        now = time.monotonic()
        clock = time.strftime("%H:%M:%S")
        if event == "started":
            self.started[task] = now
            self.say(f"{clock}  {task:<{_TASK_WIDTH}} started")
            return
        took = f" in {_duration(now - self.started.pop(task, now))}" \
            if event in ("done", "failed") else ""
        if event == "failed":
            self.failed.append(task)
        figure = headline(task, _latest_outputs(self.runs, [task.replace("-", "_")])) \
            if event in ("cached", "done") else ""
        self.say(f"{clock}  {task:<{_TASK_WIDTH}} {event}{took}" + (f"  {figure}" if figure else ""))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def headline(task: str, outputs: dict[str, dict[str, Any]]) -> str:
    """The one figure a task's line ends with, from its executor output."""
    out = outputs.get(task, {})
    meta = {name: (a.get("artifacts") or [{}])[0].get("metadata", {})
            for name, a in out.get("artifacts", {}).items()}
    values = out.get("parameterValues", {})
    metrics = {k: v for k, v in meta.get("metrics", {}).items() if isinstance(v, (int, float))}
    if task == "ingest" and "raw" in meta:
        raw = meta["raw"]
        kind, _, version = str(raw.get("data_version")).partition(":")
        return f"{raw.get('files')} files, data version {kind}:{version[:12]}"
    if task == "preprocess" and "processed" in meta:
        counts = {k.removeprefix("count_"): v for k, v in meta["processed"].items()
                  if k.startswith("count_")}
        return ", ".join(f"{split} {int(n)}" for split, n in counts.items()) + " images"
    if task == "evaluate" and values:
        fid = sorted(k for k in metrics if k.startswith("fid_"))
        shown = ", ".join(f"{k}={metrics[k]:.4g}" for k in fid[:2])
        return f"gate {values.get('Output')}" + (f"; {shown}" if shown else "")
    if task == "register" and values:
        return f"{values.get('model_name')} version {values.get('version')}"
    if task == "promote" and values:
        return f"@{values.get('alias')} ({values.get('outcome')})"
    for key in ("test/box_iou", "train/g_loss"):  # train-layout, train-image
        if key in metrics:
            return f"{key}={metrics[key]:.4g}"
    for key in sorted(metrics):  # train-upscaler: test/x4/psnr/rdn, and bicubic's
        if key.startswith("test/") and key.endswith("/psnr/rdn"):
            bicubic = metrics.get(key.removesuffix("rdn") + "bicubic", float("nan"))
            return f"{key}={metrics[key]:.4g} (bicubic {bicubic:.4g})"
    return ""


def run_local(
    make_pipeline: PipelineFactory,  # the DAG (pipelines/scene2img_pipeline.py)
    params: Params,  # resolved params: become the run's arguments and task settings
    until: str = "promote",  # last step to run
    root: Path | None = None,  # outputs and cache (default: pipeline.local_root)
    cache: bool = True,  # reuse cached task outputs
    verbose: bool = False,  # show every line kfp.local and the tasks print (always in the log)
    out: TextIO | None = None,  # the terminal (default: sys.stdout)
    live: bool | None = None,  # redraw progress bars in place (default: `out` is a terminal)
    runner: str = "subprocess",  # subprocess | docker (every task in the project's image)
    image: str | None = None,  # runner docker: the local image (default: the latest build)
) -> LocalRun:
    """Run the DAG (up to `until`) with the KFP local runner. The terminal shows a line per task
    as it starts and ends and the running task's progress; the full log is written to
    `<root>/logs/<run id>.log`, whose path is printed first."""
    from kfp import local

    steps = dag_steps(params, until)
    if runner not in RUNNERS:
        raise PipelineError(f"runner {runner!r}: choose {' or '.join(RUNNERS)}")
    root = Path(root or params.pipeline.local_root).resolve()
    out = out or sys.stdout
    arguments = pipeline_arguments(params)
    pipeline = make_pipeline(params, until)
    # The tasks' KFP run id (on a cluster: their pod's `pipeline/runid` label). The subprocesses
    # inherit it, the containers get it as an environment variable; the cache key sees neither,
    # so cached tasks stay cached.
    run_id = f"local-{uuid.uuid4()}"
    log_path = root / "logs" / f"{run_id}.log"
    with contextlib.ExitStack() as opened:
        kfp_runner, built = _runner(runner, image, params, run_id, opened)
        # kfp.local's key holds the component's image name, not the image that runs: a cache
        # per build.
        cache_root = root / "cache" / (f"image-{built.id.removeprefix('sha256:')[:12]}"
                                       if built else "")
        local.init(runner=kfp_runner, pipeline_root=str(root / "runs"), enable_caching=cache,
                   cache_root=str(cache_root), raise_on_error=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out.write(f"pipeline: {' -> '.join(steps)}; full log: {log_path}\n")
        if built:
            out.write(f"  in the image {built.ref} ({built.id})\n")
        out.flush()
        started = time.monotonic()
        log = opened.enter_context(open(log_path, "w"))
        opened.enter_context(_task_environment(run_id))
        console = _Console(log, out, verbose, out.isatty() if live is None else live,
                           root / "runs")
        tasks = _TaskLog(console)
        root_logger = logging.getLogger()
        saved = root_logger.level, root_logger.handlers[:]
        handler = logging.StreamHandler(console)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root_logger.handlers[:] = [handler]
        root_logger.setLevel(logging.INFO)  # kfp.local reports cache hits at INFO
        root_logger.addFilter(tasks)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(console), \
                    contextlib.redirect_stderr(console):
                # The local runner ignores accelerators, node selectors and secrets (cluster-
                # only settings) and warns about the non-"python" image name: both expected.
                warnings.filterwarnings("ignore", message=".*no effect in the current local.*")
                warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
                pipeline(**arguments)
        except Exception as exc:
            failed = ", ".join(console.failed) or "the pipeline"
            raise PipelineError(f"local pipeline run failed in {failed}: {_plain(str(exc))}; "
                                f"its output is in {log_path}, outputs under "
                                f"{root / 'runs'}") from exc
        finally:
            console.flush()
            root_logger.removeFilter(tasks)
            root_logger.setLevel(saved[0])
            root_logger.handlers[:] = saved[1]
    run = LocalRun(root=root, steps=steps, kfp_run_id=run_id, cached=tasks.cached,
                   executed=[t for t in tasks.executed if t not in tasks.cached],
                   seconds=time.monotonic() - started, log=log_path,
                   image=f"{built.ref} ({built.id})" if built else None)
    run.outputs = _latest_outputs(root / "runs", steps)
    return run


def _runner(runner: str, image: str | None, params: Params, run_id: str,
            opened: contextlib.ExitStack) -> tuple[Any, Image | None]:
    """The kfp.local runner for `runner`, and for docker the image its tasks run in (the API
    socket and KFP's patched container call stay open in `opened` until the run ends)."""
    from kfp import local

    if runner == "subprocess":
        return local.SubprocessRunner(use_venv=False), None
    from scene2img.pipeline.docker import docker_runner

    # No progress bars in the containers: their logs are read back whole, as a pod log would be.
    return opened.enter_context(docker_runner(params, image, {KFP_RUN_ID_ENV: run_id}))


@contextlib.contextmanager
def _task_environment(run_id: str) -> Iterator[None]:
    """What the task subprocesses inherit for this run: its KFP run id, and progress bars."""
    saved = {name: os.environ.get(name) for name in (KFP_RUN_ID_ENV, PROGRESS_ENV)}
    os.environ.update({KFP_RUN_ID_ENV: run_id, PROGRESS_ENV: "1"})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _latest_outputs(runs: Path, steps: list[str]) -> dict[str, dict[str, Any]]:
    """Each task's newest executor output (cached tasks keep theirs from the run that made it)."""
    found: dict[str, tuple[float, dict[str, Any]]] = {}
    for path in runs.glob("*/*/executor_output.json"):
        task = path.parent.name
        mtime = path.stat().st_mtime
        if task.replace("-", "_") in steps and mtime > found.get(task, (0.0, {}))[0]:
            try:
                found[task] = (mtime, json.loads(path.read_text()))
            except json.JSONDecodeError:
                continue
    return {task: out for task, (_, out) in found.items()}


def summary(run: LocalRun, params: Params) -> str:
    """A few lines: what ran, what came from the cache, metrics, registry, where to look."""
    lines = [f"pipeline: {' -> '.join(run.steps)} in {run.seconds:.0f}s "
             f"(outputs under {run.root / 'runs'}; KFP run id {run.kfp_run_id})"]
    if run.log:
        lines.append(f"  full log: {run.log}")
    if run.cached:
        lines.append(f"  reused cached outputs of: {', '.join(run.cached)} (nothing changed "
                     "in their inputs; --no-cache reruns them)")
    if run.executed:
        lines.append(f"  ran: {', '.join(run.executed)}")
    if run.image:
        lines.append(f"  in the image {run.image}")
    order = {step.replace("_", "-"): i for i, step in enumerate(STEPS)}
    for task, out in sorted(run.outputs.items(), key=lambda item: order.get(item[0], 99)):
        for name, artifacts in out.get("artifacts", {}).items():
            for art in artifacts.get("artifacts", []):
                meta = art.get("metadata", {})
                if name == "metrics" and meta:
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(meta.items())
                                      if isinstance(v, (int, float)))
                    lines.append(f"  {task} metrics: {shown}")
                elif name in ("raw", "processed") and meta.get("data_version"):
                    lines.append(f"  {task}: {art.get('uri')} (data version "
                                 f"{meta['data_version']})")
        params_out = out.get("parameterValues", {})
        if task == "evaluate" and params_out:
            evaluation = out.get("artifacts", {}).get("evaluation", {}).get("artifacts", [{}])
            reason = evaluation[0].get("metadata", {}).get("gate", "")
            lines.append(f"  gate: {params_out.get('Output')} ({reason})")
        if task == "register" and params_out:
            lines.append(f"  registered: {params_out.get('model_name')} version "
                         f"{params_out.get('version')}")
        if task == "promote" and params_out:
            lines.append(f"  alias: @{params_out.get('alias')} ({params_out.get('outcome')})")
    uri = params.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    lines.append(f"  MLflow: mlflow ui --backend-store-uri {uri}")
    exp = MlflowClient(params.tracking.uri).get_experiment_by_name(params.tracking.experiment)
    if exp is not None:  # the model-training view (a fresh browser opens MLflow's GenAI view)
        lines.append(f"          then open {ui_url('http://127.0.0.1:5000', exp.experiment_id)}")
    return "\n".join(lines)
