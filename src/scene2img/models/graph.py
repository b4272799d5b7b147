"""sg2im's graph triple convolution (Johnson et al. 2018), on padded batches.

A scene graph batch is padded: objects `[B, O, D]` with a validity mask `obj_valid [B, O]`, and
triples `[B, T, 3]` (subject position, predicate index, object position) with `triple_valid [B, T]`.
Padding never reaches a valid output: the MLPs run on the valid triples and objects only (packed),
and padded objects and predicates come out as zeros.

One layer updates every (subject, predicate, object) triple with an MLP on the concatenation of the
three vectors; the predicate's new vector is read off directly, while each object pools (averages)
the candidate vectors it received as a subject or an object of its triples, then a second MLP maps
the pooled vector to the object's new vector.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GraphTripleConv", "GraphTripleConvNet", "mlp"]


def mlp(
    dims: list[int],  # [in, hidden..., out]
    final_relu: bool = True,  # sg2im's build_mlp ends with a non-linearity by default
) -> nn.Sequential:
    """Linear layers with ReLU between them (and after the last one when `final_relu`)."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(d_in, d_out))
        if final_relu or i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GraphTripleConv(nn.Module):
    """One graph convolution layer over (subject, predicate, object) triples."""

    def __init__(
        self,
        dim_in: int,  # D: object and predicate vector size in
        dim_out: int | None = None,  # output vector size (default: dim_in)
        hidden: int = 512,  # H: candidate vector size
        pooling: str = "avg",  # "avg" (sg2im's default) or "sum"
    ) -> None:
        super().__init__()
        if pooling not in ("avg", "sum"):
            raise ValueError(f"pooling={pooling!r}: choose 'avg' or 'sum'")
        dim_out = dim_out or dim_in
        self.dim_in, self.dim_out, self.hidden, self.pooling = dim_in, dim_out, hidden, pooling
        # Triple MLP: [s, p, o] -> [new_s candidate (H), new_p (D_out), new_o candidate (H)].
        self.net1 = mlp([3 * dim_in, hidden, 2 * hidden + dim_out])
        # Object MLP: pooled candidate (H) -> new object vector (D_out).
        self.net2 = mlp([hidden, hidden, dim_out])

    def forward(
        self,
        obj: torch.Tensor,  # [B, O, D_in]
        pred: torch.Tensor,  # [B, T, D_in]
        triples: torch.Tensor,  # [B, T, 3] long (subject position, predicate, object position)
        obj_valid: torch.Tensor,  # [B, O] bool
        triple_valid: torch.Tensor,  # [B, T] bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """New object vectors [B, O, D_out] and predicate vectors [B, T, D_out]."""
        b, o, _ = obj.shape
        t = triples.shape[1]
        # Work on the valid triples only: [N_t] flat positions of their subjects and objects.
        batch_idx = torch.arange(b, device=obj.device)[:, None].expand(b, t)[triple_valid]  # [N_t]
        s_flat = batch_idx * o + triples[..., 0][triple_valid]  # [N_t] into [B * O]
        o_flat = batch_idx * o + triples[..., 2][triple_valid]  # [N_t]
        flat = obj.reshape(b * o, -1)  # [B * O, D_in]

        # Update each triple.
        t_vecs = torch.cat([flat[s_flat], pred[triple_valid], flat[o_flat]], dim=-1)  # [N_t, 3D]
        t_out = self.net1(t_vecs)  # [N_t, 2H + D_out]
        new_s, new_p, new_o = t_out.split([self.hidden, self.dim_out, self.hidden], dim=-1)

        # Pool the candidates each object received as a subject or as an object (summed in at
        # least fp32: under bf16 autocast the candidates are bf16).
        acc = torch.promote_types(new_s.dtype, torch.float32)
        pooled = obj.new_zeros(b * o, self.hidden, dtype=acc) \
            .index_add(0, s_flat, new_s.to(acc)).index_add(0, o_flat, new_o.to(acc))  # [B * O, H]
        if self.pooling == "avg":
            ones = pooled.new_ones(s_flat.shape[0])
            counts = pooled.new_zeros(b * o).index_add(0, s_flat, ones).index_add(0, o_flat, ones)
            pooled = pooled / counts.clamp(min=1.0).unsqueeze(-1)

        # New object vectors for the valid objects; padding stays zero.
        obj_out = self.net2(pooled.reshape(b, o, -1)[obj_valid])  # [N_o, D_out]
        new_obj = obj_out.new_zeros(b, o, self.dim_out).index_put((obj_valid,), obj_out)
        new_pred = new_p.new_zeros(b, t, self.dim_out).index_put((triple_valid,), new_p)
        return new_obj, new_pred  # [B, O, D_out], [B, T, D_out]


class GraphTripleConvNet(nn.Module):
    """A stack of `GraphTripleConv` layers (the first may change the vector size)."""

    def __init__(
        self,
        dim_in: int,  # input object / predicate vector size (the embeddings)
        dim: int = 128,  # vector size of every layer's output
        hidden: int = 512,  # candidate vector size
        layers: int = 5,  # number of graph convolutions (sg2im: 5)
        pooling: str = "avg",
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers={layers}: need at least one graph convolution")
        self.layers = nn.ModuleList(
            GraphTripleConv(dim_in if i == 0 else dim, dim, hidden, pooling) for i in range(layers)
        )

    def forward(
        self,
        obj: torch.Tensor,  # [B, O, D_in]
        pred: torch.Tensor,  # [B, T, D_in]
        triples: torch.Tensor,  # [B, T, 3]
        obj_valid: torch.Tensor,  # [B, O]
        triple_valid: torch.Tensor,  # [B, T]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.layers:
            obj, pred = layer(obj, pred, triples, obj_valid, triple_valid)
        return obj, pred
