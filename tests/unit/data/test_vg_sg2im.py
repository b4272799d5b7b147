"""Visual Genome kept exactly as sg2im keeps it: our preprocessing against an independent
statement of sg2im's `preprocess_vg` (`sg2im_vg_oracle`), on a VG 1.4-format fixture with real
names, real image ids and the real files' quirks (`vg_real_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scene2img.config import load_params
from scene2img.data import filters
from scene2img.data.drops import DropCounts
from scene2img.data.processed import load_vocab
from scene2img.data.shards import ShardReader
from scene2img.data.sources.visual_genome import read_visual_genome
from scene2img.stages.preprocess import preprocess
from tests.unit.data.sg2im_vg_oracle import sg2im_preprocess_vg
from tests.unit.data.vg_real_fixture import (
    CRAFTED,
    RARE_NAMES,
    REAL_SPLITS,
    REAL_VOCAB,
    THRESHOLDS,
    write_fixture,
)

SPLITS = ("train", "val", "test")


def params(split_file: Path, **vg: object):
    overrides = [f"preprocess.vg.{k}={v}" for k, v in {**THRESHOLDS, **vg}.items()]
    return load_params(overrides=[f"preprocess.vg.split_file={split_file}", "preprocess.workers=1",
                                  "preprocess.image_size=64", *overrides]).preprocess


def ours(root: Path, split_file: Path, **vg: object):
    p = params(split_file, **vg)
    drops = DropCounts()
    scenes = list(read_visual_genome(root, drops, p.vg.normalise_names))
    filters.assign_splits(scenes, "vg", p, drops)
    kept, vocab = filters.filter_visual_genome(scenes, p, drops)
    return kept, vocab, drops


@pytest.fixture(scope="module", params=[0, 1])
def fixture(request, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp(f"vg-real-{request.param}") / "vg"
    info = write_fixture(root, seed=request.param)
    split_file = root.parent / "vg_splits.json"
    split_file.write_text(json.dumps(info["splits"]))
    vocab, kept = sg2im_preprocess_vg(root, info["splits"], **THRESHOLDS)
    return {"root": root, "split_file": split_file, "vocab": vocab, "kept": kept, **info}


def test_same_images_per_split_same_graphs_and_same_vocabulary(fixture: dict) -> None:
    kept, vocab, drops = ours(fixture["root"], fixture["split_file"])
    expected = fixture["kept"]
    # the fixture is rich enough to mean something
    assert all(len(expected[s]) >= 5 for s in SPLITS), {s: len(expected[s]) for s in SPLITS}
    assert len(fixture["vocab"]["object_idx_to_name"]) > 10
    assert len(fixture["vocab"]["attribute_idx_to_name"]) > 5

    for split in SPLITS:
        assert [s.image_id for s in kept if s.split == split] == \
            [str(k.image_id) for k in expected[split]], split
    assert vocab.to_json() == fixture["vocab"]  # names, indices and order

    by_id = {s.image_id: s for s in kept}
    for split in SPLITS:
        for k in expected[split]:
            s = by_id[str(k.image_id)]
            assert [o.name for o in s.objects] == k.objects
            assert [list(o.box) for o in s.objects] == k.boxes
            assert [(r.subject, r.predicate, r.object) for r in s.relationships] == \
                k.relationships
            assert [o.attributes for o in s.objects] == [list(dict.fromkeys(a))
                                                         for a in k.attributes]
    # the quirks were there, and counted
    for reason in ("object: relationship endpoint not in objects.json",
                   "object: object_id repeated within an image in objects.json",
                   "relationship: an endpoint is not in objects.json "
                   "(keep_relationship_endpoints=false)",
                   "relationship: val/test predicate not in the vocabulary as written "
                   "(normalise_eval_predicates=false)",
                   "object: smaller than min_object_size=32px",
                   "object: no name in the vocabulary (min_object_instances)"):
        assert drops[reason] > 0, reason


def test_the_vocabulary_is_made_of_real_names(fixture: dict) -> None:
    real = json.loads(REAL_VOCAB.read_text())
    vocab = fixture["vocab"]
    assert set(vocab["object_idx_to_name"]) - set(RARE_NAMES) <= set(real["object_idx_to_name"])
    assert set(vocab["pred_idx_to_name"]) <= set(real["pred_idx_to_name"])
    assert set(vocab["attribute_idx_to_name"]) <= set(real["attribute_idx_to_name"])


def test_crafted_images_fail_the_filter_they_were_made_for(fixture: dict) -> None:
    kept_ids = {k.image_id for split in SPLITS for k in fixture["kept"][split]}
    intents = fixture["intents"]
    kept_by_intent = {intent: image_id in kept_ids for image_id, intent in intents.items()}
    assert kept_by_intent == {
        "small image": False,
        "too few objects": False,
        "too many objects": False,
        "no relationship left": False,
        "too many relationships": False,
        "endpoints only in relationships.json": False,
        "predicates only in capitals": False,
        "predicates only in alias forms": False,
        "three objects through a repeated id": True,
        "boxes partly outside the image": True,
        "predicates as written in the vocabulary": True,
    }
    assert len(intents) == len(CRAFTED)


def test_the_full_real_split_file_keeps_the_same_images(fixture: dict) -> None:
    kept, _, drops = ours(fixture["root"], REAL_SPLITS)
    for split in SPLITS:
        assert [s.image_id for s in kept if s.split == split] == [
            str(k.image_id) for k in fixture["kept"][split]]
    real = json.loads(REAL_SPLITS.read_text())
    named = sum(len(v) for v in fixture["splits"].values())
    assert drops["split file: ids not in the dataset"] == sum(map(len, real.values())) - named


@pytest.mark.parametrize(("option", "intent"), [
    ("keep_relationship_endpoints", "endpoints only in relationships.json"),
    ("normalise_eval_predicates", "predicates only in alias forms"),
    ("normalise_eval_predicates", "predicates only in capitals"),
])
def test_each_fix_keeps_the_image_sg2im_drops(fixture: dict, option: str, intent: str) -> None:
    image_id = next(str(i) for i, what in fixture["intents"].items() if what == intent)
    kept, _, _ = ours(fixture["root"], fixture["split_file"])
    assert image_id not in {s.image_id for s in kept}
    kept, _, _ = ours(fixture["root"], fixture["split_file"], **{option: "true"})
    assert image_id in {s.image_id for s in kept}


def test_fixes_that_drop_what_sg2im_keeps(fixture: dict) -> None:
    by_intent = {what: str(i) for i, what in fixture["intents"].items()}
    kept, _, _ = ours(fixture["root"], fixture["split_file"], dedupe_object_ids="true")
    assert by_intent["three objects through a repeated id"] not in {s.image_id for s in kept}
    kept, _, _ = ours(fixture["root"], fixture["split_file"], clip_boxes="true")
    s = next(s for s in kept if s.image_id == by_intent["boxes partly outside the image"])
    assert all(o.box[0] >= 0 and o.box[0] + o.box[2] <= s.width for o in s.objects)
    kept, vocab, _ = ours(fixture["root"], fixture["split_file"], normalise_names="true")
    assert {"white ", "White"}.isdisjoint(vocab.attribute_idx_to_name)
    assert len(vocab.object_idx_to_name) >= len(fixture["vocab"]["object_idx_to_name"])


def test_preprocess_writes_the_images_sg2im_keeps_in_its_order(tmp_path: Path) -> None:
    root = tmp_path / "vg"
    info = write_fixture(root, seed=2, per_split=(50, 8, 8), jpegs=True)
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps(info["splits"]))
    vocab, kept = sg2im_preprocess_vg(root, info["splits"], **THRESHOLDS)
    result = preprocess(root, tmp_path / "p", params(split_file), progress=False)
    for split in SPLITS:
        reader = ShardReader(tmp_path / "p" / split)
        assert [reader[i].image_id for i in range(len(reader))] == \
            [str(k.image_id) for k in kept[split]]
    assert load_vocab(tmp_path / "p").to_json() == vocab
    assert result.counts == {s: len(kept[s]) for s in SPLITS}
    rec = ShardReader(tmp_path / "p" / "test")[0]
    names = [vocab["object_idx_to_name"][o] for o in rec.objects[:-1]]
    assert names == kept["test"][0].objects
