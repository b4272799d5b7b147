"""BachGAN's generator (Li et al., CVPR 2020): a salient-object layout and m retrieved background
label maps -> a fused label feature map -> an image through SPADE residual blocks.

    layout map      the query's foreground boxes, multi-hot over the C label channels
                    (`layout_label_map`)                                           [B, C, s, s]
    candidates      each retrieved map one-hot (`one_hot_maps`), its foreground classes and the
                    pixels under the query's boxes cleared, the query's boxes pasted in
                    (`compose_candidates`)                                      [B, m, C, s, s]
    fusion          one shared encoder E (conv 3 x 3 + ReLU, C -> C) over the layout and every
                    candidate; the layout's code plus the candidates' mean through the memory
                    conv M (conv 3 x 3 + ReLU, C -> C), plus the layout's code again:
                        fused = M(E(L) + mean_j E(S_j)) + E(L)                  [B, C, s, s]
    generator       the fused map resized (nearest) to S / 32 -> conv 3 x 3 -> 16 ngf, then
                    SPADE residual blocks conditioned on the fused map, with x2 nearest
                    upsampling before the first middle block and each up block (five in all,
                    SPADE's "normal"): head 16 ngf at S/32, middle 16, 16 ngf at S/16, up 8,
                    4, 2, 1 ngf at S/8 ... S; then LeakyReLU(0.2), conv 3 x 3 -> 3, tanh
                                                                                [B, 3, S, S]

The C channels are the vocabulary's object classes, index 0 (`__image__`) standing for ADE20K's
"unlabeled" (the stored label maps' 0): 151 for ADE20K, as the reference's 150 + don't-care.

From BachGAN's code (Cold-Winter/BachGAN: `SPADEGenerator` with `--retrival_memory`, the ADE20K
dataset's candidate composition), on SPADE's generator (NVlabs/SPADE). Where ours differs:

- The fusion runs at the stored maps' size s (`preprocess.ade20k.segmap_size`, 64), not at the
  image size: the maps are stored at s, and SPADE resizes its condition to each block with
  nearest anyway. The reference's fusion convolutions run at 256 x 256.
- The reference's encoder hard-codes m = 3 candidates (a view of 4 = 1 + 3 maps); here m is the
  candidates' dimension, any m >= 1.
- The candidates are composed on the fly in `forward` (the reference composes them in its
  dataset), so the generator takes the raw retrieved maps, as retrieval returns them.
- The reference's generator also has a segmentation head (`conv_seg`, log-softmax), trained
  only with `--seg`, which BachGAN's ADE20K run does not set; it is left out.
- Only the deterministic input (the downsampled map) of the reference: SPADE's z input needs
  its VAE image encoder, which BachGAN does not use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scene2img.config import BACHGAN_IMAGE_SIZES
from scene2img.models.boxes import real_objects
from scene2img.models.retrieval import MemoryBank, box_pixels
from scene2img.models.spade import SPADEResBlock, init_weights

UPSAMPLINGS = 5  # SPADE's "normal": x2 five times, from image_size / 32
# (name, output width in units of ngf) of the SPADE blocks, in order
BLOCKS = (("head_0", 16), ("middle_0", 16), ("middle_1", 16), ("up_0", 8), ("up_1", 4),
          ("up_2", 2), ("up_3", 1))
_UPSAMPLED = frozenset({"middle_0", "up_0", "up_1", "up_2", "up_3"})  # x2 before these


def one_hot_maps(segmaps: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Label maps [..., s, s] (class indices) -> one-hot [..., C, s, s] float."""
    if int(segmaps.max()) >= num_classes or int(segmaps.min()) < 0:
        raise ValueError(f"label maps hold classes outside 0..{num_classes - 1}")
    return F.one_hot(segmaps.long(), num_classes).movedim(-1, -3).float()


