"""Typed parameters, loaded from `params.yaml` plus overrides.

`params.yaml` is the one configuration: DVC tracks it as params, the CLI and the KFP pipeline
read their defaults from it. Each stage has its own section and its own dataclass here; a value is
defined once (in `params.yaml`), and the dataclass only gives its type. Unknown keys and wrongly
typed values are errors that name the key.

Overrides are `dotted.key=value` strings (YAML values), applied in order after an optional
experiment file (`configs/experiments/NAME.yaml`, a small override of the defaults).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from scene2img.errors import ConfigError, ParamNotGivenError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PARAMS = PROJECT_ROOT / "params.yaml"
EXPERIMENTS_DIR = PROJECT_ROOT / "configs" / "experiments"


# --------------------------------------------------------------------------------------------
# toyworld (synthetic raw data) and preprocess


@dataclass
class ToyworldParams:
    images: int
    width: int
    height: int
    val_fraction: float
    test_fraction: float
    seed: int


@dataclass
class VGParams:
    """Visual Genome 1.4 filtering: sg2im's `preprocess_vg` defaults, which keep the images and
    vocabulary sg2im keeps. The switches below fix what sg2im gets wrong; each changes the kept
    images or the vocabulary, so results are no longer comparable with papers on sg2im's data."""

    min_image_side: int
    min_object_instances: int
    min_attribute_instances: int
    min_relationship_instances: int
    min_object_size: int  # pixels, on both box sides
    min_objects_per_image: int
    max_objects_per_image: int
    max_attributes_per_image: int
    min_relationships_per_image: int
    max_relationships_per_image: int
    split_file: str | None  # {"train": [...], "val": [...], "test": [...]}; None: seeded split
    split_fractions: list[float]  # train, val, test for the seeded split
    normalise_names: bool  # lowercase/strip/collapse names, attributes, predicates (sg2im: as written)
    normalise_eval_predicates: bool  # clean val/test predicates as train's (sg2im: as written)
    keep_relationship_endpoints: bool  # objects only in relationships.json (sg2im: dropped)
    dedupe_object_ids: bool  # one node per object_id (sg2im: one per occurrence)
    clip_boxes: bool  # clip to the image after the size filter (sg2im: boxes as annotated)


@dataclass
class CocoStuffParams:
    """COCO-Stuff 2017 filtering (sg2im / LostGAN defaults)."""

    form: str  # "json" (instances_/stuff_ annotations) or "labelmap" (stuffthingmaps)
    min_object_size: float  # fraction of the image area
    min_objects_per_image: int
    max_objects_per_image: int
    include_other: bool  # COCO-Stuff class 183 "other"
    drop_crowd: bool
    val_size: int  # images held out of train2017 as the val split (val2017 is test)
    split_lists: dict[str, str] | None  # optional {split: file of image ids}


@dataclass
class ClassSplitParams:
    """A named, versioned foreground / background split of a fixed class table."""

    name: str  # names this list: a changed list gets a new name (recorded in the manifest)
    background: list[str]  # "stuff" class names; every other class is foreground


@dataclass
class ADE20KParams:
    """ADE20K SceneParsing: objects are connected regions of a class."""

    min_region_area: int  # pixels, at the original resolution
    class_split: ClassSplitParams  # background ("stuff") vs foreground classes
    salient_only: bool  # BachGAN-style layouts: foreground objects only
    segmap_size: int  # S: the full label map stored per record at S x S (nearest); 0: none
    min_objects_per_image: int
    max_objects_per_image: int
    val_size: int  # images held out of training as val (validation is test)


@dataclass
class PreprocessParams:
    source: str  # vg | coco-stuff | ade20k
    image_size: int  # 64, 128 or 256
    mask_size: int  # M: masks cropped to the box and resized to M x M
    image_quality: int  # JPEG quality of the stored, resized image
    records_per_shard: int
    workers: int  # 0: all cores
    strict: bool  # a missing or corrupt image fails the stage instead of being skipped
    seed: int
    vg: VGParams
    coco_stuff: CocoStuffParams
    ade20k: ADE20KParams


# --------------------------------------------------------------------------------------------
# data, tracking, trainer (shared by the stages that read a processed dataset or log to MLflow)


