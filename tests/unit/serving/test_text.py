from __future__ import annotations

import pytest

from scene2img.data.vocab import Vocab
from scene2img.errors import SceneGraphError
from scene2img.serving.text import parse_text

VOCAB = Vocab(["__image__", "car", "tree", "sky", "grass", "traffic light", "person"],
              ["__in_image__", "left of", "above", "on", "in front of"],
              ["red", "green", "small", "large"])


def test_the_issue_example() -> None:
    g = parse_text("a red car left of a tree, sky above grass", VOCAB)
    assert [(o.name, o.attributes) for o in g.objects] == [
        ("car", ["red"]), ("tree", None), ("sky", None), ("grass", None)]
    assert g.relationships == [(0, "left of", 1), (2, "above", 3)]


def test_multi_word_names_and_back_references() -> None:
    g = parse_text("A small person in front of a traffic light and the person on grass", VOCAB)
    assert [o.name for o in g.objects] == ["person", "traffic light", "grass"]
    assert g.objects[0].attributes == ["small"]
    assert g.relationships == [(0, "in front of", 1), (0, "on", 2)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a red cra left of a tree", r"unknown word 'cra'.*did you mean 'car'"),
        ("a blue car", r"unknown word 'blue'"),
        ("left of a tree", "needs an object before it"),
        ("a car left of", "ends without the object"),
        ("", "nothing to parse"),
    ],
)
def test_unknown_words_and_broken_clauses(text: str, message: str) -> None:
    with pytest.raises(SceneGraphError, match=message):
        parse_text(text, VOCAB)