def layout_label_map(
    objects: torch.Tensor,  # [B, O] class indices
    boxes: torch.Tensor,  # [B, O, 4] normalised x, y, w, h
    obj_valid: torch.Tensor,  # [B, O] bool
    num_classes: int,  # C
    size: int,  # s: the map's side
) -> torch.Tensor:
    """The layout's boxes as a multi-hot label map [B, C, s, s]: channel c is 1 inside any box of
    class c (real objects only: not padding, not `__image__`). Boxes cover the pixels retrieval
    counts for them (`retrieval.box_pixels`)."""
    keep = real_objects(objects, obj_valid)  # [B, O]
    if keep.any() and int(objects[keep].max()) >= num_classes:
        raise ValueError(f"objects hold classes outside 0..{num_classes - 1}")
    cols, rows = box_pixels(boxes.float(), size)  # [B, O, 2] each
    ar = torch.arange(size, device=boxes.device)
    in_x = (ar >= cols[..., :1]) & (ar < cols[..., 1:])  # [B, O, s]
    in_y = (ar >= rows[..., :1]) & (ar < rows[..., 1:])
    masks = (in_y[..., :, None] & in_x[..., None, :] & keep[..., None, None]).float()  # [B,O,s,s]
    classes = F.one_hot(objects.long() * keep, num_classes).float()  # [B, O, C]; padding -> 0
    out = torch.einsum("boc,bohw->bchw", classes, masks)
    return out.clamp(max=1.0)  # overlapping boxes of one class


def compose_candidates(
    backgrounds: torch.Tensor,  # [B, m, C, s, s] one-hot retrieved maps
    layout: torch.Tensor,  # [B, C, s, s] the query's layout map
    foreground: torch.Tensor,  # [C] bool: the foreground (object) classes
) -> torch.Tensor:
    """BachGAN's candidates [B, m, C, s, s]: each retrieved map keeps its background classes
    outside the query's boxes (its foreground classes and every class under a box cleared), and
    the query's boxes are pasted in."""
    covered = layout.amax(1, keepdim=True)[:, None]  # [B, 1, 1, s, s]
    keep = (~foreground).to(backgrounds.dtype).view(1, 1, -1, 1, 1)  # [1, 1, C, 1, 1]
    return backgrounds * keep * (1.0 - covered) + layout[:, None]