@dataclass
class DataParams:
    """How training and evaluation read a processed dataset."""

    max_objects: int  # pad objects to this count (including the __image__ object)
    num_workers: int
    flip: bool  # random horizontal flip in training
    resample_relations: bool  # COCO-Stuff / ADE20K training: fresh geometric triples per draw


@dataclass
class TrackingParams:
    uri: str  # MLflow tracking URI; embedded default: a local SQLite file
    experiment: str
    config: str  # "default", or the --experiment whose params these are (set by load_params)


@dataclass
class TrainerParams:
    accelerator: str  # auto | cpu | gpu
    devices: int
    num_nodes: int
    strategy: str  # auto | ddp | ddp_spawn (DDP on the CPU uses gloo)
    precision: str  # 32-true | bf16-mixed
    sync_batchnorm: bool  # with DDP
    log_every_n_steps: int
    checkpoint_every_n_steps: int


# --------------------------------------------------------------------------------------------
# train_layout (sg2im)


@dataclass
class TrainLayoutParams:
    """The layout model (scene graph -> boxes + masks) and its training (sg2im defaults)."""

    seed: int
    batch_size: int  # per device
    max_steps: int  # optimiser steps (= training batches)
    lr: float  # Adam, layout model
    d_lr: float  # Adam, layout discriminator
    betas: list[float]  # Adam (beta1, beta2)
    embed_dim: int  # object / predicate / attribute embeddings
    gconv_dim: int
    gconv_hidden: int
    gconv_layers: int
    gconv_pooling: str  # avg | sum
    box_hidden: int  # box MLP: gconv_dim -> box_hidden -> 4
    mask_size: int  # M: must equal the dataset's preprocess.mask_size
    mask_dim: int  # mask head channels
    mask_norm: str  # batch | instance | none
    d_dim: int  # layout discriminator width
    box_loss: str  # mse | l1
    box_loss_weight: float
    mask_loss_weight: float  # applied only where the source has masks
    adv_loss_weight: float  # 0: no layout discriminator
    val_every_n_steps: int
    layout_images: int  # validation layouts drawn to MLflow


# --------------------------------------------------------------------------------------------
# train_image (LostGAN-v2 / AttrLostGAN)


@dataclass
class ImageGeneratorParams:
    ch: int  # base width; LostGAN-v2: 64 (128 px: 1024, 1024, 512, 256, 128, 64)
    z_img: int  # image latent
    z_obj: int  # per-object latent
    class_dim: int  # class embedding
    attr_dim: int  # attribute features (AttrLostGAN); used when the vocab has attributes
    attr_hidden: list[int]  # hidden widths of the attribute MLP (AttrLostGAN: 2048 ... 256)
    mapping: str  # identity (LostGAN-v2) | mlp (ours)
    mask_size: int  # regressed masks, M x M in box coordinates
    mask_width: int  # mask regression channels (LostGAN-v2: 256)
    mask_norm: str  # instance (LostGAN-v2) | batch (LostGAN-v1)
    stage_mask_dim: int  # hidden channels of the stage-mask heads (LostGAN-v2: 100)
    gt_masks: bool  # feed the data's masks to G instead of regressing them (not LostGAN)


@dataclass
class ImageDiscriminatorParams:
    ch: int  # base width; LostGAN: 64
    object_head: str  # roi (LostGAN: ROIAlign 8 x 8 on the shared trunk) | crop (ours)
    crop: int  # crop head: object crops are P x P
    small_object: float  # both box sides below this fraction: the finer level


@dataclass
class TrainImageParams:
    generator: str  # lostgan | crn (sg2im's cascaded refinement network); image size: the data's
    g: ImageGeneratorParams
    d: ImageDiscriminatorParams
    batch_size: int  # per device
    max_steps: int  # iterations (one D and one G update each)
    lr_g: float
    lr_d: float
    mapping_lr_scale: float  # G's mapping parameters train at this x lr_g (LostGAN: 0.1)
    betas: list[float]
    w_image: float  # hinge-loss weights
    w_object: float
    w_attribute: float
    w_l1: float  # L1 between generated and real image (LostGAN-v2: 1.0)
    w_vgg: float  # VGG-19 perceptual loss (LostGAN-v2: 1.0); needs vgg_weights
    vgg_weights: str | None  # local torchvision vgg19-dcbb9e9d.pth
    matching_aware: bool  # real images with shuffled attributes count as fake for D
    ema_decay: float
    ema_bn_batches: int  # training batches that recompute the EMA generator's BN statistics
    grid_every_n_steps: int  # MLflow image grid (layout | real | EMA generated)
    grid_images: int
    channels_last: bool
    fused_adam: bool
    seed: int


