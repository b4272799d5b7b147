"""BachGAN's background retrieval: queries per second against a bank of label maps, vectorised
(`scene2img.models.retrieval.MemoryBank`) against the reference's plain loop over the bank, the
error of the low-resolution grids, and retrieval quality on the ADE20K toy world.

    .venv/bin/python benchmarks/retrieval.py [--bank 20000] [--grid 16] [--toy-images 400]

The bank: synthetic ADE20K-like label maps at `preprocess.ade20k.segmap_size` (a horizon between
two background classes, 1-8 rectangles of foreground classes, Zipf-distributed over the 115
foreground classes in objectInfo150 order); queries are the rectangles of maps outside the bank.
The loop (`tests/unit/models/retrieval_reference.py`, BachGAN's per-map, per-class loop at the
maps' full resolution) is timed on a few queries against the whole bank (`--loop-maps` times it
on a slice and extrapolates to the bank, which the JSON records). Toy world: a fresh ADE20K toy world, preprocessed with
`salient_only`; the bank is its training split's maps, the queries the foreground boxes of its
val and test scenes (and of the training scenes, each excluded from its own retrieval); the truth
is `sceneCategories.txt`. Random retrieval's accuracy is computed exactly (the chance that a
bank scene has the query's scene type).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _measure import RESULTS, round_sig, write_result

from scene2img.config import load_params
from scene2img.data.filters import class_split
from scene2img.data.toyworld.classes import ADE_OBJECT_INFO_LINES
from scene2img.models.retrieval import MemoryBank

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the reference loop, in tests/
from tests.unit.models.retrieval_reference import brute_force_scores  # noqa: E402


def ade_split(params) -> tuple[list[int], list[int]]:
    """(foreground, background) ADE20K class ids under the configured split."""
    table = {int(line.split("\t")[0]): line.split("\t")[-1].split(",")[0].strip()
             for line in ADE_OBJECT_INFO_LINES[1:]}
    return class_split(table, params.preprocess.ade20k.class_split)


def synthetic_maps(
    n: int, size: int, foreground: list[int], background: list[int], seed: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[n, S, S] uint8 maps, and the rectangles drawn in each: classes [n, 8] (0: none) and
    normalised boxes [n, 8, 4]."""
    g = torch.Generator().manual_seed(seed)
    ar = torch.arange(size)
    bg = torch.tensor(background)
    sky, ground = (bg[torch.randint(len(bg), (n, 1, 1), generator=g)] for _ in range(2))
    horizon = torch.randint(size // 5, 4 * size // 5, (n, 1, 1), generator=g)
    maps = torch.where(ar[None, :, None] < horizon, sky, ground).to(torch.uint8)
    zipf = 1.0 / torch.arange(1, len(foreground) + 1)
    fg = torch.tensor(foreground)
    count = torch.randint(1, 9, (n, 1), generator=g)
    classes = fg[torch.multinomial(zipf, n * 8, replacement=True, generator=g)].view(n, 8)
    classes = torch.where(torch.arange(8) < count, classes, 0)
    lo, hi = size // 16, size // 2
    x0, y0 = (torch.randint(0, size - lo, (n, 8), generator=g) for _ in range(2))
    w, h = (torch.randint(lo, hi, (n, 8), generator=g) for _ in range(2))
    for j in range(8):
        inside = (((ar >= y0[:, j, None]) & (ar < y0[:, j, None] + h[:, j, None]))[:, :, None]
                  & ((ar >= x0[:, j, None]) & (ar < x0[:, j, None] + w[:, j, None]))[:, None])
        inside &= (classes[:, j] > 0)[:, None, None]
        maps = torch.where(inside, classes[:, j, None, None].to(torch.uint8), maps)
    boxes = torch.stack([x0, y0, (x0 + w).clamp(max=size) - x0, (y0 + h).clamp(max=size) - y0],
                        -1).float() / size
    return maps, classes, boxes


def vectorised_rate(bank: MemoryBank, objects, boxes, m: int, batch: int, repeats: int
                    ) -> dict:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(objects), batch):
            bank.retrieve(objects[i : i + batch], boxes[i : i + batch], m)
        times.append(time.perf_counter() - t0)
    return {"queries": len(objects), "batch": batch, "seconds_best": round_sig(min(times)),
            "seconds_all": [round_sig(t) for t in times],
            "queries_per_s": round_sig(len(objects) / min(times))}


