"""One instruction -> one `Command`: a small grammar over the dialog's lexicon.

    start   "start over with a street with a bus", "a road and a red car" (on an empty scene)
    add     "add a red car left of the bus", "put a ball on the grass"
    remove  "remove the person", "get rid of it"
    recolour / attributes   "make the car blue", "paint it red", "turn the left car small"
    move    "move the car to the right", "put the person on the grass", "move it left of the tree"
    resize  "make the car bigger", "smaller", "shrink the tree"
    replace "turn the bus into a car", "replace the tree with a house"
    background  "make it a beach", "change the background to grass"
    undo / redo
    correct "no, blue", "no, bigger", "the other car", "not that one", "no, the left one"

References (`Ref`) name an object by class and attributes ("the red car"), position ("the left
car", "the car on the right"), id ("#3", "car #3"), recency ("it", "that one") or exclusion
("the other car"); they are resolved against the scene in `scene2img.serving.dialog.planner`.
The grammar only reads words: whether a reference fits the scene is the planner's question.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scene2img.data.vocab import Vocab
from scene2img.errors import SceneGraphError
from scene2img.serving.dialog.lexicon import GROUND, Lexicon, Token, lexicon, tokenize

KINDS = ("start", "add", "remove", "attributes", "move", "resize", "replace", "background",
         "undo", "redo", "correct")


@dataclass(frozen=True)
class Ref:
    """A reference to an object of the scene, as the user said it."""

    name: str | None = None  # class; None: any (or, with `one`, the class of the last one)
    attributes: tuple[str, ...] = ()
    position: str | None = None  # left / right / up / down: the one furthest that way
    id: int | None = None  # "#3"
    pronoun: bool = False  # "it", "that", "that one": the object last spoken of
    other: bool = False  # "the other car", "not that one": not the one last spoken of
    one: bool = False  # "the left one": the class of the object last spoken of
    text: str = ""  # the words, for messages


@dataclass(frozen=True)
class Command:
    """What one instruction asks for, before it is resolved against the scene."""

    kind: str  # one of KINDS
    text: str  # the instruction as typed
    target: Ref | None = None  # the object acted on
    name: str | None = None  # add: the class; replace: the new class; background: the ground
    attributes: tuple[str, ...] = ()  # add, attributes, correct ("no, blue")
    predicate: str | None = None  # add / move: the relation to `anchor`
    anchor: Ref | None = None
    direction: str | None = None  # move: left / right / up / down; resize: bigger / smaller
    description: str | None = None  # start: the scene in the words of `serving.text`
    then: Command | None = None  # correct: the instruction that replaces the previous one
    fresh: bool = False  # start: said so ("start over with ..."), so it may replace a scene

    def to_json(self) -> dict:
        """For the session record (and to replay a correction of a correction)."""
        out = {k: v for k, v in vars(self).items() if v not in (None, (), "") or k == "kind"}
        for key in ("target", "anchor"):
            if key in out:
                out[key] = {k: v for k, v in vars(out[key]).items() if v not in (None, (), False)}
        if "then" in out:
            out["then"] = self.then.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict) -> Command:
        data = dict(data)
        for key in ("target", "anchor"):
            if key in data:
                ref = dict(data[key])
                ref["attributes"] = tuple(ref.get("attributes", ()))
                data[key] = Ref(**ref)
        if "then" in data:
            data["then"] = cls.from_json(data["then"])
        data["attributes"] = tuple(data.get("attributes", ()))
        return cls(**data)


class _Cursor:
    def __init__(self, tokens: list[Token], text: str, lex: Lexicon) -> None:
        self.tokens, self.i, self.text, self.lex = tokens, 0, text, lex

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, *roles: str, ahead: int = 0) -> bool:
        t = self.peek(ahead)
        return t is not None and t.kind == "word" and t.value in roles

    def take(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def skip(self, *roles: str) -> bool:
        if self.word(*roles):
            self.i += 1
            return True
        return False

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def rest(self) -> str:
        return " ".join(t.text for t in self.tokens[self.i:])

    def fail(self, what: str) -> SceneGraphError:
        t = self.peek()
        at = f"at {t.text!r}" if t is not None else "at the end"
        return SceneGraphError(f"{self.text!r}: {what} ({at})")


# --------------------------------------------------------------------------------------------
# phrases


def _attributes(cur: _Cursor) -> tuple[str, ...]:
    attrs = []
    while (t := cur.peek()) is not None and t.kind in ("attribute", "badattribute"):
        if t.kind == "badattribute":
            raise SceneGraphError(f"{cur.text!r}: the model knows no attribute {t.text!r}; its "
                                  f"attributes are: {cur.lex.offer('attribute')}")
        attrs.append(cur.take().value)
        cur.skip("and")
    return tuple(attrs)


def _object_name(cur: _Cursor, what: str) -> str:
    t = cur.peek()
    if t is None or t.kind != "object":
        raise cur.fail(f"expected {what}; the model's objects are: {cur.lex.offer('object')}")
    return cur.take().value


def _ref(cur: _Cursor) -> Ref:
    """[the|that] [other] [position] [attributes] (class [#n] | one) [on the left|right] | it |
    that [one] | #n"""
    start = cur.i
    t = cur.peek()
    if t is None:
        raise cur.fail("expected an object (e.g. 'the car', 'it')")
    if t.kind == "id":
        cur.take()
        return Ref(id=int(t.value), text=t.text)
    if cur.word("it"):
        cur.take()
        return Ref(pronoun=True, text="it")
    if cur.word("that") and not _refers_on(cur, 1):
        cur.take()
        cur.skip("one")
        return Ref(pronoun=True, text="that one")
    cur.skip("the", "that")
    other = cur.skip("other", "another")
    position = None
    if (t := cur.peek()) is not None and t.kind == "direction":
        position = cur.take().value
    attrs = _attributes(cur)
    name, one = None, False
    if cur.skip("one"):
        one = True
    elif (t := cur.peek()) is not None and t.kind == "object":
        name = cur.take().value
    elif not (other or position or attrs):
        raise cur.fail(f"expected an object (e.g. 'the car', 'it'); the model's objects are: "
                       f"{cur.lex.offer('object')}")
    else:
        one = True  # "the other", "the left", "the red": of the class last spoken of
    ident = None
    if (t := cur.peek()) is not None and t.kind == "id":
        ident = int(cur.take().value)
    # "the car on the left"
    if (t := cur.peek()) is not None and t.kind in ("predicate", "badpredicate") \
            and t.value == "on" and cur.word("the", ahead=1) \
            and (d := cur.peek(2)) is not None and d.kind == "direction":
        cur.i += 3
        position = d.value
    text = " ".join(tok.text for tok in cur.tokens[start:cur.i])
    return Ref(name, attrs, position, ident, False, other, one, text)


def _refers_on(cur: _Cursor, ahead: int) -> bool:
    """Whether an object phrase follows ("that red car"), not a bare "that"."""
    t = cur.peek(ahead)
    return t is not None and (t.kind in ("object", "attribute", "direction")
                              or (t.kind == "word" and t.value == "other"))


def _relation(cur: _Cursor) -> tuple[str, Ref] | None:
    t = cur.peek()
    if t is None:
        return None
    if t.kind == "badpredicate":
        raise SceneGraphError(f"{cur.text!r}: the model knows no relation {t.text!r}; its "
                              f"relations are: {cur.lex.offer('predicate')}")
    if t.kind != "predicate":
        return None
    cur.take()
    return t.value, _ref(cur)


def _end(cur: _Cursor, what: str) -> None:
    if not cur.done():
        raise cur.fail(f"did not understand {cur.rest()!r} after {what}")


# --------------------------------------------------------------------------------------------
# instructions


def _add(cur: _Cursor, text: str) -> Command:
    cur.skip("a", "another")
    attrs = _attributes(cur)
    name = _object_name(cur, "an object to add")
    rel = _relation(cur)
    _end(cur, "the object to add")
    return Command("add", text, name=name, attributes=attrs,
                   predicate=rel[0] if rel else None, anchor=rel[1] if rel else None)


def _move_rest(cur: _Cursor, text: str, target: Ref) -> Command:
    cur.skip("to")
    t = cur.peek()
    if t is not None and t.kind == "direction":
        cur.take()
        _end(cur, "the direction")
        return Command("move", text, target=target, direction=t.value)
    rel = _relation(cur)
    if rel is None:
        raise cur.fail(f"expected a direction (left, right, up, down) or a relation "
                       f"({cur.lex.offer('predicate')}) to another object")
    _end(cur, "the relation")
    return Command("move", text, target=target, predicate=rel[0], anchor=rel[1])


def _background(cur: _Cursor, text: str) -> Command:
    cur.skip("to", "into", "be")
    cur.skip("a")
    name = _object_name(cur, "what the ground should be")
    if name not in GROUND:
        grounds = [g for g in GROUND if g in cur.lex.objects]
        raise SceneGraphError(f"{text!r}: {name!r} is not a ground this dialog knows; grounds "
                              f"of this model: {', '.join(grounds) or 'none'}")
    _end(cur, "the background")
    return Command("background", text, name=name)


def _make(cur: _Cursor, text: str) -> Command:
    if cur.word("the") and cur.word("background", ahead=1) or cur.word("background"):
        cur.skip("the")
        cur.take()
        return _background(cur, text)
    return _make_rest(cur, text, _ref(cur))


def _make_rest(cur: _Cursor, text: str, target: Ref) -> Command:
    """What follows "make X" (or "X should be"): attributes, bigger / smaller, a direction,
    [into] another object or ground."""
    while cur.skip("be"):
        pass
    if cur.word("bigger", "smaller"):
        direction = cur.take().value
        _end(cur, direction)
        return Command("resize", text, target=target, direction=direction)
    if cur.word("into", "to") and (t := cur.peek(1)) is not None and t.kind == "attribute":
        cur.take()
    if (t := cur.peek()) is not None and t.kind in ("attribute", "badattribute"):
        attrs = _attributes(cur)
        _end(cur, "the attributes")
        return Command("attributes", text, target=target, attributes=attrs)
    if (t := cur.peek()) is not None and t.kind == "direction":
        return _move_rest(cur, text, target)
    cur.skip("into", "to")
    cur.skip("a")
    t = cur.peek()
    if t is not None and t.kind == "object":
        if target.pronoun and t.value in GROUND:  # "make it a beach"
            return _background(cur, text)
        name = cur.take().value
        _end(cur, "the new object")
        return Command("replace", text, target=target, name=name)
    raise cur.fail("expected an attribute (e.g. 'blue'), 'bigger' / 'smaller', or 'into' "
                   "another object")


def _correct(cur: _Cursor, text: str, vocab: Vocab) -> Command:
    """After "no" / "not": attributes, a reference ("the other car", "that one") or a new
    instruction for the same object ("bigger", "move it left")."""
    cur.skip("no", "not")
    cur.skip("comma")
    if cur.done():
        raise cur.fail("say what to change instead, e.g. 'no, blue' or 'the other car'")
    if cur.word("that") and cur.word("one", ahead=1) or cur.word("it") and cur.done():
        cur.i += 2 if cur.word("that") else 1
        _end(cur, "'not that one'")
        return Command("correct", text, target=Ref(other=True, one=True, text="the other one"))
    if cur.word("not"):
        return _correct(cur, text, vocab)
    t = cur.peek()
    if t.kind in ("attribute", "badattribute"):
        attrs = _attributes(cur)
        _end(cur, "the attributes")
        return Command("correct", text, attributes=attrs)
    if cur.word("the", "other") or t.kind in ("object", "id"):
        target = _ref(cur)
        _end(cur, "the object")
        return Command("correct", text, target=target)
    rest = cur.rest()
    return Command("correct", text, then=parse_instruction(rest, vocab, correcting=True))


def parse_instruction(text: str, vocab: Vocab, correcting: bool = False) -> Command:
    """Read one instruction; `SceneGraphError` names the word that failed and what the
    vocabulary offers."""
    if not isinstance(text, str) or not text.strip():
        raise SceneGraphError("an empty instruction; say what to draw or change, e.g. 'add a "
                              "red car left of the bus'")
    lex = lexicon(vocab)
    tokens = tokenize(text, lex)
    if not tokens:
        raise SceneGraphError(f"{text!r}: nothing to do; say what to draw or change")
    cur = _Cursor(tokens, text, lex)
    first = cur.peek()
    role = first.value if first.kind == "word" else None

    if role in ("no", "not") and not correcting or role == "the" and cur.word("other", ahead=1):
        return _correct(cur, text, vocab)
    if role == "other":
        return _correct(cur, text, vocab)
    if role in ("undo", "redo"):
        cur.take()
        cur.skip("that", "it")
        _end(cur, role)
        return Command(role, text)
    if role == "start":
        cur.take()
        cur.skip("with", "of", "a", "the")
        cur.skip("background")
        cur.skip("with", "of")
        return replace(_start(cur, text), fresh=True)
    if role == "add":
        verb = cur.take()
        if verb.text in ("put", "place") and not _adds(cur):  # "put the car on the road"
            return _move_rest(cur, text, _ref(cur))
        return _add(cur, text)
    if role == "remove":
        cur.take()
        target = _ref(cur)
        _end(cur, "the object to remove")
        return Command("remove", text, target=target)
    if role == "move":
        cur.take()
        return _move_rest(cur, text, _ref(cur))
    if role in ("bigger", "smaller"):
        cur.take()
        target = Ref(pronoun=True, text="it") if cur.done() else _ref(cur)
        _end(cur, role)
        return Command("resize", text, target=target, direction=role)
    if role == "make":
        cur.take()
        return _make(cur, text)
    if role == "replace":
        cur.take()
        target = _ref(cur)
        if not cur.skip("with", "by"):
            raise cur.fail("expected 'with' and the new object ('replace the bus with a car')")
        cur.skip("a")
        name = _object_name(cur, "the new object")
        _end(cur, "the new object")
        return Command("replace", text, target=target, name=name)
    if first.kind in ("attribute", "badattribute") and _only(tokens, "attribute",
                                                               "badattribute"):
        return Command("attributes", text, target=Ref(pronoun=True, text="it"),
                       attributes=_attributes(cur))
    if first.kind == "direction" and len(tokens) == 1:
        return Command("move", text, target=Ref(pronoun=True, text="it"), direction=first.value)
    if role in ("the", "it", "that") or first.kind in ("object", "id"):  # "the car should be red"
        start = cur.i
        try:
            target = _ref(cur)
        except SceneGraphError:
            target = None
        if target is not None and cur.word("be"):
            return _make_rest(cur, text, target)
        if target is not None and cur.done():
            raise SceneGraphError(f"{text!r}: what should happen to {target.text}? e.g. "
                                  f"'make {target.text} blue', 'remove {target.text}'")
        cur.i = start
    if role in ("a", "with", "fill") or first.kind in ("object", "attribute"):
        return _start(cur, text)  # a description: starts a scene (the planner adds to one)
    raise SceneGraphError(f"{text!r}: did not understand {first.text!r}; start with add, "
                          "remove, make, move, replace, bigger, smaller, undo, redo or no")


def _adds(cur: _Cursor) -> bool:
    """After put / place: a new object ("put a ball") rather than one of the scene's."""
    return cur.word("a", "another") or (t := cur.peek()) is not None and t.kind == "attribute"


def _only(tokens: list[Token], *kinds: str) -> bool:
    return all(t.kind in kinds or (t.kind == "word" and t.value in ("and", "comma"))
               for t in tokens)


def _start(cur: _Cursor, text: str) -> Command:
    """A scene description in the canonical words `scene2img.serving.text.parse_text` reads."""
    words = []
    for t in cur.tokens[cur.i:]:
        if t.kind in ("object", "attribute", "predicate"):
            words.append(t.value)
        elif t.kind == "badpredicate":
            raise SceneGraphError(f"{text!r}: the model knows no relation {t.text!r}; its "
                                  f"relations are: {cur.lex.offer('predicate')}")
        elif t.kind == "badattribute":
            raise SceneGraphError(f"{text!r}: the model knows no attribute {t.text!r}; its "
                                  f"attributes are: {cur.lex.offer('attribute')}")
        elif t.kind == "word" and t.value in ("a", "the"):
            words.append(t.text if t.text in ("a", "an", "the") else "a")
        elif t.kind == "word" and t.value in ("with", "and", "comma"):
            words.append(",")
        elif t.kind == "word" and t.value in ("be", "background"):
            continue
        else:
            raise SceneGraphError(f"{text!r}: did not understand {t.text!r} in a scene "
                                  "description; describe objects, e.g. 'a road with a red bus'")
    description = " ".join(words).strip(" ,")
    if not description:
        raise SceneGraphError(f"{text!r}: describe the scene, e.g. 'start with a road and a bus'")
    return Command("start", text, description=description)