# train_bachgan (BachGAN)

# the SPADE generator starts at image_size / 32 (4 or 8 px; 64: ours, the toy world, 2 px)
BACHGAN_IMAGE_SIZES = (64, 128, 256)
MODEL_FAMILIES = ("lostgan", "bachgan")  # what the pipeline trains (`pipeline.family`)
BACHGAN_LOSSES = ("hinge", "wgan-gp")  # D's adversarial loss (models.gan_loss)


@dataclass
class RetrievalParams:
    """BachGAN's background retrieval (`scene2img.models.retrieval`)."""

    m: int  # label maps retrieved per layout (BachGAN: 3)
    grid: int  # G: occupancy grids are G x G; must divide the maps' side (= it: exact)

    def __post_init__(self) -> None:
        if isinstance(self.m, int) and self.m < 1:
            raise ConfigError(f"train_bachgan.retrieval.m={self.m}: retrieve at least 1 map")
        if isinstance(self.grid, int) and self.grid < 1:
            raise ConfigError(f"train_bachgan.retrieval.grid={self.grid}: give a positive side")


@dataclass
class TrainBachGANParams:
    """BachGAN (Li et al. 2020): salient-object layouts -> images (`stages.train_bachgan`):
    retrieval, fusion, the SPADE generator, the multi-scale PatchGAN, the losses, training."""

    retrieval: RetrievalParams
    image_size: int  # 128 | 256 (BachGAN on ADE20K: 256)
    ngf: int  # generator base width (SPADE: 64; 16 ngf at the start ... ngf at the end)
    spade_hidden: int  # SPADE's shared conv width (SPADE: 128)
    ndf: int  # discriminator base width (SPADE: 64)
    n_layers_d: int  # convolutions per PatchGAN before its score layer (SPADE: 4)
    num_d: int  # PatchGANs, each on the input at half the last one's size (SPADE: 2)
    loss: str  # hinge (SPADE / BachGAN) | wgan-gp (Wasserstein with gradient penalty)
    gp_weight: float  # wgan-gp: the penalty's weight (Gulrajani et al.: 10)
    lambda_feat: float  # D feature matching (SPADE: 10)
    lambda_vgg: float  # VGG-19 perceptual loss (SPADE: 10); needs vgg_weights
    vgg_weights: str | None  # local torchvision vgg19-dcbb9e9d.pth (as train_image.vgg_weights)
    batch_size: int  # per device
    max_steps: int  # iterations (one D and one G update each)
    lr_g: float  # Adam (SPADE's TTUR: lr / 2 for G, 2 lr for D)
    lr_d: float
    betas: list[float]  # Adam (SPADE with TTUR: 0, 0.9)
    ema_decay: float  # EMA of G for export (ours, as train_image)
    ema_bn_batches: int  # training batches that recompute the EMA generator's BN statistics
    grid_every_n_steps: int  # MLflow grid: layout | retrieved | fused | generated | real
    grid_images: int
    seed: int

    def __post_init__(self) -> None:
        size, loss = self.image_size, self.loss
        if isinstance(size, int) and size not in BACHGAN_IMAGE_SIZES:
            raise ConfigError(f"train_bachgan.image_size={size}: choose one of "
                              f"{', '.join(map(str, BACHGAN_IMAGE_SIZES))} (the generator starts "
                              "at image_size / 32)")
        if isinstance(loss, str) and loss not in BACHGAN_LOSSES:
            raise ConfigError(f"train_bachgan.loss={loss!r}: choose one of "
                              f"{', '.join(BACHGAN_LOSSES)}")
        for name in ("ngf", "spade_hidden", "ndf", "n_layers_d", "num_d", "batch_size",
                     "grid_every_n_steps", "grid_images"):
            value = getattr(self, name)
            if isinstance(value, int) and value < 1:
                raise ConfigError(f"train_bachgan.{name}={value}: must be at least 1")
        for name in ("gp_weight", "lambda_feat", "lambda_vgg"):
            value = getattr(self, name)
            if isinstance(value, float) and value < 0:
                raise ConfigError(f"train_bachgan.{name}={value}: must be 0 or more")


