"""Typed errors whose message is meant for the user; only the app/CLI decide how to show them."""


class ArtStyleError(Exception):
    """Base class: str(error) is a user-readable message."""


class DecodeError(ArtStyleError):
    """An image file could not be read; ``reason`` is short and user-readable."""

    def __init__(self, reason: str, path=None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path is not None else reason)


class BackboneUnavailable(ArtStyleError):
    """The chosen feature backbone cannot be loaded (missing weights, offline, ...)."""


class IndexLocked(ArtStyleError):
    """Another process is writing the same index."""


class IndexCorrupt(ArtStyleError):
    """An index file is damaged or hostile."""


class Cancelled(ArtStyleError):
    """The user cancelled a long-running step."""


class IndexMissing(ArtStyleError):
    """A command that only reads found no index (nothing was created); the CLI says how to make one."""
