"""A dialog that builds and corrects a picture one instruction at a time.

    lexicon   the words: the model's vocabulary plus a small English lexicon
    grammar   one instruction -> a `Command` (kind, references, attributes, relation, ...)
    planner   a `Command` resolved against the scene -> edit operations and a message
    session   `Dialog`: turns, undo / redo, corrections, the session state, replay

The edit operations are those of `scene2img.serving.edit`, run by the same `SceneToImage` as
`generate` and `edit`: untouched objects keep their latents and boxes.
"""
