"""The `scene2img` command line: translates options into stage-function arguments.

No stage logic lives here. Errors from `scene2img.errors` become one line on stderr and exit
code 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from scene2img.config import PROJECT_ROOT, Params, load_params
from scene2img.data.sources import SOURCE_NAMES
from scene2img.errors import ConfigError, Scene2ImgError
from scene2img.pipeline import RUNNERS
from scene2img.pipeline.params import STEPS

log = logging.getLogger("scene2img")
PIPELINE_FILE = PROJECT_ROOT / "pipelines" / "scene2img_pipeline.py"  # the DAG (a driver)


def _add_params_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=Path, default=None, help="params.yaml (default: the project's)")
    p.add_argument("--experiment", "-e", default=None,
                   help="configs/experiments/NAME.yaml merged over params.yaml (e.g. toyworld)")
    p.add_argument("--set", "-S", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override a parameter, e.g. -S preprocess.image_size=64")


def _params(args: argparse.Namespace, extra: list[str] = ()) -> Params:
    return load_params(args.params, [*args.overrides, *extra], args.experiment)


# --------------------------------------------------------------------------------------------
# commands


def cmd_toyworld(args: argparse.Namespace) -> None:
    from scene2img.data.toyworld import generate_toyworld

    extra = [f"toyworld.images={args.images}"] if args.images is not None else []
    params = _params(args, extra)
    counts = generate_toyworld(args.format, args.out, params.toyworld)
    print(f"toy world ({args.format}) written to {args.out}: {counts}")


def cmd_preprocess(args: argparse.Namespace) -> None:
    from scene2img.data.summary import format_summary
    from scene2img.stages.preprocess import preprocess

    extra = []
    if args.source:
        extra.append(f"preprocess.source={args.source}")
    if args.strict:
        extra.append("preprocess.strict=true")
    if args.workers is not None:
        extra.append(f"preprocess.workers={args.workers}")
    params = _params(args, extra)
    result = preprocess(args.raw, args.out, params.preprocess, progress=not args.quiet)
    print(format_summary(result.out_dir))
    print(f"  manifest sha256: {result.manifest_sha256}")


def cmd_stats(args: argparse.Namespace) -> None:
    from scene2img.data.summary import write_stats

    png, html = write_stats(args.dataset, args.out)
    print(f"wrote {png} and {html}")


def cmd_train_layout(args: argparse.Namespace) -> None:
    from scene2img.stages.train_layout import train_layout

    extra = [f"train_layout.max_steps={args.max_steps}"] if args.max_steps is not None else []
    params = _params(args, extra)
    result = train_layout(args.data, args.out, params, resume=args.resume,
                          progress=not args.quiet)
    m = result.metrics
    print(f"layout model written to {result.model_path} (MLflow run {result.run_id})")
    print(f"  val R@0.5 {m.get('val/recall_at_0.5', float('nan')):.3f}  "
          f"class-mean baseline {m['baseline/val/recall_at_0.5']:.3f}  "
          f"mean box IoU {m.get('val/box_iou', float('nan')):.3f}")


def _print_gan_result(name: str, result) -> None:
    """A GAN stage's export and its final figures, two lines."""
    m = result.metrics
    print(f"{name} model written to {result.model_path} (MLflow run {result.run_id})")
    print(f"  {m['iterations']} iterations, {m['train_images_per_s']:.2f} images/s, "
          f"D loss {m.get('train/d_loss', float('nan')):.3f}, "
          f"G loss {m.get('train/g_loss', float('nan')):.3f}")


def cmd_train_image(args: argparse.Namespace) -> None:
    from scene2img.stages.train_image import train_image

    extra = [f"train_image.max_steps={args.max_steps}"] if args.max_steps is not None else []
    _print_gan_result("image", train_image(args.data, args.out, _params(args, extra),
                                           resume=args.resume, progress=not args.quiet))


def cmd_train_bachgan(args: argparse.Namespace) -> None:
    from scene2img.stages.train_bachgan import train_bachgan

    extra = [f"train_bachgan.max_steps={args.max_steps}"] if args.max_steps is not None else []
    _print_gan_result("BachGAN", train_bachgan(args.data, args.out, _params(args, extra),
                                               resume=args.resume, progress=not args.quiet))


