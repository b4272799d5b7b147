"""Stage `ingest`: the raw dataset at a named data version -> a local folder.

Two sources (`pipeline.ingest.source`):

- `dvc`: a DVC-tracked folder of a git repository (the data registry) at a git revision, read
  through `dvc.api.DVCFileSystem` from the repo's DVC remote (on the cluster: its S3). The data
  version is the revision resolved to a commit plus the folder's DVC hash, so a pipeline run names
  exactly which bytes it used.
- `toyworld`: the synthetic toy world, generated from the `toyworld` params (offline demo). Its
  data version is the hash of those params: the same params give the same bytes.

The folder is written under a temporary sibling name and renamed into place (`files.atomic_dir`);
`ingest.json` beside it (not inside: the raw folder stays exactly as tracked) records the version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from scene2img.config import IngestParams, ToyworldParams
from scene2img.data.sources import check_source
from scene2img.errors import ConfigError, DataError
from scene2img.files import atomic_dir, atomic_write_json, require_new_dir

log = logging.getLogger(__name__)
SOURCES = ("toyworld", "dvc")


@dataclass
class IngestResult:
    out_dir: Path
    source: str  # toyworld | dvc
    format: str  # vg | coco-stuff | ade20k
    data_version: str  # dvc: "<commit>:<path>@<dvc md5>"; toyworld: "toyworld:<params sha256>"
    rev: str | None  # dvc: the commit the revision resolved to
    dvc_hash: str | None  # dvc: the tracked folder's hash (md5 of its .dir listing)
    files: int

    def metadata(self) -> dict[str, str | int | None]:
        """What the pipeline records on its Dataset artifact (lineage)."""
        return {"data_version": self.data_version, "source": self.source, "format": self.format,
                "rev": self.rev, "dvc_hash": self.dvc_hash, "files": self.files}


def ingest(
    out_dir: Path,  # the raw dataset folder to write (must not exist or be empty)
    params: IngestParams,  # the `pipeline.ingest` section of params.yaml
    fmt: str,  # the raw format: vg | coco-stuff | ade20k (`preprocess.source`)
    toyworld: ToyworldParams | None = None,  # the `toyworld` section (source toyworld)
) -> IngestResult:
    """Fetch (dvc) or generate (toyworld) the raw dataset and say which version it is."""
    if params.source not in SOURCES:
        raise ConfigError(f"pipeline.ingest.source={params.source!r}: choose one of {SOURCES}")
    check_source(fmt)  # the raw format is `preprocess.source`
    out_dir = Path(out_dir)
    require_new_dir(out_dir, "ingest")
    if params.source == "toyworld":
        if toyworld is None:
            raise ConfigError("pipeline.ingest.source=toyworld needs the `toyworld` params")
        result = _generate(out_dir, fmt, toyworld)
    else:
        result = _fetch(out_dir, params, fmt)
    atomic_write_json(out_dir.parent / f"{out_dir.name}.ingest.json",
                      dataclasses.asdict(result) | {"out_dir": str(out_dir)})
    log.info("ingested %s (%s, %d files)", result.data_version, result.format, result.files)
    return result


def _generate(out_dir: Path, fmt: str, toyworld: ToyworldParams) -> IngestResult:
    from scene2img.data.toyworld import generate_toyworld

    generate_toyworld(fmt, out_dir, toyworld)
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(toyworld), sort_keys=True).encode())
    return IngestResult(out_dir, "toyworld", fmt, f"toyworld:{digest.hexdigest()}",
                        rev=None, dvc_hash=None, files=_count_files(out_dir))


def _fetch(out_dir: Path, params: IngestParams, fmt: str) -> IngestResult:
    from dvc.api import DVCFileSystem

    if not params.repo:
        raise ConfigError("pipeline.ingest.source=dvc needs pipeline.ingest.repo: the git URL of "
                          "the repository that tracks the raw dataset")
    path = params.path.strip("/")
    try:
        fs = DVCFileSystem(params.repo, rev=params.rev, remote=params.remote)
        scm = fs.repo.scm
        commit = scm.resolve_rev(params.rev) if params.rev else scm.get_rev()
        info = fs.info(path)
    except FileNotFoundError:
        raise DataError(f"{params.repo}@{params.rev or 'HEAD'}: {path!r} is not tracked there; "
                        "check pipeline.ingest.path and .rev") from None
    except Exception as exc:  # dvc/scmrepo raise many types: name the repo and revision
        raise DataError(f"cannot open the DVC repo {params.repo} at {params.rev or 'HEAD'}: "
                        f"{type(exc).__name__}: {exc}") from None
    if info.get("type") != "directory":
        raise DataError(f"{params.repo}@{commit}: {path!r} is a file; ingest expects the raw "
                        "dataset's folder")
    dvc_info = info.get("dvc_info") or {}
    dvc_hash = dvc_info.get("md5") or dvc_info.get("etag")
    with atomic_dir(out_dir, "ingest") as tmp:
        try:
            fs.get(f"{path}/", f"{tmp}/", recursive=True)  # the contents, into tmp
        except Exception as exc:
            raise DataError(f"fetching {path!r} of {params.repo}@{commit} from the DVC remote "
                            f"failed: {type(exc).__name__}: {exc}. Check the remote's "
                            "credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / "
                            "AWS_ENDPOINT_URL).") from None
    return IngestResult(out_dir, "dvc", fmt, f"{commit}:{path}@{dvc_hash}",
                        rev=commit, dvc_hash=dvc_hash, files=_count_files(out_dir))


def _count_files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())
