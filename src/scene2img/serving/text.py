"""A small parser from simple English to a scene graph over a model's vocabulary.

    "a red car left of a tree, sky above grass"
    -> objects: car [red], tree, sky, grass
       relationships: car left of tree, sky above grass

Clauses are separated by commas, ";" or "and"; a clause is `[det] [attributes] object` optionally
followed by `predicate [det] [attributes] object`. Names are matched greedily, longest first, so
multi-word classes and predicates ("in front of", "traffic light") work. "the X" refers back to
an X already mentioned; "a X" always adds a new one. Any other word is an error that names it and
the closest vocabulary words.
"""

from __future__ import annotations

import difflib
import re

from scene2img.data.vocab import IMAGE_OBJECT, IN_IMAGE, Vocab
from scene2img.errors import SceneGraphError
from scene2img.serving.schema import SceneGraph, SceneObject, show

ARTICLES = {"a", "an", "the", "one", "some"}
FILLER = {"is", "are", "there", "with"}


def _phrases(names) -> dict[tuple[str, ...], str]:
    return {tuple(n.split()): n for n in names}


def parse_text(text: str, vocab: Vocab, max_chars: int | None = None) -> SceneGraph:
    """Parse `text` into a `SceneGraph`; `SceneGraphError` names any unknown word."""
    if max_chars is not None and len(text) > max_chars:
        raise SceneGraphError(f"text: {len(text)} characters, more than the {max_chars} accepted")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # undecodable bytes on the command line (surrogateescape)
        raise SceneGraphError(f"text: not UTF-8 (character {exc.start}: "
                              f"{text[exc.start]!r}); write it in UTF-8") from None
    objects = _phrases(n for n in vocab.object_name_to_idx if n != IMAGE_OBJECT)
    preds = _phrases(p for p in vocab.pred_name_to_idx if p != IN_IMAGE)
    attrs = _phrases(vocab.attribute_name_to_idx)
    longest = max(len(k) for k in (*objects, *preds, *attrs, ("x",)))

    graph = SceneGraph(objects=[], relationships=[])
    clauses = [c for c in re.split(r"[,;.]|\band\b", text.lower()) if c.strip()]
    if not clauses:
        raise SceneGraphError("text: nothing to parse; describe at least one object")
    for clause in clauses:
        words = re.findall(r"[a-z]+(?:-[a-z]+)*", clause)
        tokens = _tokenize(words, objects, preds, attrs, longest, clause)
        _clause_to_graph(tokens, graph, clause)
    return graph


def _tokenize(words, objects, preds, attrs, longest, clause) -> list[tuple[str, str]]:
    """[(kind, name)] with kind in object / predicate / attribute / article."""
    tokens, i = [], 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            key = tuple(words[i : i + n])
            # predicates before objects: "on" is a predicate, not part of a name
            for kind, table in (("predicate", preds), ("object", objects), ("attribute", attrs)):
                if key in table:
                    tokens.append((kind, table[key]))
                    break
            else:
                continue
            i += n
            break
        else:
            word = words[i]
            if word in ARTICLES:
                tokens.append(("article", word))
            elif word not in FILLER:
                known = [" ".join(k) for k in (*objects, *preds, *attrs)]
                near = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else \
                    "; use object, attribute and predicate names of the model's vocabulary"
                raise SceneGraphError(f"text: unknown word {show(word)} in "
                                      f"{show(clause.strip(), 60)}{hint}")
            i += 1
    return tokens


def _clause_to_graph(tokens: list[tuple[str, str]], graph: SceneGraph, clause: str) -> None:
    mentions: list[int] = []
    predicate: str | None = None
    article, pending_attrs = None, []
    for kind, name in tokens:
        if kind == "article":
            article = name
        elif kind == "attribute":
            pending_attrs.append(name)
        elif kind == "object":
            index = None
            if article == "the":
                index = next((j for j in range(len(graph.objects) - 1, -1, -1)
                              if graph.objects[j].name == name), None)
            if index is None:
                graph.objects.append(SceneObject(name, pending_attrs or None))
                index = len(graph.objects) - 1
            elif pending_attrs:
                graph.objects[index].attributes = sorted(
                    set(graph.objects[index].attributes or []) | set(pending_attrs))
            mentions.append(index)
            article, pending_attrs = None, []
            if predicate is not None:
                graph.relationships.append((mentions[-2], predicate, mentions[-1]))
                predicate = None
        else:  # predicate
            if not mentions or predicate is not None:
                raise SceneGraphError(f"text: {name!r} needs an object before it in "
                                      f"{show(clause.strip(), 60)}")
            predicate = name
    if predicate is not None or pending_attrs:
        raise SceneGraphError(f"text: {show(clause.strip(), 60)} ends without the object it "
                              "describes")
    if not mentions:
        raise SceneGraphError(f"text: {show(clause.strip(), 60)} names no object")