# train_upscaler


@dataclass
class RDNParams:
    """RDN's size (Zhang et al. 2018; the paper's D=16, C=8, G=64, G0=64)."""

    blocks: int  # D: residual dense blocks
    layers: int  # C: conv layers per block
    growth: int  # G: growth rate
    features: int  # G0: channels between blocks
    bicubic_skip: bool  # ours: add the bicubic upscale to the output (the paper: false)


@dataclass
class TrainUpscalerParams:
    """The super-resolution upscaler (RDN) and its training on the raw images."""

    seed: int
    scale: int  # 2 | 4
    rdn: RDNParams
    patch: int  # LR training patch side (HR crop: patch * scale)
    eval_size: int  # HR centre crop of val / test images (a multiple of scale)
    batch_size: int  # per device
    max_steps: int  # optimiser steps
    lr: float  # Adam
    betas: list[float]  # Adam (beta1, beta2)
    lr_halve_every: int  # steps between halvings of lr
    augment: bool  # random 90-degree rotations (flips: data.flip)
    val_every_n_steps: int
    strip_images: int  # validation rows in the MLflow strip LR | bicubic | ours | HR
    finetune_generated: bool  # then fine-tune on generated images of the training layouts
    finetune_steps: int  # its optimiser steps

    def __post_init__(self) -> None:
        if self.scale not in (2, 4):
            raise ConfigError(f"train_upscaler.scale={self.scale!r}: choose 2 or 4")
        if self.eval_size % self.scale or self.eval_size < self.scale:
            raise ConfigError(f"train_upscaler.eval_size={self.eval_size!r} must be a positive "
                              f"multiple of train_upscaler.scale ({self.scale})")


# --------------------------------------------------------------------------------------------
# evaluate, register, promote, serve


@dataclass
class EvaluateParams:
    """How generated images are measured; recorded as `scene2img.evaluation.protocol.Protocol`."""

    backbone: str  # inception | random-inception (offline smoke tests; names carry it, not FID)
    inception_weights: str | None  # local weights-inception-2015-12-05-6726825d.pth
    random_inception_seed: int  # random-inception's weights
    resize: str  # bilinear | bicubic | nearest | area: generated images to S, object crops
    antialias: bool  # also the resize to 299: false = TF1-compatible bilinear (original FID)
    split: str  # train | val | test
    samples_per_layout: int | None  # None: LostGAN's default for the source (COCO 5, VG 1)
    truncation: float | None  # latents from N(0, 1) truncated at +-this (LostGAN: 2.0); None: N(0, 1)
    batch_size: int
    max_images: int | None  # real images used (None: the whole split)
    scenefid_crop_size: int  # object crops resized to this side
    kid_subsets: int
    kid_subset_size: int  # fewer when a set is smaller (the result records the size used)
    is_splits: int
    lpips_weights: str | None  # torchvision weights of the LPIPS net; None: diversity skipped
    lpips_net: str  # alex | vgg | squeeze
    report_samples: int  # layouts in the sample grid; best and worst samples shown
    seed: int


@dataclass
class RegisterParams:
    """The end-to-end registered model and the metric its promotion gate compares."""

    name: str  # registered model name
    gate_metric: str  # lower is better; named with the protocol (fid -> fid_<backbone>_<split>)
    gate_mode: str  # gt-layout | pred-layout: the end-to-end model is judged on pred-layout
    bachgan_name: str  # BachGAN's registered model (its own: `promote` never compares families)
    upscaler_margin_db: float  # an upscaler's test PSNR must beat bicubic's by more than this


@dataclass
class PromoteParams:
    margin: float  # the candidate's gate metric must be lower than the champion's by this


@dataclass
class ServeParams:
    """Limits on one request to `generate` / `edit` and to the served model, checked before any
    work (`scene2img.serving`). `register` records them with the model (its `model_config`)."""

    max_graph_bytes: int  # one scene graph: its JSON text, or an object's size as JSON
    max_state_bytes: int  # an edit's state file
    max_depth: int  # JSON nesting of a scene graph (the format needs 4)
    max_relationships: int  # per scene graph
    max_attributes: int  # per object
    max_name_chars: int  # a class, attribute or predicate name
    max_records: int  # scene graphs in one request to the served model
    request_timeout_s: float  # a served request still computing after this stops (HTTP 504)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ConfigError(f"serve.{name} must be positive, got {value!r}")


