"""Layout-model training throughput: steps per second at batch 32 (`--batch-size`) on this machine.

Two figures per configuration, on a toy-world Visual Genome preprocessed to 64 px:

- `model_steps_per_second`: the training computation alone (data already in memory): the loss
  (generator + layout discriminator), one backward, one Adam step;
- `fit_steps_per_second`: `Trainer.fit` end to end (data loading, Lightning, checkpoints), no logger.

Beside them the work: FLOPs per step (matmuls and convolutions, forward and backward, counted by
`FlopCounterMode` on a warm-up step) and images per step, with their rates (FLOP/s, images/s) for
both figures; `make bench` adds the share of this machine's fp32 peak (`benchmarks/peak.py`).

Configurations: `paper` (params.yaml: sg2im widths) and `toyworld` (its experiment overrides).
The machine's load average is recorded too: on a shared machine it moves the figures a lot.

    .venv/bin/python benchmarks/train_layout.py [--images 240] [--steps 30] [--threads 0]

Writes `benchmarks/results/train_layout.json` (or `--out`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from _measure import RESULTS, count_flops, rates, round_sig, write_result

from scene2img.config import load_params
from scene2img.data.dataset import SceneGraphDataModule
from scene2img.data.toyworld import generate_toyworld
from scene2img.stages.preprocess import preprocess
from scene2img.stages.train_layout import layout_module
from scene2img.training.runtime import build_trainer, seed_everything
from scene2img.training.sampling import DataPosition, ResumableDataModule

HERE = Path(__file__).resolve().parent
CONFIGS = ("paper", "toyworld")


def model_steps_per_second(params, data: Path, steps: int, batch: int
                           ) -> tuple[float, int]:
    """Steps per second of the training computation alone, and its FLOPs per step."""
    seed_everything(0)
    dm = SceneGraphDataModule(data, params.data, batch)
    batches = [b for _, b in zip(range(4), dm.train_dataloader(), strict=False)]
    module = layout_module(params.train_layout, dm.vocab)
    opt = module.configure_optimizers()

    def step(batch):
        total, _, _, _ = module.loss(batch)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    _, flop = count_flops(lambda: step(batches[0]))  # also a warm-up
    step(batches[1 % len(batches)])  # warm-up
    t0 = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    return steps / (time.perf_counter() - t0), flop


def fit_steps_per_second(params, data: Path, steps: int, batch: int, tmp: Path) -> float:
    """Steps per second of `Trainer.fit`, timed after two warm-up steps."""
    seed_everything(0)
    dm = ResumableDataModule(data, params.data, batch)
    module = layout_module(params.train_layout, dm.vocab)
    trainer = build_trainer(params.trainer, tmp, max_steps=steps + 2, callbacks=[DataPosition()],
                            use_distributed_sampler=False, limit_val_batches=0,
                            num_sanity_val_steps=0, enable_progress_bar=False)

    class Clock(pl.Callback):  # times from the end of step 2 (warm-up) to the end
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 2:
                self.t0 = time.perf_counter()

    clock = Clock()
    trainer.callbacks.append(clock)
    trainer.fit(module, datamodule=dm)
    return steps / (time.perf_counter() - clock.t0)


def measure(images: int = 240,  # toy-world VG scenes, preprocessed to 64 px
            steps: int = 30,  # timed steps per measurement
            batch: int = 32,  # scenes per step
            configs: Sequence[str] = CONFIGS,  # which of them
            ) -> dict[str, Any]:
    """Both figures, with the work, for the `paper` and `toyworld` configurations."""
    # At most 16 relationships: with 15 objects' __in_image__ triples, every scene fits the
    # dataset's 2 * data.max_objects triples.
    base = ["preprocess.image_size=64", "preprocess.vg.max_relationships_per_image=16",
            "trainer.accelerator=cpu",
            f"train_layout.batch_size={batch}", f"toyworld.images={images}"]
    raw = HERE / ".cache" / f"toyworld-vg-{images}-layout"
    figures: dict[str, Any] = {"benchmark": "train_layout", "batch_size": batch, "steps": steps,
                               "data": f"toyworld-vg {images} images, 64 px",
                               "configs": list(configs)}
    with tempfile.TemporaryDirectory() as tmp:
        toy = load_params(experiment="toyworld", overrides=base)
        if not raw.exists():
            print(f"generating {images} toy-world images into {raw} (once)")
            generate_toyworld("vg", raw, toy.toyworld)
        data = Path(tmp) / "processed"
        preprocess(raw, data, toy.preprocess, progress=False)
        # params.yaml as it is (sg2im widths), padded like the toy world.
        paper = load_params(overrides=[*base, f"data.max_objects={toy.data.max_objects}"])
        for name, params in {"paper": paper, "toyworld": toy}.items():
            if name not in configs:
                continue
            model, flop = model_steps_per_second(params, data, steps, batch)
            fit = fit_steps_per_second(params, data, steps, batch, Path(tmp) / name)
            work = {"flop": flop, "images": batch}
            figures[name] = {"model_steps_per_second": round_sig(model),
                             "fit_steps_per_second": round_sig(fit),
                             "flop_per_step": flop, "images_per_step": batch,
                             "model_step": rates(work, 1 / model),
                             "fit": rates(work, 1 / fit),
                             "dtype": "fp32",
                             "mask_dim": params.train_layout.mask_dim,
                             "gconv_hidden": params.train_layout.gconv_hidden}
            print(f"{name:>9}: {model:6.2f} steps/s (model step)  {fit:6.2f} steps/s (Trainer.fit)"
                  f"  {flop / 1e9:.2f} GFLOP/step  {flop * model / 1e9:.1f} GFLOP/s (model step)",
                  flush=True)
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=240)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=RESULTS / "train_layout.json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    figures = measure(args.images, args.steps, args.batch_size, args.configs)
    write_result(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
