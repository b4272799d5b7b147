"""Pixel work for one scene: decode, resize and re-encode the image, resize the masks, and
build the graph (`__image__` object, triples). Runs in worker processes during preprocessing.
"""

from __future__ import annotations

import hashlib
import io
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from scene2img.data.records import RawScene
from scene2img.data.relations import geometric_triples, image_rng, in_image_triples
from scene2img.data.shards import encode_record
from scene2img.data.vocab import IMAGE_OBJECT, Vocab
from scene2img.files import printable


@dataclass(frozen=True)
class EncodeSettings:
    image_size: int
    mask_size: int
    image_quality: int
    seed: int
    synthesize_relations: bool  # COCO-Stuff / ADE20K: geometric relations as sg2im
    has_masks: bool


class ImageSkipped(Exception):
    """The scene's image cannot be used; `reason` is the drop-count key, the message names the
    file and says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


# Why an image is skipped: the drop-count keys (`image: ...`) recorded in the manifest.
SKIP_MISSING = "image: file missing"
SKIP_NOT_A_FILE = "image: not a regular file"
SKIP_CORRUPT = "image: file corrupt or unreadable"
SKIP_FORMAT = "image: not in a format PIL reads"
SKIP_BOMB = "image: too many pixels (decompression bomb)"
SKIP_NAME = "image: file name not UTF-8"


def load_resized(path: Path, size: int) -> tuple[np.ndarray, str]:
    """Decode once, in JPEG draft mode (DCT scaling to >= size), resize to size x size.

    Returns the [S, S, 3] uint8 image and the sha256 of the file's bytes (read once). Raises
    `ImageSkipped` for a file that is missing, not a regular file, unreadable, corrupt, in a
    format PIL does not read, or over PIL's pixel limit (`Image.MAX_IMAGE_PIXELS`: a
    decompression bomb, refused before anything is decoded).
    """
    where = printable(path)
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):  # a folder, or a pipe that would block the read
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise ImageSkipped(SKIP_NOT_A_FILE, f"{where}: {kind}, not an image file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ImageSkipped(SKIP_MISSING, f"{where}: image file not found") from None
    except OSError as exc:  # permissions, a link loop, an I/O error
        raise ImageSkipped(SKIP_CORRUPT, f"{where}: cannot read the file "
                           f"({exc.strerror or exc})") from None
    try:
        with warnings.catch_warnings():
            # PIL only warns between its limit and twice it, then decodes it all: refuse both
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as im:
                im.draft("RGB", (size, size))  # no-op for PNG; 2-8x less decoding for JPEG
                im = im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageSkipped(SKIP_BOMB, f"{where}: too many pixels ({exc})") from None
    except UnidentifiedImageError:  # its message shows the BytesIO object, not the file
        raise ImageSkipped(SKIP_FORMAT, f"{where}: not an image in a format PIL reads") from None
    except Exception as exc:  # decoders raise many types for damaged data: all mean corrupt
        raise ImageSkipped(SKIP_CORRUPT, f"{where}: {type(exc).__name__}: {exc}") from None
    return np.asarray(im), hashlib.sha256(raw).hexdigest()


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A boolean mask in box coordinates -> [size, size] uint8 in {0, 1}."""
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    return (np.asarray(im.resize((size, size), Image.Resampling.BILINEAR)) >= 128).astype(np.uint8)


def _box_mask(obj, scene: RawScene) -> np.ndarray:
    if obj.mask is not None:
        return obj.mask
    from scene2img.data.sources.coco_stuff import decode_segmentation

    full = decode_segmentation(obj.segmentation, scene.height, scene.width)
    x0, y0, w, h = obj.box
    c0, r0 = int(np.floor(x0)), int(np.floor(y0))
    c1, r1 = max(c0 + 1, int(np.ceil(x0 + w))), max(r0 + 1, int(np.ceil(y0 + h)))
    return full[r0:r1, c0:c1]


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a name read from disk keeps non-UTF-8 bytes as surrogates
        return False
    return True


def encode_scene(scene: RawScene, vocab: Vocab, settings: EncodeSettings) -> tuple[bytes, str]:
    """The shard record for one scene and the sha256 of its raw image file.

    Raises `ImageSkipped` for an image file that cannot be used (see `load_resized`), or whose
    name is not UTF-8 (the record's id is text).
    """
    if not _is_utf8(scene.image_id) or not _is_utf8(str(scene.image_path)):
        raise ImageSkipped(SKIP_NAME, f"{printable(scene.image_path)}: the file name is not "
                           "UTF-8 (shown with \\x escapes); rename the file")
    image, digest = load_resized(scene.image_path, settings.image_size)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=settings.image_quality)

    obj_idx, attr_idx = vocab.object_name_to_idx, vocab.attribute_name_to_idx
    pred_idx = vocab.pred_name_to_idx
    w, h = float(scene.width), float(scene.height)
    boxes = np.array([[o.box[0] / w, o.box[1] / h, o.box[2] / w, o.box[3] / h]
                      for o in scene.objects], np.float32).reshape(-1, 4)
    masks = None
    if settings.has_masks:
        masks = np.stack([resize_mask(_box_mask(o, scene), settings.mask_size)
                          for o in scene.objects])

    if settings.synthesize_relations:  # val/test keep this draw; training draws afresh
        triples = geometric_triples(boxes, masks, image_rng(settings.seed, scene.image_id),
                                    pred_idx)
    else:
        triples = [(r.subject, pred_idx[r.predicate], r.object) for r in scene.relationships]
        triples += in_image_triples(len(scene.objects), pred_idx)

    # The __image__ object: whole-image box and mask, last, as sg2im.
    objects = [obj_idx[o.name] for o in scene.objects] + [obj_idx[IMAGE_OBJECT]]
    boxes = np.concatenate([boxes, np.array([[0, 0, 1, 1]], np.float32)])
    attributes = [[attr_idx[a] for a in o.attributes] for o in scene.objects] + [[]]
    if masks is not None:
        full = np.ones((1, settings.mask_size, settings.mask_size), np.uint8)
        masks = np.concatenate([masks, full])
    record = encode_record(scene.image_id, scene.width, scene.height, objects, boxes,
                           attributes, masks, triples, buf.getvalue(), segmap=scene.segmap)
    return record, digest
