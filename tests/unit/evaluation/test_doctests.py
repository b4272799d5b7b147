"""The `Example:` blocks in the evaluation modules' docstrings run."""

from __future__ import annotations

import dataclasses
import doctest
import importlib

import pytest
import torch

MODULES = ["backbones", "diversity", "evaluator", "images", "layout_metrics", "mask_agreement",
           "metrics", "protocol",
           "report"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"scene2img.evaluation.{name}")
    result = doctest.testmod(module, extraglobs={"torch": torch, "dataclasses": dataclasses},
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
