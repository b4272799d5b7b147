"""A `Command` resolved against the scene: which objects it means, the edit operations
(`scene2img.serving.edit`) that do it, and the line that says what was done.

References resolve by id, class, attributes, position (the object furthest that way, by box
centre) and recency: "it" is the object last spoken of; "the car" with two cars is the car last
spoken of (else the newest), and "the other car" is the one that is not. Geometry (moves and
resizes) pins the object's box, so the picture follows exactly and the latent stays; a move
relative to another object also replaces the moved object's spatial relationships with the new
one, so the graph says what the picture shows.

Everything here is pure (no model): the scene carries the boxes of the last generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from scene2img.data.vocab import Vocab
from scene2img.errors import SceneGraphError
from scene2img.serving.dialog.grammar import Command, Ref
from scene2img.serving.dialog.lexicon import COLOURS, GROUND, SIZES
from scene2img.serving.text import parse_text

MOVE_STEP = 0.2  # a move left / right / up / down: this fraction of the image
RESIZE_FACTOR = 1.25  # bigger: width and height times this (smaller: divided), about the centre
GAP = 0.02  # between an object moved beside or above another and that other
NOT_SPATIAL = ("has",)  # relationships a move leaves alone


@dataclass
class Thing:
    """One object of the scene as the dialog sees it."""

    id: int  # stable across turns ("car #3")
    name: str
    attributes: list[str]
    box: tuple[float, float, float, float] | None  # normalised x, y, w, h (None: not drawn yet)

    def label(self) -> str:
        attrs = f" ({' '.join(self.attributes)})" if self.attributes else ""
        return f"{self.name} #{self.id}{attrs}"


@dataclass
class Scene:
    """The objects (in graph order), their relationships (by position), who was spoken of."""

    things: list[Thing] = field(default_factory=list)
    relationships: list[tuple[int, str, int]] = field(default_factory=list)
    focus: list[int] = field(default_factory=list)  # ids spoken of, most recent last
    next_id: int = 1

    @classmethod
    def from_frame(cls, frame: dict) -> Scene:
        """A frame of the session: a generation state, the objects' ids, the focus."""
        gen = frame["generation"]
        objs = gen["graph"]["objects"]
        things = [Thing(i, o["name"], list(k["attributes"] or o.get("attributes") or []),
                        tuple(k["box"]))
                  for i, o, k in zip(frame["ids"], objs, gen["objects"], strict=True)]
        rels = [(r["subject"], r["predicate"], r["object"])
                for r in gen["graph"].get("relationships", [])]
        return cls(things, rels, list(frame["focus"]), frame["next_id"])

    def index(self, thing_id: int) -> int:
        return next(i for i, t in enumerate(self.things) if t.id == thing_id)

    def listing(self) -> str:
        return ", ".join(t.label() for t in self.things) or "nothing yet"


@dataclass
class Plan:
    """What a turn does: the operations, and the scene's ids and focus afterwards."""

    kind: str
    ops: list[dict]  # edit operations; a start is [{"op": "start", "graph": {...}}]
    message: str  # "added car #3 (red) left of bus #1"
    ids: list[int]  # object ids in graph order after the operations
    focus: list[int]
    next_id: int
    command: Command  # as resolved (a correction's is the corrected command)
    target: int | None = None  # the id acted on


@dataclass
class Previous:
    """The last turn, for corrections: its command, what it acted on and the scene before it."""

    command: Command
    target: int | None
    before: Scene


# --------------------------------------------------------------------------------------------
# references


