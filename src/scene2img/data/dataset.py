"""Reading a processed dataset for training: a torch `Dataset` and a Lightning `DataModule`.

Records are read lazily with random access (local path or fsspec URL such as `s3://...`), and
padded to a fixed number of objects so batches stack. An item is a dict of tensors:

    image       [3, S, S]  float in [-1, 1]
    objects     [O]        long class indices (padding: 0), __image__ last among the valid ones
    boxes       [O, 4]     float normalised (x, y, w, h)
    masks       [O, M, M]  float {0, 1} in box coordinates (zeros where the source has none)
    attributes  [O, A]     float multi-hot
    obj_valid   [O]        bool
    triples     [T, 3]     long (subject, predicate, object); padding: 0 with triple_valid False
    triple_valid [T]       bool
    has_masks   []         bool
    index       []         long, position in the split

COCO-Stuff and ADE20K training graphs are drawn afresh, as sg2im's COCO dataset does at every load
(`data.resample_relations`): each draw of an image gets new random geometric triples, seeded by
(seed, draw, index), so a resumed run sees the same graphs (`training/sampling.py` passes the
epoch as the draw). Val and test keep the triples preprocessing stored.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from scene2img.config import DataParams
from scene2img.data.processed import load_vocab, read_manifest
from scene2img.data.relations import FLIP_PREDICATES, GEOMETRIC_PREDICATES, geometric_triples
from scene2img.data.shards import ProcessedRecord, ShardReader
from scene2img.data.sources import has_relations
from scene2img.data.vocab import IMAGE_OBJECT, IN_IMAGE, Vocab, check_graph
from scene2img.errors import DataError, SceneGraphError


class SceneGraphDataset(Dataset):
    """One split of a processed dataset, padded to `max_objects` objects."""

    def __init__(
        self,
        dataset_url: str | Path,  # processed dataset folder or URL
        split: str,  # train | val | test
        max_objects: int,  # pad to this many objects (__image__ included)
        flip: bool = False,  # random horizontal flip (boxes, masks, left/right predicates)
        vocab: Vocab | None = None,
        resample_relations: bool = False,  # geometric triples drawn afresh per draw (sg2im COCO)
        relation_seed: int = 0,  # with the draw and the index, seeds a resampled graph
    ) -> None:
        self.url = str(dataset_url).rstrip("/")
        self.split = split
        self.vocab = vocab or load_vocab(self.url)
        self.reader = ShardReader(f"{self.url}/{split}")
        self.max_objects = max_objects
        self.max_triples = 2 * max_objects
        self.flip = flip
        p2i = self.vocab.pred_name_to_idx
        self._flip_preds = {p2i[a]: p2i[b] for a, b in FLIP_PREDICATES.items()
                            if a in p2i and b in p2i}
        self.resample_relations = resample_relations
        self.relation_seed = relation_seed
        self._image_idx = self.vocab.object_name_to_idx.get(IMAGE_OBJECT)
        missing = [q for q in (IN_IMAGE, *GEOMETRIC_PREDICATES) if q not in p2i]
        if resample_relations and missing:
            raise DataError(f"{self.url}/vocab.json: resampling relations needs the geometric "
                            f"predicates, and {missing} are missing; is this a COCO-Stuff or "
                            "ADE20K dataset? Set data.resample_relations=false otherwise")

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Item `i`; flip and relation draw from torch's global generator (seeded per worker)."""
        flip = self.flip and bool(torch.rand(()) < 0.5)
        draw = int(torch.randint(2**31 - 1, ())) if self.resample_relations else None
        return self.item(i, flip, draw)

    def item(self, i: int, flip: bool = False, draw: int | None = None) -> dict[str, torch.Tensor]:
        """Item `i`, mirrored if `flip`; with a `draw` and `resample_relations`, its geometric
        relations drawn afresh from (relation_seed, draw, i) instead of the stored ones."""
        rec = self.reader[i]
        where = f"{self.url}/{self.split} record {i} (image {rec.image_id})"
        check_graph(rec.objects, rec.triples, self.vocab, self.max_objects, where)
        if self.resample_relations and draw is not None:
            rec = replace(rec, triples=self._resampled(rec, draw, i, where))
        if len(rec.triples) > self.max_triples:
            raise SceneGraphError(f"{where}: {len(rec.triples)} triples, at most "
                                  f"{self.max_triples} supported; raise data.max_objects")
        item = self._pad(rec, i)
        return self._flipped(item) if flip else item

    def _resampled(self, rec: ProcessedRecord, draw: int, i: int, where: str) -> np.ndarray:
        if rec.objects[-1] != self._image_idx:
            raise SceneGraphError(f"{where}: the last object is not {IMAGE_OBJECT}; "
                                  "re-run preprocess to rebuild the dataset")
        n = len(rec.objects) - 1
        masks = None if rec.masks is None else rec.masks[:n]
        rng = np.random.default_rng([self.relation_seed, draw, i])
        triples = geometric_triples(rec.boxes[:n], masks, rng, self.vocab.pred_name_to_idx)
        return np.asarray(triples, np.int64).reshape(-1, 3)

    def _pad(self, rec: ProcessedRecord, i: int) -> dict[str, torch.Tensor]:
        o, n, t = self.max_objects, len(rec.objects), len(rec.triples)
        m = rec.masks.shape[-1] if rec.masks is not None else 16
        objects = torch.zeros(o, dtype=torch.long)
        objects[:n] = torch.from_numpy(rec.objects)
        boxes = torch.zeros(o, 4)
        boxes[:n] = torch.from_numpy(rec.boxes)
        masks = torch.zeros(o, m, m)
        if rec.masks is not None:
            masks[:n] = torch.from_numpy(rec.masks.astype(np.float32))
        attributes = torch.zeros(o, self.vocab.num_attributes)
        for j, attrs in enumerate(rec.attributes):
            attributes[j, attrs] = 1.0
        triples = torch.zeros(self.max_triples, 3, dtype=torch.long)
        triples[:t] = torch.from_numpy(rec.triples)
        image = torch.from_numpy(rec.image.copy()).permute(2, 0, 1).float() / 127.5 - 1.0
        return {
            "image": image,
            "objects": objects,
            "boxes": boxes,
            "masks": masks,
            "attributes": attributes,
            "obj_valid": torch.arange(o) < n,
            "triples": triples,
            "triple_valid": torch.arange(self.max_triples) < t,
            "has_masks": torch.tensor(rec.masks is not None),
            "index": torch.tensor(i),
        }

    def _flipped(self, item: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        item = dict(item)
        item["image"] = item["image"].flip(-1)
        boxes = item["boxes"].clone()
        valid = item["obj_valid"]
        boxes[valid, 0] = 1.0 - boxes[valid, 0] - boxes[valid, 2]
        item["boxes"] = boxes
        item["masks"] = item["masks"].flip(-1)
        triples = item["triples"].clone()
        for a, b in self._flip_preds.items():
            triples[:, 1][item["triples"][:, 1] == a] = b
        item["triples"] = triples
        return item


class SceneGraphDataModule(pl.LightningDataModule):
    """Train / val / test loaders over a processed dataset (local folder or URL)."""

    def __init__(self, dataset_url: str | Path, params: DataParams, batch_size: int,
                 seed: int = 0) -> None:
        super().__init__()
        self.url = str(dataset_url)
        self.params = params
        self.batch_size = batch_size
        self.seed = seed
        self.vocab = load_vocab(self.url)
        self._source: str | None = None

    def dataset(self, split: str) -> SceneGraphDataset:
        return SceneGraphDataset(self.url, split, self.params.max_objects,
                                 flip=self.params.flip and split == "train", vocab=self.vocab,
                                 resample_relations=split == "train" and self.resamples(),
                                 relation_seed=self.seed)

    def resamples(self) -> bool:
        """Whether training draws fresh relations: configured, and the source's are geometric."""
        if not self.params.resample_relations:
            return False
        if self._source is None:
            self._source = str(read_manifest(self.url).get("source"))
        return not has_relations(self._source)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.dataset(split)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.params.num_workers,
            persistent_workers=self.params.num_workers > 0,
            # Full batches for training (batch norm), unless the split is smaller than one.
            drop_last=shuffle and len(dataset) >= self.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
