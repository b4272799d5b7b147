"""Super-resolution pairs: high-resolution crops of the dataset's raw images and their bicubic
downscales (the "BI" degradation of the RDN paper).

The processed shards hold images at 128 px, too small to learn 512 px detail from, so the upscaler
reads the *raw* images: a processed split names its images (record `image_id`s), and the source
reader (`data/sources/`) says where each raw image lies. Training items are random HR crops
(`patch * scale` pixels, the paper's 32 px LR patches at its defaults) with a random horizontal
flip and 90-degree rotation, the paper's augmentation; evaluation items are centre crops.

Which crop and rotation an item gets is a pure function of (seed, epoch, index), so the stream
resumes exactly with `training.sampling.ResumableBatchSampler` (which draws the flips).

LR images are bicubic downscales with antialiasing (torch's equivalent of MATLAB's `imresize`,
which the paper used) rounded to 8 bits, as the paper's LR files are stored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from scene2img.config import PreprocessParams
from scene2img.data.drops import DropCounts
from scene2img.data.encode import ImageSkipped, load_resized
from scene2img.data.processed import split_url
from scene2img.data.shards import ShardReader
from scene2img.data.sources import read_source
from scene2img.errors import DataError

__all__ = ["PairedCrops", "SuperResDataset", "bicubic_downscale", "load_rgb", "nearest_upscale",
           "raw_resized",
           "bicubic_upscale", "raw_image_paths", "shave", "split_image_ids"]


# --------------------------------------------------------------------------------------------
# where the raw images are


def split_image_ids(dataset_url: str | Path, split: str) -> list[str]:
    """The image ids of one split of a processed dataset, in record order."""
    reader = ShardReader(split_url(dataset_url, split))
    return [reader[i].image_id for i in range(len(reader))]


def raw_image_paths(
    raw_dir: str | Path,  # the raw dataset the processed one was made from
    params: PreprocessParams,  # its `source` (and source options) say how to read it
    image_ids: list[str],  # e.g. `split_image_ids(processed, "train")`
) -> list[Path]:
    """The raw image file of each id, through the source reader; a `DataError` if one is not in
    the raw dataset (the processed dataset was made from another one)."""
    scenes = read_source(Path(raw_dir), params, DropCounts()).scenes
    where = {s.image_id: Path(s.image_path) for s in scenes}
    missing = [i for i in image_ids if i not in where]
    if missing:
        raise DataError(f"{raw_dir}: {len(missing)} of {len(image_ids)} images of the processed "
                        f"dataset are not in this raw {params.source} dataset (e.g. image "
                        f"{missing[0]!r}); pass the raw folder it was preprocessed from")
    return [where[i] for i in image_ids]


def raw_resized(path: Path, side: int) -> torch.Tensor:
    """A raw image resized to `side` x `side` as preprocess resizes it to `image_size`
    (`data.encode.load_resized`): the real image of a layout at another size, [3, side, side]
    uint8; a `DataError` naming the file if it is no longer readable."""
    try:
        pixels = load_resized(path, side)[0]  # [side, side, 3] uint8
    except ImageSkipped as exc:
        raise DataError(f"{exc}; the raw dataset changed since preprocessing") from None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


# --------------------------------------------------------------------------------------------
# images and degradations (tensors in [0, 1])


def load_rgb(path: Path) -> torch.Tensor:
    """An image file as [3, H, W] float32 in [0, 1]; a `DataError` naming it if unreadable."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{path}: raw image not found; is the raw dataset complete?") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable image ({exc}); replace or remove it and "
                        "preprocess again") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)