def resolve(ref: Ref, scene: Scene, exclude: tuple[int, ...] = ()) -> Thing:
    """The object `ref` means; `SceneGraphError` says which reference failed and what there is."""
    said = repr(ref.text or "it")
    if not scene.things:
        raise SceneGraphError(f"{said}: the scene is empty; start one, e.g. 'a road with a bus'")
    if ref.id is not None:
        found = [t for t in scene.things if t.id == ref.id]
        if not found or (ref.name and found[0].name != ref.name):
            raise SceneGraphError(f"{said}: no such object; the scene has {scene.listing()}")
        return found[0]
    recent = [t for i in reversed(scene.focus) for t in scene.things if t.id == i]
    if ref.pronoun:
        if not recent:
            raise SceneGraphError(f"{said}: nothing was spoken of yet; name the object (the "
                                  f"scene has {scene.listing()})")
        return recent[0]
    name = ref.name
    if name is None and ref.one:  # "the other one", "the left one": of the last one's class
        if not recent:
            raise SceneGraphError(f"{said}: which kind of object? name it (the scene has "
                                  f"{scene.listing()})")
        name = recent[0].name
    candidates = [t for t in scene.things if name is None or t.name == name]
    if not candidates:
        raise SceneGraphError(f"{said}: there is no {name} in the scene; it has "
                              f"{scene.listing()}")
    if ref.attributes:
        matching = [t for t in candidates if set(ref.attributes) <= set(t.attributes)]
        if not matching:
            raise SceneGraphError(f"{said}: no {' '.join(ref.attributes)} {name}; there are "
                                  f"{', '.join(t.label() for t in candidates)}")
        candidates = matching
    if ref.other or exclude:
        last = [t.id for t in recent if t in candidates][:1] if ref.other else []
        others = [t for t in candidates if t.id not in (*exclude, *last)]
        if not others:
            raise SceneGraphError(f"{said}: there is no other {name or 'object'}; there "
                                  f"{'is' if len(candidates) == 1 else 'are'} "
                                  f"{', '.join(t.label() for t in candidates)}")
        candidates = others
    if ref.position is not None:
        drawn = [t for t in candidates if t.box is not None]
        axis, sign = {"left": (0, 1), "right": (0, -1), "up": (1, 1), "down": (1, -1)}[
            ref.position]
        return min(drawn or candidates,
                   key=lambda t: sign * (t.box[axis] + t.box[axis + 2] / 2) if t.box else 0)
    spoken = [t for t in recent if t in candidates]
    return spoken[0] if spoken else max(candidates, key=lambda t: t.id)


# --------------------------------------------------------------------------------------------
# geometry


