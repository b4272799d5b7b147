"""Exported models: the one module that saves and loads them, and the files they live in.

An exported model is one `torch.save` file holding only plain containers and tensors, so that it
loads with `torch.load(..., weights_only=True)` whoever wrote it:

    {"format": "scene2img.<kind>", "format_version": 1, "state_dict": {...},
     "config": {...}, "vocab": {...sg2im keys...}, "extra": {...}}

Four kinds: `layout` (the `LayoutModel`; `config` is its constructor arguments plus
`max_objects`), `image` (the EMA generator; `config` names the architecture, the image size,
`max_objects`, the generator params, where its masks come from (`masks`) and how its weights were
made), `upscaler` (the RDN; `config` is its constructor arguments, the vocabulary the training
dataset's) and `bachgan` (BachGAN's EMA generator; `config` is its constructor arguments, the
label maps' side, the retrieval params and the class split its foreground came from; beside it,
`memory_bank`: the training split's label maps and image ids, what a served layout retrieves its
backgrounds from). Training
stages write them (`export_layout_model`, `export_generator`, `export_upscaler`,
`export_bachgan`); evaluation, the registry, serving and the pipeline read them
(`load_layout_model`, `load_generator`, `load_upscaler`, `load_bachgan`) and find them by the
file names below.

A model folder holds `layout_model.pt`, `image_model.pt`, (for serving) `attribute_stats.json`
and, optionally, `upscaler_model.pt` (then `generate --upscale` takes its images up);
each training folder also has its `metrics.json`; an evaluation folder has `metrics.json` and per
mode `samples_{mode}.png` and `report_{mode}.html`.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scene2img.config import ImageGeneratorParams
from scene2img.data.vocab import Vocab
from scene2img.errors import ConfigError, ModelError
from scene2img.files import atomic_write_bytes
from scene2img.models.bachgan import BachGANGenerator
from scene2img.models.builders import build_generator
from scene2img.models.layout import LayoutModel
from scene2img.models.upscaler import RDN

__all__ = ["ATTRIBUTE_STATS_FILE", "BACHGAN_MODEL_FILE", "FORMAT_VERSION", "IMAGE_MODEL_FILE",
           "LAYOUT_MODEL_FILE", "METRICS_FILE", "UPSCALER_MODEL_FILE", "BachGANExport",
           "MemoryBankExport", "check_mask_sizes", "export_bachgan", "export_generator",
           "export_kind", "export_layout_model", "export_upscaler", "generator_from_config",
           "load_bachgan", "load_generator", "load_layout_model", "load_upscaler", "masks_source",
           "report_file", "samples_file", "takes_masks", "upscaler_record"]

LAYOUT_MODEL_FILE = "layout_model.pt"  # train_layout's export
IMAGE_MODEL_FILE = "image_model.pt"  # train_image's export
UPSCALER_MODEL_FILE = "upscaler_model.pt"  # train_upscaler's export
BACHGAN_MODEL_FILE = "bachgan_model.pt"  # train_bachgan's export
ATTRIBUTE_STATS_FILE = "attribute_stats.json"  # per-class attribute statistics, for serving
METRICS_FILE = "metrics.json"  # a training or evaluation folder's figures (a DVC metric)
FORMAT_VERSION = 1
LAYOUT, IMAGE, UPSCALER, BACHGAN = "layout", "image", "upscaler", "bachgan"  # export kinds


def report_file(mode: str) -> str:
    """The evaluation's HTML report for `mode` (gt-layout | pred-layout)."""
    return f"report_{mode}.html"


def samples_file(mode: str) -> str:
    """The evaluation's sample grid for `mode`."""
    return f"samples_{mode}.png"


# --------------------------------------------------------------------------------------------
# the file format


