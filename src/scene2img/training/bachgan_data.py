"""BachGAN's training data: the processed ADE20K splits, each item with its retrieved backgrounds.

The memory bank is the training split's stored label maps (`preprocess.ade20k.segmap_size`). It is
encoded once (`models.retrieval.MemoryBank`) when the data module is made, and every record's top
`m` maps are retrieved then, in batches, into a fixed index (`RetrievalIndex`): training records
against the bank with their own map excluded, val / test records against the whole bank. Items
then only look their maps up, so the data order, prefetching and resume (`training.sampling`) are
untouched: the same record always gets the same maps, and an interrupted run sees what an
uninterrupted one would. A horizontally flipped item gets its maps flipped too (the exact score of
a mirrored layout against a mirrored map is the score of the pair unmirrored).

An item gains

    backgrounds  [m, s, s]  uint8 label maps (vocabulary object indices, 0 = unlabeled), best first
    retrieved    [m]        long, their positions in the training split
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from scene2img.config import ClassSplitParams, DataParams, RetrievalParams
from scene2img.data.dataset import SceneGraphDataset
from scene2img.data.filters import class_split
from scene2img.data.processed import SPLITS, read_manifest
from scene2img.data.vocab import Vocab
from scene2img.errors import ConfigError, DataError
from scene2img.models.retrieval import MemoryBank
from scene2img.training.sampling import ResumableDataModule

log = logging.getLogger(__name__)

__all__ = ["BachGANDataModule", "RetrievalIndex", "foreground_classes", "retrieval_index"]

QUERY_BATCH = 256  # queries scored at a time (one sparse product each)


def foreground_classes(data_url: str | Path, vocab: Vocab) -> list[int]:
    """The foreground (object) classes of an ADE20K dataset: its vocabulary less the background
    list of the class split it was preprocessed with (its manifest's params)."""
    manifest = read_manifest(data_url)
    if manifest.get("source") != "ade20k":
        raise DataError(f"{data_url}: a {manifest.get('source')} dataset; BachGAN trains on "
                        "ADE20K (preprocess --source ade20k, preprocess.ade20k.segmap_size > 0)")
    split = manifest.get("params", {}).get("ade20k", {}).get("class_split")
    if not split:
        raise DataError(f"{data_url}/manifest.json names no params.ade20k.class_split; re-run "
                        "preprocess to rebuild the dataset")
    table = {i: n for i, n in enumerate(vocab.object_idx_to_name) if i > 0 and n is not None}
    foreground, _ = class_split(table, ClassSplitParams(**split),
                                f"{data_url}/manifest.json params.ade20k.class_split")
    return foreground


@dataclass
class RetrievalIndex:
    """The bank and each record's retrieved maps, per split."""

    bank: torch.Tensor  # [N, s, s] uint8: the training split's label maps
    image_ids: list[str]  # [N] their records' image ids
    retrieved: dict[str, torch.Tensor]  # split -> [records, m] int64 bank positions, best first
    scores: dict[str, torch.Tensor]  # split -> [records, m] their scores


def _queries(dataset: SceneGraphDataset, split: str, need_maps: bool,
             data_url: str | Path) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                            list[torch.Tensor], list[str]]:
    """Each record's objects [O] and boxes [O, 4] (unpadded), its label map when `need_maps`,
    and its image id."""
    objects, boxes, maps, ids = [], [], [], []
    for i in range(len(dataset)):
        rec = dataset.reader[i]
        ids.append(str(rec.image_id))
        objects.append(torch.from_numpy(rec.objects).long())
        boxes.append(torch.from_numpy(rec.boxes).float())
        if need_maps:
            if rec.segmap is None:
                raise DataError(f"{data_url}/{split} record {i} (image {rec.image_id}) has no "
                                "label map; BachGAN's memory bank needs them: preprocess with "
                                "preprocess.ade20k.segmap_size > 0 (default 64)")
            maps.append(torch.from_numpy(rec.segmap.copy()))
    return objects, boxes, maps, ids


