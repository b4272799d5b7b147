"""A dialog session: turns in, pictures out, with undo / redo, corrections and replay.

The whole session is one JSON-able `state`:

    {"version": 1, "model": FINGERPRINT, "seed": 0, "position": 2,
     "frames": [{"generation": STATE, "ids": [1, 2], "focus": [2], "next_id": 3}, ...],
     "turns": [{"instruction": "add a red car left of the bus", "kind": "add", "ok": true,
                "message": "added car #3 (red) left of bus #1", "ops": [...],
                "command": {...}, "target": 3, "frame": 2}, ...],
     "sha256": ...}

`frames` are the pictures one can go back to (each a generation state of
`scene2img.serving.pipeline`, with the dialog's object ids and who was spoken of); `position` is
the one shown. Undo and redo move `position`; a new edit after an undo drops the frames ahead.
Only the last `MAX_FRAMES` frames are kept (the undo depth); `turns` keeps every instruction, so
a session replays exactly from its turns and seed. A failed turn changes nothing but the log.

The same `Dialog.turn` serves the terminal (`scene2img dialog`), the REST model (the request
carries the state) and the web page.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from scene2img.errors import Scene2ImgError, SceneGraphError
from scene2img.serving.dialog.grammar import Command, parse_instruction
from scene2img.serving.dialog.planner import Plan, Previous, Scene, plan, plan_correction
from scene2img.serving.edit import edit
from scene2img.serving.pipeline import STATE_CHECKSUM, Generation, SceneToImage, state_digest
from scene2img.serving.schema import MAX_SEED, check_seed, show

DIALOG_VERSION = 1
MAX_FRAMES = 16  # pictures kept for undo
MAX_TURNS = 256  # instructions kept in one session
MAX_INSTRUCTION_CHARS = 500
EDIT_KINDS = ("start", "add", "remove", "attributes", "move", "resize", "replace", "background")


@dataclass
class Turn:
    """The outcome of one instruction."""

    ok: bool
    message: str  # what was done, or why nothing was
    kind: str  # the instruction's kind ("error" when it could not be read)
    generation: Generation | None  # the picture shown after the turn (None: empty scene)


def new_state(model: SceneToImage, seed: int = 0) -> dict[str, Any]:
    """An empty session."""
    seed = check_seed(seed, "seed")
    return {"version": DIALOG_VERSION, "model": model.fingerprint, "seed": seed or 0,
            "position": -1, "frames": [], "turns": []}


def seal(state: dict[str, Any]) -> dict[str, Any]:
    """The state with its checksum (a hand-edited state is refused)."""
    return {**{k: v for k, v in state.items() if k != STATE_CHECKSUM},
            STATE_CHECKSUM: state_digest(state)}


def check_dialog_state(model: SceneToImage, state: Any, where: str = "dialog state"
                       ) -> dict[str, Any]:
    """Refuse, in one line naming the field, a session state this model cannot continue."""
    if not isinstance(state, dict) or state.get("version") != DIALOG_VERSION:
        raise SceneGraphError(f"{where}: not a scene2img dialog state of version "
                              f"{DIALOG_VERSION}; start a new session")
    missing = sorted({"model", "seed", "position", "frames", "turns"} - set(state))
    if missing:
        raise SceneGraphError(f"{where}: missing {', '.join(missing)}")
    if STATE_CHECKSUM in state and state[STATE_CHECKSUM] != state_digest(state):
        raise SceneGraphError(f"{where}: changed since scene2img wrote it (checksum mismatch); "
                              "send the state the last turn returned")
    if state["model"] != model.fingerprint:
        raise SceneGraphError(f"{where}: a session of another model (fingerprint "
                              f"{show(state['model'])}, this model's is {model.fingerprint})")
    check_seed(state["seed"], f"{where}: seed")
    frames, turns, position = state["frames"], state["turns"], state["position"]
    if not isinstance(frames, list) or len(frames) > MAX_FRAMES:
        raise SceneGraphError(f"{where}: frames: expected a list of at most {MAX_FRAMES}")
    if not isinstance(turns, list) or len(turns) > MAX_TURNS:
        raise SceneGraphError(f"{where}: turns: expected a list of at most {MAX_TURNS}; start a "
                              "new session")
    if not isinstance(position, int) or isinstance(position, bool) \
            or not -1 <= position < len(frames) or (frames and position < 0):
        raise SceneGraphError(f"{where}: position: {show(position)} is not a frame")
    for k, frame in enumerate(frames):
        at = f"{where}: frames[{k}]"
        if not isinstance(frame, dict) or set(frame) != {"generation", "ids", "focus",
                                                          "next_id"}:
            raise SceneGraphError(f"{at}: expected generation, ids, focus, next_id")
        model.check_state(frame["generation"], where=f"{at}.generation")
        ids = frame["ids"]
        n = len(frame["generation"]["objects"])
        if not isinstance(ids, list) or len(ids) != n or len(set(ids)) != n or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 < i < frame["next_id"]
                for i in ids):
            raise SceneGraphError(f"{at}.ids: expected {n} distinct ids below next_id")
        if not isinstance(frame["focus"], list) or not all(i in ids for i in frame["focus"]):
            raise SceneGraphError(f"{at}.focus: expected ids of the frame's objects")
    for k, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("instruction"), str):
            raise SceneGraphError(f"{where}: turns[{k}]: expected an object with 'instruction'")
    return state


class Dialog:
    """One session with one model: `turn(instruction)` edits the picture and the state."""

    def __init__(self, model: SceneToImage, state: dict[str, Any] | None = None,
                 seed: int = 0) -> None:
        self.model = model
        self.state = copy.deepcopy(check_dialog_state(model, state)) if state is not None \
            else new_state(model, seed)

    # ----------------------------------------------------------------------------------------

    @property
    def scene(self) -> Scene:
        p = self.state["position"]
        return Scene() if p < 0 else Scene.from_frame(self.state["frames"][p])

    def render(self) -> Generation | None:
        """The picture at `position`, regenerated from its state (everything kept: the same
        pixels as when it was first made)."""
        p = self.state["position"]
        if p < 0:
            return None
        gen = self.state["frames"][p]["generation"]
        graph = self.model.parse(gen["graph"])
        out = self.model.generate(graph, seed=gen["seed"],
                                  keep={"z_img": gen["z_img"], "objects": gen["objects"]})
        out.state.update(step=gen["step"], seed=gen["seed"], graph_sha256=gen["graph_sha256"])
        return out

    def _previous(self) -> Previous | None:
        """The last turn, if it changed the picture now shown (what a correction corrects)."""
        turns = self.state["turns"]
        if not turns:
            return None
        last = turns[-1]
        p = self.state["position"]
        if not last["ok"] or last["kind"] not in EDIT_KINDS or last.get("frame") != p \
                or (p == 0 and last["kind"] != "start"):  # the picture before it is gone
            return None
        before = Scene() if p == 0 else Scene.from_frame(self.state["frames"][p - 1])
        return Previous(Command.from_json(last["command"]), last.get("target"), before)

    def _log(self, instruction: str, kind: str, ok: bool, message: str, **extra: Any) -> None:
        turns = self.state["turns"]
        if len(turns) >= MAX_TURNS:
            raise SceneGraphError(f"this session has {MAX_TURNS} turns, the most kept; start a "
                                  "new session")
        turns.append({"instruction": instruction, "kind": kind, "ok": ok, "message": message,
                      **extra})

    def turn(self, instruction: str) -> Turn:
        """Carry out one instruction. A failure (a word, a reference, an edit the model refuses)
        leaves the picture as it was and says why."""
        if not isinstance(instruction, str) or len(instruction) > MAX_INSTRUCTION_CHARS:
            raise SceneGraphError(f"instruction: expected text of at most "
                                  f"{MAX_INSTRUCTION_CHARS} characters, got {show(instruction)}")
        try:
            command = parse_instruction(instruction, self.model.vocab)
        except SceneGraphError as exc:
            self._log(instruction, "error", False, str(exc))
            return Turn(False, str(exc), "error", self.render())
        if command.kind in ("undo", "redo"):
            return self._step(instruction, command.kind)
        try:
            the_plan, base = self._plan(command)
            generation = self._execute(the_plan, base)
        except Scene2ImgError as exc:
            self._log(instruction, command.kind, False, str(exc))
            return Turn(False, str(exc), command.kind, self.render())
        frames = self.state["frames"][:base + 1]
        frames.append({"generation": generation.state, "ids": the_plan.ids,
                       "focus": the_plan.focus, "next_id": the_plan.next_id})
        frames = frames[-MAX_FRAMES:]
        self.state["frames"], self.state["position"] = frames, len(frames) - 1
        self._log(instruction, the_plan.kind, True, the_plan.message, ops=the_plan.ops,
                  command=the_plan.command.to_json(), target=the_plan.target,
                  frame=len(frames) - 1, correction=command.kind == "correct")
        return Turn(True, the_plan.message, the_plan.kind, generation)

    def _plan(self, command: Command) -> tuple[Plan, int]:
        """The plan and the frame it applies to (a correction goes back one)."""
        p = self.state["position"]
        if command.kind != "correct":
            return plan(command, self.scene, self.model.vocab), p
        the_plan, replaces = plan_correction(command, self._previous(), self.scene,
                                             self.model.vocab)
        if replaces:
            the_plan.message = f"instead of {self.state['turns'][-1]['instruction']!r}: " \
                               f"{the_plan.message}"
        return the_plan, p - 1 if replaces else p

    def _execute(self, the_plan: Plan, base: int) -> Generation:
        if the_plan.ops and the_plan.ops[0]["op"] == "start":
            graph = self.model.parse(the_plan.ops[0]["graph"], where="the new scene")
            seed = (self.state["seed"] + len(self.state["turns"])) % (MAX_SEED + 1)
            return self.model.generate(graph, seed=seed)
        state = self.state["frames"][base]["generation"]
        return edit(self.model, state, the_plan.ops, where="the turn's edit")

    def _step(self, instruction: str, kind: str) -> Turn:
        p, n = self.state["position"], len(self.state["frames"])
        target = p - 1 if kind == "undo" else p + 1
        if not 0 <= target < n:
            why = ("nothing to undo" + (" (the first picture of the session, or older than the "
                                        f"{MAX_FRAMES} kept)" if p == 0 else "")
                   if kind == "undo" else "nothing to redo")
            self._log(instruction, kind, False, why)
            return Turn(False, why, kind, self.render())
        self.state["position"] = target
        message = f"{kind}: back to picture {target + 1} of {n}: {self.scene.listing()}"
        self._log(instruction, kind, True, message, frame=target)
        return Turn(True, message, kind, self.render())