# --------------------------------------------------------------------------------------------
# pipeline (the Kubeflow DAG; scene2img.pipeline)


@dataclass
class IngestParams:
    """Where the pipeline's raw dataset comes from: a DVC data registry, or the toy world.

    Its raw format is `preprocess.source`.
    """

    source: str  # toyworld (generated, offline) | dvc (a DVC-tracked folder at a git revision)
    repo: str | None  # dvc: git URL (or path) of the repo that tracks the raw dataset
    path: str  # dvc: the DVC-tracked folder inside that repo
    rev: str | None  # dvc: the data version, a git tag or commit (None: the default branch)
    remote: str | None  # dvc: DVC remote name (None: the repo's default remote)


@dataclass
class TrainJobParams:
    """Multi-node training as a Kubeflow Trainer v2 `TrainJob` (used when `train_nodes` > 1)."""

    runtime: str  # ClusterTrainingRuntime name
    namespace: str  # where the TrainJob is created
    timeout_s: int  # give up waiting after this long
    poll_s: int  # status poll interval


@dataclass
class PipelineParams:
    name: str  # the KFP pipeline name
    image: str  # every task's image (infra/docker/), set when the DAG is compiled
    ingest: IngestParams
    family: str  # lostgan | bachgan: which model family the DAG trains, evaluates and registers
    upscaler: bool  # compile the train_upscaler step (and register the model with its upscaler)
    gpu_type: str  # accelerator resource name
    gpus: int  # GPUs per training node
    cpu_request: str  # per training node
    memory_request: str  # per training node
    shm_size: str  # /dev/shm (a memory-backed emptyDir) for DataLoader workers
    node_selector: dict[str, str]  # GPU node pool labels
    tolerations: list[dict[str, Any]]  # GPU node pool taints tolerated
    train_nodes: int  # > 1: train through a Kubeflow Trainer TrainJob
    trainjob: TrainJobParams
    retries: int  # on the steps that can fail transiently (I/O, registry)
    retry_backoff: str  # first backoff, e.g. "30s"
    caching: dict[str, bool]  # per task
    gate: dict[str, float]  # evaluate -> register: metric name -> upper bound ({} = finite only)
    secrets: dict[str, str]  # Kubernetes Secret names: s3, mlflow
    local_root: str  # the local runner's outputs and cache

    def __post_init__(self) -> None:
        if isinstance(self.family, str) and self.family not in MODEL_FAMILIES:
            raise ConfigError(f"pipeline.family={self.family!r}: choose one of "
                              f"{', '.join(MODEL_FAMILIES)}")


# --------------------------------------------------------------------------------------------
# all sections, in params.yaml's order: the flow's


@dataclass
class Params:
    toyworld: ToyworldParams
    preprocess: PreprocessParams
    data: DataParams
    tracking: TrackingParams
    trainer: TrainerParams
    train_layout: TrainLayoutParams
    train_image: TrainImageParams
    train_bachgan: TrainBachGANParams
    train_upscaler: TrainUpscalerParams
    evaluate: EvaluateParams
    register: RegisterParams
    promote: PromoteParams
    serve: ServeParams
    pipeline: PipelineParams

    def to_dict(self) -> dict[str, Any]:
        """The params as plain data (a partial load: only the keys it was given)."""
        return _given(dataclasses.asdict(self))


# --------------------------------------------------------------------------------------------
# loading


def load_params(
    path: str | Path | None = None,  # params.yaml; default: the project's
    overrides: list[str] | tuple[str, ...] = (),  # "dotted.key=yaml-value"
    experiment: str | None = None,  # configs/experiments/<name>.yaml merged first
) -> Params:
    """Load `params.yaml`, merge an experiment and overrides, and check every value's type."""
    path = Path(path) if path else DEFAULT_PARAMS
    raw = _read_yaml(path)
    if experiment:
        raw = _merge(raw, _experiment(experiment), where=experiment)
        # the runs' names say which configuration they ran
        raw = _merge(raw, {"tracking": {"config": Path(experiment).stem}}, where=experiment)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form dotted.key=value")
        raw = _merge(raw, _nest(key.strip().split("."), yaml.safe_load(value)), where=item)
    return params_from_dict(raw, where=str(path))