def retrieval_index(
    datasets: dict[str, SceneGraphDataset],  # train (the bank) and any other splits
    foreground: list[int],  # the classes queries hold (`foreground_classes`)
    params: RetrievalParams,  # m, grid
    data_url: str | Path,  # named in errors
) -> RetrievalIndex:
    """Encode the training maps once and retrieve the top `m` for every record of every split
    (training records: their own map excluded)."""
    objects, boxes, maps, image_ids = _queries(datasets["train"], "train", True, data_url)
    bank_maps = torch.stack(maps)  # [N, s, s]
    size = bank_maps.shape[-1]
    if params.m > len(bank_maps) - 1:
        raise ConfigError(f"train_bachgan.retrieval.m={params.m}: the training split of "
                          f"{data_url} has {len(bank_maps)} label maps, so at most "
                          f"{len(bank_maps) - 1} can be retrieved besides the query's own")
    if size % params.grid:
        raise ConfigError(f"train_bachgan.retrieval.grid={params.grid} must divide the label "
                          f"maps' side, {size} px in {data_url} (e.g. {size // 4})")
    bank = MemoryBank(bank_maps, foreground, params.grid)
    retrieved, scores = {}, {}
    for split, dataset in datasets.items():
        if split != "train":
            objects, boxes, _, _ = _queries(dataset, split, False, data_url)
        idx, val = [], []
        for start in range(0, len(objects), QUERY_BATCH):
            chunk = range(start, min(start + QUERY_BATCH, len(objects)))
            o = max(len(objects[i]) for i in chunk)
            obj = torch.full((len(chunk), o), -1, dtype=torch.long)  # -1: no object
            box = torch.zeros(len(chunk), o, 4)
            for row, i in enumerate(chunk):
                obj[row, :len(objects[i])], box[row, :len(boxes[i])] = objects[i], boxes[i]
            exclude = torch.tensor(list(chunk)) if split == "train" else None
            top, score = bank.retrieve(obj, box, params.m, exclude)
            idx.append(top)
            val.append(score)
        m = params.m
        retrieved[split] = torch.cat(idx) if idx else torch.zeros(0, m, dtype=torch.long)
        scores[split] = torch.cat(val) if val else torch.zeros(0, m)
    return RetrievalIndex(bank_maps, image_ids, retrieved, scores)


class WithBackgrounds(Dataset):
    """A split whose items carry their retrieved maps (`backgrounds`, `retrieved`)."""

    def __init__(self, base: SceneGraphDataset, bank: torch.Tensor,
                 retrieved: torch.Tensor) -> None:
        self.base, self.bank, self.retrieved = base, bank, retrieved
        self.flip = base.flip  # the sampler draws flips when the split flips

    def __len__(self) -> int:
        return len(self.base)

    def item(self, i: int, flip: bool = False, draw: int | None = None) -> dict[str, torch.Tensor]:
        out = self.base.item(i, flip, draw)
        maps = self.bank[self.retrieved[i]]  # [m, s, s]
        out["backgrounds"] = maps.flip(-1) if flip else maps
        out["retrieved"] = self.retrieved[i]
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.item(i)  # val / test: unflipped, the stored relations


class BachGANDataModule(ResumableDataModule):
    """`ResumableDataModule` over an ADE20K dataset with label maps, whose items carry their
    retrieved backgrounds (the index is built once, here)."""

    def __init__(self, dataset_url: str | Path, params: DataParams, batch_size: int,
                 retrieval: RetrievalParams, seed: int = 0) -> None:
        super().__init__(dataset_url, params, batch_size, seed=seed)
        self.foreground = foreground_classes(dataset_url, self.vocab)
        plain = {split: super(BachGANDataModule, self).dataset(split) for split in SPLITS}
        if not len(plain["train"]):
            raise DataError(f"{dataset_url}: the train split is empty; nothing to train on")
        self.index = retrieval_index(plain, self.foreground, retrieval, dataset_url)
        log.info("memory bank: %d label maps of %d px; %d maps retrieved per record",
                 *self.index.bank.shape[:2], retrieval.m)

    @property
    def segmap_size(self) -> int:
        return int(self.index.bank.shape[-1])

    def dataset(self, split: str) -> WithBackgrounds:
        return WithBackgrounds(super().dataset(split), self.index.bank,
                               self.index.retrieved[split])
