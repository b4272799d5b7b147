"""One split of a processed dataset: shards of records, with an index for random access (the
dataset's top level, manifest and vocabulary: `scene2img.data.processed`).

A split folder holds `shard-NNNNN.bin` files and `index.json`. A record is

    uint32 little-endian header length | header (JSON, utf-8) | image (JPEG) | masks (uint8)
    | segmentation map (uint8, optional)

where the header carries the image id, the original size, the objects (class indices, boxes as
normalised `x, y, w, h`, attribute indices), the triples and the byte lengths that follow.
Masks are `[O, M, M]` uint8 in {0, 1}, each in its own box's coordinates. The `__image__` object
is the last object of every record, with its `__in_image__` triples, as in sg2im. Sources with
full label maps (ADE20K, `preprocess.ade20k.segmap_size` > 0) add the whole image's map,
`[S, S]` uint8 object indices of the vocabulary (nearest-neighbour resized; 0 = unlabeled, not
`__image__`): BachGAN's memory bank. Its header keys (`segmap_size`, `segmap_len`) are written
only when it is there, so records without one are as before.

`index.json` lists the shards and, per record, `[shard, offset, length]`, so a reader needs one
ranged read per record, from a local path or any fsspec URL (`s3://...`).
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
from PIL import Image

from scene2img.data.processed import SCHEMA_VERSION
from scene2img.errors import DataError

INDEX_FILE = "index.json"
_HEADER = struct.Struct("<I")


@dataclass
class ProcessedRecord:
    """One decoded record. Arrays are numpy; the image is decoded on access."""

    image_id: str
    width: int  # of the original image
    height: int
    objects: np.ndarray  # [O] int64 class indices, __image__ last
    boxes: np.ndarray  # [O, 4] float32 normalised (x, y, w, h)
    attributes: list[list[int]]  # per object, attribute indices
    masks: np.ndarray | None  # [O, M, M] uint8 {0, 1}, or None (no masks in the source)
    triples: np.ndarray  # [T, 3] int64 (subject position, predicate index, object position)
    image_bytes: bytes  # JPEG
    segmap: np.ndarray | None = None  # [S, S] uint8 full label map (0 = unlabeled), or None

    @property
    def image(self) -> np.ndarray:
        """[H, W, 3] uint8."""
        with Image.open(io.BytesIO(self.image_bytes)) as im:
            return np.asarray(im.convert("RGB"))


def encode_record(
    image_id: str,
    width: int,
    height: int,
    objects: list[int],
    boxes: np.ndarray,
    attributes: list[list[int]],
    masks: np.ndarray | None,
    triples: list[tuple[int, int, int]],
    image_bytes: bytes,
    segmap: np.ndarray | None = None,  # [S, S] uint8 full label map
) -> bytes:
    mask_bytes = b"" if masks is None else np.ascontiguousarray(masks, dtype=np.uint8).tobytes()
    seg_bytes = b""
    if segmap is not None:
        if segmap.ndim != 2 or segmap.shape[0] != segmap.shape[1]:
            raise DataError(f"{image_id}: segmentation map of shape {segmap.shape}, expected "
                            "[S, S]")
        seg_bytes = np.ascontiguousarray(segmap, dtype=np.uint8).tobytes()
    header = {
        "image_id": image_id,
        "width": width,
        "height": height,
        "objects": [int(o) for o in objects],
        # float32 values written with enough digits to round-trip exactly.
        "boxes": [[float(np.float32(v)) for v in b] for b in np.asarray(boxes, np.float32)],
        "attributes": [[int(a) for a in attrs] for attrs in attributes],
        "triples": [[int(s), int(p), int(o)] for s, p, o in triples],
        "mask_size": 0 if masks is None else int(masks.shape[-1]),
        "image_len": len(image_bytes),
        "mask_len": len(mask_bytes),
    }
    if segmap is not None:
        header.update(segmap_size=int(segmap.shape[0]), segmap_len=len(seg_bytes))
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    return _HEADER.pack(len(head)) + head + image_bytes + mask_bytes + seg_bytes


def decode_record(buf: bytes, where: str = "record") -> ProcessedRecord:
    try:
        (n,) = _HEADER.unpack_from(buf, 0)
        h = json.loads(buf[4 : 4 + n])
        start = 4 + n
        image = buf[start : start + h["image_len"]]
        start_mask = start + h["image_len"]
        mask_buf = buf[start_mask : start_mask + h["mask_len"]]
        start_seg = start_mask + h["mask_len"]
        seg_buf = buf[start_seg : start_seg + h.get("segmap_len", 0)]
        if (len(image), len(mask_buf), len(seg_buf)) != (h["image_len"], h["mask_len"],
                                                         h.get("segmap_len", 0)):
            raise ValueError("record is truncated")
        num = len(h["objects"])
        m = h["mask_size"]
        masks = np.frombuffer(mask_buf, np.uint8).reshape(num, m, m) if m else None
        s = h.get("segmap_size", 0)
        segmap = np.frombuffer(seg_buf, np.uint8).reshape(s, s) if s else None
        return ProcessedRecord(
            image_id=h["image_id"],
            width=h["width"],
            height=h["height"],
            objects=np.asarray(h["objects"], np.int64),
            boxes=np.asarray(h["boxes"], np.float32).reshape(num, 4),
            attributes=h["attributes"],
            masks=masks,
            triples=np.asarray(h["triples"], np.int64).reshape(-1, 3),
            image_bytes=image,
            segmap=segmap,
        )
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{where}: corrupt record ({exc}); re-run preprocess") from None


class ShardWriter:
    """Writes one split's records into shards of `records_per_shard`, then `index.json`.

    Also hashes each shard (sha256) for the manifest. Writes go to `folder`, which the caller
    creates inside a temporary dataset folder that is renamed into place at the end.
    """

    def __init__(self, folder: Path, records_per_shard: int) -> None:
        if records_per_shard < 1:
            raise DataError(f"records_per_shard must be >= 1, got {records_per_shard}")
        self.folder = folder
        self.records_per_shard = records_per_shard
        self.shards: list[str] = []
        self.sha256: dict[str, str] = {}
        self.index: list[list[Any]] = []
        self._file: io.BufferedWriter | None = None
        self._hash: Any = None
        self._offset = 0
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, record: bytes) -> None:
        if self._file is None or len(self.index) % self.records_per_shard == 0:
            self._roll()
        assert self._file is not None
        self._file.write(record)
        self._hash.update(record)
        self.index.append([len(self.shards) - 1, self._offset, len(record)])
        self._offset += len(record)

    def _roll(self) -> None:
        self._close_shard()
        name = f"shard-{len(self.shards):05d}.bin"
        self.shards.append(name)
        self._file = open(self.folder / name, "wb")  # noqa: SIM115 (closed in _close_shard)
        self._hash = hashlib.sha256()
        self._offset = 0

    def _close_shard(self) -> None:
        if self._file is not None:
            self._file.close()
            self.sha256[self.shards[-1]] = self._hash.hexdigest()
            self._file = None

    def close(self) -> dict[str, str]:
        """Finish the last shard and write the index; returns `{shard: sha256}`."""
        self._close_shard()
        index = {"schema_version": SCHEMA_VERSION, "shards": self.shards, "records": self.index}
        data = json.dumps(index, separators=(",", ":")).encode()
        (self.folder / INDEX_FILE).write_bytes(data)
        self.sha256[INDEX_FILE] = hashlib.sha256(data).hexdigest()
        return self.sha256


class ShardReader:
    """Random access to one split's records, from a local folder or an fsspec URL.

    Opens files lazily (also after pickling into DataLoader workers): only the index is read
    up front.
    """

    def __init__(self, split_url: str | Path) -> None:
        self.url = str(split_url).rstrip("/")
        self._fs, self._root = fsspec.core.url_to_fs(self.url)
        index_path = f"{self._root}/{INDEX_FILE}"
        try:
            raw = self._fs.cat_file(index_path)
        except FileNotFoundError:
            raise DataError(
                f"{self.url}/{INDEX_FILE}: not found; is this a split folder of a processed "
                "dataset (run `scene2img preprocess`)?"
            ) from None
        try:
            index = json.loads(raw)
            self.shards: list[str] = index["shards"]
            self.records: list[list[int]] = index["records"]
        except (ValueError, KeyError) as exc:
            raise DataError(f"{self.url}/{INDEX_FILE}: corrupt index ({exc})") from None
        if index.get("schema_version") != SCHEMA_VERSION:
            raise DataError(
                f"{self.url}: schema version {index.get('schema_version')}, this code reads "
                f"{SCHEMA_VERSION}; re-run preprocess"
            )

    def __len__(self) -> int:
        return len(self.records)

    def read_bytes(self, i: int) -> bytes:
        shard, offset, length = self.records[i]
        path = f"{self._root}/{self.shards[shard]}"
        buf = self._fs.cat_file(path, start=offset, end=offset + length)
        if len(buf) != length:
            raise DataError(f"{self.url}/{self.shards[shard]}: truncated at record {i}")
        return buf

    def __getitem__(self, i: int) -> ProcessedRecord:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return decode_record(self.read_bytes(i), where=f"{self.url} record {i}")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_fs")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._fs, _ = fsspec.core.url_to_fs(self.url)