def _experiment(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """An experiment's overrides; `extends: OTHER` merges OTHER's first."""
    path = Path(name)
    if not path.suffix:
        path = EXPERIMENTS_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))
        raise ConfigError(f"experiment {name!r} not found ({path}); known: {known}")
    if name in seen:
        raise ConfigError(f"experiment {name!r} extends itself: {' -> '.join((*seen, name))}")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    return _merge(_experiment(str(parent), (*seen, name)), data, where=str(path))


def params_from_dict(
    raw: dict[str, Any],  # sections as in params.yaml
    where: str = "params",  # named in errors
    partial: bool = False,  # missing keys are not errors: they become `NotGiven`
) -> Params:
    """Typed params from plain data. A partial load (what a pipeline step receives: only the
    keys its stage reads) checks the keys it has; reading one it lacks raises a ConfigError."""
    params = _build(Params, raw, where, prefix="", partial=partial)
    _check_mask_sizes(params, where)
    return params


# The masks' side M, in each section that has one: the processed dataset's masks, the layout
# model's predicted masks and the image model's (regressed, or given by the data and the layout
# model): one M throughout.
MASK_SIZE_KEYS = ("preprocess.mask_size", "train_layout.mask_size", "train_image.g.mask_size")


def _check_mask_sizes(params: Params, where: str) -> None:
    sizes = {}
    for key in MASK_SIZE_KEYS:
        value: Any = params
        for name in key.split("."):
            value = getattr(value, name, None)  # None: a section not given to a partial load
        if value is not None and not isinstance(value, NotGiven):
            sizes[key] = value
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{key}={value}" for key, value in sizes.items())
        raise ConfigError(f"{where}: the mask sizes disagree ({listed}); masks are M x M in the "
                          "data, the layout model and the image model alike: set them to one "
                          "value")


class NotGiven:
    """The value of a key a partial load was not given. Reading through it or using it as a
    value raises a `ParamNotGivenError` that names the key."""

    __slots__ = ("key", "where")

    def __init__(self, key: str, where: str) -> None:
        self.key = key
        self.where = where

    def _fail(self, *_: Any) -> NoReturn:
        raise ParamNotGivenError(f"{self.where}: parameter {self.key} was not given to this "
                                 "partial load; pass it (a pipeline step receives only the keys "
                                 "listed for it)")

    __getattr__ = __getitem__ = __iter__ = __len__ = __bool__ = _fail
    __int__ = __float__ = __index__ = __str__ = __format__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = _fail

    def __repr__(self) -> str:
        return f"NotGiven({self.key!r})"

    def __deepcopy__(self, memo: dict[int, Any]) -> NotGiven:
        return self


def _given(value: Any) -> Any:
    """`value` without the `NotGiven` entries of its mappings."""
    if isinstance(value, dict):
        return {k: _given(v) for k, v in value.items() if not isinstance(v, NotGiven)}
    return value


def section_from_dict(cls: type, raw: Any, where: str, prefix: str) -> Any:
    """One section's dataclass from a mapping (e.g. a served model's recorded `serve` limits),
    with the same checks as `load_params`; `prefix` names its keys in errors (`serve.`)."""
    return _build(cls, raw, where, prefix)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: parameters file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def _nest(keys: list[str], value: Any) -> dict[str, Any]:
    for key in reversed(keys):
        value = {key: value}
    return value


def _merge(base: dict[str, Any], new: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, where)
        else:
            out[key] = value
    return out


def _build(cls: type, raw: Any, where: str, prefix: str, partial: bool = False) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {prefix or 'top level'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        names = ", ".join(prefix + k for k in unknown)
        what = "section(s)" if not prefix else "parameter(s)"
        raise ConfigError(f"{where}: unknown {what} {names}; known: {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in raw:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            if partial:
                kwargs[name] = NotGiven(key, where)
                continue
            raise ConfigError(f"{where}: missing parameter {key}")
        kwargs[name] = _coerce(hints[name], raw[name], where, key, partial)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str, key: str, partial: bool = False) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, prefix=key + ".", partial=partial)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where, key, partial)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list, got {value!r}")
        return [_coerce(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
        return {k: _coerce(args[1], v, where, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be an integer, got {value!r}")
    if not isinstance(value, tp):
        raise ConfigError(f"{where}: {key} must be {tp.__name__}, got {value!r}")
    return value
