"""`make bench`'s runner (benchmarks/bench.py) on its tiny preset: the one results file has the
commit, the machine, each benchmark's work, rates that are that work over the best time, and the
training figures' share of the measured peak. No timed assertions: the figures themselves are
meaningless at this size."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from datetime import datetime
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(f"test_bench_{name}", BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def _close(rate: float, work: float, seconds: float) -> bool:
    return rate == pytest.approx(work / seconds, rel=2e-3)


def test_count_flops_and_rates():
    measure = _load("_measure")
    a, b = torch.randn(3, 5), torch.randn(5, 7)
    out, flop = measure.count_flops(lambda: a @ b)
    assert out.shape == (3, 7) and flop == 2 * 3 * 5 * 7
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    _, fwd = measure.count_flops(lambda: torch.nn.functional.conv2d(x, w, padding=1))
    _, both = measure.count_flops(
        lambda: torch.nn.functional.conv2d(x, w, padding=1).sum().backward())
    assert fwd == 2 * (3 * 4 * 4) * (2 * 3 * 3) and both == 3 * fwd  # backward: input and weight
    assert measure.rates({"images": 8, "flop": 1e12}, 4.0) == {"images_per_s": 2.0,
                                                              "flop_per_s": 2.5e11}


def test_bench_tiny_writes_one_results_file(tmp_path):
    out = tmp_path / "bench.json"
    bench = _load("bench")
    returned = bench.main(["--preset", "tiny", "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["benchmarks"] == json.loads(json.dumps(returned["benchmarks"]))
    assert sorted(tmp_path.iterdir()) == [out]  # one file, nothing beside it

    assert record["preset"] == "tiny" and set(record["settings"]) == set(record["benchmarks"])
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", record["commit"])
    datetime.fromisoformat(record["time_utc"])
    m = record["machine"]
    assert m["cores"] >= 1 and m["torch"] == torch.__version__ and len(m["load_average"]) == 3
    b = record["benchmarks"]
    assert set(b) == {"peak", "preprocess", "train_layout", "train_image", "evaluate"}
    assert set(record["wall_seconds"]) == set(b)

    peak = b["peak"]
    for op in ("matmul_fp32", "matmul_bf16", "conv3x3_fp32", "conv3x3_bf16"):
        assert peak[op]["flop"] > 0 and _close(peak[op]["flop_per_s"], peak[op]["flop"],
                                               peak[op]["seconds_best"])
    assert peak["matmul_fp32"]["flop"] == 2 * 64**3
    for dtype in ("fp32", "bf16"):
        assert peak["peak_flop_per_s"][dtype] == max(peak[f"matmul_{dtype}"]["flop_per_s"],
                                                     peak[f"conv3x3_{dtype}"]["flop_per_s"])
    best = peak["peak_flop_per_s"]

    p = b["preprocess"]
    assert p["images_written"] > 0 and p["bytes_read"] > 0 and p["bytes_written"] > 0
    for work in ("images", "bytes_read", "bytes_written"):
        amount = p["images_written"] if work == "images" else p[work]
        assert _close(p[f"{work}_per_s"], amount, p["seconds_best"])

    assert b["train_layout"]["configs"] == ["toyworld"]
    for config in ("toyworld",):
        row = b["train_layout"][config]
        assert row["flop_per_step"] > 0 and row["images_per_step"] == 4
        for kind, steps_per_s in (("model_step", row["model_steps_per_second"]),
                                  ("fit", row["fit_steps_per_second"])):
            assert row[kind]["flop_per_s"] == pytest.approx(row["flop_per_step"] * steps_per_s,
                                                            rel=1e-2)
            assert row[kind]["share_of_peak"] == pytest.approx(
                row[kind]["flop_per_s"] / best["fp32"], rel=1e-3)

    sizes = b["train_image"]["results"]
    assert list(sizes) == ["64px"]
    eager, fast = sizes["64px"]["eager_fp32"], sizes["64px"]["optimised"]
    assert eager["flop_per_iteration"] == fast["flop_per_iteration"] > 0  # the same work
    for run, dtype in ((eager, "fp32"), (fast, "bf16")):
        assert run["dtype"] == dtype
        assert _close(run["images_per_s"], 2, run["seconds_best"])
        assert _close(run["flop_per_s"], run["flop_per_iteration"], run["seconds_best"])
        assert run["share_of_peak"] == pytest.approx(run["flop_per_s"] / best[dtype], rel=1e-3)
    assert "issue 4" in b["train_image"]["reference"]["source"]  # a quoted figure says whence

    e = b["evaluate"]
    assert e["flop_per_image"] > 1e10  # InceptionV3 at 299 px: 5.7 G multiply-adds per image
    assert _close(e["images_per_s"], 1, e["seconds_best"])
    assert e["share_of_peak"] == pytest.approx(e["flop_per_s"] / best["fp32"], rel=1e-3)

    # The README's table: a row per figure (4 peak, preprocess, 2 layout, 2 image, evaluate).
    rows = bench.table(record).splitlines()
    assert len(rows) == 2 + 4 + 1 + 2 + 2 + 1 and all(r.count(" | ") == 3 for r in rows)
    assert f"**{e['images_per_s']} images/s**" in rows[-1]


def test_bench_refuses_an_unknown_preset(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _load("bench").main(["--preset", "huge", "--out", str(tmp_path / "bench.json")])
    assert "invalid choice: 'huge'" in capsys.readouterr().err
    assert not (tmp_path / "bench.json").exists()
