from __future__ import annotations

from pathlib import Path

import pytest

from scene2img.config import DEFAULT_PARAMS, load_params
from scene2img.errors import ConfigError


def test_project_params_load_with_published_defaults() -> None:
    p = load_params()
    assert p.preprocess.vg.min_object_instances == 2000
    assert p.preprocess.vg.min_relationship_instances == 500
    assert p.preprocess.coco_stuff.min_object_size == 0.02
    assert (p.preprocess.coco_stuff.min_objects_per_image,
            p.preprocess.coco_stuff.max_objects_per_image) == (3, 8)
    assert p.preprocess.mask_size == 16


def test_experiment_and_overrides_apply_in_order() -> None:
    p = load_params(experiment="toyworld", overrides=["preprocess.image_size=64",
                                                      "preprocess.vg.min_object_instances=7"])
    assert p.preprocess.image_size == 64
    assert p.preprocess.vg.min_object_instances == 7  # override beats the experiment
    assert p.preprocess.vg.min_attribute_instances == 5  # from the experiment
    assert p.preprocess.vg.min_object_size == 32  # untouched default


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("preprocess.image_sise=64", "unknown parameter(s) preprocess.image_sise"),
        ("preprocess.image_size=big", "preprocess.image_size must be int"),
        ("preprocess.strict=1", "preprocess.strict must be bool"),
        ("preprocess.vg.split_fractions=0.5", "preprocess.vg.split_fractions must be a list"),
        ("no_equals_sign", "not of the form dotted.key=value"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_params(overrides=[override])


def test_the_experiment_names_the_config() -> None:
    assert load_params().tracking.config == "default"
    assert load_params(experiment="toyworld").tracking.config == "toyworld"
    assert load_params(experiment="toyworld_coco").tracking.config == "toyworld_coco"


def test_unknown_experiment_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="toyworld"):
        load_params(experiment="nope")


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("preprocess: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    text = DEFAULT_PARAMS.read_text().replace("  mask_size: 16", "")
    missing = tmp_path / "missing.yaml"
    missing.write_text(text)
    with pytest.raises(ConfigError, match="missing parameter preprocess.mask_size"):
        load_params(missing)


def test_experiments_extend_others(tmp_path: Path) -> None:
    p = load_params(experiment="demo")
    assert p.train_image.max_steps == 150 and p.evaluate.max_images == 24  # demo's own
    assert p.preprocess.image_size == 64 and p.evaluate.backbone == "random-inception"  # toyworld's
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"extends: {loop}\n")
    with pytest.raises(ConfigError, match="extends itself"):
        load_params(experiment=str(loop))


def test_partial_load_checks_what_it_has_and_names_what_it_lacks() -> None:
    from scene2img.config import params_from_dict
    from scene2img.errors import ParamNotGivenError

    raw = {"preprocess": {"source": "vg"}, "tracking": {"uri": "sqlite:///x.db",
                                                       "experiment": "e"}}
    p = params_from_dict(raw, where="step X", partial=True)
    assert p.preprocess.source == "vg" and p.tracking.uri == "sqlite:///x.db"
    assert p.to_dict() == raw  # only what it was given
    with pytest.raises(ParamNotGivenError, match="step X: parameter preprocess.image_size was "
                                                 "not given"):
        p.preprocess.image_size + 1
    with pytest.raises(ConfigError, match="parameter train_image was not given"):
        _ = p.train_image.lr_g
    with pytest.raises(ConfigError, match="step X: preprocess.source must be str"):
        params_from_dict({"preprocess": {"source": 3}}, where="step X", partial=True)
    with pytest.raises(ConfigError, match="missing parameter"):
        params_from_dict(raw, where="step X")  # a full load still wants every key


def test_unknown_sections_are_errors_like_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown section\(s\) trian_image"):
        load_params(overrides=["trian_image.lr_g=0.1"])
    typo = tmp_path / "typo.yaml"
    typo.write_text(DEFAULT_PARAMS.read_text() + "\nserving:\n  max_records: 4\n")
    with pytest.raises(ConfigError, match=rf"{typo}: unknown section\(s\) serving; known: "):
        load_params(typo)
    from scene2img.config import params_from_dict

    with pytest.raises(ConfigError, match=r"step X: unknown section\(s\) extra"):
        params_from_dict({"extra": {}}, where="step X", partial=True)


def test_one_mask_size_throughout() -> None:
    from scene2img.config import MASK_SIZE_KEYS, params_from_dict

    p = load_params(overrides=[f"{key}=8" for key in MASK_SIZE_KEYS])
    assert (p.preprocess.mask_size, p.train_layout.mask_size, p.train_image.g.mask_size) == (8,) * 3
    for key in MASK_SIZE_KEYS:
        with pytest.raises(ConfigError, match=rf"mask sizes disagree \(.*{key}=8.*\)"):
            load_params(overrides=[f"{key}=8"])
    # a partial load checks the sizes it was given, and only those
    assert params_from_dict({"train_layout": {"mask_size": 8}}, partial=True).to_dict() == {
        "train_layout": {"mask_size": 8}}
    with pytest.raises(ConfigError, match="mask sizes disagree"):
        params_from_dict({"preprocess": {"mask_size": 16}, "train_image": {"g": {"mask_size": 8}}},
                         partial=True)


def _yaml_keys(text: str, indent: str = "") -> list[str]:
    import re

    return re.findall(rf"^{indent}([a-z_0-9]+):", text, flags=re.MULTILINE)


def test_params_yaml_and_the_dataclasses_follow_the_flow() -> None:
    """One order everywhere: params.yaml's sections, the `Params` fields and the dataclasses'
    definitions in config.py; and within each section, its keys and its dataclass's fields."""
    import dataclasses
    import inspect
    import typing

    import yaml

    from scene2img import config

    flow = ["toyworld", "preprocess", "data", "tracking", "trainer", "train_layout",
            "train_image", "train_bachgan", "train_upscaler", "evaluate", "register", "promote", "serve",
            "pipeline"]
    text = DEFAULT_PARAMS.read_text()
    assert _yaml_keys(text) == flow
    assert [f.name for f in dataclasses.fields(config.Params)] == flow
    hints = typing.get_type_hints(config.Params)
    lines = [inspect.getsourcelines(hints[name])[1] for name in flow]
    assert lines == sorted(lines), "config.py defines the section dataclasses out of order"

    def check(cls: type, raw: dict, where: str) -> None:
        assert list(raw) == [f.name for f in dataclasses.fields(cls)], where
        for name, tp in typing.get_type_hints(cls).items():
            if dataclasses.is_dataclass(tp):
                check(tp, raw[name], f"{where}.{name}")

    raw = yaml.safe_load(text)
    for name in flow:
        check(hints[name], raw[name], name)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train_bachgan.image_size=32", "train_bachgan.image_size=32: choose one of 64, 128, 256"),
        ("train_bachgan.loss=lsgan", "train_bachgan.loss='lsgan': choose one of hinge, wgan-gp"),
        ("train_bachgan.num_d=0", "train_bachgan.num_d=0: must be at least 1"),
    ],
)
def test_bad_bachgan_networks_are_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_params(overrides=[override])
    assert message in str(info.value) and "\n" not in str(info.value)
    p = load_params(overrides=["train_bachgan.loss=wgan-gp", "train_bachgan.image_size=128"])
    assert (p.train_bachgan.loss, p.train_bachgan.image_size) == ("wgan-gp", 128)
