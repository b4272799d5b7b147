"""Resumable, DDP-aware training data order.

The training stream is a pure function of (seed, batch position): epoch `e` is a permutation of
the split drawn from a generator seeded with (seed, e), each global batch is cut from it and split
across the DDP ranks, and the horizontal flips are drawn from the same generator. Resampled
relations (COCO-Stuff, ADE20K) are seeded by (seed, e, index). Nothing comes from global random
state, so prefetching, loader workers and validation cannot shift it.

`DataPosition` (a callback) counts the training batches consumed and carries that count, and the
global RNG states, in checkpoints. On resume the sampler starts at the restored count, so an
interrupted run continues with exactly the batches (and flips) an uninterrupted run would have seen.

The same global batch is seen whatever the number of ranks: with `world_size` ranks of batch `b`,
global batch `p` is items `p*W*b .. (p+1)*W*b` of the epoch's permutation and rank `r` takes its
`r`-th slice, so one process with batch `W*b` sees their union.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from scene2img.config import DataParams
from scene2img.data.dataset import SceneGraphDataModule, SceneGraphDataset

__all__ = ["DataPosition", "EpochView", "ResumableBatchSampler", "ResumableDataModule",
           "ResumableLoader"]


class DataPosition(pl.Callback):
    """Counts consumed training batches; saves and restores it (and the RNGs) with checkpoints."""

    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # Runs before ModelCheckpoint's hook (Lightning puts checkpoint callbacks last), so a
        # checkpoint written after this batch counts it.
        self.batches += 1

    def state_dict(self) -> dict[str, Any]:
        # Plain containers and tensors only: Lightning loads checkpoints with weights_only=True.
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        return {"batches": self.batches, "torch_rng": torch.get_rng_state(),
                "numpy_rng": [name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                              int(has_gauss), float(gauss)],
                "python_rng": random.getstate()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = int(state_dict["batches"])
        torch.set_rng_state(state_dict["torch_rng"])
        name, keys, pos, has_gauss, gauss = state_dict["numpy_rng"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(state_dict["python_rng"])


class ResumableBatchSampler(Sampler[list[tuple[int, bool, int]]]):
    """Yields this rank's batches of (index, flip, epoch) from the current position to the epoch's
    end."""

    def __init__(
        self,
        size: int,  # items in the split
        batch_size: int,  # per rank
        position: DataPosition,  # shared batch counter (restored on resume)
        seed: int = 0,
        flip: bool = False,  # draw a horizontal flip per item
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if size < world_size:
            raise ValueError(f"{size} training items cannot be split over {world_size} ranks")
        self.size, self.position, self.seed, self.flip = size, position, seed, flip
        self.rank, self.world_size = rank, world_size
        self.batch_size = min(batch_size, size // world_size)  # a split smaller than one batch
        self.global_batch = self.batch_size * world_size
        self.batches_per_epoch = size // self.global_batch  # full batches only

    def __len__(self) -> int:
        return self.batches_per_epoch

    def _epoch(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.size, generator=gen)
        flips = torch.rand(self.size, generator=gen) < 0.5
        return order, flips & self.flip

    def batch(self, position: int) -> list[tuple[int, bool, int]]:
        """The batch this rank gets at a (global) batch position."""
        epoch, k = divmod(position, self.batches_per_epoch)
        order, flips = self._epoch(epoch)
        start = k * self.global_batch + self.rank * self.batch_size
        idx = order[start:start + self.batch_size]
        return [(int(i), bool(flips[i]), epoch) for i in idx]

    def __iter__(self) -> Iterator[list[tuple[int, bool, int]]]:
        start = self.position.batches
        end = (start // self.batches_per_epoch + 1) * self.batches_per_epoch
        for p in range(start, end):
            yield self.batch(p)


class EpochView(Dataset):
    """A training split indexed by the sampler's (index, flip, epoch): the flip and the relation
    draw (the epoch) decided by the sampler, not by RNG."""

    def __init__(self, base: SceneGraphDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, bool, int]) -> dict[str, torch.Tensor]:
        index, flip, epoch = key
        return self.base.item(index, flip, draw=epoch)


class ResumableLoader(DataLoader):
    """A `DataLoader` Lightning treats as resumable: its position lives in `DataPosition`."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass


class ResumableDataModule(SceneGraphDataModule):
    """`SceneGraphDataModule` whose training loader follows `ResumableBatchSampler`.

    The trainer must carry a `DataPosition` callback and `use_distributed_sampler=False` (the
    sampler splits batches across ranks itself); validation and test loaders are unchanged.
    """

    def __init__(self, dataset_url, params: DataParams, batch_size: int, seed: int = 0) -> None:
        super().__init__(dataset_url, params, batch_size, seed=seed)

    def _position(self) -> DataPosition:
        found = [c for c in (self.trainer.callbacks if self.trainer else [])
                 if isinstance(c, DataPosition)]
        if not found:
            raise RuntimeError("ResumableDataModule needs a DataPosition callback on the trainer")
        return found[0]

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset("train")
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer \
            else (0, 1)
        sampler = ResumableBatchSampler(len(dataset), self.batch_size, self._position(),
                                        seed=self.seed, flip=dataset.flip, rank=rank,
                                        world_size=world)
        return ResumableLoader(EpochView(dataset), batch_sampler=sampler,
                               num_workers=self.params.num_workers,
                               persistent_workers=self.params.num_workers > 0)