def loop_rate(maps: torch.Tensor, objects, boxes, foreground, queries: int, maps_timed: int,
              bank_size: int) -> dict:
    sub = maps[:maps_timed].numpy()
    t0 = time.perf_counter()
    for q in range(queries):
        brute_force_scores(objects[q].numpy(), boxes[q].numpy(), sub, foreground)
    seconds = time.perf_counter() - t0
    per_query = seconds / queries * bank_size / maps_timed
    return {"timed_queries": queries, "timed_maps": maps_timed, "seconds": round_sig(seconds),
            "extrapolated_to_maps": bank_size, "seconds_per_query": round_sig(per_query),
            "queries_per_s": round_sig(1.0 / per_query)}


def approximation(maps, objects, boxes, foreground, grids: list[int], m: int) -> dict:
    """Scores at each grid G against the exact ones (G = S) on the same bank and queries."""
    size = maps.shape[-1]
    exact = MemoryBank(maps, foreground, grid=size).score(objects, boxes)
    top_exact = torch.topk(exact, m, dim=1).indices
    out = {"bank_maps": len(maps), "queries": len(objects)}
    for grid in grids:
        approx = MemoryBank(maps, foreground, grid=grid).score(objects, boxes)
        top = torch.topk(approx, m, dim=1).indices
        overlap = [len(set(a.tolist()) & set(b.tolist())) / m for a, b in zip(top, top_exact,
                                                                               strict=True)]
        best = exact.max(1).values
        got = exact.gather(1, top[:, :1]).squeeze(1)  # the exact score of the approximate top 1
        out[f"grid_{grid}"] = {
            "score_abs_error_mean": round_sig(float((approx - exact).abs().mean())),
            "score_abs_error_max": round_sig(float((approx - exact).abs().max())),
            f"top{m}_overlap": round_sig(float(np.mean(overlap))),
            "top1_same": round_sig(float((top[:, 0] == top_exact[:, 0]).float().mean())),
            "top1_exact_score_ratio": round_sig(float((got / best.clamp_min(1e-9)).mean())),
        }
    return out


def toy_world_quality(images: int, grid: int, m: int, seed: int) -> dict:
    """Top-1 (and any-of-top-m) scene-type accuracy of retrieval on the ADE20K toy world."""
    from scene2img.data.processed import load_vocab
    from scene2img.data.shards import ShardReader
    from scene2img.data.sources.ade20k import read_scene_categories
    from scene2img.data.toyworld import generate_toyworld
    from scene2img.stages.preprocess import preprocess

    params = load_params(experiment="toyworld", overrides=[
        f"toyworld.images={images}", "toyworld.width=320", "toyworld.height=240",
        f"toyworld.seed={seed}", "preprocess.source=ade20k", "preprocess.ade20k.salient_only=true",
        "preprocess.ade20k.min_objects_per_image=1", "preprocess.ade20k.val_size=40"])
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw", Path(tmp) / "processed"
        generate_toyworld("ade20k", raw, params.toyworld)
        preprocess(raw, out, params.preprocess, progress=False)
        kinds = read_scene_categories(raw)
        vocab = load_vocab(out)
        splits = {s: [r for r in ShardReader(out / s)] for s in ("train", "val", "test")}
    table = {i: n for i, n in enumerate(vocab.object_idx_to_name) if n}
    foreground, _ = class_split({i: n for i, n in table.items() if i},
                                params.preprocess.ade20k.class_split)
    train = splits["train"]
    bank = MemoryBank(torch.from_numpy(np.stack([r.segmap for r in train])), foreground, grid)
    bank_kinds = np.array([kinds[r.image_id] for r in train])

    def evaluate(records, exclude_self: bool) -> dict:
        width = max(len(r.objects) for r in records)
        objects = torch.zeros(len(records), width, dtype=torch.long)  # 0: __image__, ignored
        boxes = torch.zeros(len(records), width, 4)
        for i, r in enumerate(records):
            objects[i, : len(r.objects)] = torch.from_numpy(r.objects)
            boxes[i, : len(r.objects)] = torch.from_numpy(r.boxes)
        exclude = torch.arange(len(records)) if exclude_self else None
        idx, _ = bank.retrieve(objects, boxes, m, exclude=exclude)
        truth = np.array([kinds[r.image_id] for r in records])
        got = bank_kinds[idx.numpy()]  # [Q, m]
        chance = np.mean([(bank_kinds[np.arange(len(train)) != (i if exclude_self else -1)]
                           == t).mean() for i, t in enumerate(truth)])
        return {"queries": len(records), "top1_accuracy": round_sig(float((got[:, 0] == truth)
                                                                          .mean())),
                f"any_of_top{m}_accuracy": round_sig(float((got == truth[:, None]).any(1).mean())),
                "random_top1_accuracy": round_sig(float(chance))}

    kinds_count = {k: int((bank_kinds == k).sum()) for k in sorted(set(bank_kinds))}
    return {"images": images, "bank_maps": len(train), "scene_types_in_bank": kinds_count,
            "held_out": evaluate(splits["val"] + splits["test"], exclude_self=False),
            "train_self_excluded": evaluate(train, exclude_self=True)}


