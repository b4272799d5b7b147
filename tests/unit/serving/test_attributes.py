from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from scene2img.data.processed import load_vocab
from scene2img.serving.attributes import attribute_statistics, sample_attributes


def test_statistics_and_seeded_sampling(toy_vg: Path) -> None:
    vocab = load_vocab(toy_vg)
    stats = attribute_statistics(str(toy_vg), vocab)
    car = stats["car"]
    assert car["objects"] == sum(n for _, n in car["sets"])
    colours = {"red", "green", "blue", "yellow", "white", "black", "gray", "orange", "purple",
               "brown", "pink"}
    # toy cars have exactly one colour (plus a size): sampled sets keep that structure
    rng = np.random.default_rng(0)
    draws = [sample_attributes(stats, "car", rng) for _ in range(200)]
    assert all(len(set(d) & colours) <= 1 for d in draws)
    assert len({tuple(d) for d in draws}) > 3  # varied
    # frequencies follow the training counts
    top_set, top_n = car["sets"][0]
    share = Counter(tuple(d) for d in draws)[tuple(top_set)] / len(draws)
    assert abs(share - top_n / car["objects"]) < 0.1
    # seeded
    a = [sample_attributes(stats, "car", np.random.default_rng(5)) for _ in range(3)]
    b = [sample_attributes(stats, "car", np.random.default_rng(5)) for _ in range(3)]
    assert a == b
    assert sample_attributes(stats, "no-such-class", rng) == []
