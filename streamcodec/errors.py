"""Exceptions raised by streamcodec.

Every error a user can cause derives from StreamcodecError, so callers can catch one type; each
message says what was wrong and what to do about it.
"""


class StreamcodecError(Exception):
    """Base class of all streamcodec errors."""


class AudioInputError(StreamcodecError, ValueError):
    """Audio given to streamcodec cannot be used (empty, NaN, wrong type or shape, bad rate)."""


class BitstreamError(StreamcodecError, ValueError):
    """Bytes that are not a valid streamcodec packet, payload or container (damaged, truncated,
    from another format version or another model)."""


class ImageInputError(StreamcodecError, ValueError):
    """An image given to streamcodec cannot be used (unreadable, wrong shape or type, too large)."""


class MissingExtraError(StreamcodecError, ImportError):
    """A part of streamcodec needs an optional dependency that is not installed; the message names
    the extra to install."""


class StreamcodecWarning(UserWarning):
    """Something was changed on the way in (e.g. an alpha channel dropped); the result is still valid."""