def _clamp(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = box
    w, h = min(w, 1.0), min(h, 1.0)
    x, y = min(max(x, 0.0), 1.0 - w), min(max(y, 0.0), 1.0 - h)
    return tuple(round(v, 4) for v in (x, y, w, h))


def moved(box: tuple, direction: str) -> tuple[float, float, float, float]:
    dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[direction]
    x, y, w, h = box
    return _clamp((x + dx * MOVE_STEP, y + dy * MOVE_STEP, w, h))


def placed(box: tuple, predicate: str, anchor: tuple) -> tuple[float, float, float, float]:
    """`box` (its size kept) put in `predicate` relation to `anchor`."""
    x, y, w, h = box
    ax, ay, aw, ah = anchor
    bottom_aligned = ay + ah - h
    if predicate == "left of":
        return _clamp((ax - w - GAP, bottom_aligned, w, h))
    if predicate == "right of":
        return _clamp((ax + aw + GAP, bottom_aligned, w, h))
    if predicate == "above":
        return _clamp((ax + aw / 2 - w / 2, ay - h - GAP, w, h))
    if predicate == "on":  # standing on it: the bottom at the anchor's middle
        return _clamp((ax + aw / 2 - w / 2, ay + ah / 2 - h, w, h))
    raise SceneGraphError(f"cannot place an object {predicate!r} another; move it with left "
                          "of, right of, above or on")


def resized(box: tuple, direction: str) -> tuple[float, float, float, float]:
    f = RESIZE_FACTOR if direction == "bigger" else 1 / RESIZE_FACTOR
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    w, h = min(w * f, 1.0), min(h * f, 1.0)
    return _clamp((cx - w / 2, cy - h / 2, w, h))


def _area(box: tuple) -> float:
    return box[2] * box[3]


# --------------------------------------------------------------------------------------------
# commands -> operations


def _category(attribute: str) -> str:
    return "colour" if attribute in COLOURS else "size" if attribute in SIZES else attribute


def merge_attributes(old: list[str] | tuple[str, ...], new: tuple[str, ...]) -> list[str]:
    """`new` replaces what `old` says of the same kind (a colour replaces the colour)."""
    replaced = {_category(a) for a in new}
    return [a for a in old if _category(a) not in replaced] + list(dict.fromkeys(new))


def _focus(scene: Scene, *ids: int | None, removed: int | None = None) -> list[int]:
    kept = [i for i in scene.focus if i != removed and i not in ids]
    return (kept + [i for i in ids if i is not None])[-16:]


def _need_box(thing: Thing) -> tuple:
    if thing.box is None:
        raise SceneGraphError(f"{thing.label()} has no place yet")
    return thing.box


def plan(command: Command, scene: Scene, vocab: Vocab) -> Plan:
    """The operations for `command` on `scene`; raises `SceneGraphError` (scene unchanged)."""
    if command.kind == "correct":
        raise SceneGraphError("a correction is planned with `plan_correction`")
    ids = [t.id for t in scene.things]
    kind = command.kind
    if kind == "start" and scene.things and not command.fresh:
        raise SceneGraphError(f"{command.text!r}: there is a scene already; say 'add ...' to add "
                              f"to it, or 'start over with {command.description}' for a new one")
    if kind == "start" or (not scene.things and kind == "add" and command.anchor is None):
        text = command.description or " ".join(
            [*command.attributes, command.name or ""])
        graph = parse_text(text, vocab)
        new_ids = list(range(1, len(graph.objects) + 1))
        labels = ", ".join(Thing(i, o.name, o.attributes or [], None).label()
                           for i, o in zip(new_ids, graph.objects, strict=True))
        return Plan("start", [{"op": "start", "graph": graph.to_json()}],
                    f"started a new scene: {labels}", new_ids, new_ids[-1:],
                    new_ids[-1] + 1, replace(command, kind="start", description=text),
                    new_ids[-1])
    if not scene.things:
        raise SceneGraphError(f"{command.text!r}: the scene is empty; describe one first, e.g. "
                              "'a road with a bus'")
    if kind == "add":
        obj: dict = {"name": command.name}
        if command.attributes:
            obj["attributes"] = list(command.attributes)
        op: dict = {"op": "add", "object": obj}
        new = Thing(scene.next_id, command.name, list(command.attributes), None)
        said = f"added {new.label()}"
        anchor = None
        if command.anchor is not None:
            anchor = resolve(command.anchor, scene)
            op["relationships"] = [{"predicate": command.predicate,
                                    "object": scene.index(anchor.id)}]
            said += f" {command.predicate} {anchor.name} #{anchor.id}"
        return Plan(kind, [op], said, [*ids, new.id],
                    _focus(scene, anchor.id if anchor else None, new.id), new.id + 1,
                    command, new.id)
    if kind == "background":
        grounds = [t for t in scene.things if t.name in GROUND]
        if grounds and all(t.name == command.name for t in grounds):
            raise SceneGraphError(f"{command.text!r}: the ground is already {command.name}")
        if not grounds:
            new_id = scene.next_id
            return Plan(kind, [{"op": "add", "object": {"name": command.name}}],
                        f"set the ground: added {command.name} #{new_id}", [*ids, new_id],
                        _focus(scene, new_id), new_id + 1, command, new_id)
        ops = [{"op": "replace", "index": scene.index(t.id), "name": command.name}
               for t in grounds if t.name != command.name]
        changed = ", ".join(f"{t.name} #{t.id}" for t in grounds if t.name != command.name)
        return Plan(kind, ops, f"changed the ground to {command.name} ({changed})", ids,
                    _focus(scene, grounds[0].id), scene.next_id, command, grounds[0].id)

    thing = resolve(command.target, scene)
    i = scene.index(thing.id)
    keep = (ids, _focus(scene, thing.id), scene.next_id, replace(command, target=Ref(
        id=thing.id, text=command.target.text)), thing.id)
    if kind == "remove":
        return Plan(kind, [{"op": "remove", "index": i}], f"removed {thing.label()}",
                    [k for k in ids if k != thing.id], _focus(scene, removed=thing.id),
                    scene.next_id, *keep[3:])
    if kind == "attributes":
        attrs = merge_attributes(thing.attributes, command.attributes)
        if attrs == thing.attributes:
            raise SceneGraphError(f"{command.text!r}: {thing.label()} is already "
                                  f"{' '.join(command.attributes)}")
        was = [a for a in thing.attributes if a not in attrs]
        said = f"made {thing.name} #{thing.id} {' '.join(command.attributes)}" + (
            f" (was {' '.join(was)})" if was else "")
        return Plan(kind, [{"op": "set_attributes", "index": i, "attributes": attrs}], said,
                    *keep)
    if kind == "replace":
        if command.name == thing.name:
            raise SceneGraphError(f"{command.text!r}: {thing.label()} is already a {thing.name}")
        return Plan(kind, [{"op": "replace", "index": i, "name": command.name}],
                    f"turned {thing.label()} into a {command.name} ({command.name} #{thing.id})",
                    *keep)
    box = _need_box(thing)
    if kind == "resize":
        new = resized(box, command.direction)
        if new == _clamp(box):
            raise SceneGraphError(f"{command.text!r}: {thing.label()} cannot get any "
                                  f"{command.direction}")
        return Plan(kind, [{"op": "set_box", "index": i, "box": list(new)}],
                    f"made {thing.label()} {command.direction} (area {_area(box):.3f} -> "
                    f"{_area(new):.3f})", *keep)
    if kind == "move" and command.direction is not None:
        new = moved(box, command.direction)
        if new == _clamp(box):
            edge = {"up": "top", "down": "bottom"}.get(command.direction, command.direction)
            raise SceneGraphError(f"{command.text!r}: {thing.label()} is already at the {edge} "
                                  "edge")
        axis = 0 if command.direction in ("left", "right") else 1
        return Plan(kind, [{"op": "set_box", "index": i, "box": list(new)}],
                    f"moved {thing.label()} {command.direction} ({'xy'[axis]} {box[axis]:.2f} "
                    f"-> {new[axis]:.2f})", *keep)
    if kind == "move":
        anchor = resolve(command.anchor, scene, exclude=(thing.id,))
        j = scene.index(anchor.id)
        new = placed(box, command.predicate, _need_box(anchor))
        stale = sorted({(s, o) for s, p, o in scene.relationships
                        if i in (s, o) and p not in NOT_SPATIAL})
        ops = [{"op": "remove_relationship", "subject": s, "object": o} for s, o in stale]
        ops += [{"op": "add_relationship", "subject": i, "predicate": command.predicate,
                 "object": j}, {"op": "set_box", "index": i, "box": list(new)}]
        resolved = replace(keep[3], anchor=Ref(id=anchor.id, text=command.anchor.text))
        return Plan(kind, ops, f"moved {thing.label()} {command.predicate} {anchor.name} "
                    f"#{anchor.id}", ids, _focus(scene, anchor.id, thing.id), scene.next_id,
                    resolved, thing.id)
    raise SceneGraphError(f"{command.text!r}: nothing to do for a {kind!r} instruction")


def plan_correction(command: Command, previous: Previous | None, current: Scene,
                    vocab: Vocab) -> tuple[Plan, bool]:
    """A correction of the previous turn: the plan, and whether it replaces that turn (applied
    to the scene before it) rather than refining it (applied to the scene now)."""
    if previous is None:
        raise SceneGraphError(f"{command.text!r}: nothing to correct; the last turn did not "
                              "change the picture")
    prev = previous.command
    if command.attributes:
        if prev.kind not in ("add", "attributes", "start"):
            raise SceneGraphError(f"{command.text!r}: the last turn ({prev.text!r}) set no "
                                  "attributes; say which object, e.g. 'make the car blue'")
        if prev.kind == "start":
            return plan(replace(prev, kind="attributes", text=command.text,
                                target=Ref(id=previous.target, text="it"),
                                attributes=command.attributes), current, vocab), False
        return plan(replace(prev, text=command.text, attributes=tuple(
            merge_attributes(prev.attributes, command.attributes))), previous.before,
            vocab), True
    if command.target is not None:
        if prev.target is None:
            raise SceneGraphError(f"{command.text!r}: the last turn ({prev.text!r}) acted on "
                                  "no object of the scene")
        before = replace(previous.before, focus=[*previous.before.focus, previous.target])
        ref = command.target
        thing = resolve(ref, before, exclude=(previous.target,) if ref.other else ())
        return plan(replace(prev, text=command.text, target=Ref(id=thing.id, text=ref.text)),
                    before, vocab), True
    then = command.then
    if prev.kind in ("add", "start"):  # "add a car" - "no, bigger": refine the new object
        return plan(then, replace(current, focus=[*current.focus, previous.target]),
                    vocab), False
    before = replace(previous.before, focus=[*previous.before.focus, previous.target])
    return plan(then, before, vocab), True