def bicubic_downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """[..., 3, H, W] -> [..., 3, H/s, W/s]: antialiased bicubic, rounded to 8 bits."""
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}")
    x = hr.reshape(-1, *hr.shape[-3:])
    lr = F.interpolate(x, size=(h // scale, w // scale), mode="bicubic", antialias=True,
                       align_corners=False)
    return lr.clamp(0, 1).mul(255).round().div(255).reshape(*hr.shape[:-2], h // scale, w // scale)


def bicubic_upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """[N, 3, h, w] -> [N, 3, s*h, s*w]: the bicubic baseline, clamped to [0, 1]."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


def shave(x: torch.Tensor, border: int) -> torch.Tensor:
    """[..., H, W] without `border` pixels on each side: SR metrics leave out the border (as
    RDN's evaluation shaves `scale` pixels)."""
    return x[..., border:x.shape[-2] - border, border:x.shape[-1] - border]


def nearest_upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """[N, 3, h, w] -> [N, 3, s*h, s*w]: pixel replication (the weakest baseline)."""
    return F.interpolate(lr, scale_factor=scale, mode="nearest")


# --------------------------------------------------------------------------------------------
# the dataset


class SuperResDataset(Dataset):
    """(LR, HR) pairs from raw image files.

    Training: indexed by the sampler's `(index, flip, epoch)`, a random crop of `patch * scale`
    pixels, flipped and rotated. Evaluation: indexed by `index`, the centre crop of
    `eval_size` pixels. Items are `{"lr": [3, h, w], "hr": [3, s*h, s*w]}`.
    """

    def __init__(
        self,
        paths: list[Path],  # raw image files
        scale: int,  # 2 | 4
        patch: int,  # training: LR patch side (HR crop: patch * scale)
        eval_size: int,  # evaluation: HR centre-crop side (a multiple of scale)
        seed: int = 0,
        augment: bool = True,  # training: random 90-degree rotations (flips: the sampler)
    ) -> None:
        if eval_size % scale:
            raise ValueError(f"eval_size={eval_size} is not a multiple of the scale {scale}")
        self.paths, self.scale, self.patch, self.eval_size = list(paths), scale, patch, eval_size
        self.seed, self.augment = seed, augment

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, index: int, side: int) -> torch.Tensor:
        img = load_rgb(self.paths[index])
        h, w = img.shape[-2:]
        if min(h, w) < side:
            raise DataError(f"{self.paths[index]}: {w}x{h} px, smaller than the {side} px crop "
                            "the upscaler needs; lower train_upscaler.patch / eval_size")
        return img

    def __getitem__(self, key: int | tuple[int, bool, int]) -> dict[str, torch.Tensor]:
        if isinstance(key, tuple):
            return self.train_item(*key)
        side = self.eval_size
        img = self._load(key, side)
        h, w = img.shape[-2:]
        top, left = (h - side) // 2, (w - side) // 2
        return self._pair(img[:, top:top + side, left:left + side])

    def train_item(self, index: int, flip: bool, epoch: int) -> dict[str, torch.Tensor]:
        """A random HR crop of image `index`, drawn from (seed, epoch, index) only."""
        side = self.patch * self.scale
        img = self._load(index, side)
        h, w = img.shape[-2:]
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 1_000_003 + index)
        top, left, rot = (int(torch.randint(n, (1,), generator=gen))
                          for n in (h - side + 1, w - side + 1, 4))
        hr = img[:, top:top + side, left:left + side]
        if flip:
            hr = hr.flip(-1)
        if self.augment and rot:
            hr = hr.rot90(rot, dims=(-2, -1))
        return self._pair(hr.contiguous())

    def _pair(self, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"lr": bicubic_downscale(hr, self.scale), "hr": hr}


class PairedCrops:
    """Aligned (LR, HR) images given as tensors, e.g. generated images and the real images of
    the same layouts: `batch(step)` draws aligned random crops (LR `patch`, HR `patch * scale`),
    flips and 90-degree rotations from (seed, step) alone; `centre()` gives the centre crops
    (HR `eval_size`) for scoring. Pixels are uint8 in, [0, 1] floats out."""

    def __init__(
        self,
        lr: torch.Tensor,  # [N, 3, h, w] uint8
        hr: torch.Tensor,  # [N, 3, s*h, s*w] uint8
        scale: int,
        patch: int,  # LR crop side
        seed: int = 0,
    ) -> None:
        if lr.shape[0] != hr.shape[0] or hr.shape[-2:] != tuple(scale * n for n in lr.shape[-2:]):
            raise ValueError(f"LR {list(lr.shape)} and HR {list(hr.shape)} are not x{scale} pairs")
        if min(lr.shape[-2:]) < patch:
            raise DataError(f"{lr.shape[-1]} px images are smaller than the {patch} px patch")
        self.lr, self.hr, self.scale, self.patch, self.seed = lr, hr, scale, patch, seed

    def __len__(self) -> int:
        return len(self.lr)

    def batch(self, step: int, size: int) -> dict[str, torch.Tensor]:
        """`size` random aligned crops: {"lr": [B, 3, p, p], "hr": [B, 3, s*p, s*p]}."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        h, w = self.lr.shape[-2:]
        p, s = self.patch, self.scale
        lrs, hrs = [], []
        for _ in range(size):
            i, top, left, flip, rot = (int(torch.randint(n, (1,), generator=gen))
                                       for n in (len(self), h - p + 1, w - p + 1, 2, 4))
            lr = self.lr[i, :, top:top + p, left:left + p]
            hr = self.hr[i, :, s * top:s * (top + p), s * left:s * (left + p)]
            if flip:
                lr, hr = lr.flip(-1), hr.flip(-1)
            lrs.append(lr.rot90(rot, dims=(-2, -1)))
            hrs.append(hr.rot90(rot, dims=(-2, -1)))
        return {"lr": torch.stack(lrs).float() / 255, "hr": torch.stack(hrs).float() / 255}

    def centre(self, eval_size: int, batch_size: int) -> list[dict[str, torch.Tensor]]:
        """The centre crops (HR `eval_size`, LR `eval_size / scale`) in batches."""
        side = min(eval_size // self.scale, *self.lr.shape[-2:])
        h, w = self.lr.shape[-2:]
        top, left, s = (h - side) // 2, (w - side) // 2, self.scale
        lr = self.lr[:, :, top:top + side, left:left + side]
        hr = self.hr[:, :, s * top:s * (top + side), s * left:s * (left + side)]
        return [{"lr": lr[k:k + batch_size].float() / 255, "hr": hr[k:k + batch_size].float() / 255}
                for k in range(0, len(self), batch_size)]
