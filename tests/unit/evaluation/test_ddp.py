"""Under DDP (two CPU ranks, gloo) every rank gets the numbers of one process over all images."""

from __future__ import annotations

import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from scene2img.evaluation.evaluator import evaluate_images
from tests.unit.evaluation.conftest import TinyBackbone, make_batches, tiny_protocol


def _darker(batch, sample):  # deterministic: the same on every rank and in one process
    return batch["image"] * (0.8 - 0.1 * sample)


def _evaluate(batches):
    tiny = TinyBackbone(seed=0)
    return evaluate_images(batches, _darker, tiny_protocol(tiny), backbone=tiny)


def _worker(rank: int, world: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{folder}/init", rank=rank, world_size=world)
    try:
        result = _evaluate(make_batches()[rank::world])  # this rank's shard
        with open(f"{folder}/rank{rank}.json", "w") as f:
            json.dump(result.to_dict(), f)
    finally:
        dist.destroy_process_group()


def test_ddp_gives_the_single_process_numbers(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1]  # every rank returns the same result
    single = _evaluate(make_batches()).to_dict()
    ddp = ranks[0]
    for key in ("num_real", "num_generated", "num_real_crops", "num_generated_crops"):
        assert ddp["protocol"][key] == single["protocol"][key]
    for name in ("fid_tiny_test", "scenefid_tiny_test"):
        assert ddp["metrics"][name] == pytest.approx(single["metrics"][name], rel=1e-6)
    assert ddp["per_class_scenefid"] == pytest.approx(single["per_class_scenefid"], rel=1e-5)
    # KID and IS draw random subsets of the gathered features, whose order differs by rank.
    for name in ("kid_tiny_test", "is_tiny_test"):
        assert ddp["metrics"][name] == pytest.approx(single["metrics"][name], rel=0.5, abs=1e-3)
    assert torch.distributed.is_initialized() is False
