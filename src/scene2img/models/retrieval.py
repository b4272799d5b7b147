"""BachGAN's background retrieval (Li et al., CVPR 2020): the training scenes whose label maps
best match a layout of foreground boxes, for the fusion module to build a background from.

The score (BachGAN's code, `scripts/retrival_ious_ade20k_halfset/retrival_seg_ade20k.py` in
Cold-Winter/BachGAN): for a query with foreground classes `C_q`, `B_c` the pixels inside any of
its class-`c` boxes and, in a bank map, `M_c` the pixels labelled `c`,

    I = sum_{c in C_q} |B_c & M_c|
    U = sum_{c in C_q} |B_c| + |M_c| - |B_c & M_c|
    score = I / U                      (0 when U = 0: a query without foreground boxes)

one intersection-over-union over all of the query's classes together (a ratio of sums, not a
sum of per-class ratios). The top `m` maps are retrieved (BachGAN's code keeps 3); while
training, the query's own image is excluded (the code skips the bank entry of the same file).
Boxes are rasterised at the bank's resolution S (`box_pixels`): normalised `x, y, w, h` cover
columns `round(x S) .. round((x + w) S) - 1` (at least one) and the same for rows. Two
differences from the reference, by design: its maps are 256 x 256 (ours `segmap_size`, 64), and it
takes a training query's boxes from the contours of the query's own label map (boxes under 30 px
dropped), where ours are the layout's objects (the record's connected regions of at least
`min_region_area`, or a served layout's boxes).

The reference loops in Python over the whole bank for every query. Here the bank is encoded
once (`MemoryBank`), and a batch of queries is scored with one sparse matrix product:

- each bank map becomes per-class occupancy grids at G x G (G divides S; cell = k x k pixels,
  k = S / G): `occ[n, c, g]` = the fraction of cell g labelled c, foreground classes only, a
  sparse [N, F * G * G] matrix (a map holds a few classes);
- each query becomes the same grids of its class-wise box masks, `cov[q, c, g]` = the fraction of
  cell g inside a class-c box (sparse [Q, F * G * G]: a query holds a few boxes);
- `I ~= k^2 * cov @ occ^T` (one sparse-sparse product for the batch, scipy); `|B_c|` and `|M_c|`
  are exact pixel counts at S, so U is exact up to I.

The approximation is only in I, and only in cells where both the boxes and the class cover part
of the cell: there `k^2 occ cov` (the product of the two fractions) stands for the true overlap,
which can be anywhere from `max(0, occ + cov - 1) k^2` to `min(occ, cov) k^2`. With G = S every
fraction is 0 or 1 and the score is exact (the tests check this against a plain loop);
`benchmarks/retrieval.py` measures the error and the top-m agreement at smaller G.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F


def box_pixels(boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel ranges of normalised `x, y, w, h` boxes at `size` x `size`.

    boxes: [..., 4]. Returns `(cols, rows)`, each [..., 2] int64 `[start, stop)`, clipped to the
    image and at least one pixel wide.
    """
    x0 = torch.round(boxes[..., 0] * size)
    y0 = torch.round(boxes[..., 1] * size)
    x1 = torch.maximum(torch.round((boxes[..., 0] + boxes[..., 2]) * size), x0 + 1)
    y1 = torch.maximum(torch.round((boxes[..., 1] + boxes[..., 3]) * size), y0 + 1)
    cols = torch.stack([x0, x1], -1).clamp(0, size).long()
    rows = torch.stack([y0, y1], -1).clamp(0, size).long()
    return cols, rows


