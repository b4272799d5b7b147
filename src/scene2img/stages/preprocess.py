"""Stage `preprocess`: a raw dataset -> processed shards + `vocab.json` + `manifest.json`.

Two passes. The annotation pass (this process) reads the source, assigns splits, filters and
builds the vocabulary; the pixel pass (a process pool) decodes each kept image once, resizes it,
resizes the masks and encodes the records. Everything is written into a temporary sibling
folder that is renamed into place at the end, so an interrupted run leaves no partial dataset.
The same inputs and params give byte-identical outputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from scene2img import __version__
from scene2img.config import PreprocessParams
from scene2img.data import filters
from scene2img.data.drops import DropCounts
from scene2img.data.encode import EncodeSettings, ImageSkipped, encode_scene
from scene2img.data.records import RawScene
from scene2img.data.shards import SCHEMA_VERSION, ShardWriter
from scene2img.data.sources import SOURCES
from scene2img.data.vocab import Vocab
from scene2img.errors import ConfigError, DataError

log = logging.getLogger(__name__)
MANIFEST_FILE = "manifest.json"
VOCAB_FILE = "vocab.json"


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
    if params.source not in SOURCES:
        raise ConfigError(f"preprocess.source={params.source!r}: choose one of {SOURCES}")
    if params.image_size not in (64, 128, 256):
        log.warning("image_size=%d is not one of the published sizes 64/128/256", params.image_size)
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: raw dataset folder not found; check --raw")
    drops = DropCounts()

    scenes, class_table, inputs = _read_source(raw_dir, params, drops)
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
        synthesize_relations=params.source != "vg",
        has_masks=params.source != "vg",
    )
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        counts, shard_sha, images_sha = _write_shards(scenes, vocab, settings, params, tmp,
                                                      drops, progress)
        if counts.get("train", 0) == 0:
            filters.require_nonempty([], drops, params.source)
        vocab.save(tmp / VOCAB_FILE)
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
            "files_sha256": {**shard_sha,
                             VOCAB_FILE: hashlib.sha256((tmp / VOCAB_FILE).read_bytes()).hexdigest()},
        }
        data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
        (tmp / MANIFEST_FILE).write_bytes(data)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %s: %s", out_dir, counts)
    return PreprocessResult(out_dir, params.source, counts, drops.as_dict(), _vocab_sizes(vocab),
                            hashlib.sha256(data).hexdigest())


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
# reading the source


def _read_source(
    raw_dir: Path, params: PreprocessParams, drops: DropCounts
) -> tuple[list[RawScene], dict[int, str], dict[str, str]]:
    """All scenes (annotation level), the fixed class table (COCO / ADE) and input hashes."""
    if params.source == "vg":
        from scene2img.data.sources.visual_genome import read_visual_genome

        scenes = list(read_visual_genome(raw_dir, drops))
        names = ["image_data.json", "objects.json", "attributes.json", "relationships.json",
                 "object_alias.txt", "relationship_alias.txt"]
        return scenes, {}, _hash_inputs(raw_dir, names)
    if params.source == "coco-stuff":
        return _read_coco_stuff(raw_dir, params, drops)
    from scene2img.data.sources.ade20k import find_object_info, load_object_info, read_ade20k

    root = raw_dir / "ADEChallengeData2016"
    info = find_object_info(raw_dir)
    table = load_object_info(info)
    scenes = []
    for split in ("training", "validation"):
        scenes += read_ade20k(raw_dir, split, params.ade20k.min_region_area, drops,
                              object_info=table)
    inputs = _hash_inputs(root, ["annotations/training", "annotations/validation"])
    inputs[info.name] = _sha256_file(info)
    return scenes, table, inputs


def _read_coco_stuff(
    raw_dir: Path, params: PreprocessParams, drops: DropCounts
) -> tuple[list[RawScene], dict[int, str], dict[str, str]]:
    from scene2img.data.sources import coco_stuff

    p = params.coco_stuff
    if p.form == "json":
        table: dict[int, str] = {}  # filled from the JSON files' categories
        scenes = []
        for split in ("train", "val"):
            scenes += coco_stuff.read_coco_stuff_json(raw_dir, split, p.include_other,
                                                      p.drop_crowd, drops, class_table=table)
        names = [f"annotations/{k}_{s}2017.json" for k in ("instances", "stuff")
                 for s in ("train", "val")]
        inputs = _hash_inputs(raw_dir, names)
    elif p.form == "labelmap":
        table = coco_stuff.load_labels(raw_dir / "labels.txt")
        if p.include_other:
            table[183] = "other"
        scenes = []
        for split in ("train", "val"):
            scenes += coco_stuff.read_coco_stuff_labelmap(raw_dir, split, table, drops,
                                                          p.include_other)
        inputs = _hash_inputs(raw_dir, ["labels.txt", "train_label", "train_inst", "val_label",
                                        "val_inst"])
    else:
        raise ConfigError(f"preprocess.coco_stuff.form={p.form!r}: choose 'json' or 'labelmap'")
    table.pop(0, None)  # 0 = unlabeled; index 0 is __image__
    if p.split_lists:
        _apply_split_lists(scenes, p.split_lists, drops)
    return scenes, table, inputs


def _apply_split_lists(scenes: list[RawScene], lists: dict[str, str], drops: DropCounts) -> None:
    """Keep only the images named by the lists (e.g. the 40K / 5K challenge lists)."""
    wanted: dict[str, str] = {}
    for split, path in lists.items():
        try:
            ids = Path(path).read_text().split()
        except FileNotFoundError:
            raise DataError(f"{path}: split list for {split!r} not found") from None
        wanted.update({i.lstrip("0") or "0": split for i in ids})
    unknown = set(wanted) - {s.image_id.lstrip("0") or "0" for s in scenes}
    drops.add("split file: ids not in the dataset", len(unknown))
    for s in scenes:
        if (s.image_id.lstrip("0") or "0") not in wanted:
            drops.add("image: not named by the split lists")
            s.split = None
    scenes[:] = [s for s in scenes if s.split is not None]


def _hash_inputs(root: Path, names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        path = root / name
        if path.is_file():
            out[name] = _sha256_file(path)
        elif path.is_dir():
            h = hashlib.sha256()
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                h.update(f"{f.relative_to(path)}\0{_sha256_file(f)}\n".encode())
            out[name + "/"] = h.hexdigest()
    return out


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    ordered = [s for split in filters.SPLITS for s in scenes if s.split == split]
    writers = {split: ShardWriter(out / split, params.records_per_shard)
               for split in filters.SPLITS}
    images_hash = hashlib.sha256()
    workers = params.workers or os.cpu_count() or 1
    bar = tqdm(total=len(ordered), desc=f"preprocess {params.source}", unit="img",
               disable=not progress)
    with _encoded(ordered, vocab, settings, workers) as results:
        for scene, (record, digest_or_reason, detail) in zip(ordered, results, strict=True):
            bar.update()
            if record is None:
                if params.strict:
                    raise DataError(f"{detail} (image {scene.image_id}); --strict stops here. "
                                    "Restore the file, or run without --strict to skip it.")
                log.warning("skipping image %s: %s", scene.image_id, detail)
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


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename `tmp` to `out`; an existing `out` is moved aside first and removed after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _params_dict(params: PreprocessParams) -> dict:
    import dataclasses

    d = dataclasses.asdict(params)
    # Only the active source's section matters for this dataset.
    key = {"vg": "vg", "coco-stuff": "coco_stuff", "ade20k": "ade20k"}[params.source]
    for other in ("vg", "coco_stuff", "ade20k"):
        if other != key:
            d.pop(other)
    d.pop("workers")  # does not change the output
    return d


def _vocab_sizes(vocab: Vocab) -> dict[str, int]:
    return {"objects": vocab.num_objects, "predicates": vocab.num_predicates,
            "attributes": vocab.num_attributes}
