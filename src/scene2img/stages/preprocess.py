"""Stage `preprocess`: a raw dataset -> processed shards + `vocab.json` + `manifest.json`.

Two passes. The annotation pass (this process) reads the source, assigns splits, filters and
builds the vocabulary; the pixel pass (a process pool) decodes each kept image once, resizes it,
resizes the masks and encodes the records. Everything is written into a temporary sibling
folder that is renamed into place at the end (`files.atomic_dir`), so an interrupted run leaves
no partial dataset. The same inputs and params give byte-identical outputs.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from scene2img import __version__
from scene2img.config import PreprocessParams
from scene2img.data import filters
from scene2img.data.drops import DropCounts
from scene2img.data.encode import EncodeSettings, ImageSkipped, encode_scene
from scene2img.data.processed import (
    SCHEMA_VERSION,
    SPLITS,
    VOCAB_FILE,
    write_manifest,
    write_vocab,
)
from scene2img.data.records import RawScene
from scene2img.data.shards import ShardWriter
from scene2img.data.sources import (
    SOURCE_NAMES,
    check_source,
    has_masks,
    has_relations,
    params_section,
    read_source,
)
from scene2img.data.vocab import Vocab
from scene2img.errors import DataError
from scene2img.files import atomic_dir, printable

log = logging.getLogger(__name__)


@dataclass
class PreprocessResult:
    out_dir: Path
    source: str
    counts: dict[str, int]  # records per split
    drops: dict[str, int]  # dropped items by reason
    vocab_sizes: dict[str, int]
    manifest_sha256: str
    extra: dict = field(default_factory=dict)


def preprocess(
    raw_dir: Path,  # the raw dataset as it ships
    out_dir: Path,  # the processed dataset folder (replaced atomically)
    params: PreprocessParams,  # the `preprocess` section of params.yaml
    progress: bool = True,  # show a progress bar for the pixel pass
) -> PreprocessResult:
    """Preprocess one raw dataset into the processed-dataset format (see DESIGN.md)."""
    check_source(params.source)
    if params.image_size not in (64, 128, 256):
        log.warning("image_size=%d is not one of the published sizes 64/128/256", params.image_size)
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: raw dataset folder not found; check --raw")
    drops = DropCounts()

    source = read_source(raw_dir, params, drops)
    scenes, class_table, inputs = source.scenes, source.class_table, source.inputs_sha256
    filters.assign_splits(scenes, params.source, params, drops)
    if params.source == "vg":
        scenes, vocab = filters.filter_visual_genome(scenes, params, drops)
    elif params.source == "coco-stuff":
        scenes, vocab = filters.filter_coco_stuff(scenes, params, class_table, drops)
    else:
        scenes, vocab = filters.filter_ade20k(scenes, params, class_table, drops)
    filters.require_nonempty(scenes, drops, params.source)

    settings = EncodeSettings(
        image_size=params.image_size,
        mask_size=params.mask_size,
        image_quality=params.image_quality,
        seed=params.seed,
        synthesize_relations=not has_relations(params.source),
        has_masks=has_masks(params.source),
    )
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, "preprocess", replace=True) as tmp:
        counts, shard_sha, images_sha = _write_shards(scenes, vocab, settings, params, tmp,
                                                      drops, progress)
        if counts.get("train", 0) == 0:
            filters.require_nonempty([], drops, params.source)
        vocab_sha = write_vocab(tmp, vocab)
        inputs["images (kept, in order)"] = images_sha
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "scene2img_version": __version__,
            "source": params.source,
            "source_form": params.coco_stuff.form if params.source == "coco-stuff" else "native",
            "raw_inputs_sha256": inputs,
            "raw_dvc_hash": raw_dvc_hash(raw_dir),
            "params": _params_dict(params),
            "counts": counts,
            "dropped": drops.as_dict(),
            "vocab_sizes": _vocab_sizes(vocab),
            "files_sha256": {**shard_sha, VOCAB_FILE: vocab_sha},
        }
        manifest_sha = write_manifest(tmp, manifest)
    log.info("wrote %s: %s", out_dir, counts)
    return PreprocessResult(out_dir, params.source, counts, drops.as_dict(), _vocab_sizes(vocab),
                            manifest_sha)


def raw_dvc_hash(raw_dir: Path) -> str | None:
    """The DVC hash of the raw folder when DVC tracks it (`RAW.dvc` or a `dvc.lock` output)."""
    import yaml

    raw_dir = raw_dir.resolve()
    candidates = [raw_dir.parent / f"{raw_dir.name}.dvc"]
    candidates += [d / "dvc.lock" for d in raw_dir.parents]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        outs = data.get("outs", [])
        for stage in (data.get("stages") or {}).values():
            outs = outs + stage.get("outs", [])
        for out in outs:
            if (path.parent / out.get("path", "")).resolve() == raw_dir and out.get("md5"):
                return out["md5"]
    return None


# --------------------------------------------------------------------------------------------
# the pixel pass

_worker_state: tuple[Vocab, EncodeSettings] | None = None


def _init_worker(vocab: Vocab, settings: EncodeSettings) -> None:
    global _worker_state
    _worker_state = (vocab, settings)


def _encode_one(scene: RawScene) -> tuple[bytes | None, str, str]:
    """(record or None, image sha256 or skip reason, detail)."""
    assert _worker_state is not None
    try:
        record, digest = encode_scene(scene, *_worker_state)
        return record, digest, ""
    except ImageSkipped as skip:
        return None, skip.reason, str(skip)


def _write_shards(
    scenes: list[RawScene], vocab: Vocab, settings: EncodeSettings, params: PreprocessParams,
    out: Path, drops: DropCounts, progress: bool,
) -> tuple[dict[str, int], dict[str, str], str]:
    ordered = [s for split in SPLITS for s in scenes if s.split == split]
    writers = {split: ShardWriter(out / split, params.records_per_shard) for split in SPLITS}
    images_hash = hashlib.sha256()
    workers = params.workers or os.cpu_count() or 1
    bar = tqdm(total=len(ordered), desc=f"preprocess {params.source}", unit="img",
               disable=not progress)
    with _encoded(ordered, vocab, settings, workers) as results:
        for scene, (record, digest_or_reason, detail) in zip(ordered, results, strict=True):
            bar.update()
            if record is None:
                if params.strict:
                    raise DataError(f"{detail} (image {printable(scene.image_id)}); --strict "
                                    "stops here. Restore the file, or run without --strict to "
                                    "skip it.")
                log.warning("skipping image %s: %s", printable(scene.image_id), detail)
                drops.add(digest_or_reason)
                continue
            writers[scene.split].write(record)
            images_hash.update(f"{scene.image_id}\0{digest_or_reason}\n".encode())
    bar.close()
    counts, sha = {}, {}
    for split, writer in writers.items():
        counts[split] = len(writer.index)
        sha.update({f"{split}/{name}": digest for name, digest in writer.close().items()})
    return counts, sha, images_hash.hexdigest()


class _encoded:
    """Context manager yielding ordered encode results, in a process pool when workers > 1."""

    def __init__(self, scenes: list[RawScene], vocab: Vocab, settings: EncodeSettings,
                 workers: int) -> None:
        self.args = (scenes, vocab, settings)
        self.workers = min(workers, max(1, len(scenes)))
        self.pool = None

    def __enter__(self) -> Iterator[tuple[bytes | None, str, str]]:
        scenes, vocab, settings = self.args
        if self.workers <= 1:
            _init_worker(vocab, settings)
            return map(_encode_one, scenes)
        ctx = mp.get_context("fork")
        self.pool = ctx.Pool(self.workers, initializer=_init_worker, initargs=(vocab, settings))
        return self.pool.imap(_encode_one, scenes, chunksize=8)

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def _params_dict(params: PreprocessParams) -> dict:
    import dataclasses

    d = dataclasses.asdict(params)
    # Only the active source's section matters for this dataset.
    for other in SOURCE_NAMES:
        if other != params.source:
            d.pop(params_section(other))
    d.pop("workers")  # does not change the output
    return d


def _vocab_sizes(vocab: Vocab) -> dict[str, int]:
    return {"objects": vocab.num_objects, "predicates": vocab.num_predicates,
            "attributes": vocab.num_attributes}