def main() -> None:
    params = load_params()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bank", type=int, default=20000, help="label maps in the bank")
    ap.add_argument("--size", type=int, default=params.preprocess.ade20k.segmap_size)
    ap.add_argument("--grid", type=int, default=params.train_bachgan.retrieval.grid)
    ap.add_argument("--m", type=int, default=params.train_bachgan.retrieval.m)
    ap.add_argument("--queries", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--loop-queries", type=int, default=4)
    ap.add_argument("--loop-maps", type=int, default=None,
                    help="bank slice the loop is timed on (default: the whole bank)")
    ap.add_argument("--approx-maps", type=int, default=2000)
    ap.add_argument("--approx-grids", type=int, nargs="+", default=[4, 8, 16, 32])
    ap.add_argument("--toy-images", type=int, default=400, help="0: skip the toy world")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "retrieval.json")
    args = ap.parse_args()
    torch.manual_seed(args.seed)

    foreground, background = ade_split(params)
    t0 = time.perf_counter()
    maps, classes, boxes = synthetic_maps(args.bank + args.queries, args.size, foreground,
                                          background, args.seed)
    bank_maps, q_objects, q_boxes = maps[: args.bank], classes[args.bank :], boxes[args.bank :]
    print(f"{args.bank} + {args.queries} synthetic {args.size} x {args.size} maps in "
          f"{time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    bank = MemoryBank(bank_maps, foreground, grid=args.grid)
    build = time.perf_counter() - t0
    bank.retrieve(q_objects[:8], q_boxes[:8], args.m)  # warm-up
    vec = vectorised_rate(bank, q_objects, q_boxes, args.m, args.batch, repeats=3)
    print(f"vectorised (G={args.grid}): bank built in {build:.1f} s, {bank.occupancy_t.nnz} "
          f"non-zeros; {vec['queries_per_s']:.0f} queries/s (batches of {args.batch})")
    loop = loop_rate(bank_maps, q_objects, q_boxes, foreground, args.loop_queries,
                     args.loop_maps or args.bank, args.bank)
    print(f"loop: {loop['seconds_per_query']:.2f} s per query over {args.bank} maps "
          f"({loop['queries_per_s']:.3f} queries/s; timed on {args.loop_queries} queries x "
          f"{loop['timed_maps']} maps)")
    speedup = vec["queries_per_s"] / loop["queries_per_s"]
    print(f"speed-up: {speedup:.0f} x")

    approx = approximation(bank_maps[: args.approx_maps], q_objects[:256], q_boxes[:256],
                           foreground, args.approx_grids, args.m)
    for grid in args.approx_grids:
        a = approx[f"grid_{grid}"]
        print(f"  G={grid:>2}: |score error| mean {a['score_abs_error_mean']:.4f} max "
              f"{a['score_abs_error_max']:.3f}; top-{args.m} overlap {a[f'top{args.m}_overlap']:.3f}"
              f", top-1 same {a['top1_same']:.3f}, exact score of top-1 "
              f"{a['top1_exact_score_ratio']:.3f} of the best")

    figures = {
        "bank_maps": args.bank, "map_size": args.size, "grid": args.grid, "m": args.m,
        "class_split": params.preprocess.ade20k.class_split.name,
        "bank_build_seconds": round_sig(build), "bank_nonzeros": int(bank.occupancy_t.nnz),
        "vectorised": vec, "loop": loop, "speedup": round_sig(speedup),
        "goal": {"queries_per_s": 200, "speedup": 100},
        "approximation_vs_exact": approx,
    }
    if args.toy_images:
        t0 = time.perf_counter()
        toy = toy_world_quality(args.toy_images, args.grid, args.m, args.seed)
        figures["toy_world"] = toy
        for name in ("held_out", "train_self_excluded"):
            r = toy[name]
            print(f"toy world, {name} ({r['queries']} queries, bank {toy['bank_maps']}): top-1 "
                  f"scene type {r['top1_accuracy']:.3f} vs random {r['random_top1_accuracy']:.3f}"
                  f"; any of top {args.m}: {r[f'any_of_top{args.m}_accuracy']:.3f}")
        print(f"  ({time.perf_counter() - t0:.0f} s)")
    write_result(args.out, figures)


if __name__ == "__main__":
    main()
