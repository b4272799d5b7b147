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
