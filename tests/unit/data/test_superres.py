"""Super-resolution pairs: degradations, crops drawn from (seed, epoch, index) only, the raw images
of a processed split, and bad images."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from scene2img.data.superres import (
    SuperResDataset,
    bicubic_downscale,
    bicubic_upscale,
    load_rgb,
    nearest_upscale,
    raw_image_paths,
    shave,
    split_image_ids,
)
from scene2img.errors import DataError
from tests.conftest import toy_params

pytestmark = pytest.mark.usefixtures("one_thread")


def _image(path, w=40, h=30):
    torch.manual_seed(0)
    arr = (torch.rand(h, w, 3) * 255).to(torch.uint8).numpy()
    Image.fromarray(arr).save(path)
    return path


def test_bicubic_downscale_is_8_bit_and_keeps_flat_colour():
    hr = torch.rand(2, 3, 16, 12)
    lr = bicubic_downscale(hr, 4)
    assert lr.shape == (2, 3, 4, 3)
    assert torch.equal(lr, (lr * 255).round() / 255)  # stored as 8-bit images are
    flat = torch.full((3, 8, 8), 0.4)
    assert torch.allclose(bicubic_downscale(flat, 2), torch.full((3, 4, 4), 0.4), atol=1 / 255)
    with pytest.raises(ValueError, match="not a multiple of the scale 4"):
        bicubic_downscale(torch.rand(3, 10, 8), 4)


def test_baselines_and_shave():
    lr = torch.rand(1, 3, 5, 6)
    assert bicubic_upscale(lr, 2).shape == nearest_upscale(lr, 2).shape == (1, 3, 10, 12)
    assert torch.equal(nearest_upscale(lr, 2)[..., ::2, ::2], lr)
    assert shave(torch.zeros(1, 3, 10, 12), 2).shape == (1, 3, 6, 8)


def test_training_crops_depend_on_seed_epoch_and_index_only(tmp_path):
    data = SuperResDataset([_image(tmp_path / "a.png")], scale=2, patch=6, eval_size=20, seed=3)
    item = data[(0, False, 0)]
    assert item["hr"].shape == (3, 12, 12) and item["lr"].shape == (3, 6, 6)
    assert torch.equal(data[(0, False, 0)]["hr"], item["hr"])  # no global random state
    torch.manual_seed(123)
    assert torch.equal(data[(0, False, 0)]["hr"], item["hr"])
    others = [data[(0, False, e)]["hr"] for e in range(1, 6)]
    assert any(not torch.equal(o, item["hr"]) for o in others)
    assert torch.equal(item["lr"], bicubic_downscale(item["hr"], 2))


def test_flip_and_rotation_are_applied_to_the_crop(tmp_path):
    path = _image(tmp_path / "a.png")
    plain = SuperResDataset([path], 2, 6, 20, seed=0, augment=False)
    flipped = plain[(0, True, 0)]["hr"]
    assert torch.equal(flipped, plain[(0, False, 0)]["hr"].flip(-1))
    rotated = SuperResDataset([path], 2, 6, 20, seed=0, augment=True)
    # the same crop window (same draws), rotated by a multiple of 90 degrees
    crop = plain[(0, False, 0)]["hr"]
    got = rotated[(0, False, 0)]["hr"]
    assert any(torch.equal(got, crop.rot90(k, dims=(-2, -1))) for k in range(4))


def test_evaluation_items_are_centre_crops(tmp_path):
    path = _image(tmp_path / "a.png", w=40, h=30)
    item = SuperResDataset([path], 4, 8, eval_size=20)[0]
    full = load_rgb(path)
    assert torch.equal(item["hr"], full[:, 5:25, 10:30])
    assert item["lr"].shape == (3, 5, 5)


def test_bad_images_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.png: raw image not found"):
        load_rgb(tmp_path / "missing.png")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="bad.jpg: unreadable image"):
        load_rgb(tmp_path / "bad.jpg")
    small = SuperResDataset([_image(tmp_path / "s.png", w=20, h=16)], 4, 8, eval_size=16)
    with pytest.raises(DataError, match=r"s.png: 20x16 px, smaller than the 32 px crop"):
        small[(0, False, 0)]


def test_raw_images_of_a_processed_split(toy_vg):
    params = toy_params("vg").preprocess
    ids = split_image_ids(toy_vg, "test")
    paths = raw_image_paths(toy_vg.parent / "raw", params, ids)
    assert len(paths) == len(ids) > 0 and all(p.is_file() for p in paths)
    with Image.open(paths[0]) as im:
        assert im.size == (320, 240)  # the raw size, not the processed 64 px
    with pytest.raises(DataError, match="1 of 2 images of the processed dataset are not in this "
                                        "raw vg dataset"):
        raw_image_paths(toy_vg.parent / "raw", params, [ids[0], "no-such-image"])
