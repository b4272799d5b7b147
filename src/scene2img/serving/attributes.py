"""Per-class attribute statistics of a training set, and seeded sampling from them.

Objects a user adds without attributes get a plausible set sampled from the sets seen on that
class in training (whole sets, not independent attributes, so a car gets one colour, not three).
The statistics travel with the registered model.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from scene2img.data.processed import split_url
from scene2img.data.shards import ShardReader
from scene2img.data.vocab import Vocab

MAX_SETS_PER_CLASS = 64  # the most frequent attribute sets kept per class


def attribute_statistics(dataset_url: str, vocab: Vocab, split: str = "train") -> dict:
    """`{class name: {"objects": n, "sets": [[attribute names], count], ...}}` (JSON-ready)."""
    sets: dict[int, Counter[tuple[int, ...]]] = defaultdict(Counter)
    reader = ShardReader(split_url(dataset_url, split))
    for i in range(len(reader)):
        rec = reader[i]
        for cls, attrs in zip(rec.objects.tolist(), rec.attributes, strict=True):
            if cls != 0:
                sets[cls][tuple(sorted(attrs))] += 1
    names = vocab.attribute_idx_to_name
    stats = {}
    for cls in sorted(sets):
        common = sorted(sets[cls].items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_SETS_PER_CLASS]
        stats[vocab.object_idx_to_name[cls]] = {
            "objects": sum(sets[cls].values()),
            "sets": [[[names[a] for a in s], n] for s, n in common],
        }
    return stats


def sample_attributes(stats: dict, class_name: str, rng: np.random.Generator) -> list[str]:
    """One attribute set for `class_name`, drawn by training frequency ([] for unseen classes)."""
    entry = stats.get(class_name)
    if not entry or not entry["sets"]:
        return []
    counts = np.array([n for _, n in entry["sets"]], np.float64)
    pick = rng.choice(len(counts), p=counts / counts.sum())
    return list(entry["sets"][pick][0])
