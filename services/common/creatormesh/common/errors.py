"""Domain errors. Plain exceptions, free of transport: the gRPC layer maps them to
status codes (see :mod:`creatormesh.common.grpc_errors`) and the event bus sends
messages that raise :class:`InvalidArgument` straight to the dead-letter topic.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class of the errors a caller can act on."""


class InvalidArgument(DomainError):
    """A request or event field is invalid. ``field`` is its path, e.g. ``items[3].follower_count``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.description = message

    def within(self, prefix: str) -> InvalidArgument:
        """The same error with its field path nested under ``prefix`` (e.g. a batch index)."""
        return InvalidArgument(f"{prefix}.{self.field}" if self.field else prefix, self.description)


class NotFound(DomainError):
    """The named resource does not exist."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} not found")
        self.kind = kind
        self.name = name


class AlreadyExists(DomainError):
    """A resource with this id exists with different content."""


class FailedPrecondition(DomainError):
    """The system is not in a state where this request can run (e.g. job already finished)."""


class ResourceExhausted(DomainError):
    """Overload or quota: the caller should back off and retry later."""


class Unavailable(DomainError):
    """A dependency is temporarily unavailable; retrying may succeed."""


def require(condition: bool, field: str, message: str) -> None:
    """Raise :class:`InvalidArgument` for ``field`` unless ``condition`` holds."""
    if not condition:
        raise InvalidArgument(field, message)