def _add_training_options(p: argparse.ArgumentParser, steps_help: str, func) -> None:
    """The options of a training command that reads one processed dataset."""
    p.add_argument("--data", required=True, help="processed dataset folder or URL")
    p.add_argument("--out", type=Path, required=True, help="model folder (export, metrics.json)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoints/last.ckpt")
    p.add_argument("--max-steps", type=int, default=None, help=steps_help)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_params_options(p)
    p.set_defaults(func=func)


def cmd_train_upscaler(args: argparse.Namespace) -> None:
    from scene2img.stages.train_upscaler import train_upscaler

    extra = [f"train_upscaler.max_steps={args.max_steps}"] if args.max_steps is not None else []
    params = _params(args, extra)
    result = train_upscaler(args.data, args.raw, args.out, params, resume=args.resume,
                            progress=not args.quiet, image_model=args.image_model)
    m, s = result.metrics, params.train_upscaler.scale
    print(f"upscaler written to {result.model_path} (MLflow run {result.run_id})")
    print(f"  test x{s} PSNR {m[f'test/x{s}/psnr/rdn']:.2f} dB "
          f"(bicubic {m[f'test/x{s}/psnr/bicubic']:.2f}, nearest {m[f'test/x{s}/psnr/nearest']:.2f}), "
          f"SSIM {m[f'test/x{s}/ssim/rdn']:.3f} (bicubic {m[f'test/x{s}/ssim/bicubic']:.3f})")
    if f"test/generated/x{s}/psnr/rdn" in m:
        print(f"  generated images, test x{s} PSNR {m[f'test/generated/x{s}/psnr/rdn']:.2f} dB "
              f"(bicubic {m[f'test/generated/x{s}/psnr/bicubic']:.2f})"
              + (f"; before fine-tuning {m[f'prefinetune/test/generated/x{s}/psnr/rdn']:.2f}"
                 if f"prefinetune/test/generated/x{s}/psnr/rdn" in m else ""))


def cmd_summary(args: argparse.Namespace) -> None:
    from scene2img.data.summary import format_summary

    print(format_summary(args.dataset))


def cmd_stack(args: argparse.Namespace) -> None:
    import json

    from scene2img.tracking import stack

    cfg = stack.StackConfig(dir=args.dir, s3_port=args.s3_port, mlflow_port=args.mlflow_port,
                            backend_store_uri=args.backend_store_uri)
    if args.action == "up":
        state = stack.up(cfg)
        if not args.no_dvc and (Path.cwd() / ".dvc").is_dir():
            stack.configure_dvc_remote(cfg, Path.cwd())
            print(f"  DVC remote 'store' -> s3://dvc-store/scene2img at {state['s3_endpoint']}")
        print(f"team stack running: MLflow {state['tracking_uri']}, S3 {state['s3_endpoint']}; "
              f"logs in {state['logs']}")
        print(f"  export MLFLOW_TRACKING_URI={state['tracking_uri']}")
        print(f"  (or -S tracking.uri={state['tracking_uri']}); stop with `scene2img stack down`")
    elif args.action == "down":
        print("stopped" if stack.down(cfg) else f"no stack state in {cfg.dir}: nothing to stop")
    else:
        print(json.dumps(stack.status(cfg), indent=2))


