"""One exception hierarchy. Every message says what was wrong, where, and what to do.

The CLI turns a `Scene2ImgError` into one line on stderr and exit code 2.
"""

from __future__ import annotations


class Scene2ImgError(Exception):
    """Base class: an error the user can act on (bad input, bad config, missing file)."""


class ConfigError(Scene2ImgError):
    """A parameter or override is unknown, has the wrong type or an invalid value."""


class DataError(Scene2ImgError):
    """Raw or processed data is malformed, missing or inconsistent."""


class EmptyDatasetError(DataError):
    """Filtering removed everything; the message says which filter removed what."""


class SceneGraphError(Scene2ImgError):
    """A scene graph (training record or user request) is invalid for the model."""


class ModelError(Scene2ImgError):
    """A model file is missing, corrupt or incompatible."""


class TrackingError(Scene2ImgError):
    """MLflow / registry operations failed or were refused (e.g. by the promotion gate)."""


class ParamNotGivenError(ConfigError, AttributeError):
    """A partial params load (a pipeline step's own keys) was read at a key it was not given.

    Also an `AttributeError`, so that `hasattr` and `getattr(..., default)` stay quiet."""
