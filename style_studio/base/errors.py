"""Errors a person can act on.

Core functions raise these with a message that says what went wrong and what to do;
the UI shows the message as it is, never a traceback.
"""


class StudioError(Exception):
    """Base class: the message is meant for the artist."""


class InvalidInput(StudioError):
    """A value, file or request that cannot be used as given."""


class NotFound(StudioError):
    """A style, image, run or job id that does not exist (any more)."""


class ModelUnavailable(StudioError):
    """A base or captioning model that is not on this machine."""


class StoreCorrupt(StudioError):
    """The database file cannot be read and no good backup exists."""


class JobCancelled(StudioError):
    """Raised inside a job when the artist asked it to stop."""


class GateRefused(StudioError):
    """Training was asked for images the consent gate does not allow."""


class WorkspaceBusy(StudioError):
    """Another Style Studio process has this workspace open."""
