"""Exported models: files of the other kind, missing, of another format version, not loadable
with `weights_only=True`, or not torch files at all."""

from __future__ import annotations

import pytest
import torch

from scene2img.errors import ModelError
from scene2img.training.export import IMAGE_MODEL_FILE, load_generator, load_layout_model


def test_loading_a_wrong_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.pt"
    torch.save({"format": "scene2img.image"}, bad)
    with pytest.raises(ModelError, match="expected a scene2img.layout export"):
        load_layout_model(bad)
    with pytest.raises(ModelError, match="not found"):
        load_layout_model(tmp_path / "missing.pt")


def test_export_rejects_other_files(tmp_path):
    bad = tmp_path / IMAGE_MODEL_FILE
    torch.save({"format": "scene2img.layout", "format_version": 1}, bad)
    with pytest.raises(ModelError, match="expected a scene2img.image export"):
        load_generator(bad)


class _Foreign:
    """Pickled by a stranger: `weights_only=True` must refuse to build it."""


@pytest.mark.parametrize(("payload", "message"), [
    ({"format": "scene2img.layout", "format_version": 2}, "export format version 2"),
    ({"format": "scene2img.layout", "format_version": 1, "payload": _Foreign()},
     "not a loadable scene2img model"),
    ([1, 2, 3], "expected a scene2img.layout export, found 'list'"),
])
def test_unsafe_or_other_versions_are_refused(tmp_path, payload, message):
    bad = tmp_path / "model.pt"
    torch.save(payload, bad)
    with pytest.raises(ModelError, match=message):
        load_layout_model(bad)
    (tmp_path / "text.pt").write_text("not a model")
    with pytest.raises(ModelError, match="not a loadable scene2img model"):
        load_layout_model(tmp_path / "text.pt")


def _tiny_bachgan_export(tmp_path, maps: torch.Tensor, ids: list[str]):
    from scene2img.data.vocab import Vocab
    from scene2img.models.bachgan import BachGANGenerator
    from scene2img.training.export import MemoryBankExport, export_bachgan

    vocab = Vocab(["__image__", "sky", "boat", "dog"], ["__in_image__", "left of"], [])
    G = BachGANGenerator(4, [2, 3], 64, ngf=1, spade_hidden=2)
    config = {"num_classes": 4, "foreground": [2, 3], "image_size": 64, "ngf": 1,
              "spade_hidden": 2, "segmap_size": 8, "retrieval": {"m": 2, "grid": 4},
              "class_split": "test-split", "max_objects": 4}
    return export_bachgan(tmp_path / "bachgan_model.pt", G, vocab, config,
                          MemoryBankExport(maps, ids))


def test_bachgan_export_carries_its_memory_bank(tmp_path):
    from scene2img.training.export import load_bachgan

    maps = torch.randint(0, 4, (3, 8, 8), dtype=torch.uint8)
    model = load_bachgan(_tiny_bachgan_export(tmp_path, maps, ["a", "b", "c"]))
    assert torch.equal(model.bank.maps, maps) and model.bank.image_ids == ["a", "b", "c"]
    assert model.config["retrieval"]["m"] == 2 and model.config["class_split"] == "test-split"
    assert model.generator.num_classes == 4 and not model.generator.training

    # a bank that cannot serve this model: classes beyond its vocabulary; fewer maps than m
    for bad in (torch.full((3, 8, 8), 9, dtype=torch.uint8), maps[:1]):
        path = _tiny_bachgan_export(tmp_path, bad, ["x"] * len(bad))
        with pytest.raises(ModelError, match="memory bank .* does not fit the model") as info:
            load_bachgan(path)
        assert "\n" not in str(info.value)
    path = _tiny_bachgan_export(tmp_path, maps, ["a", "b", "c"])
    payload = torch.load(path, weights_only=True)
    del payload["memory_bank"]  # an export written before exports carried the bank
    torch.save(payload, path)
    with pytest.raises(ModelError, match="no memory bank in this BachGAN export"):
        load_bachgan(path)