class BackgroundFusion(nn.Module):
    """The layout map [B, C, s, s] and m candidates [B, m, C, s, s] -> fused map [B, C, s, s]:
    `M(E(L) + mean_j E(S_j)) + E(L)`, E shared by the layout and the candidates."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        self.memory = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())

    def forward(self, layout: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        b, m, c, h, w = candidates.shape
        if layout.shape != (b, c, h, w):
            raise ValueError(f"layout {tuple(layout.shape)} does not match candidates "
                             f"{tuple(candidates.shape)} ([B, C, s, s] and [B, m, C, s, s])")
        maps = torch.cat([layout[:, None], candidates], dim=1)  # [B, 1 + m, C, s, s]
        codes = self.encode(maps.flatten(0, 1)).view(b, 1 + m, c, h, w)
        query = codes[:, 0]  # [B, C, s, s]
        return self.memory(query + codes[:, 1:].mean(1)) + query


class BachGANGenerator(nn.Module):
    """(layout map [B, C, s, s], retrieved maps [B, m, C, s, s]) -> image [B, 3, S, S] in [-1, 1].

    Example:
        >>> g = BachGANGenerator(num_classes=5, foreground=[3, 4], image_size=128, ngf=1,
        ...                      spade_hidden=4)
        >>> layout = torch.zeros(2, 5, 16, 16); layout[:, 3, 4:8, 4:8] = 1
        >>> backgrounds = one_hot_maps(torch.randint(0, 5, (2, 3, 16, 16)), 5)
        >>> g(layout, backgrounds).shape
        torch.Size([2, 3, 128, 128])
    """

    def __init__(
        self,
        num_classes: int,  # C: label channels (the vocabulary's objects; ADE20K: 151)
        foreground: Sequence[int],  # the foreground (object) classes (the class split)
        image_size: int = 256,  # S: 128 | 256 (64: ours, the toy world)
        ngf: int = 64,  # base width (SPADE: 64)
        spade_hidden: int = 128,  # SPADE's shared conv width
        norm: str = "batch",  # SPADE's param-free norm
    ) -> None:
        super().__init__()
        if image_size not in BACHGAN_IMAGE_SIZES:
            raise ValueError(f"image_size={image_size}: choose one of {BACHGAN_IMAGE_SIZES}")
        fg = torch.zeros(num_classes, dtype=torch.bool)
        fg[torch.as_tensor(list(foreground), dtype=torch.long)] = True
        self.register_buffer("foreground", fg, persistent=False)  # [C]
        self.num_classes, self.image_size = num_classes, image_size
        self.start = image_size // 2**UPSAMPLINGS  # 4 at 128 px, 8 at 256 px
        self.fusion = BackgroundFusion(num_classes)
        self.fc = nn.Conv2d(num_classes, 16 * ngf, 3, padding=1)
        widths = [16] + [w for _, w in BLOCKS]
        self.blocks = nn.ModuleDict({
            name: SPADEResBlock(cin * ngf, cout * ngf, num_classes, spade_hidden, norm)
            for (name, cout), cin in zip(BLOCKS, widths[:-1], strict=True)})
        self.conv_img = nn.Conv2d(ngf, 3, 3, padding=1)
        init_weights(self)

    def fuse(self, layout: torch.Tensor, backgrounds: torch.Tensor) -> torch.Tensor:
        """The fused map [B, C, s, s] of the layout and the raw retrieved maps (one-hot)."""
        candidates = compose_candidates(backgrounds.to(layout.dtype), layout, self.foreground)
        return self.fusion(layout, candidates)

    def decode(self, fused: torch.Tensor) -> torch.Tensor:
        """Fused map [B, C, s, s] -> image [B, 3, S, S]."""
        x = self.fc(F.interpolate(fused, size=(self.start, self.start), mode="nearest"))
        for name, block in self.blocks.items():  # [B, 16 ngf, S/32, S/32] ... [B, ngf, S, S]
            if name in _UPSAMPLED:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, fused)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))

    def forward(self, layout: torch.Tensor, backgrounds: torch.Tensor) -> torch.Tensor:
        if layout.ndim != 4 or layout.shape[1] != self.num_classes:
            raise ValueError(f"layout: expected [B, {self.num_classes}, s, s], got "
                             f"{tuple(layout.shape)}")
        return self.decode(self.fuse(layout, backgrounds))


class BachGANWithMemory:
    """The generator and its memory bank: layouts -> the top `m` bank maps retrieved for each
    (none excluded) -> fused with the layout -> painted. What serving
    (`serving.bachgan.LayoutToImage`) and evaluation run, on one layout or a split's batches.

    Example:
        >>> g = BachGANGenerator(num_classes=5, foreground=[3, 4], image_size=64, ngf=1,
        ...                      spade_hidden=2).eval()
        >>> maps = torch.randint(0, 5, (6, 8, 8), dtype=torch.uint8)
        >>> painter = BachGANWithMemory(g, maps, m=2, grid=4)
        >>> images, fused, index, scores = painter(torch.tensor([[3, 0]]),
        ...     torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]]]),
        ...     torch.tensor([[True, True]]))
        >>> images.shape, fused.shape, index.shape
        (torch.Size([1, 3, 64, 64]), torch.Size([1, 5, 8, 8]), torch.Size([1, 2]))
    """

    def __init__(
        self,
        generator: BachGANGenerator,  # eval mode, on its device
        maps: torch.Tensor,  # [N, s, s] uint8: the bank's label maps
        m: int,  # maps retrieved per layout
        grid: int,  # the retrieval's occupancy grid (divides s)
    ) -> None:
        self.generator, self.maps, self.m = generator, maps, m
        self.segmap_size = int(maps.shape[-1])
        foreground = torch.nonzero(generator.foreground).squeeze(1).tolist()
        self.bank = MemoryBank(maps, foreground, grid)  # encoded once

    @torch.no_grad()
    def __call__(
        self,
        objects: torch.Tensor,  # [B, O] class indices (`__image__` and padding are ignored)
        boxes: torch.Tensor,  # [B, O, 4] normalised x, y, w, h
        obj_valid: torch.Tensor,  # [B, O] bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images [B, 3, S, S] in [-1, 1] and the fused maps [B, C, s, s] (on the generator's
        device), the retrieved bank positions and their scores [B, m] (CPU), best first."""
        c = self.generator.num_classes
        device = next(self.generator.parameters()).device
        objects, boxes, obj_valid = objects.cpu(), boxes.cpu().float(), obj_valid.cpu()
        layout = layout_label_map(objects, boxes, obj_valid, c, self.segmap_size)  # [B,C,s,s]
        queries = torch.where(real_objects(objects, obj_valid), objects, -1)  # padding: none
        index, scores = self.bank.retrieve(queries, boxes, self.m)  # [B, m] each
        backgrounds = one_hot_maps(self.maps[index], c)  # [B, m, C, s, s]
        fused = self.generator.fuse(layout.to(device), backgrounds.to(device))
        return self.generator.decode(fused), fused, index, scores
