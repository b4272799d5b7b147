"""The layout model: scene graph -> a box and a mask per object (sg2im, Johnson et al. 2018),
with a layout discriminator (the adversarial "layout GAN" term) and the losses.

Shapes (padded batches, as `scene2img.data.dataset` yields them):

    objects [B, O] long, obj_valid [B, O] bool, attributes [B, O, A] float multi-hot
    triples [B, T, 3] long (subject position, predicate, object position), triple_valid [B, T]
    boxes   [B, O, 4] normalised xywh;  masks [B, O, M, M] in box coordinates

Padded objects come out as zero boxes and masks, and never influence the valid ones: the box and
mask heads run on the valid objects only (so batch norm sees no padding either).

Losses are per image, then averaged over the batch: a batch split over DDP ranks (equal per-rank
batches) gets the same gradient as the whole batch on one process.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from scene2img.errors import ConfigError
from scene2img.models.graph import GraphTripleConvNet, mlp

__all__ = [
    "LayoutDiscriminator",
    "LayoutLoss",
    "LayoutModel",
    "box_regression_loss",
    "d_hinge_loss",
    "g_hinge_loss",
    "mask_bce_loss",
]


def _check_graph_batch(objects: torch.Tensor, obj_valid: torch.Tensor, triples: torch.Tensor,
                       triple_valid: torch.Tensor) -> None:
    b, o = objects.shape
    if obj_valid.shape != (b, o):
        raise ValueError(f"obj_valid {tuple(obj_valid.shape)} must match objects {(b, o)}")
    if triples.ndim != 3 or triples.shape[0] != b or triples.shape[2] != 3:
        raise ValueError(f"triples {tuple(triples.shape)} must be [B={b}, T, 3]")
    if triple_valid.shape != triples.shape[:2]:
        raise ValueError(f"triple_valid {tuple(triple_valid.shape)} must be "
                         f"{tuple(triples.shape[:2])}")


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"mask_norm={kind!r}: choose batch, instance or none")


# --------------------------------------------------------------------------------------------
# generator: scene graph -> layout


class MaskHead(nn.Module):
    """Object vector [N, D] -> mask logits [N, M, M]: repeated (upsample x2, norm, conv 3x3, ReLU)
    from 1 x 1 to M x M, then a 1 x 1 conv (sg2im's mask regression network)."""

    def __init__(self, dim_in: int, dim: int = 128, mask_size: int = 16, norm: str = "batch"):
        super().__init__()
        if mask_size < 2 or mask_size & (mask_size - 1):
            raise ValueError(f"mask_size={mask_size}: must be a power of two >= 2")
        layers: list[nn.Module] = []
        size, channels = 1, dim_in
        while size < mask_size:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _norm2d(norm, channels),
                       nn.Conv2d(channels, dim, 3, padding=1), nn.ReLU()]
            size, channels = size * 2, dim
        layers.append(nn.Conv2d(channels, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, vecs: torch.Tensor) -> torch.Tensor:
        return self.net(vecs[:, :, None, None])[:, 0]  # [N, D] -> [N, M, M]


class LayoutModel(nn.Module):
    """Scene graph -> boxes and masks: embeddings, graph convolutions, a box MLP and a mask head.

    Example:
        >>> import torch
        >>> m = LayoutModel(num_objects=5, num_predicates=3, embed_dim=8, gconv_dim=8,
        ...                 gconv_hidden=16, gconv_layers=2, box_hidden=16, mask_dim=8)
        >>> objects = torch.tensor([[1, 2, 0]]); valid = torch.tensor([[True, True, True]])
        >>> triples = torch.tensor([[[0, 1, 1], [0, 0, 2], [1, 0, 2]]])
        >>> boxes, masks = m(objects, valid, triples, torch.ones(1, 3, dtype=torch.bool))
        >>> tuple(boxes.shape), tuple(masks.shape)
        ((1, 3, 4), (1, 3, 16, 16))
    """

    def __init__(
        self,
        num_objects: int,  # object vocabulary size (index 0: __image__)
        num_predicates: int,  # predicate vocabulary size (index 0: __in_image__)
        num_attributes: int = 0,  # attribute vocabulary size; 0: no attribute embedding
        embed_dim: int = 128,  # object / predicate / attribute embedding size
        gconv_dim: int = 128,  # graph convolution vector size
        gconv_hidden: int = 512,  # graph convolution candidate size
        gconv_layers: int = 5,  # number of graph convolutions
        gconv_pooling: str = "avg",  # avg | sum
        box_hidden: int = 512,  # box MLP hidden size: gconv_dim -> box_hidden -> 4
        mask_size: int = 16,  # M
        mask_dim: int = 128,  # channels of the mask head's convolutions
        mask_norm: str = "batch",  # batch | instance | none, in the mask head
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {k: v for k, v in locals().items()
                                       if k not in ("self", "__class__")}
        self.num_attributes = num_attributes
        self.mask_size = mask_size
        self.obj_embed = nn.Embedding(num_objects, embed_dim)
        self.pred_embed = nn.Embedding(num_predicates, embed_dim)
        # Multi-hot attributes [B, O, A] @ [A, E]: the sum of the object's attribute embeddings.
        self.attr_embed = nn.Linear(num_attributes, embed_dim, bias=False) \
            if num_attributes > 0 else None
        self.gconv = GraphTripleConvNet(embed_dim, gconv_dim, gconv_hidden, gconv_layers,
                                        gconv_pooling)
        self.box_net = mlp([gconv_dim, box_hidden, 4], final_relu=False)
        self.mask_net = MaskHead(gconv_dim, mask_dim, mask_size, mask_norm)

    def layout(
        self,
        objects: torch.Tensor,  # [B, O] long
        obj_valid: torch.Tensor,  # [B, O] bool
        triples: torch.Tensor,  # [B, T, 3] long
        triple_valid: torch.Tensor,  # [B, T] bool
        attributes: torch.Tensor | None = None,  # [B, O, A] multi-hot, or None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes [B, O, 4] (xywh, unconstrained regression) and mask logits [B, O, M, M]."""
        _check_graph_batch(objects, obj_valid, triples, triple_valid)
        b, o = objects.shape
        obj = self.obj_embed(objects)  # [B, O, E]
        if self.attr_embed is not None and attributes is not None:
            if attributes.shape != (b, o, self.num_attributes):
                raise ValueError(f"attributes {tuple(attributes.shape)} must be "
                                 f"{(b, o, self.num_attributes)}")
            obj = obj + self.attr_embed(attributes.to(obj.dtype))
        pred = self.pred_embed(triples[..., 1])  # [B, T, E]
        obj, _ = self.gconv(obj, pred, triples, obj_valid, triple_valid)  # [B, O, D]

        # Heads on the valid objects only, scattered back into the padded layout.
        vecs = obj[obj_valid]  # [N, D]
        box_out, mask_out = self.box_net(vecs), self.mask_net(vecs)  # [N, 4], [N, M, M]
        boxes = box_out.new_zeros(b, o, 4).index_put((obj_valid,), box_out)  # [B, O, 4]
        mask_logits = mask_out.new_zeros(b, o, *mask_out.shape[1:]).index_put((obj_valid,),
                                                                              mask_out)
        return boxes, mask_logits

    def forward(
        self,
        objects: torch.Tensor,  # [B, O] long
        obj_valid: torch.Tensor,  # [B, O] bool
        triples: torch.Tensor,  # [B, T, 3] long
        triple_valid: torch.Tensor,  # [B, T] bool
        attributes: torch.Tensor | None = None,  # [B, O, A] multi-hot, or None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes [B, O, 4] (normalised xywh) and masks [B, O, M, M] in [0, 1] (0 for padding)."""
        boxes, mask_logits = self.layout(objects, obj_valid, triples, triple_valid, attributes)
        masks = torch.sigmoid(mask_logits) * obj_valid[..., None, None].to(mask_logits.dtype)
        return boxes, masks


# --------------------------------------------------------------------------------------------
# discriminator: is this set of (class, box, mask) a real layout?


class LayoutDiscriminator(nn.Module):
    """Scores a layout as real or generated: a per-object encoder of (class, box, mask), one
    round of context (each object sees the mean of the others), masked mean + max pooling, a
    linear score. No normalisation layers, so padding cannot leak into a score."""

    def __init__(
        self,
        num_objects: int,  # object vocabulary size
        dim: int = 128,  # per-object feature size
        mask_size: int = 16,  # M (a power of two >= 4)
    ) -> None:
        super().__init__()
        self.class_embed = nn.Embedding(num_objects, dim)
        self.box_enc = nn.Linear(4, dim)
        convs: list[nn.Module] = []
        size, channels = mask_size, 1
        while size > 4:
            convs += [nn.Conv2d(channels, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            size, channels = size // 2, 32
        self.mask_enc = nn.Sequential(*convs, nn.Flatten(), nn.Linear(channels * size * size, dim))
        self.phi = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(dim, dim), nn.LeakyReLU(0.2))
        self.rho = nn.Sequential(nn.Linear(2 * dim, dim), nn.LeakyReLU(0.2))
        self.score = nn.Linear(2 * dim, 1)

    def forward(
        self,
        objects: torch.Tensor,  # [B, O] long
        boxes: torch.Tensor,  # [B, O, 4] xywh
        masks: torch.Tensor,  # [B, O, M, M] in [0, 1]
        obj_valid: torch.Tensor,  # [B, O] bool
        has_masks: torch.Tensor,  # [B] bool: without masks the mask input is zeroed (real and fake)
    ) -> torch.Tensor:
        """Realness scores [B]."""
        b, o, m, _ = masks.shape
        masks = masks * has_masks.to(masks.dtype)[:, None, None, None]
        h = self.class_embed(objects) + self.box_enc(boxes) \
            + self.mask_enc(masks.reshape(b * o, 1, m, m)).reshape(b, o, -1)  # [B, O, D]
        h = self.phi(h)
        w = obj_valid.to(h.dtype).unsqueeze(-1)  # [B, O, 1]
        count = w.sum(1).clamp(min=1.0)  # [B, 1]
        context = (h * w).sum(1) / count  # [B, D]
        h = self.rho(torch.cat([h, context[:, None].expand(-1, o, -1)], dim=-1))  # [B, O, D]
        mean = (h * w).sum(1) / count  # [B, D]
        peak = h.masked_fill(~obj_valid.unsqueeze(-1), float("-inf")).amax(1)  # [B, D]
        peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
        return self.score(torch.cat([mean, peak], dim=-1))[:, 0]


# --------------------------------------------------------------------------------------------
# losses (per image, then the batch mean)


def _per_image_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """values [B, O], valid [B, O] -> [B]: mean over each image's valid entries (0 if none)."""
    w = valid.to(values.dtype)
    return (values * w).sum(1) / w.sum(1).clamp(min=1.0)


def box_regression_loss(
    pred: torch.Tensor,  # [B, O, 4]
    target: torch.Tensor,  # [B, O, 4]
    valid: torch.Tensor,  # [B, O] bool
    kind: str = "mse",  # mse (sg2im's bbox_pred loss) | l1
) -> torch.Tensor:
    """Box regression: per-object mean over the 4 coordinates, per-image mean, batch mean."""
    if kind == "mse":
        err = (pred - target).pow(2).mean(-1)
    elif kind == "l1":
        err = (pred - target).abs().mean(-1)
    else:
        raise ValueError(f"box loss kind={kind!r}: choose mse or l1")
    return _per_image_mean(err, valid).mean()


def mask_bce_loss(
    logits: torch.Tensor,  # [B, O, M, M]
    target: torch.Tensor,  # [B, O, M, M] {0, 1}
    valid: torch.Tensor,  # [B, O] bool
    has_masks: torch.Tensor,  # [B] bool; images without ground-truth masks contribute 0
) -> torch.Tensor:
    """Mask binary cross-entropy: pixel mean per object, per-image mean, batch mean."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean((-2, -1))
    return (_per_image_mean(bce, valid) * has_masks.to(bce.dtype)).mean()


def d_hinge_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss on scores [B]."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_hinge_loss(fake: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss on scores [B]."""
    return -fake.mean()


class LayoutLoss:
    """All of a training step's losses as one scalar, for one backward pass and one optimiser.

    The discriminator is updated simultaneously with the generator: its loss sees detached
    layouts, and the generator's adversarial term goes through a copy of the discriminator with
    detached parameters, so each network gets only its own gradients from the single backward.
    """

    def __init__(
        self,
        model: LayoutModel,
        discriminator: LayoutDiscriminator | None = None,  # None: no adversarial term
        box_weight: float = 10.0,
        mask_weight: float = 0.1,
        adv_weight: float = 0.0,
        box_loss: str = "mse",  # mse | l1
    ) -> None:
        if adv_weight > 0 and discriminator is None:
            raise ValueError("adv_weight > 0 needs a discriminator")
        self.model, self.disc = model, discriminator
        self.box_weight, self.mask_weight, self.adv_weight = box_weight, mask_weight, adv_weight
        self.box_loss = box_loss

    def __call__(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """(total loss, {name: detached term}, boxes [B, O, 4], mask probabilities [B, O, M, M])."""
        valid = batch["obj_valid"]
        boxes, mask_logits = self.model.layout(batch["objects"], valid, batch["triples"],
                                               batch["triple_valid"], batch.get("attributes"))
        masks = torch.sigmoid(mask_logits) * valid[..., None, None].to(mask_logits.dtype)
        if mask_logits.shape != batch["masks"].shape:
            raise ConfigError(f"predicted masks {tuple(mask_logits.shape)} vs data masks "
                             f"{tuple(batch['masks'].shape)}: set train_layout.mask_size to the "
                             "dataset's preprocess.mask_size")
        terms = {
            "box": box_regression_loss(boxes, batch["boxes"], valid, self.box_loss),
            "mask": mask_bce_loss(mask_logits, batch["masks"], valid, batch["has_masks"]),
        }
        gen = self.box_weight * terms["box"] + self.mask_weight * terms["mask"]
        total = gen
        if self.disc is not None:
            args = (batch["objects"], valid, batch["has_masks"])
            real = self.disc(batch["objects"], batch["boxes"], batch["masks"], *args[1:])
            fake = self.disc(batch["objects"], boxes.detach(), masks.detach(), *args[1:])
            frozen = {k: v.detach() for k, v in self.disc.named_parameters()}
            fake_g = functional_call(self.disc, frozen,
                                     (batch["objects"], boxes, masks, *args[1:]))
            terms["g_adv"] = g_hinge_loss(fake_g)
            terms["d"] = d_hinge_loss(real, fake)
            gen = gen + self.adv_weight * terms["g_adv"]
            total = gen + terms["d"]
        terms["loss"] = gen
        return total, {k: v.detach() for k, v in terms.items()}, boxes, masks