def _save(path: Path, kind: str, state_dict: dict[str, torch.Tensor], config: dict,
          vocab: Vocab, extra: dict | None = None, **sections: dict) -> Path:
    """Write an export atomically (state dict + config + vocab, weights_only-safe); `sections`:
    a kind's own top-level entries (BachGAN's `memory_bank`)."""
    payload = {
        **sections,
        "format": f"scene2img.{kind}",
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "config": config,
        "vocab": vocab.to_json(),
        "extra": extra or {},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def _load(path: str | Path, kind: str | None) -> dict:
    """An export's payload (of `kind`; None: of any kind), loaded with `weights_only=True`;
    clear errors for wrong or corrupt files."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: model file not found") from None
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise ModelError(f"{path}: not a loadable scene2img model ({type(exc).__name__}: {exc})") \
            from None
    kinds = [kind] if kind else [LAYOUT, IMAGE, UPSCALER, BACHGAN]
    if not isinstance(payload, dict) or payload.get("format") not in \
            [f"scene2img.{k}" for k in kinds]:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ModelError(f"{path}: expected a scene2img.{' | '.join(kinds)} export, found "
                         f"{found!r}")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path}: export format version {payload.get('format_version')}, this "
                         f"code reads {FORMAT_VERSION}; re-export the model")
    return payload


def export_kind(path: str | Path) -> str:
    """Which kind of export `path` is (layout | image | upscaler | bachgan): how evaluation tells
    a BachGAN model from a LostGAN-family image model."""
    return _load(path, None)["format"].removeprefix("scene2img.")


# --------------------------------------------------------------------------------------------
# the layout model


def export_layout_model(path: str | Path, model: LayoutModel, vocab: Vocab, max_objects: int,
                        extra: dict | None = None) -> Path:
    """Write `model` (state dict + config + vocab) atomically to `path`."""
    config = {**model.config, "max_objects": max_objects}
    return _save(Path(path), LAYOUT, model.state_dict(), config, vocab, extra)


def load_layout_model(path: str | Path) -> tuple[LayoutModel, Vocab, dict[str, Any]]:
    """Load an exported layout model (`weights_only=True`), in eval mode on the CPU.

    Returns (model, vocab, config); `config["max_objects"]` is the most objects (with `__image__`)
    a scene graph may have. `scene2img.serving.tensors` runs it on a scene graph.
    """
    payload = _load(path, LAYOUT)
    config = dict(payload["config"])
    vocab = Vocab.from_json(payload["vocab"], where=f"{path} (vocab)")
    kwargs = {k: v for k, v in config.items() if k != "max_objects"}
    try:
        model = LayoutModel(**kwargs)
        model.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError, ValueError) as exc:
        raise ModelError(f"{path}: layout model config and weights do not fit this code "
                         f"({type(exc).__name__}: {exc}); re-export the model") from None
    return model.eval(), vocab, config


# --------------------------------------------------------------------------------------------
# the image generator


def masks_source(gt_masks: bool) -> str:
    """What G's masks are: "ground-truth" (given by the caller) or "regressed" (its own)."""
    return "ground-truth" if gt_masks else "regressed"


def takes_masks(config: dict) -> bool:
    """Whether an exported generator must be given masks (trained with `gt_masks`): the data's
    in ground-truth-layout evaluation, the layout model's in predicted-layout mode and serving."""
    return config.get("masks") == masks_source(True)


def check_mask_sizes(gen_config: dict, layout_config: dict | None, where: str) -> None:
    """A generator that takes masks needs the layout model's M x M to be its own."""
    if layout_config is None or not takes_masks(gen_config):
        return
    m_gen, m_lay = gen_config["g"]["mask_size"], layout_config.get("mask_size")
    if m_gen != m_lay:
        raise ConfigError(f"{where}: the image model takes {m_gen} x {m_gen} masks but the "
                          f"layout model predicts {m_lay} x {m_lay}; train them with the same "
                          "mask size")


def export_generator(path: Path, G: nn.Module, kind: str, image_size: int,
                     g: ImageGeneratorParams, vocab: Vocab, max_objects: int,
                     provenance: dict | None = None, extra: dict | None = None) -> Path:
    """The generator as a weights_only-safe export (kind "image").

    The config records `masks` ("ground-truth": callers must give G masks, the data's or the
    layout model's; "regressed": G makes its own) and `provenance` (weights, batch norm, losses).
    """
    config = {"generator": kind, "image_size": image_size, "num_classes": vocab.num_objects,
              "num_attributes": vocab.num_attributes, "max_objects": max_objects,
              "g": dataclasses.asdict(g), "masks": masks_source(g.gt_masks),
              **(provenance or {})}
    state = {k: v.contiguous() for k, v in G.state_dict().items()}
    return _save(path, IMAGE, state, config, vocab, extra)


def generator_from_config(config: dict) -> nn.Module:
    """A freshly initialised generator of an export's architecture (its `config`)."""
    return build_generator(config["generator"], config["num_classes"], config["num_attributes"],
                           config["image_size"], ImageGeneratorParams(**config["g"]))


def load_generator(path: str | Path) -> tuple[nn.Module, Vocab, dict]:
    """An exported image generator, in eval mode: `(generator, vocab, config)`.

    Example:
        >>> G, vocab, config = load_generator("models/image/image_model.pt")  # doctest: +SKIP
        >>> z_img, z_obj = G.sample_latents(1, config["max_objects"])  # doctest: +SKIP
    """
    payload = _load(path, IMAGE)
    config = payload["config"]
    vocab = Vocab.from_json(payload["vocab"], where=str(path))
    try:
        G = generator_from_config(config)
        G.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"{path}: image model does not match this code ({exc}); re-export it") \
            from None
    return G.eval(), vocab, config


# --------------------------------------------------------------------------------------------
# the upscaler


def _rdn_config(net: RDN) -> dict[str, int | bool]:
    """The constructor arguments of `net`, as the export records them."""
    rdb = net.rdbs[0]
    return {"scale": net.scale, "blocks": len(net.rdbs), "layers": len(rdb.dense),
            "growth": rdb.dense[0].conv.out_channels, "features": net.sfe1.out_channels,
            "bicubic_skip": net.bicubic_skip}


def export_upscaler(path: str | Path, net: RDN, vocab: Vocab, extra: dict | None = None) -> Path:
    """Write `net` (fp32 state dict + its sizes as config) atomically to `path`."""
    state = {k: v.float() for k, v in net.state_dict().items()}
    return _save(Path(path), UPSCALER, state, _rdn_config(net), vocab, extra)


