"""The resumable training stream with resampled relations (COCO-Stuff): a pure function of
(seed, batch position), so a resumed run sees the graphs an uninterrupted one would."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from scene2img.config import load_params
from scene2img.training.sampling import (
    DataPosition,
    EpochView,
    ResumableBatchSampler,
    ResumableDataModule,
)


def stream(data: Path, start: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Batches from `start` to the end of the second epoch, from a fresh module (as on resume)."""
    params = load_params(experiment="toyworld").data
    dm = ResumableDataModule(data, params, batch_size=8, seed=seed)
    train = dm.dataset("train")
    assert train.resample_relations and train.flip
    position = DataPosition()
    position.batches = start
    sampler = ResumableBatchSampler(len(train), 8, position, seed=seed, flip=True)
    out = []
    while position.batches < 2 * len(sampler):
        for batch in DataLoader(EpochView(train), batch_sampler=sampler):
            out.append(batch)
            position.batches += 1
    return out


def test_resumed_stream_draws_the_same_graphs_and_epochs_draw_new_ones(toy_coco: Path) -> None:
    full = stream(toy_coco, 0)
    per_epoch = len(full) // 2
    resumed = stream(toy_coco, per_epoch - 1)  # interrupted before the epoch's last batch
    assert len(resumed) == per_epoch + 1
    for a, b in zip(full[per_epoch - 1:], resumed, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # the same image in epoch 0 and epoch 1: same pixels (up to the flip), a new graph
    first = {int(i): t for b in full[:per_epoch] for i, t in zip(b["index"], b["triples"],
                                                                strict=True)}
    second = {int(i): t for b in full[per_epoch:] for i, t in zip(b["index"], b["triples"],
                                                                 strict=True)}
    both = first.keys() & second.keys()
    assert len(both) >= 8
    assert sum(not torch.equal(first[i], second[i]) for i in both) >= len(both) // 2
    other_seed = stream(toy_coco, 0, seed=1)
    assert not all(torch.equal(a["triples"], b["triples"]) for a, b in zip(full, other_seed,
                                                                            strict=False))


def test_sampler_splits_global_batches_and_resumes():
    pos = DataPosition()
    one = ResumableBatchSampler(30, 8, pos, seed=3, flip=True)
    ranks = [ResumableBatchSampler(30, 4, pos, seed=3, flip=True, rank=r, world_size=2)
             for r in range(2)]
    assert len(one) == len(ranks[0]) == 3
    for p in range(7):  # across epochs
        assert one.batch(p) == ranks[0].batch(p) + ranks[1].batch(p)
    first = list(one)
    assert len({i for b in first for i, _, _ in b}) == 24  # no repeats within an epoch
    assert any(f for b in first for _, f, _ in b) and not all(f for b in first for _, f, _ in b)
    assert {e for b in first for _, _, e in b} == {0}  # the epoch: the relation draw
    pos.batches = 4  # resumed in the second epoch, after its first batch
    assert list(one) == [one.batch(4), one.batch(5)]
    assert one.batch(3) != one.batch(0)  # a new epoch, a new order
    no_flip = ResumableBatchSampler(30, 8, DataPosition(), seed=3)
    assert not any(f for b in no_flip for _, f, _ in b)
