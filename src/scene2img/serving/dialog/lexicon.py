"""The words of the dialog: the model's vocabulary plus a small fixed English lexicon.

Object, attribute and predicate names come from the model's vocabulary; the rest (verbs,
directions, references, a few synonyms, scene words such as "beach", and common relations the
model may not know, such as "in front of") are listed here once. A synonym is used only when the
name it stands for is in the vocabulary, so the lexicon never offers what the model cannot draw.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

from scene2img.data.vocab import IMAGE_OBJECT, IN_IMAGE, Vocab
from scene2img.errors import SceneGraphError

# word -> the vocabulary name it stands for (used only when that name is in the vocabulary)
OBJECT_SYNONYMS = {
    "airplane": "plane", "aeroplane": "plane", "automobile": "car", "man": "person",
    "woman": "person", "boy": "person", "girl": "person", "child": "person", "kid": "person",
    "people": "person", "sea": "water", "ocean": "water", "lake": "water", "street": "road",
    "lawn": "grass", "meadow": "grass", "field": "grass", "beach": "sand", "desert": "sand",
    "hill": "mountain", "mountains": "mountain", "building": "house", "sports ball": "ball",
}
ATTRIBUTE_SYNONYMS = {"grey": "gray", "big": "large", "little": "small", "tiny": "small",
                      "huge": "large"}
PREDICATE_SYNONYMS = {"to the left of": "left of", "to the right of": "right of",
                      "on top of": "on", "over": "above", "beside": "next to"}
# common relations; those the vocabulary lacks are refused by name, with what it offers
KNOWN_RELATIONS = ("in front of", "behind", "below", "under", "beneath", "underneath",
                   "next to", "near", "inside", "in", "on", "above", "left of", "right of",
                   "around", "across")
# what counts as the ground when the background changes ("make it a beach")
GROUND = ("grass", "sand", "water", "road", "snow", "dirt", "pavement", "floor-other",
          "playingfield", "sea", "river", "ground-other", "gravel", "field")
SKY = ("sky", "sky-other", "clouds")
COLOURS = ("white", "black", "gray", "grey", "red", "green", "blue", "yellow", "orange", "brown",
           "pink", "purple", "tan", "silver", "gold", "beige", "dark", "light")
SIZES = ("large", "small", "big", "little", "tall", "short", "long", "huge", "tiny")

DIRECTIONS = {"left": "left", "to the left": "left", "leftwards": "left", "leftward": "left",
              "leftmost": "left", "right": "right", "to the right": "right",
              "rightwards": "right", "rightward": "right", "rightmost": "right", "up": "up",
              "upwards": "up", "higher": "up", "top": "up", "upper": "up", "down": "down",
              "downwards": "down", "lower": "down", "bottom": "down"}
# keyword -> its role in the grammar
KEYWORDS = {
    **{w: "add" for w in ("add", "insert", "draw", "include", "put", "place")},
    **{w: "remove" for w in ("remove", "delete", "erase", "take away", "take out",
                             "get rid of")},
    **{w: "make" for w in ("make", "paint", "colour", "color", "turn", "change", "set")},
    **{w: "replace" for w in ("replace", "swap", "exchange")},
    **{w: "move" for w in ("move", "shift", "push", "slide", "drag")},
    **{w: "bigger" for w in ("bigger", "larger", "enlarge", "grow", "taller", "wider")},
    **{w: "smaller" for w in ("smaller", "shrink", "reduce", "shorter")},
    "undo": "undo", "go back": "undo", "take that back": "undo", "redo": "redo",
    "start": "start", "start over": "start", "new scene": "start", "begin": "start",
    "no": "no", "nope": "no", "wrong": "no", "not": "not", "other": "other", "another": "another",
    "into": "into", "to": "to", "with": "with", "by": "with", "be": "be", "should": "be",
    "is": "be", "are": "be", "it": "it", "that": "that", "this": "that", "one": "one",
    "background": "background", "ground": "background", "scene": "background",
    "picture": "background", "image": "background", "of": "of", "there": "fill",
    "a": "a", "an": "a", "the": "the", "some": "a", "and": "and", "instead": "fill",
    "please": "fill", "now": "fill", "also": "fill", "then": "fill", "just": "fill",
    "again": "fill", "a bit": "fill", "slightly": "fill", "more": "fill", "further": "fill",
    "too": "fill", "i": "fill", "meant": "fill", "mean": "fill", "want": "fill",
    "same": "fill", "let": "fill", "us": "fill", "a little": "fill", "a lot": "fill",
    "much": "fill", "the colour of": "fill", "the color of": "fill", "for": "with",
    "the last change": "that", "the last step": "that", "the last turn": "that",
}


@dataclass(frozen=True)
class Token:
    kind: str  # object, attribute, predicate, badpredicate, direction, id, word
    value: str  # the vocabulary name, direction, keyword role or object id
    text: str  # the words as typed


@dataclass(frozen=True)
class Lexicon:
    """Phrases (as word tuples) -> tokens, for one vocabulary."""

    phrases: dict[tuple[str, ...], Token]
    longest: int
    objects: tuple[str, ...]
    attributes: tuple[str, ...]
    predicates: tuple[str, ...]

    def offer(self, kind: str) -> str:
        """What the vocabulary offers of one kind, for messages."""
        names = {"object": self.objects, "attribute": self.attributes,
                 "predicate": self.predicates}[kind]
        return ", ".join(names)


@functools.lru_cache(maxsize=8)
def _lexicon(objects: tuple[str, ...], attributes: tuple[str, ...],
             predicates: tuple[str, ...]) -> Lexicon:
    phrases: dict[tuple[str, ...], Token] = {}

    def put(text: str, token: Token) -> None:
        phrases.setdefault(tuple(text.split()), token)

    # vocabulary names first: they win over keywords ("orange", "top" may be classes)
    for p in predicates:
        put(p, Token("predicate", p, p))
    for o in objects:
        put(o, Token("object", o, o))
    for a in attributes:
        put(a, Token("attribute", a, a))
    for o in objects:
        if not o.endswith("s"):
            put(o + "s", Token("object", o, o + "s"))
    for word, name in PREDICATE_SYNONYMS.items():
        if name in predicates:
            put(word, Token("predicate", name, word))
    for rel in KNOWN_RELATIONS:
        put(rel, Token("badpredicate", rel, rel))
    for word, name in OBJECT_SYNONYMS.items():
        if name in objects:
            put(word, Token("object", name, word))
    for word, name in ATTRIBUTE_SYNONYMS.items():
        if name in attributes:
            put(word, Token("attribute", name, word))
    for word, d in DIRECTIONS.items():
        put(word, Token("direction", d, word))
    for word, role in KEYWORDS.items():
        put(word, Token("word", role, word))
    for word in (*COLOURS, *SIZES):  # known English, unknown to this model: refused by name
        put(word, Token("badattribute", word, word))
    longest = max(len(k) for k in phrases)
    return Lexicon(phrases, longest, objects, attributes, predicates)


def lexicon(vocab: Vocab) -> Lexicon:
    """The dialog's lexicon over `vocab` (cached)."""
    return _lexicon(tuple(n for n in vocab.object_name_to_idx if n != IMAGE_OBJECT),
                    tuple(vocab.attribute_name_to_idx),
                    tuple(p for p in vocab.pred_name_to_idx if p != IN_IMAGE))


