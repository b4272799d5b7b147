"""Layout-model training throughput: steps per second at batch 32 on this machine.

Two figures per configuration, on a toy-world Visual Genome preprocessed to 64 px:

- `model_steps_per_second`: the training computation alone (data already in memory): the loss
  (generator + layout discriminator), one backward, one Adam step;
- `fit_steps_per_second`: `Trainer.fit` end to end (data loading, Lightning, checkpoints), no logger.

Configurations: `paper` (params.yaml: sg2im widths) and `toyworld` (its experiment overrides).
The machine's load average is recorded too: on a shared machine it moves the figures a lot.

    .venv/bin/python benchmarks/train_layout.py [--images 240] [--steps 30] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from scene2img.config import load_params
from scene2img.data.dataset import SceneGraphDataModule
from scene2img.data.toyworld import generate_toyworld
from scene2img.stages.preprocess import preprocess
from scene2img.stages.train_layout import layout_module
from scene2img.training.runtime import build_trainer, seed_everything
from scene2img.training.sampling import DataPosition, ResumableDataModule

HERE = Path(__file__).resolve().parent
BATCH = 32


def model_steps_per_second(params, data: Path, steps: int) -> float:
    seed_everything(0)
    dm = SceneGraphDataModule(data, params.data, BATCH)
    batches = [b for _, b in zip(range(4), dm.train_dataloader(), strict=False)]
    module = layout_module(params.train_layout, dm.vocab)
    opt = module.configure_optimizers()

    def step(batch):
        total, _, _, _ = module.loss(batch)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    for b in batches[:2]:  # warm-up
        step(b)
    t0 = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    return steps / (time.perf_counter() - t0)


def fit_steps_per_second(params, data: Path, steps: int, tmp: Path) -> float:
    seed_everything(0)
    dm = ResumableDataModule(data, params.data, BATCH)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=240)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    # At most 16 relationships: with 15 objects' __in_image__ triples, every scene fits the
    # dataset's 2 * data.max_objects triples.
    base = ["preprocess.image_size=64", "preprocess.vg.max_relationships_per_image=16",
            "trainer.accelerator=cpu",
            f"train_layout.batch_size={BATCH}", f"toyworld.images={args.images}"]
    raw = HERE / ".cache" / f"toyworld-vg-{args.images}-layout"
    figures: dict = {"benchmark": "train_layout", "batch_size": BATCH,
                     "data": f"toyworld-vg {args.images} images, 64 px",
                     "torch_threads": torch.get_num_threads(), "cores": os.cpu_count(),
                     "cpu": platform.processor() or platform.machine(),
                     "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        toy = load_params(experiment="toyworld", overrides=base)
        if not raw.exists():
            print(f"generating {args.images} toy-world images into {raw} (once)")
            generate_toyworld("vg", raw, toy.toyworld)
        data = Path(tmp) / "processed"
        preprocess(raw, data, toy.preprocess, progress=False)
        # params.yaml as it is (sg2im widths), padded like the toy world.
        paper = load_params(overrides=[*base, f"data.max_objects={toy.data.max_objects}"])
        for name, params in (("paper", paper), ("toyworld", toy)):
            model = model_steps_per_second(params, data, args.steps)
            fit = fit_steps_per_second(params, data, args.steps, Path(tmp) / name)
            figures[name] = {"model_steps_per_second": round(model, 2),
                             "fit_steps_per_second": round(fit, 2),
                             "mask_dim": params.train_layout.mask_dim,
                             "gconv_hidden": params.train_layout.gconv_hidden}
            print(f"{name:>9}: {model:6.2f} steps/s (model step)  {fit:6.2f} steps/s (Trainer.fit)")
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out = HERE / "results" / "train_layout.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