def cmd_pipeline(args: argparse.Namespace) -> int:
    import codecs
    import json
    import os
    import subprocess

    if args.pipeline_command == "submit":
        from scene2img.pipeline.submit import submit

        done = submit(args.host, args.package, _params(args), experiment=args.kfp_experiment,
                      run_name=args.run_name, schedule=args.schedule, namespace=args.namespace)
        print(f"created {done.kind} {done.id}: {done.url}")
        return 0
    # Compiling and running need the DAG, which is a driver of its own in the checkout (not in
    # the library or the wheel): run it with the resolved params and this command's options.
    if not PIPELINE_FILE.is_file():
        raise ConfigError(f"{PIPELINE_FILE}: pipeline definition not found; run from a scene2img "
                          "checkout (the pipeline and its components are not in the wheel)")
    request = {"command": args.pipeline_command, "params": _params(args).to_dict(),
               "debug": args.debug, "log_level": logging.getLogger().getEffectiveLevel()}
    if args.pipeline_command == "compile":
        request["out"] = str(args.out.resolve())
    else:
        request.update(until=args.until, cache=not args.no_cache,
                       root=str(args.root.resolve()) if args.root else None,
                       live=sys.stdout.isatty(), runner=args.runner, image=args.image)
    with subprocess.Popen([sys.executable, "-u", str(PIPELINE_FILE), "-"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as child:
        child.stdin.write(json.dumps(request).encode())
        child.stdin.close()
        # Through sys.stdout (the output is this command's own), as it comes: a progress bar
        # redrawn in place ("\r") stays in place.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while chunk := os.read(child.stdout.fileno(), 65536):
            sys.stdout.write(decoder.decode(chunk))
            sys.stdout.flush()
    return child.returncode


def cmd_evaluate(args: argparse.Namespace) -> None:
    from scene2img.stages.evaluate import evaluate

    params = _params(args)
    result = evaluate(args.data, args.image_model, args.layout_model, args.out, params,
                      log_to_mlflow=not args.no_mlflow, upscaler_model=args.upscaler_model,
                      raw_dir=args.raw)
    width = max(len(k) for k in result.metrics)
    for name, value in sorted(result.metrics.items()):
        print(f"  {name:<{width}}  {value:.4f}")
    print(f"wrote {result.metrics_path}" + (f"; MLflow run {result.run_id}" if result.run_id else ""))


def cmd_register(args: argparse.Namespace) -> None:
    from scene2img.stages.register import register, register_bachgan

    lostgan = (args.layout_model, args.image_model, args.upscaler_model)
    if args.bachgan_model is not None:
        if any(f is not None for f in lostgan):
            raise ConfigError("register: give --bachgan-model alone, or --layout-model and "
                              "--image-model (one model family per registered model)")
        params = _params(args, [f"register.bachgan_name={args.name}"] if args.name else [])
        r = register_bachgan(args.bachgan_model, args.data, args.evaluation, params)
    else:
        if args.layout_model is None or args.image_model is None:
            raise ConfigError("register needs --layout-model and --image-model (or "
                              "--bachgan-model)")
        params = _params(args, [f"register.name={args.name}"] if args.name else [])
        r = register(args.layout_model, args.image_model, args.data, args.evaluation, params,
                     upscaler_model=args.upscaler_model)
    print(f"registered {r.model_uri} ({r.gate_metric} = {r.gate_value:.4f}); run {r.run_id}")
    print(f"  next: scene2img promote --name {r.name} --version {r.version}")


def cmd_promote(args: argparse.Namespace) -> None:
    from scene2img.stages.promote import promote

    if not args.rollback and args.version is None:
        raise ConfigError("promote needs --version V (or --rollback)")
    result = promote(_params(args), args.version, args.name, args.force, args.reason,
                     args.rollback)
    print(result.summary())


def _load_model(args: argparse.Namespace):
    from scene2img.serving.loading import load_scene_to_image

    return load_scene_to_image(args.model, limits=_params(args).serve)


def _outputs(args: argparse.Namespace):
    from scene2img.serving.outputs import Outputs

    return Outputs(args.out, args.layout_out, args.state_out, getattr(args, "graph_out", None),
                   getattr(args, "background_out", None))


def cmd_generate(args: argparse.Namespace) -> None:
    from scene2img.serving.commands import generate_files

    for line in generate_files(lambda: _load_model(args), _outputs(args), args.seed, args.graph,
                               args.text, args.upscale):
        print(line)


def cmd_edit(args: argparse.Namespace) -> None:
    from scene2img.serving.commands import edit_files

    for line in edit_files(lambda: _load_model(args), args.state, args.ops, _outputs(args),
                           args.graph, args.in_place, args.upscale):
        print(line)


def _typed_lines():
    """Instructions typed at a prompt, until end of input or 'quit'."""
    while True:
        try:
            line = input("dialog> " if sys.stdin.isatty() else "")
        except EOFError:
            return
        if line.strip().lower() in ("quit", "exit"):
            return
        yield line


def cmd_dialog(args: argparse.Namespace) -> None:
    from scene2img.serving.commands import dialog_files, read_script

    lines = read_script(args.script) if args.script else _typed_lines()
    for line in dialog_files(lambda: _load_model(args), args.session, lines, args.seed,
                             args.upscale):
        print(line, flush=True)


def cmd_dialog_web(args: argparse.Namespace) -> None:
    from scene2img.serving.commands import require_editable
    from scene2img.serving.dialog.web import make_server

    server = make_server(require_editable(_load_model(args), "dialog-web"), args.host, args.port)
    host, port = server.server_address[:2]
    print(f"dialog page at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def cmd_compare(args: argparse.Namespace) -> None:
    from mlflow import MlflowClient

    from scene2img.tracking.compare import compare_runs, log_comparison

    params = _params(args)
    client = MlflowClient(params.tracking.uri)
    page = compare_runs(client, args.run_ids, args.out)
    print(f"wrote {page}")
    if not args.no_log:
        run_id = log_comparison(client, params.tracking.experiment, args.run_ids, page)
        print(f"logged to MLflow run {run_id} (artifact compare/{page.name})")


# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scene2img", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--verbose", "-v", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("preprocess", help="raw dataset -> processed shards, vocab, manifest")
    p.add_argument("--source", choices=SOURCE_NAMES, default=None,
                   help="raw format (default: preprocess.source)")
    p.add_argument("--raw", type=Path, required=True, help="the raw dataset folder")
    p.add_argument("--out", type=Path, required=True, help="the processed dataset folder")
    p.add_argument("--strict", action="store_true",
                   help="fail on a missing or corrupt image instead of skipping it")
    p.add_argument("--workers", type=int, default=None, help="processes (0: one per core)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_params_options(p)
    p.set_defaults(func=cmd_preprocess)

    data = sub.add_parser("data", help="toy world and dataset statistics")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("toyworld", help="write a synthetic dataset in a raw format")
    p.add_argument("--format", choices=SOURCE_NAMES, required=True)
    p.add_argument("--images", type=int, default=None, help="default: toyworld.images")
    p.add_argument("--out", type=Path, required=True)
    _add_params_options(p)
    p.set_defaults(func=cmd_toyworld)
    p = dsub.add_parser("stats", help="PNG and HTML summary of a processed dataset")
    p.add_argument("dataset", help="processed dataset folder or URL")
    p.add_argument("--out", type=Path, default=None, help="folder (default: DATASET/stats)")
    p.set_defaults(func=cmd_stats)
    p = dsub.add_parser("summary", help="print a processed dataset's one-screen summary")
    p.add_argument("dataset", help="processed dataset folder or URL")
    p.set_defaults(func=cmd_summary)
    p = sub.add_parser("train-layout", help="processed dataset -> layout model (graph -> boxes)")
    _add_training_options(p, "default: train_layout.max_steps", cmd_train_layout)
    p = sub.add_parser("train-image", help="processed dataset -> image GAN (layout -> image)")
    _add_training_options(p, "iterations (default: train_image.max_steps)", cmd_train_image)
    p = sub.add_parser("train-bachgan",
                       help="processed ADE20K dataset with label maps -> BachGAN (salient-object "
                            "layout + retrieved backgrounds -> image)")
    _add_training_options(p, "iterations (default: train_bachgan.max_steps)", cmd_train_bachgan)
    p = sub.add_parser("train-upscaler",
                       help="raw images of a processed dataset -> RDN super-resolution upscaler")
    p.add_argument("--data", required=True, help="processed dataset folder or URL (its splits)")
    p.add_argument("--raw", type=Path, required=True,
                   help="the raw dataset it was preprocessed from (full-size images)")
    p.add_argument("--out", type=Path, required=True, help="model folder (export, metrics.json)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoints/last.ckpt")
    p.add_argument("--max-steps", type=int, default=None,
                   help="default: train_upscaler.max_steps")
    p.add_argument("--image-model", type=Path, default=None,
                   help="image_model.pt: also score on its images of the test layouts (and "
                        "fine-tune on them with train_upscaler.finetune_generated=true)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_params_options(p)
    p.set_defaults(func=cmd_train_upscaler)
    p = sub.add_parser("evaluate", help="FID and friends on a split, under a recorded protocol")
    p.add_argument("--data", required=True, help="processed dataset folder or URL")
    p.add_argument("--image-model", type=Path, required=True, help="image_model.pt")
    p.add_argument("--layout-model", type=Path, default=None,
                   help="layout_model.pt: also evaluate graph -> predicted layout -> image")
    p.add_argument("--out", type=Path, required=True, help="folder for metrics.json and reports")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument("--upscaler-model", type=Path, default=None,
                   help="upscaler_model.pt: also measure the upscaled images (fid_512_rdn_x4_...) "
                        "against the raw images (needs --raw)")
    p.add_argument("--raw", type=Path, default=None,
                   help="the raw dataset the processed one was made from (with --upscaler-model)")
    _add_params_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("register", help="log and register the end-to-end model in MLflow")
    p.add_argument("--layout-model", type=Path, default=None, help="layout_model.pt")
    p.add_argument("--image-model", type=Path, default=None, help="image_model.pt")
    p.add_argument("--bachgan-model", type=Path, default=None,
                   help="bachgan_model.pt of train-bachgan, instead of the two above: registered "
                        "as register.bachgan_name")
    p.add_argument("--data", required=True, help="the processed dataset they were trained on")
    p.add_argument("--evaluation", type=Path, required=True, help="metrics.json of evaluate")
    p.add_argument("--upscaler-model", type=Path, default=None,
                   help="upscaler_model.pt of train-upscaler: the model then serves `upscale`; "
                        "refused unless its recorded test PSNR beats bicubic's by more than "
                        "register.upscaler_margin_db")
    p.add_argument("--name", default=None, help="registered model name (default: register.name; "
                   "BachGAN: register.bachgan_name)")
    _add_params_options(p)
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("promote", help="the gate: move @champion to a better version")
    p.add_argument("--name", default=None, help="registered model (default: register.name)")
    p.add_argument("--version", default=None)
    p.add_argument("--force", action="store_true", help="override the gate (needs --reason)")
    p.add_argument("--reason", default=None)
    p.add_argument("--rollback", action="store_true", help="make @previous champion again")
    _add_params_options(p)
    p.set_defaults(func=cmd_promote)

    for name, helptext in (("generate", "scene graph (or text) -> image"),
                           ("edit", "apply edits to a generation, keeping the rest")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--model", required=True,
                       help="a model folder (layout_model.pt, image_model.pt; upscaler_model.pt "
                            "if any; or BachGAN's bachgan_model.pt) or models:/NAME@alias")
        if name == "generate":
            p.add_argument("--graph", "--layout", type=Path, default=None,
                           help="scene graph JSON (BachGAN: foreground objects with boxes)")
            p.add_argument("--text", default=None, help='e.g. "a red car left of a tree"')
            p.add_argument("--seed", type=int, default=0, help="0 .. 2**63 - 1 (default 0)")
            p.add_argument("--background-out", type=Path, default=None,
                           help="BachGAN: the background it painted from (fused label map PNG)")
        else:
            p.add_argument("--state", type=Path, required=True,
                           help="state.json of the generation to edit (read; see --in-place)")
            p.add_argument("--ops", type=Path, required=True, help="edit operations JSON")
            p.add_argument("--graph", type=Path, default=None,
                           help="the scene graph the state was generated from: checked against "
                                "it (read; see --in-place)")
            p.add_argument("--graph-out", type=Path, default=None,
                           help="write the edited scene graph here")
            p.add_argument("--in-place", action="store_true",
                           help="replace --state (and --graph) with the edited state (and graph)")
        p.add_argument("--out", type=Path, required=True, help="image PNG")
        p.add_argument("--upscale", type=int, default=None, metavar="FACTOR",
                       help="take the image up by the model's upscaler: its factor, 2 or 4 as "
                            "trained (128 -> 512 px at 4); the model must hold one")
        p.add_argument("--layout-out", type=Path, default=None, help="layout drawing PNG")
        p.add_argument("--state-out", type=Path, default=None,
                       help="latents and layout JSON (the input of `edit`)")
        _add_params_options(p)
        p.set_defaults(func=cmd_generate if name == "generate" else cmd_edit)

    p = sub.add_parser("dialog", help="build and correct a picture one instruction at a time")
    p.add_argument("--model", required=True,
                   help="a model folder (layout_model.pt, image_model.pt; upscaler_model.pt if "
                        "any) or models:/NAME@alias")
    p.add_argument("--script", type=Path, default=None,
                   help="instructions, one a line (default: type them at a prompt)")
    p.add_argument("--session", type=Path, default=Path("dialog-session"),
                   help="folder keeping the session (resumed if it holds one); pictures, "
                        "layouts, turns.txt, session.json (default: dialog-session)")
    p.add_argument("--seed", type=int, default=0, help="a new session's seed (default 0)")
    p.add_argument("--upscale", type=int, default=None, metavar="FACTOR",
                   help="write each picture taken up by the model's upscaler: its factor, 2 or "
                        "4 as trained; the model must hold one")
    _add_params_options(p)
    p.set_defaults(func=cmd_dialog)

    p = sub.add_parser("dialog-web", help="the dialog as a web page, served next to the model")
    p.add_argument("--model", required=True,
                   help="a model folder or models:/NAME@alias (e.g. models:/scene2img@champion)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    p.add_argument("--port", type=int, default=8765, help="default 8765; 0 picks a free port")
    _add_params_options(p)
    p.set_defaults(func=cmd_dialog_web)

    p = sub.add_parser("compare", help="one HTML page comparing MLflow runs side by side")
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    p.add_argument("--out", type=Path, default=Path("compare.html"))
    p.add_argument("--no-log", action="store_true", help="do not log the page to MLflow")
    _add_params_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("stack", help="start, stop or inspect the team stack (S3 + MLflow)")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--dir", type=Path, default=Path(".stack"), help="data, logs and state")
    p.add_argument("--s3-port", type=int, default=8333)
    p.add_argument("--mlflow-port", type=int, default=5000)
    p.add_argument("--backend-store-uri", default=None,
                   help="MLflow backend (default: SQLite in --dir; e.g. postgresql://...)")
    p.add_argument("--no-dvc", action="store_true", help="do not configure the DVC remote")
    p.set_defaults(func=cmd_stack)

    pipe = sub.add_parser("pipeline", help="the Kubeflow DAG: compile, run locally, submit")
    psub = pipe.add_subparsers(dest="pipeline_command", required=True)
    p = psub.add_parser("compile", help="write the pipeline YAML (defaults from the params)")
    p.add_argument("--out", type=Path, default=Path("pipelines/scene2img_pipeline.yaml"))
    _add_params_options(p)
    p.set_defaults(func=cmd_pipeline)
    p = psub.add_parser("run", help="run the DAG here with the KFP local runner")
    p.add_argument("--local", action="store_true", required=True,
                   help="the KFP local runner, on this machine")
    p.add_argument("--runner", choices=RUNNERS, default="subprocess",
                   help="subprocess: tasks in this Python environment; docker: each task in the "
                        "project's image (make image), through podman's Docker API, reaching "
                        "MLflow and S3 over the network (the team stack)")
    p.add_argument("--image", default=None,
                   help="--runner docker: the local image (default: localhost/scene2img:latest)")
    p.add_argument("--until", default="promote", choices=STEPS,
                   help="last step to run (default: all)")
    p.add_argument("--root", type=Path, default=None,
                   help="outputs and cache (default: pipeline.local_root)")
    p.add_argument("--no-cache", action="store_true", help="rerun every task")
    _add_params_options(p)
    p.set_defaults(func=cmd_pipeline, experiment="toyworld")
    p = psub.add_parser("submit", help="create a run (or, with --schedule, a recurring run)")
    p.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080")
    p.add_argument("--package", type=Path, default=Path("pipelines/scene2img_pipeline.yaml"),
                   help="compiled pipeline YAML")
    p.add_argument("--schedule", default=None, metavar="CRON",
                   help="recurring run on this cron schedule (KFP: 6 fields, '0 0 3 * * *')")
    p.add_argument("--kfp-experiment", default="scene2img", help="KFP experiment name")
    p.add_argument("--run-name", default=None, help="default: pipeline.name")
    p.add_argument("--namespace", default=None, help="multi-user KFP: the profile namespace")
    _add_params_options(p)
    p.set_defaults(func=cmd_pipeline)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code = args.func(args)
    except Scene2ImgError as exc:
        if args.debug:
            raise
        print(f"scene2img: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scene2img: interrupted; nothing was left half-written", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
