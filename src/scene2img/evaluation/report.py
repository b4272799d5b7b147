"""The evaluation report: one self-contained HTML file (images embedded as base64 PNG).

It shows the metrics and the protocol they were measured under, the notes (what was skipped),
the per-class SceneFID table (worst classes first), a sample grid (real image, then each sample
of the same layout) and the best and worst samples by their feature distance to the real image.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from scene2img.evaluation.evaluator import EvaluationResult, Sample
from scene2img.files import atomic_write_bytes


def image_grid(
    real: Tensor,  # [L, 3, S, S] uint8
    generated: Tensor,  # [L, K, 3, S, S] uint8
    pad: int = 2,  # pixels between cells (white)
) -> Tensor:
    """One row per layout: its real image, then its K samples. Returns `[3, H, W]` uint8.

    Example:
        >>> g = image_grid(torch.zeros(2, 3, 4, 4, dtype=torch.uint8),
        ...                torch.zeros(2, 3, 3, 4, 4, dtype=torch.uint8))
        >>> list(g.shape)
        [3, 14, 26]
    """
    if real.dim() != 4 or generated.dim() != 5 or len(real) != len(generated):
        raise ValueError(f"expected real [L, 3, S, S] and generated [L, K, 3, S, S], got "
                         f"{list(real.shape)} and {list(generated.shape)}")
    rows, cols = len(real), 1 + generated.shape[1]
    s = real.shape[-1]
    out = torch.full((3, pad + rows * (s + pad), pad + cols * (s + pad)), 255, dtype=torch.uint8)
    for r in range(rows):
        cells = [real[r], *generated[r]]
        for c, cell in enumerate(cells):
            y, x = pad + r * (s + pad), pad + c * (s + pad)
            out[:, y : y + s, x : x + s] = cell
    return out


def png_bytes(image: Tensor) -> bytes:  # [3, H, W] uint8
    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).contiguous().cpu().numpy()).save(buf, format="PNG")
    return buf.getvalue()


def write_grid(result: EvaluationResult, path: str | Path) -> Path:
    """The sample grid as a PNG (for MLflow)."""
    return atomic_write_bytes(path, png_bytes(image_grid(result.grid_real, result.grid_generated)))


def write_report(
    result: EvaluationResult,
    path: str | Path,  # .html
    title: str = "scene2img evaluation",
) -> Path:
    """Write the HTML report; images are embedded, so the file stands alone."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        "<h2>Metrics</h2>",
        _table(["metric", "value"], [[k, _num(v)] for k, v in sorted(result.metrics.items())]),
        "<h2>Protocol</h2>",
        _table(["field", "value"], [[k, str(v)] for k, v in result.protocol.to_dict().items()]),
    ]
    if result.notes:
        parts += ["<h2>Notes</h2><ul>", *(f"<li>{_e(n)}</li>" for n in result.notes), "</ul>"]
    parts.append("<h2>SceneFID per class</h2>")
    if result.per_class_scenefid:
        rows = sorted(result.per_class_scenefid.items(), key=lambda kv: -kv[1])
        parts.append(_table(["class", "SceneFID"], [[k, _num(v)] for k, v in rows]))
    else:
        parts.append("<p>No class had at least 2 real and 2 generated crops.</p>")
    if len(result.grid_real):
        parts += ["<h2>Samples</h2><p>Each row: the real image, then the samples of its layout.</p>",
                  _img(image_grid(result.grid_real, result.grid_generated))]
    for name, samples in (("Best samples", result.best), ("Worst samples", result.worst)):
        if samples:
            parts += [f"<h2>{name}</h2><p>Score: Inception feature distance to the real image "
                      "of the layout (1 - cosine; lower is closer).</p>", _samples(samples)]
    parts.append("</body></html>\n")
    return atomic_write_bytes(path, "\n".join(parts).encode())


_CSS = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
        "img{image-rendering:pixelated;margin:2px}")


def _e(text: str) -> str:
    return html.escape(str(text))


def _num(value: float) -> str:
    return f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(image: Tensor, alt: str = "") -> str:
    data = base64.b64encode(png_bytes(image)).decode()
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"


def _samples(samples: list[Sample]) -> str:
    rows = [
        "<tr>"
        f"<td>{_num(s.score)}</td><td>{s.index}</td><td>{s.sample}</td>"
        f"<td>{_img(s.real, 'real')}</td><td>{_img(s.generated, 'generated')}</td>"
        "</tr>"
        for s in samples
    ]
    head = "".join(f"<th>{h}</th>" for h in ("score", "layout", "sample", "real", "generated"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
