"""The processed-dataset contract: what a processed dataset holds, under which names, and how its
top-level files are read and written.

A processed dataset is one folder, local or an fsspec URL such as `s3://bucket/prefix`:

    vocab.json       the sg2im vocabulary (`Vocab.to_json`: object 0 `__image__`, predicate 0
                     `__in_image__`)
    manifest.json    schema version, source format, the raw inputs' hashes, the params used,
                     records per split, what each filter dropped and why, vocabulary sizes, and
                     the sha256 of every other file; its own sha256 is the dataset's identity
                     (lineage tags, evaluation protocols)
    train/ val/ test/  one split each: shards and `index.json` (`scene2img.data.shards`)

Readers take a local path or a URL; writers take the local folder being built (inside
`scene2img.files.atomic_dir`, so a dataset appears whole or not at all). The bytes written are a
function of the content only: the same inputs give the same files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import fsspec

from scene2img.data.vocab import Vocab
from scene2img.errors import DataError
from scene2img.files import interrupted_swap

SCHEMA_VERSION = 1  # of the whole layout: the manifest's and every split index's `schema_version`
VOCAB_FILE = "vocab.json"
MANIFEST_FILE = "manifest.json"
SPLITS = ("train", "val", "test")


def dataset_path(dataset_url: str | Path, *names: str) -> str:
    """`dataset_url/name/...` for a local folder or a URL (no trailing slash doubled)."""
    return "/".join([str(dataset_url).rstrip("/"), *names])


def split_url(dataset_url: str | Path, split: str) -> str:
    """The folder of one split (`train`, `val` or `test`), as `ShardReader` takes it."""
    if split not in SPLITS:
        raise DataError(f"split {split!r}: a processed dataset has the splits {', '.join(SPLITS)}")
    return dataset_path(dataset_url, split)


# --------------------------------------------------------------------------------------------
# reading


def _read(dataset_url: str | Path, name: str) -> tuple[str, bytes]:
    url = dataset_path(dataset_url, name)
    try:
        with fsspec.open(url, "rb") as f:
            return url, f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        old = None if "://" in str(dataset_url) else interrupted_swap(dataset_url)
        if old is not None:
            raise DataError(f"{dataset_url}: missing; a run that replaced it was killed and left "
                            f"the dataset in {old}: run the command that writes it (preprocess, "
                            "ingest) again, which first puts it back") from None
        raise DataError(f"{url}: not found; is this a processed dataset folder (run "
                        "`scene2img preprocess`)?") from None


def _read_object(dataset_url: str | Path, name: str) -> tuple[str, dict]:
    """A top-level JSON file that holds an object: (its URL, the object)."""
    url, data = _read(dataset_url, name)
    try:
        obj = json.loads(data)
    except json.JSONDecodeError as exc:
        raise DataError(f"{url}: malformed JSON at line {exc.lineno}, column {exc.colno}: "
                        f"{exc.msg}; the file is truncated or corrupt, re-run preprocess") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{url}: not UTF-8 text at byte {exc.start}; re-run preprocess") from None
    if not isinstance(obj, dict):
        raise DataError(f"{url}: expected a JSON object, got {type(obj).__name__}; "
                        "re-run preprocess")
    return url, obj


def read_manifest(dataset_url: str | Path) -> dict:
    """`manifest.json` of a processed dataset, as a dict."""
    return _read_object(dataset_url, MANIFEST_FILE)[1]


def manifest_sha256(dataset_url: str | Path) -> str:
    """sha256 of a processed dataset's `manifest.json`: the dataset's identity in lineage tags
    and evaluation protocols."""
    return hashlib.sha256(_read(dataset_url, MANIFEST_FILE)[1]).hexdigest()


def load_vocab(dataset_url: str | Path) -> Vocab:
    """`vocab.json` of a processed dataset."""
    url, data = _read_object(dataset_url, VOCAB_FILE)
    return Vocab.from_json(data, where=url)


# --------------------------------------------------------------------------------------------
# writing (into the folder being built)


def write_vocab(folder: Path, vocab: Vocab) -> str:
    """Write `folder/vocab.json`; returns its sha256 (for the manifest)."""
    return _write_json(Path(folder) / VOCAB_FILE, vocab.to_json())


def write_manifest(folder: Path, manifest: dict) -> str:
    """Write `folder/manifest.json`; returns its sha256, which `manifest_sha256` gives for the
    finished dataset."""
    return _write_json(Path(folder) / MANIFEST_FILE, manifest)


def _write_json(path: Path, obj: dict) -> str:
    data = (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()  # sorted: stable bytes
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