def load_upscaler(path: str | Path) -> tuple[RDN, dict[str, Any]]:
    """An exported upscaler in eval mode on the CPU: `(net, config)`."""
    payload = _load(path, UPSCALER)
    config = dict(payload["config"])
    try:
        net = RDN(**config)
        net.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError, ValueError) as exc:
        raise ModelError(f"{path}: upscaler config and weights do not fit this code "
                         f"({type(exc).__name__}: {exc}); re-export the model") from None
    return net.eval(), config


def upscaler_record(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """An exported upscaler's `(config, extra)`: its sizes and what its training recorded beside
    the weights (`train_upscaler`: `metrics` with the test PSNR / SSIM of RDN, bicubic and
    nearest, `mlflow_run_id`, `params`, `data`, `raw`), without building the network."""
    payload = _load(path, UPSCALER)
    extra = payload.get("extra")
    return dict(payload["config"]), dict(extra) if isinstance(extra, dict) else {}


# --------------------------------------------------------------------------------------------
# BachGAN


@dataclasses.dataclass
class MemoryBankExport:
    """BachGAN's memory bank as exported: what a layout retrieves its backgrounds from."""

    maps: torch.Tensor  # [N, s, s] uint8: the training split's label maps (0 = unlabeled)
    image_ids: list[str]  # [N] the records' image ids, for answers that name what was retrieved


@dataclasses.dataclass
class BachGANExport:
    """An exported BachGAN: the generator (eval mode, CPU), its vocabulary, its config (see
    `export_bachgan`) and its memory bank."""

    generator: BachGANGenerator
    vocab: Vocab
    config: dict[str, Any]
    bank: MemoryBankExport


def export_bachgan(path: str | Path, G: BachGANGenerator, vocab: Vocab, config: dict,
                   bank: MemoryBankExport, extra: dict | None = None) -> Path:
    """Write BachGAN's generator and its memory bank atomically to `path`. `config` holds the
    generator's constructor arguments (`num_classes`, `foreground`, `image_size`, `ngf`,
    `spade_hidden`) and what serving needs beside them (`segmap_size`, `retrieval` (m, grid),
    `class_split`, `max_objects`, provenance); `bank` the training split's label maps, stored
    as they are (uint8) so that retrieval and fusion at serving time see what training saw."""
    maps = bank.maps.detach().cpu().to(torch.uint8).contiguous()
    if maps.ndim != 3 or len(bank.image_ids) != len(maps):
        raise ValueError(f"memory bank: expected [N, s, s] maps and N image ids, got "
                         f"{tuple(maps.shape)} and {len(bank.image_ids)}")
    state = {k: v.contiguous() for k, v in G.state_dict().items()}
    return _save(Path(path), BACHGAN, state, config, vocab, extra,
                 memory_bank={"maps": maps, "image_ids": [str(i) for i in bank.image_ids]})


def _memory_bank(payload: dict, config: dict, path: str | Path) -> MemoryBankExport:
    """The export's memory bank, checked against its config."""
    bank = payload.get("memory_bank")
    if not isinstance(bank, dict) or not isinstance(bank.get("maps"), torch.Tensor):
        raise ModelError(f"{path}: no memory bank in this BachGAN export (written before exports "
                         "carried one); re-export it with `scene2img train-bachgan`")
    maps, ids = bank["maps"], bank.get("image_ids")
    s, m = config["segmap_size"], config["retrieval"]["m"]
    if maps.dtype != torch.uint8 or maps.ndim != 3 or tuple(maps.shape[1:]) != (s, s) \
            or not isinstance(ids, list) or len(ids) != len(maps) or len(maps) < m \
            or int(maps.max()) >= config["num_classes"]:
        raise ModelError(f"{path}: memory bank of {tuple(maps.shape)} {maps.dtype} maps does not "
                         f"fit the model ({s} x {s} uint8 label maps below "
                         f"{config['num_classes']}, at least m={m}, one image id each); "
                         "re-export the model")
    return MemoryBankExport(maps, ids)


def load_bachgan(path: str | Path) -> BachGANExport:
    """An exported BachGAN: its generator in eval mode on the CPU, vocabulary, config and
    memory bank.

    Example:
        >>> model = load_bachgan("models/bachgan/bachgan_model.pt")  # doctest: +SKIP
        >>> image = model.generator(layout_map, retrieved_maps_one_hot)  # doctest: +SKIP
    """
    payload = _load(path, BACHGAN)
    config = dict(payload["config"])
    vocab = Vocab.from_json(payload["vocab"], where=f"{path} (vocab)")
    try:
        G = BachGANGenerator(config["num_classes"], config["foreground"], config["image_size"],
                             config["ngf"], config["spade_hidden"])
        G.load_state_dict(payload["state_dict"])
        bank = _memory_bank(payload, config, path)
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise ModelError(f"{path}: BachGAN config and weights do not fit this code "
                         f"({type(exc).__name__}: {exc}); re-export the model") from None
    return BachGANExport(G.eval(), vocab, config, bank)