class MemoryBank:
    """A bank of label maps, encoded once for `score` / `retrieve`.

    segmaps: [N, S, S] uint8 label maps (the processed records' `segmap`: vocabulary object
    indices, 0 = unlabeled). foreground: the object indices that queries may hold (the class
    split's foreground); other labels in the maps never score. grid: G, a divisor of S.

    Example:
        >>> maps = torch.zeros(2, 4, 4, dtype=torch.uint8)
        >>> maps[0, :2, :2] = 7  # a class-7 region top left; map 1 has none
        >>> bank = MemoryBank(maps, foreground=[7], grid=4)
        >>> bank.score(torch.tensor([[7]]), torch.tensor([[[0.0, 0.0, 0.5, 0.5]]]))
        tensor([[1., 0.]])
    """

    def __init__(
        self,
        segmaps: torch.Tensor,  # [N, S, S] uint8
        foreground: Sequence[int],  # object indices that count (BachGAN: the 115 objects)
        grid: int,  # G: occupancy grids are G x G; G = S is exact
        chunk: int = 1024,  # maps encoded at a time (bounds the memory of the build)
    ) -> None:
        if segmaps.ndim != 3 or segmaps.shape[1] != segmaps.shape[2]:
            raise ValueError(f"segmaps: expected [N, S, S] label maps, got {tuple(segmaps.shape)}")
        size = segmaps.shape[-1]
        if grid < 1 or size % grid:
            raise ValueError(f"grid={grid}: must divide the maps' side {size} (e.g. {size // 4})")
        fg = sorted({int(c) for c in foreground})
        if not fg or fg[0] < 0 or fg[-1] > 255:
            raise ValueError("foreground: give the object indices (0-255) that queries hold")
        self.size, self.grid, self.num_maps = size, grid, segmaps.shape[0]
        self.foreground = fg
        self.slot = torch.full((256,), -1, dtype=torch.long)  # object index -> foreground slot
        self.slot[torch.tensor(fg)] = torch.arange(len(fg))
        self.cells = grid * grid
        self.dim = len(fg) * self.cells  # F * G * G
        occupancy, self.area = self._encode(segmaps, chunk)
        self.occupancy_t = occupancy.T.tocsr()  # [F*G*G, N]: the product's right side

    def _encode(self, segmaps: torch.Tensor, chunk: int) -> tuple[sp.csr_matrix, torch.Tensor]:
        s, g = self.size, self.grid
        k = s // g
        # the cell of each pixel, [S * S]
        ys, xs = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        cell = ((ys // k) * g + xs // k).reshape(-1)
        rows, cols, vals, areas = [], [], [], []
        for start in range(0, self.num_maps, chunk):
            slots = self.slot[segmaps[start : start + chunk].reshape(-1, s * s).long()]  # [n, S*S]
            n = slots.shape[0]
            valid = slots >= 0
            which = torch.arange(n).unsqueeze(1).expand(n, s * s)[valid]
            key = (which * len(self.foreground) + slots[valid]) * self.cells + cell.expand(n, -1)[valid]
            key, count = torch.unique(key, return_counts=True)  # sorted: by map, class, cell
            rows.append(key // self.dim + start)
            cols.append(key % self.dim)
            vals.append(count.float() / (k * k))
            area = torch.zeros(n * len(self.foreground))
            area.index_add_(0, key // self.cells, count.float())
            areas.append(area.view(n, len(self.foreground)))
        occupancy = sp.csr_matrix(
            (torch.cat(vals).numpy(), (torch.cat(rows).numpy(), torch.cat(cols).numpy())),
            shape=(self.num_maps, self.dim), dtype=np.float32)
        return occupancy, torch.cat(areas)  # [N, F*G*G] fractions, [N, F] pixel counts

    def encode_queries(
        self,
        objects: torch.Tensor,  # [Q, O] object indices; anything not foreground is ignored
        boxes: torch.Tensor,  # [Q, O, 4] normalised x, y, w, h
    ) -> tuple[sp.csr_matrix, torch.Tensor]:
        """Per query: the occupancy grids of its class-wise box masks, sparse [Q, F*G*G]
        (fractions of each cell), and the exact pixel count of each class's box mask at S,
        [Q, F]."""
        if objects.ndim != 2 or boxes.shape != (*objects.shape, 4):
            raise ValueError(f"queries: expected objects [Q, O] and boxes [Q, O, 4], got "
                             f"{tuple(objects.shape)} and {tuple(boxes.shape)}")
        q, s, f = objects.shape[0], self.size, len(self.foreground)
        slot = self.slot[objects.long().clamp(0, 255)]
        slot[(objects < 0) | (objects > 255)] = -1
        qi, oi = torch.nonzero(slot >= 0, as_tuple=True)
        pair = qi * f + slot[qi, oi]  # (query, class) of each foreground box
        pairs, inverse = torch.unique(pair, return_inverse=True)
        cols, rows = box_pixels(boxes[qi, oi].float(), s)
        ar = torch.arange(s)
        in_x = (ar >= cols[:, :1]) & (ar < cols[:, 1:])  # [P_boxes, S]
        in_y = (ar >= rows[:, :1]) & (ar < rows[:, 1:])
        masks = torch.zeros(len(pairs), s, s)
        masks.index_add_(0, inverse, (in_y[:, :, None] & in_x[:, None, :]).float())
        masks = (masks > 0).float()  # the union of each class's boxes, [P, S, S]
        cover = F.avg_pool2d(masks[:, None], s // self.grid).reshape(len(pairs), self.cells)
        p_i, cell = torch.nonzero(cover, as_tuple=True)
        rows = pairs[p_i] // f
        cols = (pairs[p_i] % f) * self.cells + cell
        grids = sp.csr_matrix((cover[p_i, cell].numpy(), (rows.numpy(), cols.numpy())),
                              shape=(q, self.dim), dtype=np.float32)
        area = torch.zeros(q * f)
        area[pairs] = masks.sum((1, 2))
        return grids, area.view(q, f)

    def score(self, objects: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """BachGAN's similarity of each query to each bank map, [Q, N] in [0, 1]."""
        grids, box_area = self.encode_queries(objects, boxes)
        k2 = (self.size // self.grid) ** 2
        inter = torch.from_numpy((grids @ self.occupancy_t).toarray()) * k2  # [Q, N]: the product
        present = (box_area > 0).float()  # [Q, F]: the query's classes
        union = box_area.sum(1, keepdim=True) + present @ self.area.T - inter
        return torch.where(union > 0, inter / union.clamp_min(1e-9), torch.zeros_like(inter))

    def retrieve(
        self,
        objects: torch.Tensor,  # [Q, O]
        boxes: torch.Tensor,  # [Q, O, 4]
        m: int,  # maps per query (BachGAN: 3)
        exclude: torch.Tensor | None = None,  # [Q] bank index of the query's own map, -1: none
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The `m` best bank maps per query: (indices [Q, m] int64, scores [Q, m]), best first.
        `exclude` keeps each query's own image out (training: the query is in the bank)."""
        if not 1 <= m <= self.num_maps - (exclude is not None):
            raise ValueError(f"m={m}: retrieve between 1 and the bank's {self.num_maps} maps "
                             "(less the excluded one)")
        scores = self.score(objects, boxes)
        if exclude is not None:
            rows = torch.nonzero(exclude >= 0).squeeze(1)
            scores[rows, exclude[rows]] = -1.0  # below every real score (>= 0)
        top = torch.topk(scores, m, dim=1)
        return top.indices, top.values