def tokenize(text: str, lex: Lexicon) -> list[Token]:
    """Longest phrases first; `#3` is an object id. An unknown word is a `SceneGraphError` that
    names it and the closest words the dialog knows."""
    words = re.findall(r"#\d+|[a-z]+(?:[-'][a-z]+)*|,", text.lower())
    tokens, i = [], 0
    while i < len(words):
        if words[i].startswith("#"):
            tokens.append(Token("id", words[i][1:], words[i]))
            i += 1
            continue
        for n in range(min(lex.longest, len(words) - i), 0, -1):
            token = lex.phrases.get(tuple(words[i:i + n]))
            if token is not None:
                tokens.append(token)
                i += n
                break
        else:
            word = words[i]
            if word == ",":
                tokens.append(Token("word", "comma", ","))
                i += 1
                continue
            known = [" ".join(k) for k in lex.phrases]
            near = difflib.get_close_matches(word, known, n=3, cutoff=0.75)
            hint = f"did you mean {' or '.join(repr(n) for n in near)}? " if near else ""
            raise SceneGraphError(f"{text!r}: unknown word {word!r}; {hint}objects: "
                                  f"{lex.offer('object')}; attributes: {lex.offer('attribute')}")
    return [t for t in tokens if t.value != "fill" or t.kind != "word"]
