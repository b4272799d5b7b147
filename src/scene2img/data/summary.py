"""Human-facing summaries of a processed dataset: the one-screen text after preprocessing, and
`scene2img data stats` (a PNG of histograms and an HTML page)."""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

import numpy as np

from scene2img.data.processed import SPLITS, load_vocab, read_manifest, split_url
from scene2img.data.shards import ShardReader
from scene2img.data.sources import has_masks


def format_summary(dataset_url: str | Path) -> str:
    """One screen from the manifest: kept per split, dropped by reason, vocabulary sizes."""
    m = read_manifest(dataset_url)
    counts, drops = m["counts"], m["dropped"]
    lines = [f"{m['source']} dataset at {dataset_url}"]
    lines.append("  kept:    " + ", ".join(f"{k} {counts[k]}" for k in SPLITS)
                 + f"  (total {sum(counts.values())} images)")
    sizes = m["vocab_sizes"]
    lines.append("  vocab:   " + ", ".join(f"{sizes[k]} {k}" for k in
                                           ("objects", "predicates", "attributes")))
    lines.append(f"  image:   {m['params']['image_size']} px, masks "
                 + (f"{m['params']['mask_size']} x {m['params']['mask_size']}"
                    if has_masks(m["source"]) else "none (Visual Genome)"))
    if drops:
        lines.append("  dropped:")
        width = max(len(r) for r in drops)
        for reason, n in sorted(drops.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"    {reason:<{width}}  {n}")
    return "\n".join(lines)


def dataset_stats(dataset_url: str) -> dict:
    """Class histogram, objects per image and box areas over all splits (__image__ excluded)."""
    vocab = load_vocab(dataset_url)
    classes: Counter[str] = Counter()
    per_image, areas, counts = [], [], {}
    for split in SPLITS:
        reader = ShardReader(split_url(dataset_url, split))
        counts[split] = len(reader)
        for i in range(len(reader)):
            rec = reader[i]
            real = rec.objects[:-1]
            per_image.append(len(real))
            classes.update(vocab.object_idx_to_name[o] for o in real)
            areas.extend((rec.boxes[:-1, 2] * rec.boxes[:-1, 3]).tolist())
    return {"counts": counts, "classes": dict(classes.most_common()),
            "objects_per_image": per_image, "box_areas": areas}


def write_stats(dataset_url: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write `stats.png` and `stats.html` (default: into the dataset folder's `stats/`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = dataset_stats(dataset_url)
    out = Path(out_dir) if out_dir else Path(dataset_url) / "stats"
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    top = list(stats["classes"].items())[:40]
    axes[0].bar(range(len(top)), [n for _, n in top])
    axes[0].set_xticks(range(len(top)), [n for n, _ in top], rotation=70, fontsize=7)
    axes[0].set_title("objects per class")
    opi = stats["objects_per_image"]
    axes[1].hist(opi, bins=np.arange(0, max(opi, default=1) + 2) - 0.5)
    axes[1].set_title("objects per image")
    axes[2].hist(np.sqrt(stats["box_areas"]), bins=30)
    axes[2].set_title("box size (sqrt of area fraction)")
    fig.tight_layout()
    png = out / "stats.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)

    manifest = read_manifest(dataset_url)
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{c}</td></tr>"
                   for n, c in stats["classes"].items())
    drops = "".join(f"<tr><td>{html.escape(r)}</td><td>{c}</td></tr>"
                    for r, c in manifest.get("dropped", {}).items())
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>scene2img dataset: {html.escape(dataset_url)}</title></head><body>
<h1>{html.escape(manifest.get('source', '?'))} dataset</h1>
<p>{html.escape(dataset_url)}; records per split: {stats['counts']};
objects per image: mean {np.mean(opi) if opi else 0:.2f}, max {max(opi, default=0)}</p>
<img src="stats.png" alt="histograms">
<h2>Classes</h2><table><tr><th>class</th><th>objects</th></tr>{rows}</table>
<h2>Dropped during preprocessing</h2><table><tr><th>reason</th><th>count</th></tr>{drops}</table>
</body></html>
"""
    page_path = out / "stats.html"
    page_path.write_text(page)
    return png, page_path
